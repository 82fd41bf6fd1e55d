"""Daily delinquency snapshots: every figure counted from the standing cache and the audit
log (SQLite and MariaDB), the WHMCS day's boundaries, one row per day, and the snapshot a
complete full reconcile takes."""

from __future__ import annotations

import csv
import io
import json
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bridge import days
from bridge.engine.reconcile import Engine
from bridge.model import AuditEntry, CachedStanding, OverdueInvoice
from bridge.resync.runner import Resync
from bridge.resync.source_db import WhmcsDbReader
from bridge.settings import Settings
from bridge.store import Store, snapshots
from bridge.worker import Worker
from tests.admin_helpers import AdminSession
from tests.admin_world import customer
from tests.resync_data import Population, populate
from tests.world import World, make_world

DAY = date(2026, 11, 21)
NOON = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
VIP = 4
ZONE = "America/Sao_Paulo"  # UTC-3 all year: the day runs from 03:00 to 03:00 UTC


def put(store: Store, client_id: int, billing: str | None, *, days: int = 0,
        total: str = "0", dues: tuple[str, ...] = (), in_vip: bool | None = False,
        ticket: str | None = None, prefix: str = "R$ ", suffix: str = "") -> None:
    """A standing cache row; ``dues`` are the overdue invoices' due dates, oldest first."""
    invoices = tuple(OverdueInvoice(client_id * 10 + n, str(client_id * 10 + n),
                                    Decimal(total), due) for n, due in enumerate(dues))
    store.put_standing(CachedStanding(
        client_id, ticket or billing or "current", days, Decimal(total), invoices, prefix,
        suffix, None, NOON, billing, 1, in_vip, True))


def take(store: Store, day: date = DAY, zone: str = "UTC",
         at: datetime = NOON) -> snapshots.Snapshot:
    return snapshots.take_snapshot(store, day, at, VIP, timezone=zone)


def move(store: Store, at: datetime, before: int, after: int, *, actor: str = "vipgate",
         action: str = "group", client_id: int = 1) -> None:
    store.add_audit([AuditEntry(at, actor, action, client_id, None, str(before), str(after),
                                ("test",))])


# --- what is counted ----------------------------------------------------------------------------


def test_every_figure_is_counted_from_the_standing_cache(store: Store) -> None:
    put(store, 1, "current", in_vip=True)
    put(store, 2, "current", in_vip=True)
    put(store, 3, "current")
    put(store, 4, "overdue", days=5, total="89.90", dues=("2026-11-16",), in_vip=True)
    put(store, 5, "overdue", days=12, total="10.05", dues=("2026-11-09", "2026-11-10"))
    put(store, 6, "suspended", days=45, total="200.00", dues=("2026-10-07",))
    put(store, 7, "suspended", days=61, total="0.05", dues=("2026-09-21", "2026-10-16"))
    put(store, 8, "current", in_vip=None)  # a row written before VIP was kept
    snap = take(store)
    assert (snap.day, snap.taken_at) == (DAY, datetime(2026, 11, 21, 12, 0))
    assert (snap.clients, snap.delinquent, snap.overdue, snap.suspended) == (8, 4, 2, 2)
    assert snap.overdue_total == Decimal("300.00")
    assert snap.share == 50.0
    assert snap.vip_members == 3
    assert dict(snap.aging) == {"1-7": 1, "8-15": 1, "16-30": 0, "31-60": 1, "60+": 1}
    assert {d: n for d, n in snap.by_due_day.items() if n} == {16: 1, 9: 1, 7: 1, 21: 1}
    assert sorted(snap.by_due_day) == list(range(1, 32))
    assert snapshots.latest(store) == snap  # what was stored reads back the same


