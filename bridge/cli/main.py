"""The ``vipgate`` command group (also ``python -m bridge``): its built-in commands and
:func:`main`; ``vipgate resync`` is :mod:`bridge.cli.resync`, ``vipgate sandbox``
:mod:`bridge.cli.sandbox`.

Every failure the operator can fix prints one line on stderr and exits non-zero: 2 for usage
and configuration, 1 for a failure while doing the work. The messages are in the CLI's language
(:func:`bridge.cli.common.cli_language`: ``VIPGATE_LANGUAGE``, else the POSIX locale); the
worker's log lines and what is meant to be parsed stay English.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa

from bridge import __version__
from bridge.cli.backfill import backfill_command
from bridge.cli.common import (
    Failure,
    _,
    cli_language,
    database_failure,
    exception_text,
    labelled,
    log_to_stderr,
    ngettext,
    opening,
    prompt_twice,
    settings_of,
    shown_source,
    texts,
    usage_message,
)
from bridge.cli.deploy import deploy_group, init_command
from bridge.cli.resync import resync_command
from bridge.cli.sandbox import sandbox_command
from bridge.i18n import N_
from bridge.settings import Settings
from bridge.store import DatabaseNotReady, Store

# How long `vipgate worker` waits after a look that found nothing due: an event stored meanwhile
# waits up to this long. 1 s cost events 0.26 s at the median and 0.55 s at p99 at 10 events/s
# (docs/PERFORMANCE.md, "Events to applied"); a look is one small query.
WORKER_IDLE_SECONDS = 0.2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="vipgate",
                      message="%(prog)s %(version)s")
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None,
              help="INI file (default: $VIPGATE_CONFIG or ./vipgate.ini).")
@click.pass_context
def cli(ctx: click.Context, config: str | None) -> None:
    """vipgate: keep the WHMCS VIP group for paying clients, gate tickets by invoice status."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = config
    cli_language()  # a bad VIPGATE_LANGUAGE stops every command, in one line


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.pass_context
def serve(ctx: click.Context, host: str, port: int) -> None:
    """Serve the HTTP endpoints with the development server (use gunicorn in production)."""
    from bridge.web.app import create_app
    from bridge.web.serving import bind_server, cannot_serve, port_problem

    settings = settings_of(ctx)
    language = cli_language()
    busy = port_problem(host, port, language)  # before the app opens its database
    if busy:
        raise Failure(busy, 1)
    app = opening(settings, create_app)
    try:
        server = bind_server(host, port, app)
    except OSError as exc:
        raise Failure(cannot_serve(host, port, exc, language), 1) from None
    url = f"http://{host}:{port}"
    click.echo(_("vipgate: serving on %(url)s (settings: %(source)s)", url=url,
                 source=shown_source(settings)))
    engine = app.extensions["vipgate"].engine
    log_to_stderr()
    if settings.bridge.run_worker and engine is not None:
        from bridge.worker import Worker, start_worker_thread

        start_worker_thread(Worker(engine, clock=app.extensions["vipgate"].clock))
        click.echo(_("vipgate: in-process worker running ([bridge] run_worker = on)"))
    elif engine is None:
        click.echo(_("vipgate: [whmcs] url is empty: events are stored but not reconciled"))
    server.serve_forever()  # until Ctrl-C; it closes the socket


@cli.command()
@click.option("--once", is_flag=True, help="Process what is due now, then exit.")
@click.option("--idle", default=WORKER_IDLE_SECONDS, show_default=True,
              type=click.FloatRange(0.05, 60),
              help="Seconds to wait when the inbox is empty (an event stored meanwhile waits "
                   "up to this long; each look is one small query).")
