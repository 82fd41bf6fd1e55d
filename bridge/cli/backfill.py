"""``vipgate backfill``: the past delinquency episodes from WHMCS's invoices and transactions
(``bridge.resync.backfill``), with a progress bar on a terminal. The first full ``vipgate
resync`` that applies runs it by itself; running it again is safe (idempotent).

``--source db|api`` as for the resync. Exit codes: 0 done, 1 WHMCS's API failed while
reading, 2 usage or configuration error (unreachable databases included).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import IO
from zoneinfo import ZoneInfo

import click
import sqlalchemy as sa

from bridge.cli.common import (
    Failure,
    Progress,
    database_failure,
    opening,
    settings_of,
    texts,
)
from bridge.i18n import Texts
from bridge.settings import Settings
from bridge.store import Store

BACKFILLED = "episodes_backfilled_at"  # meta key: when the last backfill finished


def backfilled(store: Store) -> bool:
    return store.meta_get(BACKFILLED) is not None


def run_backfill_command(settings: Settings, store: Store, *, now: Callable[[], datetime],
                         as_json: bool, out: IO[str], err: IO[str], tty: bool,
                         source: str | None = None, t: Texts | None = None) -> int:
    """Reconstruct and write the past episodes from WHMCS's database (``source`` db) or
    API (api; default: as the resync, ``[resync] source``); print the summary in ``t``'s
    language (default: the CLI's)."""
    t = t or texts()
    _ = t.gettext
    from bridge.resync import source_kind
    from bridge.resync.backfill import run_backfill
    from bridge.resync.history import HistoryApiReader, HistoryDbReader, HistorySource
    from bridge.whmcs import WhmcsClient, WhmcsError

    kind = source_kind(settings, source)
    reader: HistorySource
    if kind == "api":
        if not settings.whmcs.url:
            raise Failure(_("[whmcs] url is empty: the api source needs WHMCS's API (or set "
                            "[whmcs] database_url and use --source db)"), 2)
        reader = HistoryApiReader(WhmcsClient(settings.whmcs))
    elif not settings.whmcs.database_url:
        raise Failure(_("[whmcs] database_url is empty: the db source reads WHMCS's invoices "
                        "and transactions from its database (read-only access is enough)"), 2)
    else:
        try:
            reader = HistoryDbReader(settings.whmcs.database_url)
        except sa.exc.ArgumentError as exc:
            raise Failure(f"[whmcs] database_url: {exc}", 2) from None
    moment = now()
    try:
        try:
            today = moment.astimezone(ZoneInfo(settings.bridge.timezone)).date()
            total = reader.count(settings.policy.grace_days, today)
        except sa.exc.SQLAlchemyError as exc:
            raise database_failure(exc, settings.whmcs.database_url, what="WHMCS database",
                                   exit_code=2) from None
        except WhmcsError as exc:
            raise Failure(f"WHMCS's API: {exc}", 2) from None
        with Progress(total, tty, err, t, name="backfill").running() as progress:
            result = run_backfill(store, settings, reader, moment, on_progress=progress)
    finally:
        reader.dispose()
    store.meta_put(BACKFILLED, moment.isoformat())
    s = result.summary()
    if as_json:
        out.write(json.dumps(s) + "\n")
    else:
        out.write(_("backfill: %(clients)s clients with invoices past the grace, "
                    "%(episodes)s episodes (%(open)s open today) in %(seconds)s s; written: "
                    "%(inserted)s new, %(updated)s updated, %(deleted)s removed",
                    **{k: s[k] for k in ("clients", "episodes", "open", "seconds", "inserted",
                                         "updated", "deleted")}) + "\n")
    out.flush()
    return 0


@click.command("backfill")
@click.option("--source", type=click.Choice(["db", "api"]), default=None,
              help="Read WHMCS's database (read-only) or its API "
                   "(default: [resync] source; auto = db when [whmcs] database_url is set).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.pass_context
def backfill_command(ctx: click.Context, source: str | None, as_json: bool) -> None:
    """Reconstruct past delinquency episodes from WHMCS's invoices and transactions."""
    from bridge.runtime import open_store, utc_now

    settings = settings_of(ctx)
    store = opening(settings, open_store, exit_code=2, what="vipgate database")
    try:
        run_backfill_command(settings, store, now=utc_now, as_json=as_json, out=sys.stdout,
                             err=sys.stderr, tty=sys.stderr.isatty(), source=source)
    finally:
        store.dispose()
