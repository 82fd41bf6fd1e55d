"""``vipgate resync``: both sources plan the same, dry runs change nothing, applying is
idempotent and resumable, failures are reported, bad input exits 2 with one line."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bridge import first_run
from bridge.cli.common import Failure
from bridge.cli.resync import run_resync
from bridge.engine.plan import Change
from bridge.engine.reconcile import RateLimiter
from bridge.model import ClientMemory
from bridge.resync.runner import Resync
from bridge.resync.snapshot import merge
from bridge.resync.source_api import WhmcsApiReader
from bridge.resync.source_db import ReadOnlyViolation, WhmcsDbReader
from bridge.settings import Settings
from bridge.store import Store
from bridge.whmcs.schema import metadata
from tests.resync_data import Population, populate
from tests.world import World, make_world


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[World]:
    with make_world(database_url, tmp_path,
                    whmcs={"database_url": f"sqlite:///{tmp_path}/whmcs.db"}) as w:
        yield w


@pytest.fixture
def people(world: World) -> Population:
    w = world
    return populate(w.sandbox, vip=w.vip, regular=w.regular, support=w.support,
                    billing=w.billing)


def db_reader(w: World) -> WhmcsDbReader:
    return WhmcsDbReader(w.whmcs_database_url)


def api_reader(w: World) -> WhmcsApiReader:
    return WhmcsApiReader(w.api)


def plans(w: World, source: Any, client_ids: list[int] | None = None
          ) -> dict[int, tuple[Change, ...]]:
    return {s.plan.client_id: s.plan.changes for s in Resync(w.engine, source).scan(client_ids)}


def cli(w: World, *args: str, settings: Settings | None = None) -> tuple[int, str, str]:
    """``vipgate resync ARGS`` in-process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    flags = set(args)
    ids = tuple(int(a) for a in args if a.isdigit())
    source = next((a for a in args if a in ("db", "api")), None)
    try:
        code = run_resync(settings or w.settings, dry_run="--dry-run" in flags,
                          client_ids=ids, source=source, as_json="--json" in flags,
                          out=out, err=err, tty=False, now=lambda: w.sandbox.clock.aware,
                          yes="--yes" in flags)
    except Failure as exc:
        err.write(exc.message + "\n")
        code = exc.exit_code
    return code, out.getvalue(), err.getvalue()


def whmcs_fingerprint(w: World) -> dict[str, list[tuple[Any, ...]]]:
    with w.sandbox.engine.connect() as conn:
        return {name: [tuple(r) for r in conn.execute(table.select().order_by(*table.primary_key))]
                for name, table in metadata.tables.items()
                if name not in ("tblactivitylog",)}