@click.pass_context
def worker(ctx: click.Context, once: bool, idle: float) -> None:
    """Drain the inbox: reconcile what each event points at (run one or more in production)."""
    import signal
    import threading

    from bridge.runtime import make_reconcile_engine, open_store, utc_now
    from bridge.worker import Worker

    settings = settings_of(ctx)
    if not settings.whmcs.url:
        raise Failure(_("[whmcs] url is empty: the worker needs WHMCS's API"), 2)
    store = opening(settings, open_store)
    engine = make_reconcile_engine(settings, store, now=utc_now)
    assert engine is not None
    runner = Worker(engine, clock=utc_now)
    log_to_stderr()
    if once:
        outcomes = runner.drain()
        failed = [o for o in outcomes if o.state in ("retrying", "dead")]
        for o in failed:
            click.echo(_("vipgate: event %(id)s (%(hook)s) %(state)s: %(error)s", id=o.row_id,
                         hook=o.hook, state=o.state, error=o.error), err=True)
        click.echo(ngettext("vipgate: %(num)d event processed, %(failed)d failed",
                            "vipgate: %(num)d events processed, %(failed)d failed",
                            len(outcomes), failed=len(failed)))
        store.dispose()
        if failed:
            raise Failure(ngettext("%(num)d event failed", "%(num)d events failed",
                                   len(failed)), 1)
        return
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    click.echo(_("vipgate: worker %(name)s draining the inbox (Ctrl-C to stop)",
                 name=runner.name))
    runner.run_forever(stop, idle)
    store.dispose()


@cli.command()
@click.option("--port", default=0, type=click.IntRange(0, 65535),
              help="Port for the demo bridge (default: any free one).")
@click.option("--no-wait", is_flag=True, help="Exit when the demo is done.")
@click.option("--keep", is_flag=True, help="Keep the throw-away folder (databases, secrets, "
              "admin account) and print its path; by default it is removed on exit.")
@click.option("--stub", type=click.Choice(["php", "python"]), default=None,
              help="Fire hooks through the real PHP stub or its Python emulation (default: "
                   "php when php with curl and pdo_sqlite is installed).")
def demo(port: int, no_wait: bool, keep: bool, stub: str | None) -> None:
    """Run the demo on embedded defaults (throw-away folder) and print what happens."""
    import errno
    import signal
    import threading

    from bridge.demo.installation import stub_problem
    from bridge.demo.story import run_demo
    from bridge.web.serving import cannot_serve, port_problem

    use_php = None if stub is None else stub == "php"
    language = cli_language()
    problem = stub_problem(use_php, language)
    if problem:
        raise Failure(_("demo: %(problem)s", problem=problem), 2)
    busy = port_problem("127.0.0.1", port, language)  # before anything is created
    if busy:
        raise Failure(busy, 1)

    def terminated(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)  # unwinds through run_demo, which removes its folder

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        code = run_demo(port=port, wait=None if no_wait else threading.Event().wait,
                        out=click.echo, keep=keep, use_php=use_php, language=language)
    except OSError as exc:  # the port was taken between the check and the bind
        if exc.errno != errno.EADDRINUSE:
            raise
        raise Failure(cannot_serve("127.0.0.1", port, exc, language), 1) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    if code:
        raise Failure(_("demo: some of the story's checks failed (marked ✗ above)"), code)


@cli.group()
def db() -> None:
    """vipgate's own database."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Create or migrate vipgate's tables to the newest revision."""
    settings = settings_of(ctx)
    store = Store(settings.bridge.database_url)
    try:
        revision = store.upgrade()
    except sa.exc.SQLAlchemyError as exc:
        raise database_failure(exc, settings.bridge.database_url) from None
    finally:
        store.dispose()
    click.echo(_("vipgate: database at revision %(revision)s", revision=revision))


@cli.group()
def admin() -> None:
    """Accounts of the admin page (/admin)."""


@admin.command("create-user")
@click.argument("name")
@click.pass_context
def admin_create_user(ctx: click.Context, name: str) -> None:
    """Create an admin account, or set a new password for an existing one.

    The password is asked for twice on a terminal, else read from the first line of stdin
    (``printf '%s\\n' "$PASSWORD" | vipgate admin create-user NAME``)."""
    from datetime import UTC, datetime

    from bridge import accounts
    from bridge.runtime import open_store

    settings = settings_of(ctx)
    try:
        accounts.check_name(name)
    except accounts.AccountError as exc:
        raise Failure(_("admin create-user: NAME %(name)s: %(problem)s", name=repr(name),
                        problem=exception_text(exc)), 2) from None
    if sys.stdin.isatty():
        password = prompt_twice(_("Password"), _("Repeat for confirmation"))
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        accounts.check_password(password)
    except accounts.AccountError as exc:
        raise Failure(_("admin create-user: password: %(problem)s",
                        problem=exception_text(exc)), 2) from None
    store = opening(settings, open_store)
    try:
        done = accounts.create_user(store, name, password, datetime.now(UTC))
    except sa.exc.SQLAlchemyError as exc:
        raise database_failure(exc, settings.bridge.database_url) from None
    finally:
        store.dispose()
    click.echo(_("vipgate: admin account %(name)s created", name=name) if done == "created"
               else _("vipgate: admin account %(name)s password changed (its sessions end)",
                      name=name))


