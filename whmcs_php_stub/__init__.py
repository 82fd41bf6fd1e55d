"""The PHP side that goes into WHMCS, shipped as package data: the stub (``vipgate.php``, one
implementation of the hooks), the loader of the includes/hooks install (``hooks_loader.php``)
and the addon module (``addon/vipgate.php``, ``addon/hooks.php``).
``bridge.whmcs.stub_install`` lists where each is installed."""

from importlib.resources import files
from pathlib import Path


def php_source(name: str) -> str:
    """The text of the package's PHP file ``name`` (a path inside the package)."""
    return files(__name__).joinpath(name).read_text(encoding="utf-8")


def stub_source() -> str:
    """The text of the stub, ``vipgate.php``."""
    return php_source("vipgate.php")


STUB_PATH = Path(__file__).with_name("vipgate.php")
PHP_FILES = (STUB_PATH, STUB_PATH.with_name("hooks_loader.php"),
             STUB_PATH.parent / "addon" / "vipgate.php", STUB_PATH.parent / "addon" / "hooks.php")
