"""The PHP side that goes into WHMCS, shipped as package data: the stub (``vipgate.php``, one
implementation of the hooks), the loader of the includes/hooks install (``hooks_loader.php``)
and the addon module (``addon/vipgate.php``, ``addon/hooks.php``);
``bridge.whmcs.stub_install`` lists where each is installed. And what Python reads out of the
stub: it is the one place its constants, its default settings and its tables' CREATE
statements are written (the sandbox's Python emulation of the stub and ``install-stub`` take
them from here).

Only the plain forms the stub uses are read: ``const VIPGATE_X = <int | 'text' . 'text' ...>;``,
a function returning one single-quoted string, and a function returning an array of
``'key' => <int | true | false | 'text'>`` items. Anything else raises StubSourceError naming
the constant or function, so a stub edited into another shape fails loudly, not silently.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files
from pathlib import Path

STUB_PATH = Path(__file__).with_name("vipgate.php")

PhpScalar = int | bool | str

_STRING = r"'((?:[^'\\]|\\.)*)'"
_TOKEN = re.compile(rf"\s*(?:{_STRING}|(-?\d+)\b|(true|false)\b|(\.))\s*")


class StubSourceError(Exception):
    """vipgate.php does not hold what was looked for in the expected form."""


def php_source(name: str) -> str:
    """The text of the package's PHP file ``name`` (a path inside the package)."""
    return files(__name__).joinpath(name).read_text(encoding="utf-8")


def stub_source() -> str:
    """The text of the stub, ``vipgate.php``."""
    return php_source("vipgate.php")


PHP_FILES = (STUB_PATH, STUB_PATH.with_name("hooks_loader.php"),
             STUB_PATH.parent / "addon" / "vipgate.php", STUB_PATH.parent / "addon" / "hooks.php")


def _unquote(text: str) -> str:
    return re.sub(r"\\([\\'])", r"\1", text)


def _scalar(text: str, what: str) -> PhpScalar:
    """One PHP literal (int, true, false, a single-quoted string), or single-quoted strings
    joined by ``.``."""
    tokens: list[re.Match[str]] = []
    position = 0
    while position < len(text):
        token = _TOKEN.match(text, position)
        if token is None or token.end() == position:
            raise StubSourceError(f"vipgate.php: {what} is not a plain PHP value")
        tokens.append(token)
        position = token.end()
    if len(tokens) == 1 and tokens[0].group(2) is not None:
        return int(tokens[0].group(2))
    if len(tokens) == 1 and tokens[0].group(3) is not None:
        return tokens[0].group(3) == "true"
    strings, dots = tokens[::2], tokens[1::2]
    if len(tokens) % 2 == 1 and all(t.group(1) is not None for t in strings) \
            and all(t.group(4) is not None for t in dots):
        return "".join(_unquote(t.group(1)) for t in strings)
    raise StubSourceError(f"vipgate.php: {what} is not a plain PHP value")


def constants_in(source: str) -> dict[str, PhpScalar]:
    """Every top-level ``const VIPGATE_...`` of PHP ``source``, by name."""
    found = {m.group(1): _scalar(m.group(2), m.group(1)) for m in re.finditer(
        r"^const (VIPGATE_\w+) =(.*?);$", source, re.MULTILINE | re.DOTALL)}
    if not found:
        raise StubSourceError("vipgate.php: no const VIPGATE_... found")
    return found


def _function_return(source: str, name: str) -> str:
    match = re.search(rf"^function {name}\(\)\n\{{\n(.*?)^\}}$", source, re.MULTILINE | re.DOTALL)
    returned = re.fullmatch(r"\s*return (.*);\s*", match.group(1), re.DOTALL) if match else None
    if returned is None:
        raise StubSourceError(f"vipgate.php: function {name}() is not a single return")
    return returned.group(1)


def array_in(source: str, function: str) -> dict[str, PhpScalar]:
    """What ``function()`` of PHP ``source`` returns: ``'key' => scalar`` items, in order."""
    inner = re.fullmatch(r"\[(.*)\]", _function_return(source, function).strip(), re.DOTALL)
    if inner is None:
        raise StubSourceError(f"vipgate.php: {function}() does not return an array literal")
    found: dict[str, PhpScalar] = {}
    for item in inner.group(1).split(",\n"):
        if not item.strip(" \n,"):
            continue
        key = re.fullmatch(rf"\s*{_STRING}\s*=>(.*?),?\s*", item, re.DOTALL)
        if key is None:
            raise StubSourceError(f"vipgate.php: {function}() has an item that is not "
                                  f"'key' => value: {item.strip()!r}")
        found[_unquote(key.group(1))] = _scalar(key.group(2), f"{function}()[{key.group(1)}]")
    return found


@cache
def stub_constants() -> dict[str, PhpScalar]:
    """Every top-level ``const VIPGATE_...`` of the stub, by name."""
    return constants_in(stub_source())


def stub_constant(name: str) -> PhpScalar:
    try:
        return stub_constants()[name]
    except KeyError:
        raise StubSourceError(f"vipgate.php has no const {name}") from None


@cache
def stub_array(function: str) -> dict[str, PhpScalar]:
    """What the stub's ``function()`` returns (an array of ``'key' => scalar`` items)."""
    return array_in(stub_source(), function)


@cache
def stub_version() -> str:
    """``vipgate_version()``: the version the stub names in every request."""
    version = _scalar(_function_return(stub_source(), "vipgate_version"), "vipgate_version()")
    if not isinstance(version, str):
        raise StubSourceError("vipgate.php: vipgate_version() does not return a string")
    return version