@pytest.mark.parametrize(("days", "bucket"), [
    (0, "1-7"),  # cannot be past the grace; counted in the first bucket, not lost
    (1, "1-7"), (7, "1-7"), (8, "8-15"), (15, "8-15"), (16, "16-30"), (30, "16-30"),
    (31, "31-60"), (60, "31-60"), (61, "60+"), (400, "60+"),
])
def test_aging_bucket_bounds(store: Store, days: int, bucket: str) -> None:
    put(store, 1, "overdue", days=days, total="1.00", dues=("2026-11-01",))
    aging = take(store).aging
    assert aging[bucket] == 1 and sum(aging.values()) == 1


def test_the_billing_standing_counts_not_the_ticket_standing(store: Store) -> None:
    # a promise to pay makes the ticket standing current; the debt is still there
    put(store, 1, "overdue", ticket="current", days=9, total="50.00", dues=("2026-11-12",))
    # a row written before the billing standing was kept: its standing is used
    put(store, 2, None, ticket="suspended", days=20, total="7.00", dues=("2026-11-01",))
    # ...and a promise on a paid-up client changes nothing
    put(store, 3, "current", ticket="current")
    snap = take(store)
    assert (snap.delinquent, snap.overdue, snap.suspended) == (2, 1, 1)
    assert snap.overdue_total == Decimal("57.00")


def test_due_day_is_the_oldest_overdue_invoices_even_in_business_days(store: Store) -> None:
    # 5 business days overdue, but due 7 calendar days ago (a weekend between): the day of
    # the month comes from the invoice, not from today - overdue_days
    put(store, 1, "overdue", days=5, total="1.00", dues=("2026-11-14", "2026-11-20"))
    by_day = take(store).by_due_day
    assert by_day[14] == 1 and sum(by_day.values()) == 1


def test_several_currencies_are_summed_unconverted_and_split(store: Store) -> None:
    put(store, 1, "overdue", days=3, total="100.00", dues=("2026-11-18",))
    put(store, 2, "overdue", days=3, total="50.50", dues=("2026-11-18",))
    put(store, 3, "suspended", days=3, total="20.25", dues=("2026-11-18",), prefix="$",
        suffix=" USD")
    put(store, 4, "current", prefix="€")
    snap = take(store)
    assert snap.overdue_total == Decimal("170.75")
    assert snapshots.currency_split(store, DAY) == [
        snapshots.CurrencyTotal("R$ ", "", 2, Decimal("150.50")),
        snapshots.CurrencyTotal("$", " USD", 1, Decimal("20.25"))]
    assert snapshots.currency_split(store, DAY - timedelta(days=1)) is None


def test_amounts_add_up_to_the_cent(store: Store) -> None:
    for client in range(1, 31):
        put(store, client, "overdue", days=2, total="0.10", dues=("2026-11-19",))
    assert take(store).overdue_total == Decimal("3.00")


def test_an_empty_cache_gives_zeros(store: Store) -> None:
    snap = take(store)
    assert (snap.clients, snap.delinquent, snap.overdue_total, snap.share) == (
        0, 0, Decimal("0.00"), 0.0)
    assert set(snap.aging.values()) == {0} and set(snap.by_due_day.values()) == {0}


# --- VIP moves on the WHMCS day ---------------------------------------------------------------


def test_vip_moves_are_vipgates_group_changes_during_the_whmcs_day(store: Store) -> None:
    start = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)  # midnight in Sao Paulo
    end = start + timedelta(days=1)
    second = timedelta(seconds=1)
    move(store, start - second, VIP, 1)  # 20 Nov, 23:59:59 local
    move(store, start, VIP, 1)  # the first second of the day: a removal
    move(store, start + timedelta(hours=5), VIP, 0)  # removal to no group
    move(store, start + timedelta(hours=6), 1, VIP)  # restoration
    move(store, end - second, 0, VIP)  # the last second of the day: a restoration
    move(store, end, VIP, 1)  # 22 Nov
    move(store, start + timedelta(hours=7), VIP, 1, actor="staff")  # staff moves: not counted
    move(store, start + timedelta(hours=7), 1, 2)  # between other groups: neither
    move(store, start + timedelta(hours=7), VIP, 1, action="membership")
    snap = take(store, zone=ZONE)
    assert (snap.vip_removed, snap.vip_restored) == (2, 2)
    # the same rows seen as UTC days fall differently
    utc = take(store, zone="UTC", at=NOON + timedelta(minutes=1))
    assert (utc.vip_removed, utc.vip_restored) == (3, 1)


