#!/usr/bin/env python3
"""Where one ``POST /hooks/whmcs`` spends its time: the bridge in-process (Flask test client,
no gunicorn, no HTTP), against a throw-away MariaDB database, with the hello-world app as the
baseline for what Flask and Werkzeug cost alone.

    python bench/ingest/profile_ingest.py [--requests 3000] [--top 30]

Prints, per request:

1. wall and CPU time of the whole request, bridge vs hello-world (no profiler);
2. the same split by stage (signature, JSON, marshmallow, dispatch, store, response), by
   wrapping the functions ``bridge.web.webhook`` calls (no profiler);
3. what MariaDB saw from the bridge's inbox connection (``SHOW SESSION STATUS`` deltas:
   statements, commits, rollbacks, pings) and what each kind of round trip costs on this
   machine;
4. what each hot-path change saves, one at a time, against the ways they replaced: schemas
   made once and a prebuilt INSERT (5a26e20); the envelope without a key field on ``vars``,
   and the inbox writer (one autocommit INSERT on a pool of its own, pinged only after idle,
   no reset on return) of session 5, next to the older ``engine.begin()`` path with and
   without its pre-ping and reset-on-return ROLLBACK;
5. a cProfile breakdown by package and the top functions by cumulative time (the profiler
   roughly doubles the CPU time; use it for proportions only).

Creates and drops its own database ``vipgate_prof_<random>``. Talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import functools
import os
import pstats
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

import signedreq  # noqa: E402
import sqlalchemy as sa  # noqa: E402

import bridge.web.webhook  # noqa: E402
import hooks  # noqa: E402
from bridge.settings import default_settings  # noqa: E402
from bridge.store import Store  # noqa: E402
from bridge.store.meta import new_webhook_secret  # noqa: E402
from bridge.web.app import create_app  # noqa: E402

STATUS = ("Questions", "Com_insert", "Com_commit", "Com_rollback", "Com_select",
          "Com_admin_commands", "Com_set_option")


def split(raw: bytes) -> tuple[dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    headers = {}
    for line in head.decode().split("\r\n")[1:]:
        name, _, value = line.partition(": ")
        if name.lower() not in ("host", "content-length", "user-agent"):
            headers[name] = value
    return headers, body


def session_status(store: Store) -> dict[str, int]:
    """The status counters of the connection the inbox writes go through (the inbox writer's
    pool holds a single connection when requests come one at a time)."""
    engine = store.inbox_engine or store.engine
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SHOW SESSION STATUS")
        rows = cursor.fetchall()
        cursor.close()
    finally:
        raw.close()
    return {k: int(v) for k, v in rows if k in STATUS}


def package_of(filename: str) -> str:
    path = filename.replace("\\", "/")
    if "/site-packages/" in path:
        return path.split("/site-packages/", 1)[1].split("/")[0].removesuffix(".py")
    if "/lib/python3" in path:
        rest = path.split("/lib/python3", 1)[1].split("/", 1)[-1]
        return "stdlib:" + rest.split("/")[0].removesuffix(".py")
    if str(REPO) in path:
        return path.replace(str(REPO) + "/", "").split("/")[0]
    return "C builtins (socket I/O, hmac, json...)" if path.startswith(("~", "<")) else path


class Stages:
    """Wall and CPU seconds spent inside wrapped functions."""

    def __init__(self) -> None:
        self.totals: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0])

    def wrap(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                total = self.totals[name]
                total[0] += time.perf_counter() - wall
                total[1] += time.process_time() - cpu
        return timed


def round_trips(store: Store, n: int) -> dict[str, tuple[float, float]]:
    """Wall and CPU ms of each kind of round trip the bridge makes, on a raw connection."""
    timings: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0])
    raw = store.engine.raw_connection()
    try:
        dbapi = raw.driver_connection
        cursor = dbapi.cursor()

        def timed(name: str, action: Callable[[], Any]) -> None:
            wall, cpu = time.perf_counter(), time.process_time()
            action()
            timings[name][0] += time.perf_counter() - wall
            timings[name][1] += time.process_time() - cpu

        insert = ("INSERT INTO inbox (webhook_id, hook, client_id, payload, occurred_at, "
                  "received_at, state, attempts, next_attempt_at) VALUES (%s, 'InvoicePaid', "
                  "NULL, '{}', NOW(), NOW(), 'queued', 0, NOW())")
        for i in range(n):
            timed("COM_PING (pool_pre_ping)", lambda: dbapi.ping(False))
            timed("INSERT inbox row", lambda i=i: cursor.execute(insert, (f"rt_{i}",)))
            timed("COMMIT (redo log flush)", dbapi.commit)
            timed("ROLLBACK (pool reset on return)", dbapi.rollback)
        dbapi.autocommit(True)
        for i in range(n):
            timed("autocommit INSERT (flush included; the bridge now)",
                  lambda i=i: cursor.execute(insert, (f"ac_{i}",)))
        dbapi.autocommit(False)
        cursor.close()
    finally:
        raw.close()
    return {k: (v[0] / n * 1000, v[1] / n * 1000) for k, v in timings.items()}


def alternatives(store: Store, url: str, n: int) -> list[tuple[str, float, float]]:
    """CPU and wall ms per call of load_event and of storing one inbox row: the ways before
    5a26e20 and before session 5, the bridge's way now, and the floor, one at a time."""
    from datetime import UTC, datetime

    from marshmallow import fields

    from bridge.payloads import _VARS, VARS_SCHEMAS, Envelope, load_event
    from bridge.store.inbox import INBOX_INSERT_SQL, write_inbox
    from bridge.store.tables import inbox

    document = {"hook": "ClientEdit", "occurred_at": "2026-11-21T11:59:00+00:00",
                "vars": {"userid": "42", "groupid": "3", "status": "Active",
                         "language": "portuguese-br",
                         "olddata": {"groupid": "1", "status": "Active"}}}
    moment = datetime.now(UTC).replace(tzinfo=None)
    counter = iter(range(10**9))

    def row() -> dict[str, Any]:
        return {"webhook_id": f"alt_{next(counter)}", "hook": "InvoicePaid", "client_id": None,
                "payload": '{"invoiceid":1}', "occurred_at": moment, "received_at": moment,
                "state": "queued", "attempts": 0, "next_attempt_at": moment}

    def values() -> tuple[Any, ...]:
        return (f"alt_{next(counter)}", "InvoicePaid", None, '{"invoiceid":1}', moment, moment,
                moment)

    class KeyedEnvelope(Envelope):  # the envelope before session 5: every vars key checked
        vars = fields.Dict(keys=fields.String(), required=True)

    keyed = KeyedEnvelope()

    def keyed_load_event() -> Any:
        envelope = keyed.load(document)
        return _VARS[envelope["hook"]].load(envelope["vars"])

    prebuilt = inbox.insert()
    # store.engine is the engine every other query uses; the inbox went through it, with its
    # pre-ping and reset-on-return, before session 5
    no_ping = sa.create_engine(url, pool_pre_ping=False, pool_size=3, max_overflow=2)
    no_reset = sa.create_engine(url, pool_pre_ping=False, pool_reset_on_return=None,
                                pool_size=3, max_overflow=2)
    raw = store.engine.raw_connection()
    cursor = raw.driver_connection.cursor()
    floor = store.engine.raw_connection()
    floor.driver_connection.autocommit(True)
    floor_cursor = floor.driver_connection.cursor()
    statement = ("INSERT INTO inbox (webhook_id, hook, client_id, payload, occurred_at, "
                 "received_at, state, attempts, next_attempt_at) VALUES (%(webhook_id)s, "
                 "%(hook)s, %(client_id)s, %(payload)s, %(occurred_at)s, %(received_at)s, "
                 "%(state)s, %(attempts)s, %(next_attempt_at)s)")

    def per_event_insert() -> None:
        with store.engine.begin() as conn:
            conn.execute(inbox.insert().values(**row()))

    def with_engine(engine: sa.Engine) -> Callable[[], None]:
        def insert() -> None:
            with engine.begin() as conn:
                conn.execute(prebuilt, row())
        return insert

    def raw_pymysql() -> None:
        cursor.execute(statement, row())
        raw.driver_connection.commit()

    def raw_autocommit() -> None:
        floor_cursor.execute(INBOX_INSERT_SQL, values())

    assert store.inbox_engine is not None

    cases: list[tuple[str, Callable[[], Any]]] = [
        ("schemas made per request (before 5a26e20)", lambda: VARS_SCHEMAS["ClientEdit"]().load(
            Envelope().load(document)["vars"])),
        ("schemas made once, vars keys checked (before s5)", keyed_load_event),
        ("load_event as the bridge does now", lambda: load_event(document)),
        ("insert().values(**row) per event (before 5a26e20)", per_event_insert),
        ("prebuilt insert(), engine.begin() (before s5)", with_engine(store.engine)),
        ("... and pool_pre_ping=False", with_engine(no_ping)),
        ("... and pool_reset_on_return=None", with_engine(no_reset)),
        ("raw PyMySQL INSERT + COMMIT", raw_pymysql),
        ("write_inbox: autocommit INSERT (the bridge now)",
         lambda: write_inbox(store, [values()])),
        ("raw PyMySQL autocommit INSERT (the floor)", raw_autocommit),
    ]
    results = []
    try:
        for label, action in cases:
            action()
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(n):
                action()
            results.append((label, (time.perf_counter() - wall) / n * 1000,
                            (time.process_time() - cpu) / n * 1000))
    finally:
        cursor.close()
        raw.close()
        floor_cursor.close()
        floor.driver_connection.autocommit(False)
        floor.close()
        no_ping.dispose()
        no_reset.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mysql-url", default=os.environ.get(
        "VIPGATE_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306"))
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    n = args.requests

    admin_url = args.mysql_url.rstrip("/")
    name = f"vipgate_prof_{secrets.token_hex(4)}"
    admin = sa.create_engine(admin_url + "/")
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    try:
        secret = new_webhook_secret()
        url = f"{admin_url}/{name}"
        store = Store(url)
        store.upgrade()
        settings = default_settings().replace(bridge={"database_url": url},
                                              webhook={"secrets": secret})
        app = create_app(settings, store=store)
        client = app.test_client()
        import hello

        hello_client = hello.app.test_client()

        def batch(prefix: str, count: int = n) -> list[tuple[dict[str, str], bytes]]:
            return [split(r) for r in signedreq.generate(secret, prefix, range(count))]

        def drive(test_client: Any, requests: list[tuple[dict[str, str], bytes]],
                  expect: int) -> None:
            for headers, body in requests:
                response = test_client.post(signedreq.PATH, data=body, headers=headers)
                assert response.status_code == expect, response.get_data()

        drive(client, batch("warm", 300), 202)
        drive(hello_client, batch("hwarm", 300), 200)

        print(f"1. whole request, in-process (Flask test client), mean of {n}:")
        for label, test_client, prefix, expect in (("hello-world", hello_client, "h", 200),
                                                   ("ingest", client, "plain", 202)):
            requests = batch(prefix)
            wall0, cpu0 = time.perf_counter(), time.process_time()
            drive(test_client, requests, expect)
            wall = (time.perf_counter() - wall0) / n * 1000
            cpu = (time.process_time() - cpu0) / n * 1000
            print(f"   {label:12s} wall {wall:.3f} ms   cpu {cpu:.3f} ms   "
                  f"(waiting, i.e. MariaDB round trips: {max(0.0, wall - cpu):.3f} ms)")

        stages = Stages()
        originals = {
            "verify": bridge.web.webhook.verify,
            "_read_verified_json": bridge.web.webhook._read_verified_json,
            "load_event": bridge.web.webhook.load_event,
            "jsonify": bridge.web.webhook.jsonify,
        }
        bridge.web.webhook.verify = stages.wrap("signature check (hmac)", bridge.web.webhook.verify)
        bridge.web.webhook._read_verified_json = stages.wrap(
            "read body + signature + json.loads", bridge.web.webhook._read_verified_json)
        bridge.web.webhook.load_event = stages.wrap("validate (marshmallow)",
                                                bridge.web.webhook.load_event)
        bridge.web.webhook.jsonify = stages.wrap("jsonify answer", bridge.web.webhook.jsonify)
        hooks.registry.dispatch = stages.wrap("hook dispatch", hooks.registry.dispatch)
        enqueue = Store.enqueue
        Store.enqueue = stages.wrap("store.enqueue (SQLAlchemy + MariaDB)", enqueue)
        wsgi = app.wsgi_app
        app.wsgi_app = stages.wrap("Flask wsgi_app (everything above + Flask)", wsgi)
        before = session_status(store)
        pool_size = (store.inbox_engine or store.engine).pool.checkedin()
        requests = batch("stages")
        wall0, cpu0 = time.perf_counter(), time.process_time()
        drive(client, requests, 202)
        wall = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0
        after = session_status(store)
        for key, value in originals.items():
            setattr(bridge.web.webhook, key, value)
        del hooks.registry.dispatch
        Store.enqueue = enqueue
        app.wsgi_app = wsgi

        print(f"\n2. by stage, ingest, mean of {n} (wall ms / cpu ms):")
        rows = list(stages.totals.items())
        rows.append(("test client around the app (not in gunicorn)", [
            wall - stages.totals["Flask wsgi_app (everything above + Flask)"][0],
            cpu - stages.totals["Flask wsgi_app (everything above + Flask)"][1]]))
        for label, (w, c) in rows:
            print(f"   {label:48s} {w / n * 1000:7.3f} / {c / n * 1000:7.3f}")

        print(f"\n3. MariaDB statements per ingest request, from the bridge's inbox connection "
              f"(pool held {pool_size} connection(s); +-1 over {n} for the SHOW itself):")
        print("   " + ", ".join(f"{k} {(after[k] - before[k]) / n:.2f}" for k in STATUS))
        print("   cost of each round trip on a raw PyMySQL connection (wall ms / cpu ms):")
        for label, (w, c) in round_trips(store, min(n, 2000)).items():
            print(f"   {label:48s} {w:7.3f} / {c:7.3f}")

        print("\n4. hot-path alternatives, one at a time (wall ms / cpu ms "
              "per call):")
        for label, w, c in alternatives(store, url, min(n, 2000)):
            print(f"   {label:48s} {w:7.3f} / {c:7.3f}")

        requests = batch("prof")
        profiler = cProfile.Profile()
        profiler.enable()
        drive(client, requests, 202)
        profiler.disable()
        stats = pstats.Stats(profiler)
        raw_stats: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
        total = sum(v[2] for v in raw_stats.values())
        by_package: collections.Counter[str] = collections.Counter()
        for (filename, _line, _func), (_cc, _nc, tt, _ct, _callers) in raw_stats.items():
            by_package[package_of(filename)] += tt
        print(f"\n5. cProfile, ingest, {n} requests: {total / n * 1000:.3f} ms per request "
              "under the profiler (includes time blocked in socket reads), own time by package:")
        for package, tt in by_package.most_common(14):
            print(f"   {package:44s} {tt / n * 1000:7.3f} ms  {tt / total:6.1%}")
        print(f"\n   top {args.top} functions by cumulative time:")
        stats.sort_stats("cumulative").print_stats(args.top)
        store.dispose()
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


if __name__ == "__main__":
    main()
