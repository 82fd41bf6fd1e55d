"""What Python reads out of ``vipgate.php`` (``whmcs_php_stub``): the stub's constants, its
default settings, its outbox columns and its version, written once in the PHP file and read by
the sandbox's Python emulation and by install-stub. php itself must see the same values, and a
stub edited into a shape the reader does not know fails loudly, naming what it could not read.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.php_helpers import Whmcs
from whmcs_php_stub import (
    StubSourceError,
    array_in,
    constants_in,
    stub_array,
    stub_constants,
    stub_version,
)


@pytest.mark.php
def test_what_python_reads_equals_what_php_sees(whmcs: Whmcs, closed_url: str) -> None:
    whmcs.install(closed_url)
    seen = json.loads(whmcs.eval(
        "$c = get_defined_constants(true)['user']; echo json_encode(["
        "'constants' => array_filter($c, function ($k) { return strpos($k, 'VIPGATE_') === 0; },"
        " ARRAY_FILTER_USE_KEY), 'defaults' => vipgate_defaults(),"
        " 'columns' => vipgate_spool_columns(), 'version' => vipgate_version()]);"))
    assert stub_constants() == seen["constants"]
    assert "VIPGATE_SPOOL_SQLITE" in seen["constants"] and "VIPGATE_BREAKER" in seen["constants"]
    assert stub_array("vipgate_defaults") == seen["defaults"]
    assert list(stub_array("vipgate_defaults")) == list(seen["defaults"])  # in order
    assert stub_array("vipgate_spool_columns") == seen["columns"]
    assert stub_version() == seen["version"]


def test_strings_joined_with_dots_and_escapes_are_read_as_php_reads_them() -> None:
    source = ("const VIPGATE_A = 'it\\'s'\n    . ' a \\\\ b';\nconst VIPGATE_B = -5;\n"
              "const VIPGATE_C = '';\n")
    assert constants_in(source) == {"VIPGATE_A": "it's a \\ b", "VIPGATE_B": -5,
                                    "VIPGATE_C": ""}
    assert array_in("function f()\n{\n    return [\n        'on' => true,\n"
                    "        'n' => 3,\n    ];\n}\n", "f") == {"on": True, "n": 3}


@pytest.mark.parametrize(("source", "read", "message"), [
    ("const VIPGATE_X = 1 + 2;\n", "constants", "VIPGATE_X is not a plain PHP value"),
    ("const VIPGATE_X = 'a' 'b';\n", "constants", "VIPGATE_X is not a plain PHP value"),
    ("const VIPGATE_X = 'a' . ;\n", "constants", "VIPGATE_X is not a plain PHP value"),
    ("const OTHER = 1;\n", "constants", "no const VIPGATE_... found"),
    ("function f()\n{\n    $x = 1;\n    return [];\n}\n", "f", "function f() is not a single "
                                                            "return"),
    ("function g()\n{\n    return [];\n}\n", "f", "function f() is not a single return"),
    ("function f()\n{\n    return 5;\n}\n", "f", "f() does not return an array literal"),
    ("function f()\n{\n    return [\n        'a' => foo(),\n    ];\n}\n", "f",
     "f()[a] is not a plain PHP value"),
    ("function f()\n{\n    return [\n        5,\n    ];\n}\n", "f",
     "f() has an item that is not 'key' => value: '5'"),
])
def test_a_stub_the_reader_does_not_understand_is_refused_by_name(
        source: str, read: str, message: str) -> None:
    with pytest.raises(StubSourceError, match=re.escape(message)):
        if read == "constants":
            constants_in(source)
        else:
            array_in(source, read)