def test_day_bounds_follow_the_time_zone() -> None:
    assert days.day_bounds(DAY, ZONE) == (datetime(2026, 11, 21, 3),
                                               datetime(2026, 11, 22, 3))
    assert days.day_bounds(DAY, "UTC") == (datetime(2026, 11, 21),
                                                datetime(2026, 11, 22))
    late = datetime(2026, 11, 22, 2, 30, tzinfo=UTC)
    assert days.business_day(late, ZONE) == DAY
    assert days.business_day(late.replace(tzinfo=None), "UTC") == DAY + timedelta(days=1)


# --- one row per day ------------------------------------------------------------------------


def test_a_days_latest_snapshot_wins(store: Store) -> None:
    put(store, 1, "overdue", days=3, total="10.00", dues=("2026-11-18",))
    take(store, at=NOON)
    put(store, 2, "suspended", days=3, total="5.00", dues=("2026-11-18",))
    later = take(store, at=NOON + timedelta(hours=2))
    assert snapshots.latest(store) == later and later.delinquent == 2
    # a snapshot counted earlier in the day but stored after the later one loses
    put(store, 3, "overdue", days=3, total="1.00", dues=("2026-11-18",))
    early, split = snapshots.compute(store, DAY, NOON + timedelta(hours=1), VIP,
                                     timezone="UTC")
    assert not snapshots.save(store, early, split)
    assert snapshots.snapshots(store, DAY, DAY) == [later]


def test_snapshots_read_a_range_oldest_first(store: Store) -> None:
    put(store, 1, "overdue", days=3, total="10.00", dues=("2026-11-18",))
    days = [DAY - timedelta(days=n) for n in (0, 1, 3, 10)]
    for day in days:
        take(store, day=day, at=datetime.combine(day, NOON.timetz()))
    found = snapshots.snapshots(store, DAY - timedelta(days=3), DAY)
    assert [s.day for s in found] == sorted(days[:3])
    assert snapshots.latest(store).day == DAY  # type: ignore[union-attr]
    assert snapshots.before(store, DAY).day == DAY - timedelta(days=1)  # type: ignore[union-attr]
    assert snapshots.before(store, DAY - timedelta(days=10)) is None
    assert snapshots.snapshots(store, DAY + timedelta(days=1), DAY + timedelta(days=9)) == []


def test_no_snapshot_yet(store: Store) -> None:
    assert snapshots.latest(store) is None
    assert snapshots.last_full_reconcile(store) is None


def test_meta_put_inserts_then_replaces(store: Store) -> None:
    store.meta_put("k", "one")
    store.meta_put("k", "two")
    store.meta_put("k", "two")
    assert store.meta_get("k") == "two"


def test_the_full_reconcile_record(store: Store) -> None:
    snapshots.record_full_reconcile(store, datetime(2026, 11, 21, 9, 30, 15, 999, tzinfo=UTC),
                                    clients=40, applied=7, failed=1, complete=False)
    assert json.loads(store.meta_get("last_full_reconcile") or "") == {
        "at": "2026-11-21T09:30:15+00:00", "clients": 40, "applied": 7, "failed": 1,
        "complete": False}


# --- taken by the full reconcile ----------------------------------------------------------------


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[World]:
    # promote_by_rules: the population's paying regulars move into VIP ("restored or added")
    with make_world(database_url, tmp_path, policy={"promote_by_rules": True},
                    whmcs={"database_url": f"sqlite:///{tmp_path}/whmcs.db"}) as w:
        yield w


