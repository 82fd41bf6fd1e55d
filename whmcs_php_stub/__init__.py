"""The PHP hook file that goes into WHMCS (``vipgate.php``), shipped as package data."""

from importlib.resources import files
from pathlib import Path


def stub_source() -> str:
    """The text of ``vipgate.php``."""
    return files(__name__).joinpath("vipgate.php").read_text(encoding="utf-8")


STUB_PATH = Path(__file__).with_name("vipgate.php")
