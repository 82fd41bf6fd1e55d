"""``vipgate init`` (a new config file with fresh secrets, the WHMCS API credential checked)
and ``vipgate deploy systemd|nginx`` (the units and the site, printed or written). What they
write comes from :mod:`bridge.deploy`; docs/DEPLOY.md is the walk-through."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from bridge.cli.common import Failure, _, config_failure, exception_text
from bridge.deploy.config_file import (
    GENERATED,
    ConfigFileError,
    Key,
    check_value,
    config_text,
    write_private,
)
from bridge.deploy.units import NGINX_SITE, UnitOptions, nginx_site, systemd_units
from bridge.i18n import N_
from bridge.settings import DEFAULT_CONFIG_PATH, Settings, declared

# What init asks for when no option gives it: (option, key, prompt, hidden); the prompts are
# translated where they are asked.
ASKED: tuple[tuple[str, Key, str, bool], ...] = (
    ("whmcs_url", ("whmcs", "url"), N_("WHMCS URL (e.g. https://whmcs.example.com)"), False),
    ("identifier", ("whmcs", "identifier"), N_("WHMCS API identifier"), False),
    ("secret", ("whmcs", "secret"), N_("WHMCS API secret"), True),
)
# Given only as options (empty: the default stays).
OPTIONAL: tuple[tuple[str, Key], ...] = (
    ("accesskey", ("whmcs", "accesskey")),
    ("public_url", ("bridge", "public_url")),
    ("database_url", ("bridge", "database_url")),
)


def _flag(option: str) -> str:
    return "--" + option.replace("_", "-")


def _group_config(ctx: click.Context) -> str | None:
    """The group's --config (``vipgate --config PATH init``)."""
    return (ctx.find_root().obj or {}).get("config")


def _target(ctx: click.Context, config: str | None) -> Path:
    """Where to write: init's --config, else the group's, else $VIPGATE_CONFIG, else
    ./vipgate.ini (the file vipgate would then read)."""
    return Path(config or _group_config(ctx) or os.environ.get("VIPGATE_CONFIG")
                or DEFAULT_CONFIG_PATH)


def _ask(label: str, hidden: bool, option: str) -> str:
    """Ask on a terminal; else read one line of stdin (a script's answers)."""
    if sys.stdin.isatty():
        return str(click.prompt(_(label), hide_input=hidden, err=True, default="",
                                show_default=False))
    line = sys.stdin.readline()
    if not line:
        raise Failure(_("init: no answer for %(question)s: pass %(option)s",
                        question=_(label).split(" (")[0], option=option), 2)
    return line.rstrip("\r\n")


def _check_whmcs(values: dict[Key, str]) -> str:
    """Call WHMCS's API with the credential (one attempt); the line to print, or a one-line
    Failure saying what is wrong."""
    from bridge.settings import WhmcsSettings
    from bridge.whmcs import (
        WhmcsApiError,
        WhmcsAuthError,
        WhmcsClient,
        WhmcsConfigError,
        WhmcsError,
        WhmcsUnavailable,
    )

    settings = WhmcsSettings(url=values[("whmcs", "url")].rstrip("/"),
                             identifier=values[("whmcs", "identifier")],
                             secret=values[("whmcs", "secret")],
                             accesskey=values.get(("whmcs", "accesskey"), ""),
                             timeout_seconds=10.0)
    where = settings.url
    # WHMCS's own messages (exc.message) are quoted as WHMCS wrote them.
    try:
        with WhmcsClient(settings, attempts=1) as client:
            groups = client.get_client_groups()
    except WhmcsConfigError as exc:
        raise Failure(f"init: --whmcs-url {settings.url!r}: {exc}", 2) from None
    except WhmcsAuthError as exc:
        if "ip" in exc.message.lower().split():
            raise Failure(_("init: WHMCS at %(url)s refused the API credential (%(answer)s): "
                            "allow this machine's IP in WHMCS (Setup > General Settings > "
                            "Security > API IP Access Restriction) or pass --accesskey",
                            url=where, answer=exc.message), 1) from None
        raise Failure(_("init: WHMCS at %(url)s refused the API credential (%(answer)s): "
                        "check --identifier and --secret (Setup > Staff Management > Manage "
                        "API Credentials)", url=where, answer=exc.message), 1) from None
    except WhmcsUnavailable as exc:
        raise Failure(_("init: WHMCS at %(url)s did not answer the API (%(answer)s): check "
                        "--whmcs-url (the WHMCS base URL), or pass --no-check to write the "
                        "file anyway", url=where, answer=exc.message), 1) from None
    except WhmcsApiError as exc:
        raise Failure(_("init: WHMCS at %(url)s answered an error: %(answer)s", url=where,
                        answer=exc.message), 1) from None
    except WhmcsError as exc:
        raise Failure(_("init: WHMCS at %(url)s does not answer like WHMCS's API "
                        "(%(answer)s): check --whmcs-url", url=where, answer=exc.message),
                      1) from None
    names = ", ".join(f"{g.id} {g.name}" for g in groups) or _("none")
    return _("whmcs: ok (%(url)s; client groups: %(groups)s)", url=settings.url, groups=names)


