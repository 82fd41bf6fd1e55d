"""``vipgate resync``: reconcile every client (or some) from one bulk read of WHMCS.

Prints the plan as a table (client, change, reasons) and a summary, or one JSON object with
``--json``; ``--dry-run`` changes nothing. On a terminal a progress bar (tqdm, on stderr)
shows the rate and the ETA; otherwise a log line on stderr every 10% of the clients.

Exit codes: 0 all good, 1 some changes failed (each listed with WHMCS's message) or the run
did not complete, 2 usage or configuration error (unreachable databases included).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import IO, Any

import click
import sqlalchemy as sa

from bridge.cli.common import Failure, Progress, database_failure, settings_of
from bridge.settings import Settings

COLUMNS = "{client:>9}  {change:<40}  {reasons}"


def describe(change: Any, vip_group_id: int) -> str:
    """``group 2 -> 1 (into VIP)``, ``ticket #16 priority Medium -> Low``, ..."""
    if change.kind == "group":
        into = change.after == str(vip_group_id)
        return f"group {change.before} -> {change.after} ({'into' if into else 'out of'} VIP)"
    if change.kind == "ticket_priority":
        return f"ticket #{change.ticket_id} priority {change.before} -> {change.after}"
    return f"ticket #{change.ticket_id} staff note"


class TablePrinter:
    """The plan/result as an aligned table, one line per change, streamed."""

    def __init__(self, out: IO[str], vip_group_id: int, dry_run: bool) -> None:
        self.out, self.vip, self.dry_run = out, vip_group_id, dry_run
        self.lines = 0

    def __call__(self, change: Any) -> None:
        if not self.lines:
            self.out.write(COLUMNS.format(client="client", change="change",
                                          reasons="reasons") + "\n")
        self.lines += 1
        status = ""
        if not self.dry_run:
            status = "applied: " if change.applied else f"FAILED ({change.error}): "
        self.out.write(COLUMNS.format(client=change.client_id,
                                      change=describe(change, self.vip),
                                      reasons=status + "; ".join(change.reasons)) + "\n")

    def summary(self, result: Any) -> None:
        s = result.summary()
        mode = "dry run" if result.dry_run else "applied"
        if not self.lines:
            self.out.write("nothing to change\n" if result.complete else "")
        standing = s["standing"]
        changes = s["changes"]
        self.out.write(
            f"\nresync ({mode}, source {result.source}): {result.clients} clients in "
            f"{result.seconds:.2f} s; standing: {standing['current']} current, "
            f"{standing['overdue']} overdue, {standing['suspended']} suspended; "
            f"{result.in_vip} in VIP after the plan\n"
            f"changes: {changes['group']} group ({changes['vip_in']} into VIP, "
            f"{changes['vip_out']} out of VIP), {changes['ticket_priority']} ticket priority, "
            f"{changes['ticket_note']} staff note\n")
        if result.dry_run:
            self.out.write("dry run: nothing was changed\n")
        else:
            self.out.write(f"applied {result.applied}, failed {result.failed}, busy "
                           f"{result.busy} (a worker had them), gone {result.gone}\n")
        if not result.complete:
            self.out.write("stopped before the end: run again to finish\n")