@cli.command("install-stub")
@click.argument("whmcs_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--url", default=None, help="Bridge URL as WHMCS reaches it "
              "(default: [bridge] public_url).")
@click.option("--addon", is_flag=True, help="Install the addon module "
              "(modules/addons/vipgate/, settings entered in WHMCS) instead of includes/hooks/.")
@click.pass_context
def install_stub_command(ctx: click.Context, whmcs_dir: Path, url: str | None,
                         addon: bool) -> None:
    """Write the PHP stub into a WHMCS folder: the addon module (--addon), else
    includes/hooks/vipgate.php with its config."""
    from bridge.runtime import open_store, webhook_secrets
    from bridge.whmcs import stub_install
    from bridge.whmcs.stub_install import StubInstallError

    settings = settings_of(ctx)
    url = url or settings.bridge.public_url
    if not url:
        raise Failure(_("no bridge URL: pass --url or set [bridge] public_url"), 2)
    def first_secret(settings: Settings) -> str:
        store = open_store(settings)
        try:
            return webhook_secrets(settings, store)[0]
        finally:
            store.dispose()

    secret = opening(settings, first_secret)
    fail_open = settings.tickets.fail_open
    try:
        if addon:
            base = stub_install.bridge_base_url(url)
            stub_install.check_secret(secret)
            written, upgraded = stub_install.install_addon(whmcs_dir)
        else:
            stub_install.install_stub(whmcs_dir, url, secret, fail_open=fail_open)
            written = [whmcs_dir / f.path for f in stub_install.HOOKS_INSTALL]
    except StubInstallError as exc:
        raise Failure(exception_text(exc), 2) from None
    for path in written:
        click.echo(_("vipgate: wrote %(path)s", path=path))
    if addon:
        _addon_next_steps(base, secret, fail_open, upgraded)
    elif stub_install.installed(whmcs_dir, stub_install.ADDON_INSTALL):
        click.echo(_("vipgate: warning: %(path)s is installed too: while that module is active "
                     "and configured its settings are used; deactivate it in Setup > Addon "
                     "Modules to use these", path=whmcs_dir / "modules/addons/vipgate"))


# The fields of the addon's settings form the operator fills in, as its English page names them
ADDON_FIELDS = (N_("Bridge URL"), N_("Webhook secret"), N_("Allow tickets without an answer"))


def _addon_next_steps(base: str, secret: str, fail_open: bool, upgraded: list[Path]) -> None:
    """What the operator does in WHMCS after ``install-stub --addon``, with the values to enter."""
    for path in upgraded:
        click.echo(_("vipgate: updated %(path)s (the includes/hooks install, to this version)",
                     path=path))
    click.echo(_("Next, in WHMCS's admin area: Setup > Addon Modules > vipgate > Activate, "
                 "then Configure, enter these and Save Changes:"))
    # The module writes its form in the admin's WHMCS language (lang/english.php,
    # lang/portuguese-br.php: the same words as these msgids and their translations, which
    # tests/test_php_addon.py checks); the CLI cannot know that language, so a translated
    # list is followed by the English names.
    bridge_url, secret_field, fail_open_field = (_(name) for name in ADDON_FIELDS)
    rows = [(bridge_url, base), (secret_field, secret),
            (fail_open_field, _("ticked ([tickets] fail_open)") if fail_open else
             _("not ticked ([tickets] fail_open)")),
            (_("the timeouts"), _("leave the defaults")),
            # WHMCS's own field, not the module's: named as WHMCS's English admin area does
            ("Access Control", _("the admin roles that may open Addons > vipgate"))]
    width = max(len(label) for label, _value in rows) + 2
    for label, value in rows:
        click.echo(f"  {label + ':':<{width}}{value}")
    if bridge_url != ADDON_FIELDS[0]:
        click.echo(_("(In a WHMCS admin area in English: %(fields)s.)",
                     fields=", ".join(ADDON_FIELDS)))
    if upgraded:
        click.echo(_("The includes/hooks install keeps forwarding until those settings are "
                     "saved (nothing is lost meanwhile); then delete %(files)s and %(config)s.",
                     files=", ".join(str(p) for p in upgraded),
                     config=upgraded[0].with_name("_vipgate_config.php")))


