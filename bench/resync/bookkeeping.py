#!/usr/bin/env python3
"""What applying costs beyond WHMCS writes: the first run's bookkeeping (a memory row and a
standing cache row per client, written in bulk), then a run with nothing to write.

    python bench/resync/bookkeeping.py STORE_URL [--whmcs URL]

STORE_URL is vipgate's own database, fresh (``sqlite:///...`` or an empty MariaDB database);
``--whmcs`` the WHMCS database (default: the 100k bench database). The policy plans no WHMCS
write (``vip_group_id = 0``, priorities ``keep``, staff notes off), so only the bookkeeping
shows; ``[resync] processes = 1``.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

from bridge.engine.reconcile import Engine
from bridge.resync.runner import Resync
from bridge.resync.source_db import WhmcsDbReader
from bridge.settings import default_settings
from bridge.store import Store

TODAY_NOON = datetime(2026, 11, 21, 12, tzinfo=UTC)  # the bench data's "today"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store_url")
    parser.add_argument("--whmcs", default="mysql+pymysql://root@127.0.0.1:3306/vipgate_bench")
    args = parser.parse_args()
    settings = default_settings().replace(
        policy={"vip_group_id": 0},
        tickets={"priority_vip": "keep", "priority_overdue": "keep",
                 "priority_suspended": "keep", "staff_note": False},
        bridge={"database_url": args.store_url, "timezone": "America/Sao_Paulo"},
        resync={"processes": 1})
    store = Store(args.store_url)
    store.upgrade()

    def no_api() -> None:
        raise RuntimeError("this benchmark plans no WHMCS write")

    engine = Engine(settings, store, whmcs=no_api, now=lambda: TODAY_NOON)  # type: ignore[arg-type]
    for run in ("first run", "second run"):
        started = time.perf_counter()
        result = Resync(engine, WhmcsDbReader(args.whmcs)).run(dry_run=False)
        print(f"{run}: {time.perf_counter() - started:.2f} s, {result.clients} clients, "
              f"{result.recorded} memories and {result.cached} cache rows written, "
              f"{sum(result.planned.values())} changes planned")
    store.dispose()


if __name__ == "__main__":
    main()