def test_a_complete_full_reconcile_takes_the_days_snapshot(world: World) -> None:
    w = world
    people: Population = populate(w.sandbox, vip=w.vip, regular=w.regular, support=w.support,
                                  billing=w.billing, count=20)
    reader = WhmcsDbReader(w.whmcs_database_url)

    # a dry run, a partial run and a run stopped at its deadline take no snapshot
    Resync(w.engine, reader).run(dry_run=True)
    assert snapshots.last_full_reconcile(w.store) is None
    Resync(w.engine, reader).run(dry_run=False, client_ids=people.clients[:3])
    assert snapshots.last_full_reconcile(w.store) is None
    cut = Resync(w.engine, reader).run(dry_run=False, deadline=time.monotonic() - 1)
    assert not cut.complete and snapshots.latest(w.store) is None
    assert snapshots.last_full_reconcile(w.store)["complete"] is False  # type: ignore[index]

    done = Resync(w.engine, reader).run(dry_run=False)
    assert done.complete and done.applied > 0
    record = snapshots.last_full_reconcile(w.store)
    assert record is not None and (record["clients"], record["applied"], record["failed"],
                                   record["complete"]) == (20, done.applied, 0, True)
    snap = snapshots.latest(w.store)
    assert snap is not None and snap.day == w.engine.today()
    cache = list(w.store.iter_standings())
    late = [c for c in cache if c.billing_standing in ("overdue", "suspended")]
    assert (snap.clients, snap.delinquent) == (len(cache), len(late)) == (20, done.standing[
        "overdue"] + done.standing["suspended"])
    assert snap.suspended == done.standing["suspended"] > 0
    assert snap.overdue_total == sum((c.overdue_total for c in late), Decimal(0))
    assert snap.vip_members == done.in_vip
    moves = [(a.before, a.after) for a in w.store.audit_log(action="group")
             if a.actor == "vipgate"]
    vip = str(w.vip)
    assert snap.vip_removed == sum(b == vip for b, _ in moves) == len(people.vip_owing) > 0
    # clients that became eligible joined VIP: counted with the restorations (moves into VIP)
    assert snap.vip_restored == sum(a == vip for _, a in moves) > 0
    due_days = [int(c.invoices[0].due_date[-2:]) for c in late]
    assert {d: n for d, n in snap.by_due_day.items() if n} == {
        d: due_days.count(d) for d in set(due_days)}

    # the next day's run adds a row; the first day's stays
    w.sandbox.clock.advance(days=1)
    Resync(w.engine, reader).run(dry_run=False)
    assert [s.day for s in snapshots.snapshots(w.store, snap.day, snap.day + timedelta(1))] == [
        snap.day, snap.day + timedelta(days=1)]
    assert snapshots.latest(w.store).vip_removed == 0  # type: ignore[union-attr]


def test_a_restoration_during_the_day_is_in_todays_figures_at_once(world: World) -> None:
    """The morning's full reconcile takes the day's snapshot; a client who pays in the
    afternoon is back in VIP, and the dashboard counts it without anyone taking a snapshot."""
    w = world
    ana, _, invoice = customer(w, "Ana", group=w.vip)  # owes since 28 Oct: leaves VIP
    w.forwarder.fire("PreCronJob", {})
    w.drain()
    assert w.group(ana) != w.vip
    morning = snapshots.latest(w.store)
    assert morning is not None and (morning.delinquent, morning.vip_removed,
                                    morning.vip_restored) == (1, 1, 0)

    w.sandbox.advance(hours=5, minutes=7)  # 14:07: Ana pays
    w.sandbox.add_payment(invoice)
    w.drain()
    assert w.group(ana) == w.vip
    assert w.app is not None
    admin = AdminSession(w.app)
    html = admin.text("/admin/dashboard")
    stats = re.findall(r'<div class="stat">([^<]*)</div>', html)
    assert (stats[0], stats[4]) == ("0", "1 / 1")  # nobody delinquent; one out, one back
    assert f"Today: {w.sandbox.today}" in html and "Updated 14:07 (WHMCS time zone)" in html
    assert "Take a snapshot now" in html  # still there, but not needed for this
    # the stored row is still the morning's: the page counted today when it was shown
    assert snapshots.latest(w.store) == morning
    rows = list(csv.DictReader(io.StringIO(admin.get("/admin/dashboard.csv?days=7")
                                           .get_data(as_text=True))))
    assert {k: rows[-1][k] for k in ("day", "delinquent", "vip_removed", "vip_restored",
                                     "state")} == {
        "day": w.sandbox.today.isoformat(), "delinquent": "0", "vip_removed": "1",
        "vip_restored": "1", "state": "live"}


