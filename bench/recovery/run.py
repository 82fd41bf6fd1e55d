#!/usr/bin/env python3
"""Recovery figures benchmark: ``Store.recovery`` (the dashboard's Recovery section and its
CSV) over a year of delinquency episodes at the 100k-client scale.

    python bench/recovery/run.py [--store URL] [--episodes 160000] [--runs 3] [--spans 1,30,90,365]

``--store``: vipgate's database, whose episode tables are emptied and filled with generated
episodes (default a fresh SQLite file in a temporary folder). The episodes (seeded, so every
run gets the same): 100,000 clients, opened over the year before 2026-12-06, 80% paid 0–40
days later, half with "left VIP", 30% suspended by WHMCS two days after opening — about the
163,600 episodes the backfill reconstructs from bench/gen_whmcs.py's WHMCS. A fifth of the
suspended ones still owing the next day are unlocked by trust then, for 3 days
(``unlocked_by_trust``, drawn from a seed of their own so the other episodes stay as they were),
and suspended again after the 3 days when still unpaid. Times the last day's, 30, 90 and 365
days' figures (``--spans``); prints each round, the medians and the load average before and
after (the machine may be shared).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


from bridge.store import Store
from bridge.store.tables import episode, episode_action, episode_payment

UNTIL = date(2026, 12, 6)
ZONE = "America/Sao_Paulo"


def fill(store: Store, count: int) -> tuple[int, int, int]:
    rnd = random.Random(1)
    trust = random.Random(2)  # the unlocks: apart, so the rest is drawn as before
    first = UNTIL - timedelta(days=365)
    episodes: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] = []
    payments: list[dict[str, Any]] = []
    for i in range(1, count + 1):
        client = rnd.randint(1, 100_000)
        opened = first + timedelta(days=rnd.randint(0, 360))
        at = datetime.combine(opened, datetime.min.time()) + timedelta(hours=12)
        took = rnd.randint(0, 40)
        ended = opened + timedelta(days=took)
        paid = rnd.random() < 0.8 and ended <= UNTIL
        episodes.append({
            "id": i, "client_id": client, "open_client_id": None, "opened_at": at,
            "opened_on": opened, "amount": Decimal("59.90"), "currency_prefix": "R$ ",
            "currency_suffix": "", "tracked": "{}", "standing": "overdue",
            "recovered": Decimal("59.90") if paid else Decimal(0), "written_off": Decimal(0),
            "ended_at": at + timedelta(days=took) if paid else None,
            "ended_on": ended if paid else None, "how": "paid" if paid else None,
            "days": took if paid else None, "source": "backfill", "live": False,
            "updated_at": at})
        if rnd.random() < 0.5:
            actions.append({"episode_id": i, "client_id": client, "kind": "left_vip",
                            "at": at, "actor": "vipgate", "detail": ""})
        if rnd.random() < 0.3:
            actions.append({"episode_id": i, "client_id": client, "kind": "suspended",
                            "at": at + timedelta(days=2), "actor": "whmcs", "detail": ""})
            if (not paid or took > 3) and trust.random() < 0.2:  # still owed the next day
                until = opened + timedelta(days=6)
                actions.append({"episode_id": i, "client_id": client,
                                "kind": "unlocked_by_trust", "at": at + timedelta(days=3),
                                "actor": "client", "detail": until.isoformat()})
                if not (paid and ended <= until) and until < UNTIL:
                    actions.append({"episode_id": i, "client_id": client, "kind": "suspended",
                                    "at": at + timedelta(days=7), "actor": "whmcs",
                                    "detail": ""})
        if paid:
            payments.append({"episode_id": i, "client_id": client, "invoice_id": i,
                             "amount": Decimal("59.90"), "paid_on": ended})
    with store.engine.begin() as conn:
        for table in (episode_payment, episode_action, episode):
            conn.execute(table.delete())
        for table, rows in ((episode, episodes), (episode_action, actions),
                            (episode_payment, payments)):
            for start in range(0, len(rows), 5000):
                conn.execute(table.insert(), rows[start:start + 5000])
    return len(episodes), len(actions), len(payments)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="")
    parser.add_argument("--episodes", type=int, default=160_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--spans", default="1,30,90,365",
                        help="the ranges timed, in days ending on the data's last day")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(args.store or f"sqlite:///{tmp}/vipgate.db")
        store.upgrade()
        print("episodes, actions, payments:", *fill(store, args.episodes))
        print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
        for span in (int(days) for days in args.spans.split(",")):
            since = UNTIL - timedelta(days=span - 1)
            took = []
            for _ in range(args.runs):
                start = time.perf_counter()
                r = store.recovery(since, UNTIL, ZONE)
                took.append(time.perf_counter() - start)
            print(f"last {span} days: " + ", ".join(f"{t:.3f}" for t in took)
                  + f" s (median {statistics.median(took):.3f} s); {r.total.paid} paid, "
                  f"{r.total.suspended} suspended, {r.trust.made} unlocked by trust "
                  f"({r.trust.counts['paid']} paid)")
        print("load average after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
        store.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
