"""The ``vipgate`` command group (also ``python -m bridge``): its built-in commands and
:func:`main`; ``vipgate resync`` is :mod:`bridge.cli.resync`, ``vipgate sandbox``
:mod:`bridge.cli.sandbox`.

Every failure the operator can fix prints one line on stderr and exits non-zero: 2 for usage
and configuration, 1 for a failure while doing the work.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa

from bridge import __version__
from bridge.cli.common import Failure, database_failure, opening, settings_of
from bridge.cli.resync import resync_command
from bridge.cli.sandbox import sandbox_command
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


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.pass_context
def serve(ctx: click.Context, host: str, port: int) -> None:
    """Serve the HTTP endpoints with the development server (use gunicorn in production)."""
    from werkzeug.serving import run_simple

    from bridge.web.app import create_app

    settings = settings_of(ctx)
    app = opening(settings, create_app)
    click.echo(f"vipgate: serving on http://{host}:{port} (settings: {settings.source})")
    engine = app.extensions["vipgate"].engine
    if settings.bridge.run_worker and engine is not None:
        from bridge.worker import Worker, start_worker_thread

        start_worker_thread(Worker(engine, clock=app.extensions["vipgate"].clock))
        click.echo("vipgate: in-process worker running ([bridge] run_worker = on)")
    elif engine is None:
        click.echo("vipgate: [whmcs] url is empty: events are stored but not reconciled")
    run_simple(host, port, app, threaded=True)


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
        raise Failure("[whmcs] url is empty: the worker needs WHMCS's API", 2)
    store = opening(settings, open_store)
    engine = make_reconcile_engine(settings, store, now=utc_now)
    assert engine is not None
    runner = Worker(engine, clock=utc_now)
    if once:
        outcomes = runner.drain()
        failed = [o for o in outcomes if o.state in ("retrying", "dead")]
        for o in failed:
            click.echo(f"vipgate: event {o.row_id} ({o.hook}) {o.state}: {o.error}", err=True)
        click.echo(f"vipgate: {len(outcomes)} event(s) processed, {len(failed)} failed")
        store.dispose()
        if failed:
            raise Failure(f"{len(failed)} event(s) failed", 1)
        return
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    click.echo(f"vipgate: worker {runner.name} draining the inbox (Ctrl-C to stop)")
    runner.run_forever(stop, idle)
    store.dispose()


@cli.command()
@click.option("--port", default=0, type=click.IntRange(0, 65535),
              help="Port for the demo bridge (default: any free one).")
@click.option("--no-wait", is_flag=True, help="Exit when the demo is done.")
def demo(port: int, no_wait: bool) -> None:
    """Run the demo on embedded defaults (throw-away folder) and print what happens."""
    import threading

    from bridge.demo.story import run_demo

    code = run_demo(port=port, wait=None if no_wait else threading.Event().wait)
    if code:
        raise Failure("demo: some of the story's checks failed (marked ✗ above)", code)


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
    click.echo(f"vipgate: database at revision {revision}")


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
        raise Failure(f"admin create-user: NAME {name!r}: {exc}", 2) from None
    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True,
                                err=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        accounts.check_password(password)
    except accounts.AccountError as exc:
        raise Failure(f"admin create-user: password: {exc}", 2) from None
    store = opening(settings, open_store)
    try:
        done = accounts.create_user(store, name, password, datetime.now(UTC))
    except sa.exc.SQLAlchemyError as exc:
        raise database_failure(exc, settings.bridge.database_url) from None
    finally:
        store.dispose()
    what = "created" if done == "created" else "password changed (its sessions end)"
    click.echo(f"vipgate: admin account {name} {what}")


@cli.command("install-stub")
@click.argument("whmcs_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--url", default=None, help="Bridge URL as WHMCS reaches it "
              "(default: [bridge] public_url).")
@click.pass_context
def install_stub_command(ctx: click.Context, whmcs_dir: Path, url: str | None) -> None:
    """Write includes/hooks/vipgate.php and its config into a WHMCS folder."""
    from bridge.runtime import open_store, webhook_secrets
    from bridge.whmcs.stub_install import StubInstallError, install_stub

    settings = settings_of(ctx)
    url = url or settings.bridge.public_url
    if not url:
        raise Failure("no bridge URL: pass --url or set [bridge] public_url", 2)
    def first_secret(settings: Settings) -> str:
        store = open_store(settings)
        try:
            return webhook_secrets(settings, store)[0]
        finally:
            store.dispose()

    secret = opening(settings, first_secret)
    try:
        written = install_stub(whmcs_dir, url, secret, fail_open=settings.tickets.fail_open)
    except StubInstallError as exc:
        raise Failure(str(exc), 2) from None
    for path in written:
        click.echo(f"vipgate: wrote {path}")


def _check_stub(store: Store) -> list[str]:
    """Print what the PHP stub last reported (its version, the events the bridge refused);
    return the warnings about it."""
    from bridge.checks import bridge_version, rejected_line, stub_warnings

    report = store.stub_report()
    bridge = bridge_version()
    if report.version is None:
        click.echo(f"stub: not heard from yet (bridge {bridge})")
    else:
        click.echo(f"stub: version {report.version or 'not sent'}, last seen "
                   f"{report.seen_at:%Y-%m-%d %H:%M} UTC (bridge {bridge})")
    if report.rejected_count:
        click.echo(f"stub: {report.rejected_count} rejected event(s) kept in its spool, "
                   f"reported {report.reported_at:%Y-%m-%d %H:%M} UTC; the newest:")
        for event in report.rejected:
            click.echo(f"  rejected: {rejected_line(event)}")
    return stub_warnings(report, bridge)


@cli.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Check the configuration, the database and WHMCS's API; print policy warnings."""
    settings = settings_of(ctx)
    click.echo(f"settings: {settings.source}")
    problems = 0
    store = Store(settings.bridge.database_url)
    stub_found: list[str] = []
    try:
        store.require_current()
        click.echo(f"database: ok ({store.engine.dialect.name}, revision {store.revision()})")
        stub_found = _check_stub(store)
        from bridge.overrides import effective, saved_values

        saved = saved_values(store)
        if saved:  # what the admin page saved is what is in force
            settings = effective(settings, saved)
            click.echo(f"settings saved from the admin page: {len(saved)} "
                       f"({', '.join(f'[{s}] {k}' for s, k in sorted(saved))})")
    except DatabaseNotReady as exc:
        click.echo(f"database: {exc}")
        problems += 1
    except sa.exc.SQLAlchemyError as exc:
        click.echo(f"database: {database_failure(exc, settings.bridge.database_url).message}")
        problems += 1
    finally:
        store.dispose()
    from bridge.checks import config_warnings

    found = config_warnings(settings) + stub_found
    if settings.whmcs.url:
        from bridge.checks import facts_warnings, read_facts
        from bridge.whmcs import WhmcsClient, WhmcsError

        try:
            with WhmcsClient(settings.whmcs, attempts=1) as client:
                # policy warnings, and the API actions the credential's role lacks
                found += facts_warnings(read_facts(client), settings.policy)
            click.echo(f"whmcs: ok ({settings.whmcs.url})")
        except WhmcsError as exc:
            click.echo(f"whmcs: {exc}")
            problems += 1
    if settings.whmcs.database_url:
        from bridge.checks import whmcs_database_status

        ok, text = whmcs_database_status(settings.whmcs.database_url)
        click.echo(f"whmcs database: {'ok (' + text + ')' if ok else text}")
        problems += not ok
    for warning in found:
        click.echo(f"warning: {warning}")
    if problems:
        raise Failure(f"check failed: {problems} problem(s)", 1)
    click.echo("check: ok")


def main(argv: list[str] | None = None) -> Any:
    """Entry point: click's multi-line usage errors become one line, exit code 2."""
    try:
        return cli.main(args=argv, prog_name="vipgate", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("vipgate: aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        message = exc.format_message().splitlines()[0] if exc.format_message() else str(exc)
        click.echo(f"vipgate: {message}", err=True)
        sys.exit(exc.exit_code)


cli.add_command(resync_command)
cli.add_command(sandbox_command)