def test_live_figures_are_updated_by_their_newest_write(store: Store) -> None:
    put(store, 1, "overdue", days=3, total="10.00", dues=("2026-11-18",))  # at NOON
    later = NOON + timedelta(hours=2, minutes=5)
    move(store, later, VIP, 1)
    snap, split = snapshots.live(store, DAY, NOON + timedelta(hours=3), VIP, timezone="UTC")
    assert snap.live and snap.taken_at == later.replace(tzinfo=None)
    assert (snap.delinquent, snap.vip_removed) == (1, 1) and split[0].amount == Decimal("10")
    assert snapshots.latest(store) is None  # counted, not stored
    # a move on another day is not this day's newest write
    move(store, later + timedelta(days=1), VIP, 1)
    assert snapshots.live(store, DAY, NOON + timedelta(hours=3), VIP,
                          timezone="UTC")[0].taken_at == later.replace(tzinfo=None)


# --- closing days -------------------------------------------------------------------------------


def test_the_day_closes_at_midnight_in_whmcs_time_zone(store: Store) -> None:
    """Sao Paulo's 21 Nov ends at 03:00 UTC on the 22nd: a check just before (00:00 UTC
    is still the 21st there) closes nothing; the first check after closes the 21st."""
    put(store, 1, "overdue", days=3, total="10.00", dues=("2026-11-18",))
    morning = take(store, zone=ZONE, at=datetime(2026, 11, 21, 12, 0, tzinfo=UTC))
    assert morning.closed_at is None
    check = datetime(2026, 11, 21, 23, 0, tzinfo=UTC)  # 20:00 in Sao Paulo
    while check < datetime(2026, 11, 22, 3, 0, tzinfo=UTC):
        assert snapshots.close_days(store, check, VIP, timezone=ZONE) is None
        check += timedelta(minutes=1)
    # a payment late on the 21st (local) is in the day's final figures
    put(store, 2, "suspended", days=9, total="5.00", dues=("2026-11-12",))
    move(store, datetime(2026, 11, 22, 2, 59, tzinfo=UTC), VIP, 1, client_id=2)
    closed = snapshots.close_days(store, check, VIP, timezone=ZONE)  # 00:00 local
    assert closed is not None and closed.day == DAY
    assert closed.closed_at == datetime(2026, 11, 22, 3, 0)
    assert (closed.delinquent, closed.vip_removed) == (2, 1)
    assert snapshots.latest(store) == closed
    # final: a later snapshot of the day does not replace it, a second close does nothing
    late = snapshots.take_snapshot(store, DAY, check + timedelta(hours=1), VIP, timezone=ZONE)
    assert snapshots.snapshots(store, DAY, DAY) == [closed] != [late]
    assert snapshots.close_days(store, check + timedelta(minutes=1), VIP, timezone=ZONE) is None
    assert snapshots.close_day(store, DAY, check, VIP, timezone=ZONE) is None