@cli.command("uninstall-stub")
@click.argument("whmcs_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--drop-tables", is_flag=True, help="Also drop the stub's tables from WHMCS's "
              "database (needs --database-url); by default the SQL is printed.")
@click.option("--database-url", default=None, metavar="URL",
              help="WHMCS's database, as a user allowed to DROP (mysql+pymysql://…).")
@click.option("--force", is_flag=True,
              help="With --drop-tables: drop events not delivered to the bridge yet too.")
def uninstall_stub_command(whmcs_dir: Path, drop_tables: bool, database_url: str | None,
                           force: bool) -> None:
    """Remove the files install-stub wrote; say what stays in WHMCS's database."""
    from bridge.whmcs.stub_install import (
        WHMCS_TABLES,
        StubInstallError,
        drop_sql,
        uninstall_stub,
    )
    from bridge.whmcs.stub_install import drop_tables as drop

    if drop_tables and not database_url:
        raise Failure(_("--drop-tables needs --database-url (WHMCS's database, as a user "
                        "allowed to DROP)"), 2)
    if (database_url or force) and not drop_tables:
        raise Failure(_("%(option)s is only used with --drop-tables",
                        option="--database-url" if database_url else "--force"), 2)
    if database_url:
        try:
            sa.engine.make_url(database_url)
        except sa.exc.ArgumentError:
            raise Failure(_("--database-url is not a database URL (expected "
                            "mysql+pymysql://USER:PASSWORD@HOST/DATABASE)"), 2) from None
    try:
        removed, absent = uninstall_stub(whmcs_dir)
    except StubInstallError as exc:
        raise Failure(exception_text(exc), 2) from None
    for path in removed:
        click.echo(_("vipgate: removed %(path)s", path=path))
    for path in absent:
        click.echo(_("vipgate: %(path)s was not there", path=path))
    if any("modules/addons" in path.as_posix() for path in removed):
        click.echo(_("vipgate: the addon module's files are removed; if it was still active, "
                     "deactivate vipgate in Setup > Addon Modules"))
    if drop_tables:
        assert database_url is not None
        try:
            rows = drop(database_url, force=force)
        except StubInstallError as exc:
            raise Failure(exception_text(exc), 1) from None
        except sa.exc.SQLAlchemyError as exc:
            raise database_failure(exc, database_url, what="WHMCS database") from None
        for table, count in rows.items():
            click.echo(ngettext("vipgate: dropped %(table)s (%(num)d row)",
                                "vipgate: dropped %(table)s (%(num)d rows)", count, table=table)
                       if count is not None
                       else _("vipgate: %(path)s was not there", path=table))
        return
    click.echo(_("WHMCS's database keeps the stub's tables (the hooks no longer use them):"))
    for table, what in WHMCS_TABLES.items():
        click.echo(f"  {table}: {_(what)}")
    click.echo(_("To remove them, run in WHMCS's database (or uninstall-stub again with "
                 "--drop-tables --database-url URL):"))
    for line in drop_sql():
        click.echo(f"  {line}")
    click.echo(_("What vipgate did through WHMCS's API stays: group changes, ticket priorities "
                 "and staff notes, and its lines in the System Activity Log."))


def _check_stub(store: Store) -> list[str]:
    """Print what the PHP stub last reported (its version, the events the bridge refused);
    return the warnings about it."""
    from bridge.checks import bridge_version, rejected_line, stub_warnings

    report = store.stub_report()
    bridge = bridge_version()
    t = texts()

    def moment(at: datetime | None) -> str:
        return t.moment(at) if at is not None else "?"

    if report.version is None:
        click.echo(_("stub: not heard from yet (bridge %(bridge)s)", bridge=bridge))
    elif report.version:
        click.echo(_("stub: version %(version)s, last seen %(moment)s UTC (bridge %(bridge)s)",
                     version=report.version, moment=moment(report.seen_at), bridge=bridge))
    else:
        click.echo(_("stub: version not sent, last seen %(moment)s UTC (bridge %(bridge)s)",
                     moment=moment(report.seen_at), bridge=bridge))
    if report.rejected_count:
        click.echo(ngettext("stub: %(num)d rejected event kept in its spool, reported "
                            "%(moment)s UTC; the newest:",
                            "stub: %(num)d rejected events kept in its spool, reported "
                            "%(moment)s UTC; the newest:", report.rejected_count,
                            moment=moment(report.reported_at)))
        for event in report.rejected:
            click.echo("  " + _("rejected: %(event)s", event=rejected_line(event)))
    return stub_warnings(report, bridge)