def _next_steps(path: Path, values: dict[Key, str]) -> list[str]:
    config = f"--config {path}" if str(path) != DEFAULT_CONFIG_PATH else ""
    cmd = " ".join(filter(None, ("vipgate", config)))
    url = "" if values.get(("bridge", "public_url")) else " --url https://vipgate.example.com"
    steps = [
        _("Set [policy] vip_group_id to WHMCS's VIP client group in %(path)s", path=path)
        if values.get(("bridge", "database_url")) else
        _("Set [policy] vip_group_id to WHMCS's VIP client group in %(path)s, and [bridge] "
          "database_url to MariaDB for production", path=path),
        f"{cmd} db upgrade",
        f"{cmd} install-stub --addon /path/to/whmcs{url}   " + _(
            "(the addon module; it prints the values to enter in WHMCS), then in WHMCS: "
            "Setup > Addon Modules > vipgate > Activate, Configure"),
        f"{cmd} admin create-user NAME",
        f"{cmd} check",
        _("start the services: %(systemd)s, %(nginx)s (docs/DEPLOY.md)",
          systemd=cmd + " deploy systemd", nginx=cmd + " deploy nginx"),
    ]
    lines = [_("Next steps:"), *(f"  {n}. {s}" for n, s in enumerate(steps, 1))]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        lines.append("  " + _("(%(path)s belongs to root: chown it to the service user, e.g. "
                              "chown vipgate: %(path)s)", path=path))
    return lines


@click.command("init")
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None,
              help="File to write (default: the group's --config, $VIPGATE_CONFIG or "
                   "./vipgate.ini).")
@click.option("--whmcs-url", default=None, help="WHMCS base URL (asked when missing).")
@click.option("--identifier", default=None, help="WHMCS API identifier (asked when missing).")
@click.option("--secret", default=None, help="WHMCS API secret (asked when missing).")
@click.option("--accesskey", default="", help="WHMCS's $api_access_key, if the bridge's IP "
              "is not allow-listed.")
@click.option("--public-url", default="", help="The bridge's URL as WHMCS reaches it.")
@click.option("--database-url", default="", help="vipgate's database (default: SQLite "
              "vipgate.db in the working folder).")
@click.option("--no-check", is_flag=True, help="Do not call WHMCS's API to check the "
              "credential.")
@click.option("--force", is_flag=True, help="Replace an existing file (kept as a backup).")
@click.pass_context
def init_command(ctx: click.Context, config: str | None, whmcs_url: str | None,
                 identifier: str | None, secret: str | None, accesskey: str, public_url: str,
                 database_url: str, no_check: bool, force: bool) -> None:
    """Write a commented config file with fresh secrets and the WHMCS API credential."""
    given = {"whmcs_url": whmcs_url, "identifier": identifier, "secret": secret,
             "accesskey": accesskey, "public_url": public_url, "database_url": database_url}
    path = _target(ctx, config)
    if (path.exists() or path.is_symlink()) and not force:  # before any question
        raise Failure(_("init: %(path)s exists; pass --force to replace it (the old file is "
                        "kept as a backup)", path=path), 2)
    values: dict[Key, str] = {}
    for option, key, label, hidden in ASKED:
        text = given[option]
        if text is None:
            text = _ask(label, hidden, _flag(option))
        if not text.strip():
            raise Failure(_("init: %(option)s is empty: vipgate needs [%(section)s] %(key)s",
                            option=_flag(option), section=key[0], key=key[1]), 2)
        values[key] = text
    for option, key in OPTIONAL:
        if given[option]:
            values[key] = given[option] or ""
    option_of = {**{k: o for o, k, _, _ in ASKED}, **{k: o for o, k in OPTIONAL}}
    for key, text in list(values.items()):
        try:
            values[key] = check_value(*key, text)
        except ValueError as exc:
            shown = "" if declared(*key).secret else f" {text!r}"
            raise Failure(f"init: {_flag(option_of[key])}{shown}: {exception_text(exc)}",
                          2) from None
    values[("whmcs", "url")] = values[("whmcs", "url")].rstrip("/")
    checked = None if no_check else _check_whmcs(values)
    values.update({key: make() for key, make in GENERATED.items()})
    now = datetime.now(UTC)
    try:
        backup = write_private(path, config_text(values, now), force=force, now=now)
    except ConfigFileError as exc:
        raise Failure("init: " + exception_text(exc), 2) from None
    if checked:
        click.echo(checked)
    if backup is not None:
        click.echo(_("vipgate: kept the old file as %(path)s", path=backup))
    secrets = ", ".join(f"[{s}] {k}" for s, k in GENERATED)
    click.echo(_("vipgate: wrote %(path)s (mode 0600; fresh %(secrets)s)", path=path,
                 secrets=secrets))
    for line in _next_steps(path, values):
        click.echo(line)


