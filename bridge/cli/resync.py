"""``vipgate resync``: reconcile every client (or some) from one bulk read of WHMCS.

Prints the plan as a table (client, change, reasons) and a summary, or one JSON object with
``--json``; ``--dry-run`` changes nothing. The table's lines are English whatever the language
(columns to read with grep and awk, the reasons as the audit log and the worker's log write
them); the summary, the confirmation and the failures are in the CLI's language. On a terminal
a progress bar (tqdm, on stderr) shows the rate and the ETA; otherwise a log line on stderr
every 10% of the clients.

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

from bridge.cli.common import (
    Failure,
    Progress,
    cli_language,
    confirm,
    database_failure,
    exception_text,
    settings_of,
)
from bridge.i18n import Texts
from bridge.model import Reason
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

    def __init__(self, out: IO[str], vip_group_id: int, dry_run: bool,
                 texts: Texts | None = None) -> None:
        self.out, self.vip, self.dry_run = out, vip_group_id, dry_run
        self.t = texts or Texts("en")
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
        _, s = self.t.gettext, result.summary()
        if not self.lines:
            self.out.write(_("nothing to change") + "\n" if result.complete else "")
        standing = s["standing"]
        changes = s["changes"]
        values = {"source": result.source, "clients": result.clients,
                  "seconds": self.t.number(result.seconds, 2), "current": standing["current"],
                  "overdue": standing["overdue"], "suspended": standing["suspended"],
                  "vip": result.in_vip}
        self.out.write("\n" + (
            _("resync (dry run, source %(source)s): %(clients)s clients in %(seconds)s s; "
              "standing: %(current)s current, %(overdue)s overdue, %(suspended)s suspended; "
              "%(vip)s in VIP after the plan", **values) if result.dry_run else
            _("resync (applied, source %(source)s): %(clients)s clients in %(seconds)s s; "
              "standing: %(current)s current, %(overdue)s overdue, %(suspended)s suspended; "
              "%(vip)s in VIP after the plan", **values)) + "\n")
        self.out.write(_("changes: %(groups)s group (%(vip_in)s into VIP, %(vip_out)s out of "
                         "VIP), %(priorities)s ticket priority, %(notes)s staff note",
                         groups=changes["group"], vip_in=changes["vip_in"],
                         vip_out=changes["vip_out"], priorities=changes["ticket_priority"],
                         notes=changes["ticket_note"]) + "\n")
        if result.dry_run:
            self.out.write(_("dry run: nothing was changed") + "\n")
        else:
            self.out.write(_("applied %(applied)s, failed %(failed)s, busy %(busy)s (a worker "
                             "had them), gone %(gone)s", applied=result.applied,
                             failed=result.failed, busy=result.busy, gone=result.gone) + "\n")
        if not result.complete:
            self.out.write(_("stopped before the end: run again to finish") + "\n")


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
               ask: Callable[[str], bool] | None = None, language: str = "en") -> int:
    """The command without click: returns the exit code, or raises ``Failure`` (one line);
    ``now`` is the business clock (tests pass the sandbox's); ``language`` the messages' (the
    table and the JSON are the same in every language).

    On an installation that never applied a full reconcile (``bridge.first_run``), applying to
    everyone first plans, shows the plan's summary and needs ``yes`` or ``ask``'s answer."""
    from bridge import first_run
    from bridge.cli.backfill import backfilled, run_backfill_command
    from bridge.resync import SourceUnavailable, make_source, source_kind
    from bridge.resync.runner import Resync
    from bridge.runtime import make_reconcile_engine, open_store, utc_now
    from bridge.store import DatabaseNotReady
    from bridge.whmcs import WhmcsClient, WhmcsError

    t = Texts(language)
    _ = t.gettext
    kind = source_kind(settings, source)
    if kind == "api" and not settings.whmcs.url:
        raise Failure(_("[whmcs] url is empty: the api source needs WHMCS's API (or set "
                        "[whmcs] database_url and use --source db)"), 2)
    if not dry_run and not settings.whmcs.url:
        raise Failure(_("[whmcs] url is empty: applying needs WHMCS's API (--dry-run only "
                        "plans)"), 2)
    try:
        store = open_store(settings)
    except DatabaseNotReady as exc:
        raise Failure(exception_text(exc), 2) from None
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
        raise Failure(exception_text(exc), 2) from None
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
                               shown=err if as_json else out, err=err, tty=tty, texts=t)
        if ids is None and not dry_run and kind == "db" and not backfilled(store):
            # the first full read: the past episodes first, so the resync carries on the
            # open ones from the day they really began
            run_backfill_command(settings, store, now=now or utc_now, as_json=False,
                                 out=err if as_json else out, err=err, tty=tty, source="db",
                                 t=t)
        printer: Any = JsonPrinter(out) if as_json else TablePrinter(
            out, engine.settings.policy.vip_group_id, dry_run, t)
        with Progress(total, tty, err, t).running() as progress:
            result = Resync(engine, reader).run(dry_run=dry_run, client_ids=ids,
                                                on_change=printer, on_progress=progress)
        printer.summary(result)
        out.flush()
        if ids is not None and result.clients < len(ids):
            err.write(t.ngettext("vipgate: %(num)d of the given client ids is not in WHMCS",
                                 "vipgate: %(num)d of the given client ids are not in WHMCS",
                                 len(ids) - result.clients) + "\n")
        if result.failures:
            for client_id, message in result.failures:  # WHMCS's message, as it wrote it
                err.write(f"vipgate: client {client_id}: {message}\n")
            return 1
        return 0 if result.complete else 1
    finally:
        reader.dispose()
        store.dispose()


def _confirm_first_run(engine: Any, reader: Any, total: int, *, yes: bool,
                       ask: Callable[[str], bool] | None, shown: IO[str], err: IO[str],
                       tty: bool, texts: Texts) -> None:
    """The first full reconcile: plan it, show the summary, apply only when confirmed."""
    from bridge import first_run
    from bridge.resync.runner import Resync

    _ = texts.gettext
    progress = Progress(total, tty, err, texts)
    try:
        plan = Resync(engine, reader).run(dry_run=True, on_progress=progress)
    finally:
        progress.close()
    summary = plan.summary()
    first_run.record_plan(engine.store, summary, engine.now())
    described = first_run.describe(summary)  # in English when it is not a message (one
    said = texts if isinstance(described, Reason) else Texts("en")  # language per line)
    shown.write(said.gettext("This installation has never applied a full reconcile. The plan: "
                             "%(plan)s.", plan=said.reason(described)) + "\n"
                + _("(vipgate resync --dry-run lists every change with its reasons.)") + "\n")
    shown.flush()
    if not plan.complete:
        raise Failure(_("the plan did not finish: nothing was changed"), 1)
    if yes:
        pass
    elif ask is None:
        raise Failure(_("first full reconcile not confirmed: review the plan above and run "
                        "again with --yes (or confirm it on the admin overview)"), 2)
    elif not ask(_("Apply these changes to WHMCS?")):
        raise Failure(_("not confirmed: nothing was changed"), 1)
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
    language = cli_language()
    ask = None
    if sys.stdin.isatty():
        def ask(question: str) -> bool:
            return confirm(question, default=False, err=True)
    code = run_resync(settings, dry_run=dry_run, client_ids=client_ids, source=source,
                      as_json=as_json, out=sys.stdout, err=sys.stderr,
                      tty=sys.stderr.isatty(), yes=yes, ask=ask, language=language)
    if code:
        raise Failure(Texts(language).gettext(
            "resync: some changes failed or the run did not finish (see above)"), code)
