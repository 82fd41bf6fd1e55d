"""Install the PHP stub into a WHMCS folder, in one of two ways (``HOOKS_INSTALL`` and
``ADDON_INSTALL`` list the paths each writes):

- the addon module (recommended), ``modules/addons/vipgate/``: the operator activates it in
  WHMCS's Setup > Addon Modules and enters the settings there (``install_addon``);
- ``includes/hooks/`` (the alternative): the hook file, the stub and a generated settings file
  (``install_stub``); the leading underscores keep WHMCS from loading those two itself.

Both install the same stub (``whmcs_php_stub/vipgate.php``) beside a small loader. Each file is
written to a temporary file in the same folder and renamed over the old one, so an error never
leaves half a file for WHMCS to include; the stub is written before the files that load it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bridge.i18n import N_, why
from bridge.settings import check_webhook_secret
from whmcs_php_stub import php_source, stub_array

HOOK_PATH = "/hooks/whmcs"
STUB_NAME = "vipgate.php"
CONFIG_NAME = "_vipgate_config.php"


@dataclass(frozen=True)
class InstalledFile:
    """A file an install writes: ``path`` in the WHMCS folder, ``source`` in the package
    (``None``: the generated settings file), ``mode`` its permissions."""

    path: str
    source: str | None
    mode: int = 0o644


# What each install writes, in the order written (uninstall-stub removes them in reverse, the
# file WHMCS loads first). The includes/hooks install: the settings (private: the secret), the
# stub, then the hook file WHMCS loads, which requires the stub.
HOOKS_INSTALL = (
    InstalledFile("includes/hooks/_vipgate_config.php", None, 0o640),
    InstalledFile("includes/hooks/_vipgate_stub.php", "vipgate.php"),
    InstalledFile("includes/hooks/vipgate.php", "hooks_loader.php"),
)
# The addon module: the stub, the hooks (forwarding while the module is active), the words of
# its page in each language (lang/, as WHMCS's addon modules keep them), then the module WHMCS
# lists in Setup > Addon Modules. Its settings are in WHMCS's tbladdonmodules.
ADDON_LANGUAGES = ("english", "portuguese-br")
ADDON_INSTALL = (
    InstalledFile("modules/addons/vipgate/vipgate_stub.php", "vipgate.php"),
    InstalledFile("modules/addons/vipgate/hooks.php", "addon/hooks.php"),
    *(InstalledFile(f"modules/addons/vipgate/lang/{language}.php", f"addon/lang/{language}.php")
      for language in ADDON_LANGUAGES),
    InstalledFile("modules/addons/vipgate/vipgate.php", "addon/vipgate.php"),
)
# The tables the stub creates in WHMCS's database, and what each holds.
WHMCS_TABLES = {  # what each holds, translated where it is shown (uninstall-stub)
    "mod_vipgate_spool": N_("the outbox: events not delivered yet, and those the bridge "
                            "refused"),
    "mod_vipgate_state": N_("the breaker's and the heartbeat's timestamps"),
}
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
        raise StubInstallError(why.gettext("bridge URL %(url)s must start with http:// or "
                                           "https:// and name a host", url=repr(url)))
    if parts.query or parts.fragment or any(c.isspace() for c in url.strip()):
        raise StubInstallError(why.gettext("bridge URL %(url)s must have no query, fragment "
                                           "or spaces", url=repr(url)))
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
        raise StubInstallError(why.gettext("cannot write %(path)s: %(problem)s", path=str(path),
                                           problem=exc.strerror or str(exc))) from None


def _whmcs_root(whmcs_dir: Path) -> Path:
    whmcs_dir = Path(whmcs_dir)
    if not whmcs_dir.is_dir():
        raise StubInstallError(why.gettext("WHMCS folder %(path)s does not exist",
                                           path=str(whmcs_dir)))
    if not (whmcs_dir / "includes").is_dir():
        raise StubInstallError(why.gettext("%(path)s is not a WHMCS folder: it has no includes/ "
                                           "folder", path=str(whmcs_dir)))
    return whmcs_dir


def _write_files(root: Path, files: tuple[InstalledFile, ...], settings: str = "") -> list[Path]:
    """Write ``files`` under ``root`` (``settings`` is the generated settings file's text),
    creating their folders; each folder's owner becomes its files' owner when run as root."""
    written = []
    for file in files:
        path = root / file.path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            owner = path.parent.stat()
        except OSError as exc:
            raise StubInstallError(why.gettext(
                "cannot create %(path)s: %(problem)s", path=str(path.parent),
                problem=exc.strerror or str(exc))) from None
        text = settings if file.source is None else php_source(file.source)
        _write_atomic(path, text, file.mode, owner)
        written.append(path)
    return written


def install_stub(whmcs_dir: Path, url: str, secret: str, *,
                 fail_open: bool = True) -> tuple[Path, Path]:
    """Write the includes/hooks install (``HOOKS_INSTALL``) into ``whmcs_dir``; return the
    hook file's and the settings file's paths.

    ``url`` is the bridge's base URL (``[bridge] public_url``); the stub posts to
    ``url + "/hooks/whmcs"``. Raises StubInstallError.
    """
    root = _whmcs_root(whmcs_dir)
    endpoint = _endpoint(url)
    check_secret(secret)
    written = _write_files(root, HOOKS_INSTALL,
                           render_config(endpoint, secret, fail_open=fail_open))
    return written[-1], written[0]


def check_secret(secret: str) -> None:
    """Raise StubInstallError unless ``secret`` is a usable whsec_ webhook secret."""
    try:
        check_webhook_secret(secret)
    except ValueError as exc:
        raise StubInstallError(why.gettext("webhook secret is not valid: %(problem)s",
                                           problem=str(exc))) from None


def bridge_base_url(url: str) -> str:
    """The bridge URL as the addon's settings form takes it (checked, no trailing slash)."""
    return _endpoint(url).removesuffix(HOOK_PATH)


def installed(root: Path, files: tuple[InstalledFile, ...]) -> list[Path]:
    """Which of ``files`` exist under ``root``."""
    return [root / f.path for f in files if (root / f.path).exists()]


def install_addon(whmcs_dir: Path) -> tuple[list[Path], list[Path]]:
    """Write the addon module (``ADDON_INSTALL``) into ``whmcs_dir``. Returns the paths written
    and, when an includes/hooks install is there too, its files brought to this version.

    That install is left working, not removed: it keeps forwarding with its own settings until
    the addon's are saved in WHMCS (both use the same outbox table, and each hook is
    registered once), so no event is lost during the move. Its stub is replaced because one
    from before the addon declares a function the addon module declares too, which would stop
    WHMCS with a fatal error. Raises StubInstallError.
    """
    root = _whmcs_root(whmcs_dir)
    written = _write_files(root, ADDON_INSTALL)
    upgraded: list[Path] = []
    if (root / HOOKS_INSTALL[-1].path).exists():
        upgraded = _write_files(root, tuple(f for f in HOOKS_INSTALL if f.source is not None))
    return written, upgraded


# --- uninstall ---------------------------------------------------------------------------------


def uninstall_stub(whmcs_dir: Path) -> tuple[list[Path], list[Path]]:
    """Remove the files of each install found (:data:`HOOKS_INSTALL`, :data:`ADDON_INSTALL`),
    each in the reverse order of writing, so that WHMCS stops loading the hook file first;
    return (removed, not there). WHMCS's database is not touched (:func:`drop_sql`,
    :func:`drop_tables`). Raises StubInstallError."""
    root = _whmcs_root(whmcs_dir)
    found = [files for files in (HOOKS_INSTALL, ADDON_INSTALL) if installed(root, files)]
    removed, absent = [], []
    for path in (root / f.path for files in found or [HOOKS_INSTALL] for f in reversed(files)):
        try:
            path.unlink()
        except FileNotFoundError:
            absent.append(path)
            continue
        except OSError as exc:
            raise StubInstallError(why.gettext(
                "cannot remove %(path)s: %(problem)s", path=str(path),
                problem=exc.strerror or str(exc))) from None
        removed.append(path)
    addon_folder = (root / ADDON_INSTALL[0].path).parent
    if any(addon_folder in p.parents for p in removed):
        for folder in (addon_folder / "lang", addon_folder):
            with contextlib.suppress(OSError):  # the addon's folders, if now empty
                folder.rmdir()
    return removed, absent


def drop_sql() -> list[str]:
    """The SQL that removes the stub's tables from WHMCS's database (MySQL and SQLite)."""
    return [f"DROP TABLE IF EXISTS {table};" for table in WHMCS_TABLES]


def drop_tables(database_url: str, *, force: bool = False) -> dict[str, int | None]:
    """Drop the stub's tables from WHMCS's database at ``database_url`` (a user allowed to
    DROP); return table -> rows it held (None: it was not there). Refuses, dropping nothing,
    while ``mod_vipgate_spool`` holds events not delivered yet, unless ``force``. Raises
    StubInstallError, or SQLAlchemyError when the database cannot be used."""
    import sqlalchemy as sa

    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            present = set(sa.inspect(conn).get_table_names())
            rows: dict[str, int | None] = {
                table: conn.execute(sa.select(sa.func.count()).select_from(sa.table(table)))
                .scalar_one() if table in present else None for table in WHMCS_TABLES}
            waiting = 0
            if "mod_vipgate_spool" in present:
                waiting = conn.execute(sa.text(
                    "SELECT COUNT(*) FROM mod_vipgate_spool WHERE rejected_at IS NULL")
                ).scalar_one()
            if waiting and not force:
                raise StubInstallError(why.ngettext(
                    "mod_vipgate_spool holds %(num)d event(s) not delivered to the bridge yet: "
                    "let WHMCS's cron flush them with the bridge up (AfterCronJob), or pass "
                    "--force to drop them too; nothing was dropped",
                    "mod_vipgate_spool holds %(num)d event(s) not delivered to the bridge yet: "
                    "let WHMCS's cron flush them with the bridge up (AfterCronJob), or pass "
                    "--force to drop them too; nothing was dropped", int(waiting)))
            for table in WHMCS_TABLES:
                if rows[table] is not None:
                    sa.Table(table, sa.MetaData()).drop(conn)
        return rows
    finally:
        engine.dispose()