def _services_config(ctx: click.Context, config: str | None) -> str:
    return config or _group_config(ctx) or UnitOptions.config


def _deploy_settings(config: str) -> Settings:
    """The settings the units depend on, from the config file they name when this user can
    read it, else the defaults (said on stderr)."""
    from bridge.settings import ConfigError, default_settings, load_settings

    if not os.access(config, os.R_OK):
        click.echo(_("vipgate: %(path)s not found or not readable here: the defaults of "
                     "[bridge] database_url, precron_wait_seconds and [webhook] "
                     "max_batch_bytes are used", path=config), err=True)
        return default_settings()
    try:
        return load_settings(config, environ={})
    except ConfigError as exc:
        raise config_failure(exc) from None


def _emit(files: dict[str, str], output_dir: Path | None) -> None:
    """Print the files (each headed by its name), or write them into ``output_dir``."""
    if output_dir is None:
        click.echo("\n".join(files.values()), nl=False)
        return
    if not output_dir.is_dir():
        raise Failure(_("deploy: folder %(path)s does not exist", path=output_dir), 2)
    for name, text in files.items():
        (output_dir / name).write_text(text, encoding="utf-8")
        click.echo(_("vipgate: wrote %(path)s", path=output_dir / name), err=True)


@click.group("deploy")
def deploy_group() -> None:
    """Files to run vipgate as a service: systemd units, an nginx site (docs/DEPLOY.md)."""


_OUTPUT = click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path),
                       default=None, help="Write the files into this folder instead of "
                       "printing them.")
_CONFIG = click.option("--config", "config", default=None,
                       help="The config file the services read (default: the group's "
                       f"--config, else {UnitOptions.config}); read here for the database "
                       "and the time limits, when readable.")


@deploy_group.command("systemd")
@click.option("--user", default=UnitOptions.user, show_default=True,
              help="The service user (owns the config file).")
@click.option("--group", default="", help="The service group (default: the user's name).")
@click.option("--venv", default=UnitOptions.venv, show_default=True,
              help="The virtualenv vipgate is installed in.")
@_CONFIG
@click.option("--env-file", default=UnitOptions.env_file, show_default=True,
              help="Optional file of VIPGATE_* overrides.")
@click.option("--bind", default=UnitOptions.bind, show_default=True,
              help="gunicorn's address (the proxy's upstream).")
@click.option("--workers", default=UnitOptions.workers, show_default=True,
              type=click.IntRange(1, 64), help="gunicorn workers ((2 x cores) + 1 is its rule).")
@click.option("--unit", type=click.Choice(["web", "worker"]), default=None,
              help="Only this unit (default: both).")
@_OUTPUT
@click.pass_context
def deploy_systemd(ctx: click.Context, user: str, group: str, venv: str, config: str | None,
                   env_file: str, bind: str, workers: int, unit: str | None,
                   output_dir: Path | None) -> None:
    """The systemd units of the web app (gunicorn) and the worker."""
    config = _services_config(ctx, config)
    for name, value in (("--venv", venv), ("--config", config), ("--env-file", env_file)):
        if not value.startswith("/"):
            raise Failure(_("deploy systemd: %(option)s %(value)s: expected an absolute path",
                            option=name, value=repr(value)), 2)
    options = UnitOptions(user=user, group=group, venv=venv, config=config, env_file=env_file,
                          bind=bind, workers=workers)
    units = systemd_units(options, _deploy_settings(config))
    _emit({n: t for n, t in units.items() if unit is None or n == f"vipgate-{unit}.service"},
          output_dir)


@deploy_group.command("nginx")
@click.option("--server-name", required=True, help="The bridge's host name, e.g. "
              "vipgate.example.com.")
@click.option("--upstream", default=UnitOptions.bind, show_default=True,
              help="gunicorn's --bind.")
@click.option("--certificate", default="", help="TLS certificate (default: Let's Encrypt's "
              "fullchain.pem of the server name).")
@click.option("--certificate-key", default="", help="Its key (default: Let's Encrypt's "
              "privkey.pem).")
@_CONFIG
@_OUTPUT
@click.pass_context
def deploy_nginx(ctx: click.Context, server_name: str, upstream: str, certificate: str,
                 certificate_key: str, config: str | None, output_dir: Path | None) -> None:
    """An nginx site: TLS, the public paths only, limits from the config."""
    config = _services_config(ctx, config)
    import re

    if not re.fullmatch(r"[A-Za-z0-9.-]{1,253}", server_name):
        raise Failure(_("deploy nginx: --server-name %(value)s: expected a host name like "
                        "vipgate.example.com", value=repr(server_name)), 2)
    site = nginx_site(_deploy_settings(config), server_name=server_name,
                      upstream=upstream, certificate=certificate,
                      certificate_key=certificate_key)
    _emit({NGINX_SITE.name: site}, output_dir)