class JsonPrinter:
    """``{"changes": [...], "summary": {...}}``, the changes streamed as they come."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.count = 0
        out.write('{"changes": [')

    def __call__(self, change: Any) -> None:
        self.out.write(("," if self.count else "") + "\n  "
                       + json.dumps(change.as_json(), ensure_ascii=False))
        self.count += 1

    def summary(self, result: Any) -> None:
        self.out.write(("\n" if self.count else "") + '], "summary": '
                       + json.dumps(result.summary(), ensure_ascii=False) + "}\n")


def run_resync(settings: Settings, *, dry_run: bool, client_ids: tuple[int, ...],
               source: str | None, as_json: bool, out: IO[str], err: IO[str],
               tty: bool, now: Callable[[], datetime] | None = None, yes: bool = False,
               ask: Callable[[str], bool] | None = None) -> int:
    """The command without click: returns the exit code, or raises ``Failure`` (one line);
    ``now`` is the business clock (tests pass the sandbox's).

    On an installation that never applied a full reconcile (``bridge.first_run``), applying to
    everyone first plans, shows the plan's summary and needs ``yes`` or ``ask``'s answer."""
    from bridge import first_run
    from bridge.cli.backfill import backfilled, run_backfill_command
    from bridge.resync import SourceUnavailable, make_source, source_kind
    from bridge.resync.runner import Resync
    from bridge.runtime import make_reconcile_engine, open_store, utc_now
    from bridge.store import DatabaseNotReady
    from bridge.whmcs import WhmcsClient, WhmcsError

    kind = source_kind(settings, source)
    if kind == "api" and not settings.whmcs.url:
        raise Failure("[whmcs] url is empty: the api source needs WHMCS's API (or set [whmcs] "
                      "database_url and use --source db)", 2)
    if not dry_run and not settings.whmcs.url:
        raise Failure("[whmcs] url is empty: applying needs WHMCS's API (--dry-run only plans)", 2)
    try:
        store = open_store(settings)
    except DatabaseNotReady as exc:
        raise Failure(str(exc), 2) from None
    except sa.exc.SQLAlchemyError as exc:
        raise database_failure(exc, settings.bridge.database_url, what="vipgate database",
                               exit_code=2) from None

    def whmcs() -> WhmcsClient:
        return WhmcsClient(settings.whmcs)

    engine = make_reconcile_engine(settings, store, now=now or utc_now, whmcs=whmcs)
    assert engine is not None  # a client factory is given
    try:
        reader = make_source(engine, kind)
    except SourceUnavailable as exc:
        store.dispose()
        raise Failure(str(exc), 2) from None
    except sa.exc.ArgumentError as exc:
        store.dispose()
        raise Failure(f"[whmcs] database_url: {exc}", 2) from None
    ids = tuple(sorted(set(client_ids))) or None
    try:
        try:
            total = reader.count(ids)
        except sa.exc.SQLAlchemyError as exc:
            raise database_failure(exc, settings.whmcs.database_url, what="WHMCS database",
                                   exit_code=2) from None
        except WhmcsError as exc:
            raise Failure(f"WHMCS's API: {exc}", 2) from None
        if ids is None and not dry_run and not first_run.confirmed(store):
            _confirm_first_run(engine, reader, total, yes=yes, ask=ask,
                               shown=err if as_json else out, err=err, tty=tty)
        if ids is None and not dry_run and kind == "db" and not backfilled(store):
            # the first full read: the past episodes first, so the resync carries on the
            # open ones from the day they really began
            run_backfill_command(settings, store, now=now or utc_now, as_json=False,
                                 out=err if as_json else out, err=err, tty=tty, source="db")
        printer: Any = JsonPrinter(out) if as_json else TablePrinter(
            out, engine.settings.policy.vip_group_id, dry_run)
        progress = Progress(total, tty, err)
        try:
            result = Resync(engine, reader).run(dry_run=dry_run, client_ids=ids,
                                                on_change=printer, on_progress=progress)
        except sa.exc.SQLAlchemyError as exc:
            raise database_failure(exc, None) from None
        except WhmcsError as exc:
            raise Failure(f"WHMCS's API: {exc}", 1) from None
        finally:
            progress.close()
        printer.summary(result)
        out.flush()
        if ids is not None and result.clients < len(ids):
            err.write(f"vipgate: {len(ids) - result.clients} of the given client ids are not "
                      "in WHMCS\n")
        if result.failures:
            for client_id, message in result.failures:
                err.write(f"vipgate: client {client_id}: {message}\n")
            return 1
        return 0 if result.complete else 1
    finally:
        reader.dispose()
        store.dispose()


def _confirm_first_run(engine: Any, reader: Any, total: int, *, yes: bool,
                       ask: Callable[[str], bool] | None, shown: IO[str], err: IO[str],
                       tty: bool) -> None:
    """The first full reconcile: plan it, show the summary, apply only when confirmed."""
    from bridge import first_run
    from bridge.resync.runner import Resync

    progress = Progress(total, tty, err)
    try:
        plan = Resync(engine, reader).run(dry_run=True, on_progress=progress)
    finally:
        progress.close()
    summary = plan.summary()
    first_run.record_plan(engine.store, summary, engine.now())
    shown.write("This installation has never applied a full reconcile. The plan: "
                f"{first_run.describe(summary)}.\n"
                "(vipgate resync --dry-run lists every change with its reasons.)\n")
    shown.flush()
    if not plan.complete:
        raise Failure("the plan did not finish: nothing was changed", 1)
    if yes:
        pass
    elif ask is None:
        raise Failure("first full reconcile not confirmed: review the plan above and run "
                      "again with --yes (or confirm it on the admin overview)", 2)
    elif not ask("Apply these changes to WHMCS?"):
        raise Failure("not confirmed: nothing was changed", 1)
    first_run.confirm(engine.store, by="vipgate resync", at=engine.now())


@click.command("resync")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@click.option("--client", "client_ids", multiple=True, type=click.IntRange(1),
              metavar="ID", help="Only this client (repeat for more).")
@click.option("--source", type=click.Choice(["db", "api"]), default=None,
              help="Read WHMCS's database (read-only) or its API "
                   "(default: [resync] source; auto = db when [whmcs] database_url is set).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--yes", is_flag=True,
              help="Apply the first full reconcile of this installation without asking.")
@click.pass_context
def resync_command(ctx: click.Context, dry_run: bool, client_ids: tuple[int, ...],
                   source: str | None, as_json: bool, yes: bool) -> None:
    """Reconcile every client (or --client ones) from one bulk read; print plan and result."""
    settings = settings_of(ctx)
    ask = None
    if sys.stdin.isatty():
        def ask(question: str) -> bool:
            return click.confirm(question, default=False, err=True)
    code = run_resync(settings, dry_run=dry_run, client_ids=client_ids, source=source,
                      as_json=as_json, out=sys.stdout, err=sys.stderr,
                      tty=sys.stderr.isatty(), yes=yes, ask=ask)
    if code:
        raise Failure("resync: some changes failed or the run did not finish (see above)",
                      code)
