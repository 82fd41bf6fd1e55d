"""The systemd units (web app under gunicorn, worker) and the nginx site, filled from the
templates shipped in the package (``templates/``) with the paths an operator names and the
settings that decide them (the SQLite folder, PreCronJob's wait, the batch body limit)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import PurePosixPath
from string import Template

from bridge.settings import Settings

SYSTEMD_DIR = PurePosixPath("/etc/systemd/system")
UNITS = ("vipgate-web.service", "vipgate-worker.service")
NGINX_SITE = PurePosixPath("/etc/nginx/sites-available/vipgate.conf")
# systemd's StateDirectory=vipgate, the units' working folder
STATE_DIR = PurePosixPath("/var/lib/vipgate")
# What the bridge needs beyond PreCronJob's wait to answer it (gunicorn's --timeout, nginx's
# proxy_read_timeout): the reconcile stops at precron_wait_seconds, then the answer is sent.
PRECRON_MARGIN_SECONDS = 30
MIB = 1024 * 1024


def _template(name: str) -> Template:
    return Template((resources.files("bridge.deploy") / "templates" / name)
                    .read_text(encoding="utf-8"))


def sqlite_folder(database_url: str) -> PurePosixPath | None:
    """The folder of vipgate's SQLite file as the units see it (a relative path is under the
    working folder); None on MariaDB/MySQL."""
    if not database_url.startswith("sqlite:///"):
        return None
    path = PurePosixPath(database_url.removeprefix("sqlite:///").split("?")[0])
    return (path if path.is_absolute() else STATE_DIR / path).parent


@dataclass(frozen=True)
class UnitOptions:
    user: str = "vipgate"
    group: str = ""  # empty: the user's name
    venv: str = "/opt/vipgate"
    config: str = "/etc/vipgate/vipgate.ini"
    env_file: str = "/etc/vipgate/vipgate.env"
    bind: str = "127.0.0.1:8080"
    workers: int = 4


def systemd_units(options: UnitOptions, settings: Settings) -> dict[str, str]:
    """Unit file name -> text, for ``vipgate-web.service`` and ``vipgate-worker.service``."""
    folder = sqlite_folder(settings.bridge.database_url)
    if folder is None:
        write_paths = "# vipgate's database is MariaDB/MySQL: nothing to write on this machine"
    elif folder == STATE_DIR:  # the folder: SQLite writes -wal and -shm files beside the file
        write_paths = f"# vipgate's SQLite database is in {folder}\nReadWritePaths={folder}"
    else:
        write_paths = (f"# vipgate's SQLite database is in {folder}, which must exist, owned by "
                       f"{options.user}\nReadWritePaths={folder}")
    private = (PurePosixPath("/home"), PurePosixPath("/root"))
    in_home = any(p in private or set(private) & set(p.parents)
                  for p in (PurePosixPath(options.venv), PurePosixPath(options.config),
                            *((folder,) if folder else ())))
    timeout = settings.bridge.precron_wait_seconds + PRECRON_MARGIN_SECONDS
    fields = {"user": options.user, "group": options.group or options.user,
              "venv": options.venv, "config": options.config, "env_file": options.env_file,
              "bind": options.bind, "workers": options.workers, "timeout": timeout,
              "precron": settings.bridge.precron_wait_seconds, "write_paths": write_paths,
              "protect_home": "read-only" if in_home else "yes"}
    hardening = _template("hardening.inc").substitute(fields).rstrip("\n")
    return {name: _template(name).substitute(fields, path=SYSTEMD_DIR / name,
                                             hardening=hardening)
            for name in UNITS}


def nginx_site(settings: Settings, *, server_name: str, upstream: str,
               certificate: str = "", certificate_key: str = "") -> str:
    """The nginx site for ``server_name`` proxying to ``upstream`` (gunicorn's --bind)."""
    largest = max(settings.webhook.max_batch_bytes, settings.webhook.max_body_bytes)
    live = f"/etc/letsencrypt/live/{server_name}"
    return _template("nginx-site.conf").substitute(
        path=NGINX_SITE, server_name=server_name, upstream=upstream,
        certificate=certificate or f"{live}/fullchain.pem",
        certificate_key=certificate_key or f"{live}/privkey.pem",
        max_batch_bytes=settings.webhook.max_batch_bytes,
        body_limit=f"{math.ceil(largest / MIB) + 1}m",
        precron=settings.bridge.precron_wait_seconds,
        read_timeout=settings.bridge.precron_wait_seconds + PRECRON_MARGIN_SECONDS)