def test_a_day_whose_end_vipgate_did_not_see_is_not_closed(store: Store) -> None:
    put(store, 1, "overdue", days=3, total="10.00", dues=("2026-11-18",))
    take(store, zone=ZONE)  # the 21st's 09:00 snapshot
    # vipgate stopped at 20:00 on the 21st (Sao Paulo) and came back on the 23rd
    assert snapshots.close_days(store, datetime(2026, 11, 21, 23, 0, tzinfo=UTC), VIP,
                                timezone=ZONE) is None
    back = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)
    assert snapshots.close_days(store, back, VIP, timezone=ZONE) is None
    rows = snapshots.snapshots(store, DAY, DAY + timedelta(days=2))
    assert [(s.day, s.closed_at) for s in rows] == [(DAY, None)]  # kept as it was; 22nd: none
    # from then on it watches again: the 23rd closes at its end
    check = back
    while (closed := snapshots.close_days(store, check, VIP, timezone=ZONE)) is None:
        check += timedelta(minutes=1)
    assert closed.day == DAY + timedelta(days=2)
    assert check == datetime(2026, 11, 24, 3, 0, tzinfo=UTC)


def test_a_day_is_not_closed_from_an_empty_cache(store: Store) -> None:
    snapshots.close_days(store, datetime(2026, 11, 21, 23, 59, tzinfo=UTC), VIP, timezone="UTC")
    assert snapshots.close_days(store, datetime(2026, 11, 22, 0, 0, tzinfo=UTC), VIP,
                                timezone="UTC") is None
    assert snapshots.latest(store) is None


def test_two_workers_close_a_day_once(store: Store) -> None:
    put(store, 1, "overdue", days=3, total="10.00", dues=("2026-11-18",))
    snapshots.close_days(store, datetime(2026, 11, 21, 23, 59, tzinfo=UTC), VIP, timezone="UTC")
    at = datetime(2026, 11, 22, 0, 0, 30, tzinfo=UTC)
    done = [snapshots.close_day(store, DAY, at, VIP, timezone="UTC"),
            snapshots.close_day(store, DAY, at + timedelta(seconds=1), VIP, timezone="UTC")]
    assert done[0] is not None and done[1] is None
    assert snapshots.snapshots(store, DAY, DAY) == [done[0]]


@pytest.mark.parametrize("taken_before", [False, True])
def test_workers_closing_a_day_at_once_close_it_once(store: Store, taken_before: bool) -> None:
    """Several workers' looks at midnight race: with or without a row taken during the day,
    exactly one close is stored and the others find it done."""
    put(store, 1, "overdue", days=3, total="10.00", dues=("2026-11-18",))
    if taken_before:
        take(store)
    at = datetime(2026, 11, 22, 0, 0, 30, tzinfo=UTC)
    start = threading.Barrier(4)

    def close(n: int) -> snapshots.Snapshot | None:
        start.wait()
        return snapshots.close_day(store, DAY, at + timedelta(seconds=n), VIP, timezone="UTC")

    with ThreadPoolExecutor(4) as pool:
        done = [s for s in pool.map(close, range(4)) if s is not None]
    assert len(done) == 1
    assert snapshots.snapshots(store, DAY, DAY) == done


def test_the_worker_closes_the_day_by_the_business_clock(settings: Settings,
                                                         store: Store) -> None:
    """The worker's loop looks for a day to close once a minute (its own clock), and counts
    days by the business clock in WHMCS's time zone."""
    zoned = settings.replace(bridge={"timezone": ZONE})
    business = [datetime(2026, 11, 22, 2, 50, tzinfo=UTC)]  # 23:50 on the 21st, local
    service = [datetime(2026, 12, 7, 20, 0, tzinfo=UTC)]
    engine = Engine(zoned, store, now=lambda: business[0])
    worker = Worker(engine, clock=lambda: service[0], name="closer")
    put(store, 1, "overdue", days=3, total="10.00", dues=("2026-11-18",))
    assert worker.close_days() is None  # watching
    business[0] += timedelta(minutes=15)  # 00:05 local on the 22nd
    assert worker.close_days() is None  # not a minute since the last look
    service[0] += timedelta(minutes=1)
    assert worker.close_days() == DAY
    closed = snapshots.latest(store)
    assert closed is not None and closed.closed_at == datetime(2026, 11, 22, 3, 5)