@cli.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Check the configuration, the database and WHMCS's API; print policy warnings."""
    settings = settings_of(ctx)
    click.echo(_("settings: %(source)s", source=shown_source(settings)))
    problems = 0
    store = Store(settings.bridge.database_url)
    stub_found: list[str] = []
    try:
        store.require_current()
        click.echo(_("database: ok (%(dialect)s, revision %(revision)s)",
                     dialect=store.engine.dialect.name, revision=store.revision()))
        stub_found = _check_stub(store)
        from bridge.overrides import effective, saved_values

        saved = saved_values(store)
        if saved:  # what the admin page saved is what is in force
            settings = effective(settings, saved)
            click.echo(ngettext("settings saved from the admin page: %(num)d (%(keys)s)",
                                "settings saved from the admin page: %(num)d (%(keys)s)",
                                len(saved), keys=", ".join(f"[{s}] {k}" for s, k in
                                                          sorted(saved))))
    except DatabaseNotReady as exc:
        click.echo(labelled("database", exc.args[0]))
        problems += 1
    except sa.exc.SQLAlchemyError as exc:
        click.echo(labelled("database", database_failure(
            exc, settings.bridge.database_url).message))
        problems += 1
    finally:
        store.dispose()
    from bridge.checks import config_warnings, credential_problems, operator_warnings

    config_file = None if settings.source == "embedded defaults" else Path(settings.source)
    found = config_warnings(settings) + operator_warnings(settings, config_file=config_file) \
        + stub_found
    empty = credential_problems(settings)
    for problem in empty:  # said here: WHMCS would only answer "Authentication Failed"
        click.echo(labelled("whmcs", problem))
        problems += 1
    if settings.whmcs.url and not empty:
        from bridge.checks import facts_warnings, missing_groups, read_facts
        from bridge.whmcs import WhmcsClient, WhmcsError

        try:
            with WhmcsClient(settings.whmcs, attempts=1) as client:
                # policy warnings, and the API actions the credential's role lacks
                facts = read_facts(client)
            missing = missing_groups(settings.policy, facts.groups or ())
            found += [w for w in facts_warnings(facts, settings.policy) if w not in missing]
            if facts.groups is None:
                click.echo(_("whmcs: ok (%(url)s; its client groups could not be read, so the "
                             "configured group ids were not checked)", url=settings.whmcs.url))
            elif missing:
                for problem in missing:
                    click.echo(labelled("whmcs", problem))
                problems += len(missing)
            else:
                click.echo(_("whmcs: ok (%(url)s)", url=settings.whmcs.url))
        except WhmcsError as exc:
            click.echo(labelled("whmcs", str(exc)))
            problems += 1
    if settings.whmcs.database_url:
        from bridge.checks import whmcs_database_status

        ok, text = whmcs_database_status(settings.whmcs.database_url)
        click.echo(_("whmcs database: ok (%(database)s)", database=text) if ok
                   else labelled("whmcs database", text))
        problems += not ok
    for warning in found:
        click.echo(labelled("warning", warning))
    if problems:
        raise Failure(ngettext("check failed: %(num)d problem", "check failed: %(num)d problems",
                               problems), 1)
    click.echo(_("check: ok"))


# click >= 8.2 raises this for a group run without a command (its message is the help);
# older ones print the help themselves.
NO_ARGS_IS_HELP: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())


def main(argv: list[str] | None = None) -> Any:
    """Entry point: click's multi-line usage errors become one line, exit code 2."""
    try:
        return cli.main(args=argv, prog_name="vipgate", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo(_("vipgate: aborted"), err=True)
        sys.exit(1)
    except NO_ARGS_IS_HELP as exc:  # `vipgate`, `vipgate db`: the help
        click.echo(exc.format_message(), err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        message = usage_message(exc) or (
            exc.format_message().splitlines()[0] if exc.format_message() else str(exc))
        click.echo(f"vipgate: {message}", err=True)
        sys.exit(exc.exit_code)


cli.add_command(resync_command)
cli.add_command(backfill_command)
cli.add_command(sandbox_command)
cli.add_command(init_command)
cli.add_command(deploy_group)