def vipgate_fingerprint(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    names = ("membership", "managed_ticket", "standing", "audit", "client_lease", "promise",
             "inbox")
    tables = sa.MetaData()
    tables.reflect(store.engine, only=names)
    with store.engine.connect() as conn:
        return {n: [tuple(r) for r in conn.execute(tables.tables[n].select())] for n in names}


# --- the two sources --------------------------------------------------------------------------


def test_db_and_api_sources_give_identical_plans(world: World, people: Population) -> None:
    w = world
    from_db, from_api = plans(w, db_reader(w)), plans(w, api_reader(w))
    assert from_db == from_api
    assert sorted(from_db) == sorted(people.clients)
    # ... and the same as the engine's per-client path an event takes
    per_client = {c: w.engine.plan(c) for c in people.clients}
    assert from_db == {c: p.changes for c, p in per_client.items() if p is not None}
    kinds = {c.kind for changes in from_db.values() for c in changes}
    assert kinds == {"group", "ticket_priority", "ticket_note"}  # the data is not trivial
    for client in people.vip_owing:
        assert any(c.kind == "group" and c.before == str(w.vip) for c in from_db[client])


def test_api_source_reads_every_client_when_last_names_are_shared(world: World,
                                                                  people: Population) -> None:
    """WHMCS 8 orders GetClients by last name with ties unstable between pages, and counts
    ``totalresults`` after the offset (whmcs-reference §6): every client is read once only
    because the client asks for ``orderby=id`` and stops on a short page."""
    w = world
    with w.sandbox.quiet():  # populate() named them all "Client N<n>": make the last names tie
        for client in people.clients:
            w.sandbox.update_client(client, lastname="Silva")
    reader = WhmcsApiReader(w.api, page_size=7)
    assert sorted(plans(w, reader)) == sorted(people.clients)
    assert plans(w, reader) == plans(w, db_reader(w))


def test_an_invoice_deleted_while_the_api_source_reads_is_left_out(world: World,
                                                                   people: Population) -> None:
    """GetInvoices lists an owed invoice, then it is merged or deleted before its GetInvoice:
    WHMCS 8 answers ``{"status": "error", "message": "Invoice ID Not Found"}`` without
    ``result``; the scan goes on without that invoice."""
    import requests

    from bridge.whmcs import WhmcsClient
    from bridge.whmcs.schema import tblinvoiceitems, tblinvoices

    w = world
    owing = people.vip_owing[0]
    with w.sandbox.engine.connect() as conn:
        doomed = conn.execute(sa.select(tblinvoices.c.id).where(
            tblinvoices.c.userid == owing, tblinvoices.c.status == "Unpaid",
            tblinvoices.c.duedate < w.sandbox.today)).scalars().all()
    assert doomed

    def delete_after_the_list(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        body = response.request.body or ""
        text = body.decode() if isinstance(body, bytes) else body
        if "action=GetInvoices" in text and doomed:
            with w.sandbox.transaction() as conn:
                conn.execute(sa.delete(tblinvoiceitems).where(
                    tblinvoiceitems.c.invoiceid.in_(doomed)))
                conn.execute(sa.delete(tblinvoices).where(tblinvoices.c.id.in_(doomed)))

    def whmcs() -> WhmcsClient:
        session = requests.Session()
        session.hooks["response"].append(delete_after_the_list)
        return WhmcsClient(w.settings.whmcs, session=session)

    calls = len(w.sandbox.api_log)
    from_api = plans(w, WhmcsApiReader(whmcs, concurrency=1))
    missing = [c for c in list(w.sandbox.api_log)[calls:]
               if c["action"] == "GetInvoice" and c["result"] == "error"]
    assert {int(c["params"]["invoiceid"]) for c in missing} == set(doomed)
    assert sorted(from_api) == sorted(people.clients)
    assert from_api == plans(w, db_reader(w))  # as WHMCS is now: the invoice is gone
    assert not any(c.kind == "group" for c in from_api[owing])


def test_resync_api_plans_every_client_of_5000_with_shared_last_names_like_db(
        tmp_path: Path) -> None:
    """Issue 15's "done when": a sandbox WHMCS of 5,000 clients (bench/gen_whmcs.py: last
    names from a short list, so thousands tie), ``vipgate resync --source api --dry-run``
    plans every client, and the same changes as ``--source db``."""
    import importlib.util
    import time

    from bridge.whmcs.schema import tblaccounts, tblinvoiceitems, tblinvoices
    from tests.world import API_ID, API_SECRET

    spec = importlib.util.spec_from_file_location(
        "gen_whmcs", Path(__file__).resolve().parents[1] / "bench" / "gen_whmcs.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    url = f"sqlite:///{tmp_path}/whmcs.db"
    with make_world(f"sqlite:///{tmp_path}/vipgate.db", tmp_path, whmcs={"database_url": url}
                    ) as w:
        gen.generate(url, 5000, seed=3, today=w.sandbox.today)
        w.sandbox.add_api_credential(API_ID, API_SECRET)  # the generator wrote WHMCS afresh
        # Invoices paid before the look-back window change neither source's plan; without
        # them the run reads half the rows (the suite's time).
        old = sa.select(tblinvoices.c.id).where(
            tblinvoices.c.status == "Paid",
            tblinvoices.c.datepaid < w.sandbox.today - timedelta(days=400)).scalar_subquery()
        with w.sandbox.transaction() as conn:
            for table in (tblinvoiceitems, tblaccounts):
                conn.execute(sa.delete(table).where(table.c.invoiceid.in_(old)))
            conn.execute(sa.delete(tblinvoices).where(tblinvoices.c.id.in_(old)))
        with w.sandbox.engine.connect() as conn:
            names = conn.execute(sa.select(sa.func.count(sa.distinct(
                sa.text("lastname")))).select_from(sa.table("tblclients"))).scalar()
        assert names is not None and names < 100  # shared last names
        settings = w.settings.replace(policy={"vip_group_id": 2, "default_group_id": 1},
                                      tickets={"billing_departments": "2"})
        started = time.monotonic()
        code, out, err = cli(w, "--dry-run", "--json", "api", settings=settings)
        took = time.monotonic() - started
        assert code == 0, err
        from_api = json.loads(out)
        code, out, err = cli(w, "--dry-run", "--json", "db", settings=settings)
        assert code == 0, err
        from_db = json.loads(out)
    assert from_api["summary"]["clients"] == from_db["summary"]["clients"] == 5000
    assert from_api["changes"] == from_db["changes"]
    assert from_api["summary"]["changes"] == from_db["summary"]["changes"]
    assert from_api["summary"]["changes"]["group"] > 0  # owing VIPs were found
    assert took < 60, f"the api source took {took:.1f} s"


def collections_plans(w: World, people: Population
                      ) -> dict[int, tuple[tuple[Change, ...], ...]]:
    """Each Collections client's plan from the db source, the api source and the engine."""
    db, api = plans(w, db_reader(w)), plans(w, api_reader(w))
    assert db == api
    found = {}
    for client in people.collections:
        engine = w.engine.plan(client)
        found[client] = (db[client], api[client], engine.changes if engine else ())
    return found


def test_a_collections_invoice_is_owed_in_both_sources_and_the_engine(
        world: World, people: Population) -> None:
    assert people.collections
    for client, (db, api, engine) in collections_plans(world, people).items():
        assert db == api == engine
        group = [c for c in db if c.kind == "group"]
        home = str(world.settings.policy.default_group_id)
        assert [(c.before, c.after) for c in group] == [(str(world.vip), home)], client
        reasons = " ".join(group[0].reasons)
        assert "$69.90 USD (of $89.90 USD) in Collections overdue" in reasons


def test_collections_owed_off_leaves_collections_clients_in_vip(database_url: str,
                                                               tmp_path: Path) -> None:
    with make_world(database_url, tmp_path, policy={"collections_owed": False},
                    whmcs={"database_url": f"sqlite:///{tmp_path}/whmcs.db"}) as w:
        people = populate(w.sandbox, vip=w.vip, regular=w.regular, support=w.support,
                          billing=w.billing, count=20)
        for client, (db, api, engine) in collections_plans(w, people).items():
            assert db == api == engine
            assert not [c for c in db if c.kind == "group"], client


@pytest.mark.mariadb
def test_db_source_reads_a_mariadb_whmcs(mariadb_url: str, tmp_path: Path) -> None:
    with make_world(f"sqlite:///{tmp_path}/vipgate.db", tmp_path,
                    whmcs_database_url=mariadb_url,
                    whmcs={"database_url": mariadb_url}) as w:
        people = populate(w.sandbox, vip=w.vip, regular=w.regular, support=w.support,
                          billing=w.billing, count=20)
        from_db = plans(w, db_reader(w))
        assert from_db == plans(w, api_reader(w))
        assert sorted(from_db) == people.clients
        code, out, _ = cli(w, "--yes")
        assert code == 0 and f"applied {sum(map(len, from_db.values()))}," in out
        assert all(not changes for changes in plans(w, db_reader(w)).values())


def test_some_clients_only(world: World, people: Population) -> None:
    w = world
    some = people.vip_owing[:2]
    for reader in (db_reader(w), api_reader(w)):
        found = plans(w, reader, some)
        assert sorted(found) == sorted(some)
        assert all(any(c.kind == "group" for c in changes) for changes in found.values())


def test_the_db_reader_refuses_to_write(world: World, people: Population) -> None:
    reader = db_reader(world)
    before = whmcs_fingerprint(world)
    with reader.engine.connect() as conn, pytest.raises(ReadOnlyViolation, match="read-only"):
        conn.execute(sa.text("UPDATE tblclients SET groupid = 0"))
    with reader.engine.connect() as conn, pytest.raises(Exception, match="readonly"):
        # past the statement check, the session itself is read-only (PRAGMA query_only)
        raw = conn.connection.driver_connection
        raw.execute("DELETE FROM tblclients")  # type: ignore[union-attr]
    assert whmcs_fingerprint(world) == before


@pytest.mark.mariadb
def test_the_db_reader_refuses_to_write_on_mariadb(mariadb_url: str) -> None:
    from bridge.sandbox.whmcs import Sandbox

    sandbox = Sandbox(mariadb_url)
    with sandbox.quiet():
        sandbox.add_client("Ana", "Lima")
    reader = WhmcsDbReader(mariadb_url)
    try:
        with reader.engine.connect() as conn:
            with pytest.raises(ReadOnlyViolation):
                conn.execute(sa.text("DELETE FROM tblclients"))
            raw = conn.connection.driver_connection
            cursor = raw.cursor()  # type: ignore[union-attr]
            with pytest.raises(Exception, match="READ ONLY"):
                cursor.execute("DELETE FROM tblclients")
        assert reader.count() == 1
    finally:
        reader.dispose()
        sandbox.dispose()


# --- dry run, apply, re-run ---------------------------------------------------------------------


@pytest.mark.parametrize("source", ["db", "api"])
def test_dry_run_prints_the_plan_and_writes_nothing_anywhere(world: World, people: Population,
                                                             source: str) -> None:
    w = world
    whmcs_before, vipgate_before = whmcs_fingerprint(w), vipgate_fingerprint(w.store)
    calls = len(w.sandbox.api_log)
    code, out, err = cli(w, "--dry-run", source)
    assert code == 0, err
    assert whmcs_fingerprint(w) == whmcs_before
    assert vipgate_fingerprint(w.store) == vipgate_before
    actions = {c["action"] for c in list(w.sandbox.api_log)[calls:]}
    assert actions <= {"GetClients", "GetInvoices", "GetInvoice", "GetClientsProducts",
                       "GetTickets", "GetCurrencies"}
    assert ("GetClientsDetails" in actions) is False  # bulk lists, no per-client loop
    first = people.vip_owing[0]
    line = next(x for x in out.splitlines() if x.split()[:1] == [str(first)])
    assert f"group {w.vip} -> " in line and "(out of VIP)" in line and "overdue" in line
    assert "dry run: nothing was changed" in out
    assert f"resync (dry run, source {source}): {len(people.clients)} clients" in out


def test_json_output(world: World, people: Population) -> None:
    code, out, _ = cli(world, "--dry-run", "--json")
    assert code == 0
    data = json.loads(out)
    assert set(data) == {"summary", "changes"}
    assert data["summary"]["clients"] == len(people.clients)
    assert data["summary"]["dry_run"] is True
    group = next(c for c in data["changes"] if c["kind"] == "group")
    assert set(group) == {"client_id", "kind", "ticket_id", "from", "to", "reasons", "applied"}
    assert isinstance(group["from"], int) and isinstance(group["to"], int)
    assert group["ticket_id"] is None and group["applied"] is False and group["reasons"]
    assert sum(data["summary"]["changes"][k] for k in ("group", "ticket_priority",
                                                       "ticket_note")) == len(data["changes"])


@pytest.mark.parametrize("source", ["db", "api"])
def test_apply_then_a_rerun_applies_nothing(world: World, people: Population,
                                            source: str) -> None:
    w = world
    code, out, err = cli(w, "--json", "--yes", source)
    assert code == 0, err
    data = json.loads(out)
    assert data["changes"] and all(c["applied"] for c in data["changes"])
    for client in people.vip_owing:
        assert w.group(client) != w.vip
    audited = w.store.audit_log(action="group")
    assert len(audited) == data["summary"]["changes"]["group"]
    assert all(a.reasons for a in audited)
    assert len(list(w.store.iter_memories())) == len(people.clients)
    again = json.loads(cli(w, "--json", source)[1])  # confirmed once: no --yes needed
    assert again["changes"] == [] and again["summary"]["applied"] == 0
    # the standing cache serves the gate for everyone
    for client in people.clients:
        assert w.store.get_standing(client) is not None


def test_a_whmcs_failure_mid_apply_is_reported_and_a_rerun_completes(
        world: World, people: Population) -> None:
    w = world
    w.sandbox.faults.push("html", action="UpdateClient", times=100)
    code, out, err = cli(w, "db", "--yes")
    assert code == 1
    assert "FAILED (" in out and "client " in err
    failed = out.count("FAILED (")
    assert failed >= 1
    w.sandbox.faults.clear()
    code, out, err = cli(w, "db")
    assert code == 0, err
    assert out.count("applied: ") >= failed and "FAILED" not in out
    code, out, _ = cli(w, "db")
    assert code == 0 and "nothing to change" in out


def test_an_interrupted_run_is_finished_by_the_next(world: World, people: Population) -> None:
    w = world
    import time

    cut = Resync(w.engine, db_reader(w)).run(dry_run=False, deadline=time.monotonic() - 1)
    assert not cut.complete and cut.applied == 0
    done = Resync(w.engine, db_reader(w)).run(dry_run=False)
    assert done.complete and done.ok and done.applied > 0
    assert Resync(w.engine, db_reader(w)).run(dry_run=False).applied == 0


def test_clients_held_by_a_worker_are_left_to_it(world: World, people: Population) -> None:
    from bridge.store import inbox as queue

    w = world
    held = people.vip_owing[0]
    assert queue.acquire_client(w.store, held, "someone", w.engine.now(),
                                lease=timedelta(minutes=5))
    result = Resync(w.engine, db_reader(w)).run(dry_run=False)
    assert (result.busy, w.group(held)) == (1, w.vip), result
    queue.release_client(w.store, held, "someone")
    Resync(w.engine, db_reader(w)).run(dry_run=False)
    assert w.group(held) != w.vip


def test_first_sight_and_cache_bookkeeping_are_bulk(world: World, people: Population) -> None:
    w = world
    result = Resync(w.engine, db_reader(w)).run(dry_run=False)
    changed = {c for c, changes in plans(w, db_reader(w)).items() if changes}
    assert not changed
    assert result.recorded + result.applied > 0
    memories = {m.client_id: m for m in w.store.iter_memories()}
    assert set(memories) == set(people.clients)
    assert all(m.last_group_id == w.group(c) for c, m in memories.items())


def test_precronjob_reads_the_whmcs_database_when_configured(world: World,
                                                             people: Population) -> None:
    w = world
    calls = len(w.sandbox.api_log)
    w.forwarder.fire("PreCronJob", {})
    w.drain()
    actions = [c["action"] for c in list(w.sandbox.api_log)[calls:]]
    # the full reconcile read nothing through the API before writing (the reads after are
    # the per-client reconciles of vipgate's own echoes, ClientEdit)
    assert actions[0] in ("UpdateClient", "UpdateTicket", "AddTicketNote")
    for client in people.vip_owing:
        assert w.group(client) != w.vip


# --- bad input ----------------------------------------------------------------------------------


def test_db_source_without_a_database_url_is_a_usage_error(world: World) -> None:
    settings = world.settings.replace(whmcs={"database_url": ""})
    code, _, err = cli(world, "--dry-run", "db", settings=settings)
    assert code == 2 and err.count("\n") == 1 and "[whmcs] database_url is empty" in err


def test_an_unreachable_whmcs_database_exits_2(world: World) -> None:
    settings = world.settings.replace(
        whmcs={"database_url": "mysql+pymysql://reader:pw@127.0.0.1:1/whmcs"})
    code, _, err = cli(world, "--dry-run", "db", settings=settings)
    assert code == 2 and err.count("\n") == 1
    assert "WHMCS database error at mysql+pymysql://reader:***@127.0.0.1:1/whmcs" in err


def test_an_unreachable_vipgate_database_exits_2(world: World) -> None:
    settings = world.settings.replace(
        bridge={"database_url": "mysql+pymysql://root@127.0.0.1:1/vipgate"})
    code, _, err = cli(world, "--dry-run", "db", settings=settings)
    assert code == 2 and err.count("\n") == 1 and "vipgate database error at" in err


def test_applying_without_the_api_exits_2(world: World) -> None:
    settings = world.settings.replace(whmcs={"url": ""})
    code, _, err = cli(world, "db", settings=settings)
    assert code == 2 and "applying needs WHMCS's API" in err


def test_bad_arguments_exit_2_with_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    for args, expected in ((["--client", "abc"], "--client"), (["--client", "0"], "--client"),
                           (["--source", "ftp"], "--source")):
        done = subprocess.run([sys.executable, "-m", "bridge", "resync", "--dry-run", *args],
                              capture_output=True, text=True, cwd=tmp_path, timeout=60)
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and expected in done.stderr


def test_a_bad_resync_setting_names_the_key(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "vipgate.ini").write_text("[resync]\nconcurrency = 0\n")
    done = subprocess.run([sys.executable, "-m", "bridge", "resync", "--dry-run"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert "[resync] concurrency = '0'" in done.stderr and "1 to 32" in done.stderr


# --- pieces -------------------------------------------------------------------------------------


def test_merge_joins_sorted_streams_and_skips_orphans() -> None:
    clients = [(1,), (3,), (4,)]
    invoices = [(0, "orphan"), (1, "a"), (1, "b"), (2, "deleted client"), (4, "c")]
    tickets: list[tuple[int, str]] = [(3, "t")]
    assert list(merge(clients, invoices, tickets)) == [
        ((1,), [(1, "a"), (1, "b")], []), ((3,), [], [(3, "t")]), ((4,), [(4, "c")], [])]


def test_rate_limiter_spaces_calls() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))
        now[0] += seconds

    limit = RateLimiter(4, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        limit()
    assert slept == [0.25, 0.25, 0.25, 0.25]


def test_store_keyset_iterators_page_through_everything(store: Store) -> None:
    now = datetime(2026, 11, 21, tzinfo=UTC)
    added = store.add_memories([ClientMemory(c, last_group_id=1, known=True)
                                for c in range(1, 26)], now)
    assert added == 25
    assert store.add_memories([ClientMemory(3, last_group_id=9, known=True),
                               ClientMemory(30, known=True)], now) == 1
    seen = [m.client_id for m in store.iter_memories(page=7)]
    assert seen == [*range(1, 26), 30]
    assert store.get_memory(3).last_group_id == 1  # an existing row is kept
    assert [m.client_id for m in store.iter_memories([5, 30, 99], page=1)] == [5, 30]


def test_window_of_today() -> None:
    from bridge.resync.snapshot import Window
    from bridge.settings import default_settings

    policy = default_settings().policy
    window = Window.of(date(2026, 3, 31), policy)
    assert window.start == date(2025, 3, 31) and window.today == date(2026, 3, 31)


@pytest.mark.parametrize(("dry_run", "method"), [(True, "spawn"), (False, "fork")])
def test_a_scan_split_over_processes_plans_the_same(world: World, people: Population,
                                                    dry_run: bool, method: str,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    w = world
    alone = Resync(w.engine, db_reader(w))
    alone.settings = w.settings.replace(resync={"processes": 1})
    alone.range_size = 7
    expected = alone.run(dry_run=True)
    assert "client id ranges" not in caplog.text
    changes: list[Any] = []
    split = Resync(w.engine, db_reader(w))
    split.range_size = 7  # 40 clients: 6 ranges over 2 processes
    split.start_method = method  # fork as the CLI does (the children use no thread here)
    assert len(db_reader(w).id_ranges(7)) == 6
    with caplog.at_level("INFO", logger="vipgate.resync"):
        found = split.run(dry_run=dry_run, on_change=changes.append)
    assert f"scanning 6 client id ranges in 2 {method} processes" in caplog.text
    assert found.summary()["changes"] == expected.summary()["changes"]
    assert found.clients == len(people.clients) and found.standing == expected.standing
    if dry_run:
        assert [c.client_id for c in changes] == sorted(c.client_id for c in changes)
    else:
        assert found.ok and found.applied == len(changes) > 0
        assert Resync(w.engine, db_reader(w)).run(dry_run=True).planned.total() == 0


def test_progress_is_a_bar_on_a_terminal_and_lines_otherwise() -> None:
    from bridge.cli.resync import Progress

    err = io.StringIO()
    lines = Progress(40, tty=False, err=err)
    for _ in range(40):
        lines(1)
    lines.close()
    assert err.getvalue().count("clients read") == 10 and "40/40 clients read" in err.getvalue()
    err = io.StringIO()
    bar = Progress(40, tty=True, err=err)
    bar(25)
    bar(15)
    bar.close()
    assert "40/40" in err.getvalue() and "client/s" in err.getvalue()


def test_put_standings_inserts_updates_and_spares_fresher_rows(store: Store) -> None:
    from decimal import Decimal

    from bridge.model import CachedStanding

    def row(client_id: int, standing: str, at: datetime) -> CachedStanding:
        return CachedStanding(client_id, standing, 0, Decimal(0), (), "R$ ", "", None, at)

    then = datetime(2026, 11, 20, tzinfo=UTC)
    scan = datetime(2026, 11, 21, tzinfo=UTC)
    later = datetime(2026, 11, 22, tzinfo=UTC)
    store.put_standing(row(1, "overdue", then))
    store.put_standing(row(2, "overdue", later))  # a worker saw newer data after the scan
    written = store.put_standings([row(c, "current", scan) for c in (1, 2, 3)], older_than=scan)
    assert written == 2
    assert [store.get_standing(c).standing for c in (1, 2, 3)] == [  # type: ignore[union-attr]
        "current", "overdue", "current"]


# --- a first run that cannot hurt ------------------------------------------------------------


@pytest.fixture
def new_install(database_url: str, tmp_path: Path) -> Iterator[World]:
    """An installation that never applied a full reconcile."""
    with make_world(database_url, tmp_path, first_run_confirmed=False,
                    whmcs={"database_url": f"sqlite:///{tmp_path}/whmcs.db"}) as w:
        yield w


def test_a_first_applying_resync_needs_yes_and_changes_nothing_without_it(
        new_install: World) -> None:
    w = new_install
    populate(w.sandbox, vip=w.vip, regular=w.regular, support=w.support, billing=w.billing)
    before = whmcs_fingerprint(w)
    code, out, err = cli(w, "db")
    assert code == 2
    assert "This installation has never applied a full reconcile. The plan:" in out
    assert "0 into VIP" in out  # promote_by_rules is off: nobody is moved INTO VIP
    assert err.splitlines()[-1] == ("first full reconcile not confirmed: review the plan above "
                                    "and run again with --yes (or confirm it on the admin "
                                    "overview)")
    assert whmcs_fingerprint(w) == before
    waiting = first_run.waiting_plan(w.store)
    assert waiting is not None and waiting.vip_out > 0 and waiting.vip_in == 0
    # a dry run and a resync of some clients are not gated
    assert cli(w, "--dry-run", "db")[0] == 0
    code, out, err = cli(w, "--yes", "db")
    assert code == 0, err and "applied" in out
    assert whmcs_fingerprint(w) != before
    confirmation = first_run.confirmation(w.store)
    assert confirmation is not None and confirmation.by == "vipgate resync"
    assert first_run.waiting_plan(w.store) is None
    code, out, _ = cli(w, "db")  # confirmed once: no question again
    assert code == 0 and "never applied" not in out


@pytest.mark.parametrize(("answer", "code"), [(False, 1), (True, 0)])
def test_a_first_applying_resync_asks_on_a_terminal(new_install: World, answer: bool,
                                                    code: int) -> None:
    w = new_install
    populate(w.sandbox, vip=w.vip, regular=w.regular, support=w.support, billing=w.billing)
    before = whmcs_fingerprint(w)
    asked: list[str] = []

    def ask(question: str) -> bool:
        asked.append(question)
        return answer

    out, err = io.StringIO(), io.StringIO()
    try:
        got = run_resync(w.settings, dry_run=False, client_ids=(), source="db", as_json=True,
                         out=out, err=err, tty=False, now=lambda: w.sandbox.clock.aware,
                         ask=ask)
    except Failure as exc:
        got = exc.exit_code
        assert exc.message == "not confirmed: nothing was changed"
    assert asked == ["Apply these changes to WHMCS?"] and got == code
    assert "The plan:" in err.getvalue()  # with --json the summary goes to stderr
    assert (whmcs_fingerprint(w) == before) is (not answer)
    if answer:
        assert json.loads(out.getvalue())["summary"]["applied"] > 0


def test_before_confirmation_the_cron_only_plans_and_the_plan_waits(new_install: World
                                                                    ) -> None:
    w = new_install
    people = populate(w.sandbox, vip=w.vip, regular=w.regular, support=w.support,
                      billing=w.billing)
    before = whmcs_fingerprint(w)
    w.sandbox.run_hook("PreCronJob", {})
    w.drain()
    assert whmcs_fingerprint(w) == before  # planned, not applied
    waiting = first_run.waiting_plan(w.store)
    assert waiting is not None and waiting.vip_out == len(people.vip_owing)
    first_run.confirm(w.store, by="admin", at=w.engine.now())
    w.sandbox.run_hook("PreCronJob", {})
    w.drain()
    assert all(w.group(c) != w.vip for c in people.vip_owing)
    assert first_run.waiting_plan(w.store) is None


def test_an_installation_that_applied_a_full_reconcile_before_counts_as_confirmed(
        new_install: World) -> None:
    from bridge.store import snapshots

    w = new_install
    assert not first_run.confirmed(w.store)
    snapshots.record_full_reconcile(w.store, w.engine.now(), clients=3, applied=1, failed=0,
                                    complete=True)
    assert first_run.confirmed(w.store)
