"""A day's dashboard figures over a big installation (issue 19 target: <= 1 s for 100,000
clients).

Today's figures are counted when the dashboard is read (``bridge.store.snapshots.live``): one
pass over the standing cache (every client's row, the delinquent ones' invoice lists read for
the due day) and the day's VIP moves in the audit log (by its ``at`` index). This bench fills a
throw-away store as a year-old installation would have it and times that count, and the
worker's close of a day (the same count, stored):

- ``--clients`` standing cache rows, ``--delinquent`` of them overdue or suspended (1 to 3
  overdue invoices each, due days spread over the month, one or two currencies), about a
  third in VIP, each with a name;
- ``--audit-days`` days of audit log, ``--moves`` of vipgate's group moves a day out of and
  into VIP and three times as many other rows (ticket priorities, notes, staff moves), all
  spread over the day.

Each timing is the median of ``--runs`` counts (the first, which warms the database's cache,
is reported apart). Checks: the figures are the ones the filled data must give.

Usage: python bench/figures.py [--clients 100000] [--mariadb URL | --sqlite] [--runs 5]
       [--json]
Smoke: python bench/figures.py --clients 2000 --audit-days 5 (tests/test_bench_figures.py)
Exit status 0 when every check passed, 1 otherwise (the target is reported, not checked: the
machine may be loaded).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

import sqlalchemy as sa  # noqa: E402
from stub_overhead import DEFAULT_MARIADB, mariadb_database  # noqa: E402

from bridge.days import day_bounds  # noqa: E402
from bridge.model import AuditEntry, CachedStanding, OverdueInvoice  # noqa: E402
from bridge.store import Store, snapshots  # noqa: E402

TIMEZONE = "America/Sao_Paulo"
VIP, REGULAR = 4, 1
TODAY = date(2026, 11, 21)
NOW = datetime(2026, 11, 21, 17, 0, tzinfo=UTC)  # 14:00 in Sao Paulo
TARGET_S = 1.0
BATCH = 5000


@contextmanager
def database(mariadb: str | None) -> Iterator[str]:
    """A throw-away database: on MariaDB (stub_overhead.py's helper), or a SQLite file."""
    if mariadb is None:
        with tempfile.TemporaryDirectory(prefix="vipgate-figures-") as tmp:
            yield f"sqlite:///{tmp}/vipgate.db"
        return
    with mariadb_database(mariadb) as made:
        yield made["url"]


def fill(store: Store, clients: int, delinquent: int, audit_days: int, moves: int,
         rnd: random.Random) -> dict[str, Any]:
    """The standing cache and the audit log; returns the figures they must give today."""
    expected = {"clients": clients, "delinquent": 0, "overdue_cents": 0, "vip_members": 0,
                "removed": 0, "restored": 0}
    late = set(rnd.sample(range(1, clients + 1), delinquent))
    updated = datetime(2026, 11, 21, 9, 0)  # the morning's reconcile
    rows: list[CachedStanding] = []
    for cid in range(1, clients + 1):
        in_vip = cid % 3 == 0
        expected["vip_members"] += in_vip
        prefix, suffix = ("R$ ", "") if cid % 10 else ("$", " USD")
        if cid in late:
            invoices = tuple(
                OverdueInvoice(cid * 10 + n, f"2026-{cid * 10 + n}",
                               Decimal(rnd.randint(1000, 30000)) / 100,
                               (TODAY - timedelta(days=rnd.randint(4, 120))).isoformat())
                for n in range(rnd.randint(1, 3)))
            invoices = tuple(sorted(invoices, key=lambda i: i.due_date))
            total = sum((i.balance for i in invoices), Decimal(0))
            kind = "suspended" if cid % 4 == 0 else "overdue"
            days = (TODAY - date.fromisoformat(invoices[0].due_date)).days
            expected["delinquent"] += 1
            expected["overdue_cents"] += int(total * 100)
        else:
            invoices, total, kind, days = (), Decimal(0), "current", 0
        rows.append(CachedStanding(
            cid, kind, days, total, invoices, prefix, suffix, "portuguese-br", updated, kind,
            VIP if in_vip else REGULAR, in_vip, in_vip, name=f"Cliente {cid} (Empresa {cid})"))
        if len(rows) == BATCH:
            store.put_standings(rows, older_than=updated)
            rows = []
    store.put_standings(rows, older_than=updated)
    entries: list[AuditEntry] = []
    start_today, end_today = day_bounds(TODAY, TIMEZONE)
    for back in range(audit_days):
        day = TODAY - timedelta(days=back)
        start, end = day_bounds(day, TIMEZONE)
        if day == TODAY:
            end = NOW.replace(tzinfo=None)
        span = int((end - start).total_seconds())
        for n in range(moves * 4):
            at = start + timedelta(seconds=rnd.randrange(span))
            cid = rnd.randint(1, clients)
            kind = n % 4
            if kind == 0:  # vipgate's move out of or into VIP
                out = rnd.random() < 0.5
                before, after = (str(VIP), str(REGULAR)) if out else (str(REGULAR), str(VIP))
                entries.append(AuditEntry(at, "vipgate", "group", cid, None, before, after,
                                          ("bench",)))
                if start_today <= at < end_today:
                    expected["removed" if out else "restored"] += 1
            elif kind == 1:
                entries.append(AuditEntry(at, "vipgate", "ticket_priority", cid, cid, "Medium",
                                          "Low", ("bench",)))
            elif kind == 2:
                entries.append(AuditEntry(at, "vipgate", "ticket_note", cid, cid, None,
                                          "ids:1", ("bench",)))
            else:  # a staff move: not counted
                entries.append(AuditEntry(at, "staff", "group", cid, None, str(REGULAR),
                                          str(VIP), ("bench",)))
            if len(entries) == BATCH:
                store.add_audit(entries)
                entries = []
    store.add_audit(entries)
    return expected


def timed(runs: int, work: Any) -> tuple[float, list[float], Any]:
    """The first run's seconds, the next ``runs`` runs' seconds, the last result."""
    started = time.perf_counter()
    result = work()
    first = time.perf_counter() - started
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return first, times, result


def run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    store = Store(url)
    store.upgrade()
    rnd = random.Random(19)
    started = time.perf_counter()
    expected = fill(store, args.clients, int(args.clients * args.delinquent), args.audit_days,
                    args.moves, rnd)
    filled = time.perf_counter() - started
    with store.engine.connect() as conn:
        audit_rows = conn.execute(sa.text("SELECT COUNT(*) FROM audit")).scalar()

    def count() -> snapshots.Snapshot:
        return snapshots.live(store, TODAY, NOW, VIP, timezone=TIMEZONE)[0]

    first, times, live = timed(args.runs, count)
    # the worker's close of the day: the same count, stored once (later closes find it done)
    yesterday = TODAY - timedelta(days=1)
    started = time.perf_counter()
    closed = snapshots.close_day(store, yesterday, NOW, VIP, timezone=TIMEZONE)
    close_s = time.perf_counter() - started
    checks = []
    got = {"clients": live.clients, "delinquent": live.delinquent,
           "overdue_cents": int(live.overdue_total * 100), "vip_members": live.vip_members,
           "removed": live.vip_removed, "restored": live.vip_restored}
    for key, value in expected.items():
        if got[key] != value:
            checks.append(f"{key}: counted {got[key]}, the data gives {value}")
    if closed is None or closed.closed_at is None:
        checks.append("the day before was not closed")
    store.dispose()
    median = statistics.median(times) if times else first
    return {
        "database": url.split(":", 1)[0], "clients": args.clients,
        "delinquent": expected["delinquent"], "audit_rows": audit_rows,
        "fill_s": round(filled, 1), "first_s": round(first, 3),
        "median_s": round(median, 3), "max_s": round(max(times, default=first), 3),
        "runs": len(times), "close_s": round(close_s, 3), "target_s": TARGET_S,
        "target_met": median <= TARGET_S, "load_average": [round(x, 2) for x in
                                                           os.getloadavg()],
        "checks": checks,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--delinquent", type=float, default=0.12,
                        help="the share of clients overdue or suspended (default 0.12)")
    parser.add_argument("--audit-days", type=int, default=90)
    parser.add_argument("--moves", type=int, default=300,
                        help="vipgate's VIP moves a day (the audit gets 4 times as many rows)")
    parser.add_argument("--runs", type=int, default=5)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--mariadb", nargs="?", const=DEFAULT_MARIADB, default=None,
                       help=f"a MariaDB server URL (default {DEFAULT_MARIADB})")
    where.add_argument("--sqlite", action="store_true", help="a SQLite file (the default)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.clients < 1 or not 0 < args.delinquent <= 1 or args.audit_days < 1 \
            or args.moves < 1 or args.runs < 1:
        parser.error("--clients, --audit-days, --moves and --runs must be at least 1, "
                     "--delinquent a share in (0, 1]")
    with database(args.mariadb) as url:
        result = run(url, args)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['database']}: {result['clients']:,} clients "
              f"({result['delinquent']:,} delinquent), {result['audit_rows']:,} audit rows "
              f"(filled in {result['fill_s']} s)")
        print(f"today's figures: median {result['median_s']} s over {result['runs']} runs "
              f"(max {result['max_s']} s, first {result['first_s']} s); closing a day "
              f"{result['close_s']} s; target {TARGET_S} s: "
              f"{'met' if result['target_met'] else 'MISSED'}")
        print(f"load average {result['load_average']}")
        for check in result["checks"]:
            print(f"CHECK FAILED: {check}")
    return 1 if result["checks"] else 0


if __name__ == "__main__":
    sys.exit(main())
