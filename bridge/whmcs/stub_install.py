"""Install the PHP hook file into a WHMCS folder: ``includes/hooks/vipgate.php`` and its
settings file ``includes/hooks/_vipgate_config.php`` (the leading underscore keeps WHMCS from
loading it as a hook file).

Each file is written to a temporary file in the same folder and renamed over the old one, so
an error never leaves half a file for WHMCS to include.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from bridge.settings import check_webhook_secret
from whmcs_php_stub import stub_array, stub_source

HOOK_PATH = "/hooks/whmcs"
STUB_NAME = "vipgate.php"
CONFIG_NAME = "_vipgate_config.php"
# The settings written into _vipgate_config.php with the stub's own defaults (vipgate_defaults()
# in vipgate.php); the url, the secret and fail_open are written from the arguments.
STUB_DEFAULTS = {key: value for key, value in stub_array("vipgate_defaults").items()
                 if key not in ("url", "secret", "fail_open")}


class StubInstallError(Exception):
    """The stub cannot be installed; the message is one line naming the problem."""


def php_string(text: str) -> str:
    """``text`` as a PHP single-quoted string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def render_config(endpoint: str, secret: str, *, fail_open: bool) -> str:
    """The text of ``_vipgate_config.php``."""
    lines = [
        "<?php",
        "/**",
        " * vipgate hook forwarder settings, written by `vipgate install-stub`.",
        " * Private: holds the webhook signing secret. Read by vipgate.php beside it.",
        " */",
        "",
        "if (!defined('WHMCS')) {",
        "    die('This file cannot be accessed directly');",
        "}",
        "",
        "return [",
        f"    'url' => {php_string(endpoint)},",
        f"    'secret' => {php_string(secret)},",
        *(f"    '{key}' => {value}," for key, value in STUB_DEFAULTS.items()),
        f"    'fail_open' => {'true' if fail_open else 'false'},",
        "];",
        "",
    ]
    return "\n".join(lines)


def _endpoint(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StubInstallError(f"bridge URL {url!r} must start with http:// or https:// "
                               "and name a host")
    if parts.query or parts.fragment or any(c.isspace() for c in url.strip()):
        raise StubInstallError(f"bridge URL {url!r} must have no query, fragment or spaces")
    return url.strip().rstrip("/") + HOOK_PATH


def _write_atomic(path: Path, text: str, mode: int, owner: os.stat_result) -> None:
    """Write ``text`` to ``path`` through a temporary file renamed over it."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), mode)
            if os.geteuid() == 0:
                # Run as root: hand the file to whoever owns the hooks folder (the web server's
                # user or group), or WHMCS could not read a 0640 file.
                os.fchown(handle.fileno(), owner.st_uid, owner.st_gid)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise StubInstallError(f"cannot write {path}: {exc.strerror or exc}") from None


def install_stub(whmcs_dir: Path, url: str, secret: str, *,
                 fail_open: bool = True) -> tuple[Path, Path]:
    """Write the hook file and its settings into ``whmcs_dir``; return both paths.

    ``url`` is the bridge's base URL (``[bridge] public_url``); the stub posts to
    ``url + "/hooks/whmcs"``. Raises StubInstallError.
    """
    whmcs_dir = Path(whmcs_dir)
    if not whmcs_dir.is_dir():
        raise StubInstallError(f"WHMCS folder {whmcs_dir} does not exist")
    includes = whmcs_dir / "includes"
    if not includes.is_dir():
        raise StubInstallError(f"{whmcs_dir} is not a WHMCS folder: it has no includes/ folder")
    endpoint = _endpoint(url)
    try:
        check_webhook_secret(secret)
    except ValueError as exc:
        raise StubInstallError(f"webhook secret is not valid: {exc}") from None
    hooks_dir = includes / "hooks"
    try:
        hooks_dir.mkdir(exist_ok=True)
        owner = hooks_dir.stat()
    except OSError as exc:
        raise StubInstallError(f"cannot create {hooks_dir}: {exc.strerror or exc}") from None
    stub_path, config_path = hooks_dir / STUB_NAME, hooks_dir / CONFIG_NAME
    # The settings first: a stub without them only logs that they are missing.
    _write_atomic(config_path, render_config(endpoint, secret, fail_open=fail_open), 0o640,
                  owner)
    _write_atomic(stub_path, stub_source(), 0o644, owner)
    return stub_path, config_path
