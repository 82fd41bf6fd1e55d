#!/usr/bin/env python3
"""Backfill benchmark: ``vipgate backfill`` (the past delinquency episodes from WHMCS's
invoices and transactions) over the generated 100k-client WHMCS (bench/gen_whmcs.py).

    python bench/backfill/run.py [--whmcs URL] [--store URL] [--runs 3]

``--whmcs``: the WHMCS database (default the 100k bench database, mysql+pymysql://root@
127.0.0.1:3306/vipgate_bench); ``--store``: vipgate's own database, emptied of episodes
first (default a fresh SQLite file in a temporary folder). Each round times a first backfill
over an empty episode table and a second one over the first's result (idempotent: it must
write nothing). Prints each round, the median of each, and the load average before and after
(the machine may be shared). Exit code 1 when the second run wrote anything.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import sqlalchemy as sa

from bridge.resync.backfill import run_backfill
from bridge.resync.history import HistoryDbReader
from bridge.settings import default_settings
from bridge.store import Store

TODAY_NOON = datetime(2026, 11, 21, 15, tzinfo=UTC)  # the bench data's "today", São Paulo noon


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--whmcs", default="mysql+pymysql://root@127.0.0.1:3306/vipgate_bench")
    parser.add_argument("--store", default=None)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="vipgate-backfill-")
    url = args.store or f"sqlite:///{folder}/vipgate.db"
    settings = default_settings().replace(
        bridge={"database_url": url, "timezone": "America/Sao_Paulo"})
    store = Store(url)
    store.upgrade()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    firsts, seconds = [], []
    failed = False
    for n in range(args.runs):
        with store.engine.begin() as conn:
            for table in ("episode_payment", "episode_action", "episode"):
                conn.execute(sa.delete(sa.table(table)))
        for label, times in (("first", firsts), ("second", seconds)):
            reader = HistoryDbReader(args.whmcs)
            started = time.perf_counter()
            result = run_backfill(store, settings, reader, TODAY_NOON)
            elapsed = time.perf_counter() - started
            reader.dispose()
            times.append(elapsed)
            s = result.summary()
            print(f"round {n + 1} {label}: {elapsed:.2f} s; {s['clients']} clients, "
                  f"{s['episodes']} episodes ({s['open']} open); written {s['inserted']} new, "
                  f"{s['updated']} updated, {s['deleted']} removed", flush=True)
            if label == "second" and (s["inserted"] or s["updated"] or s["deleted"]):
                failed = True
    print(f"median first run: {statistics.median(firsts):.2f} s; "
          f"median second run: {statistics.median(seconds):.2f} s")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"episodes stored: {store.episode_counts()}")
    store.dispose()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
