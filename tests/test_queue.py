"""The work queue over the inbox and the per-client leases, on SQLite and MariaDB."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from bridge.store import Store
from bridge.store import inbox as queue
from bridge.store.inbox import (
    MAX_ATTEMPTS,
    RETRY_SCHEDULE,
    InboxEvent,
    InboxRow,
    acquire_client,
    claim,
    claim_row,
    complete,
    dead_letters,
    defer,
    due_count,
    extend,
    extend_client,
    extend_held,
    fail,
    release_client,
    release_held,
    requeue_dead,
)
from bridge.store.tables import client_lease, inbox
from tests.helpers import FIXED_NOW

NOW = FIXED_NOW.replace(tzinfo=None)
LEASE = timedelta(minutes=2)
SECOND = timedelta(seconds=1)


def _enqueue(store: Store, count: int, *, at: Any = NOW, client_id: int | None = 7,
             prefix: str = "msg") -> list[int]:
    for n in range(count):
        event = InboxEvent(f"{prefix}_{n}", "InvoicePaid", client_id, {"n": n}, at, at)
        assert store.enqueue(event) == "queued"
    return [store.get_event(f"{prefix}_{n}").id for n in range(count)]


def _row(store: Store, row_id: int) -> Any:
    with store.engine.connect() as conn:
        return conn.execute(inbox.select().where(inbox.c.id == row_id)).one()


def _is_mariadb(store: Store) -> bool:
    return store.engine.dialect.name in ("mysql", "mariadb")


@contextmanager
def _before_statement(store: Store, prefix: str, action: Callable[[], Any]) -> Iterator[list]:
    """Run ``action`` once, just before ``store`` sends a statement starting with ``prefix``."""
    results: list[Any] = []

    def hook(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith(prefix) and not results:
            results.append(action())

    sa.event.listen(store.engine, "before_cursor_execute", hook)
    try:
        yield results
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", hook)


# --- claiming ----------------------------------------------------------------------------


def test_claim_takes_the_oldest_rows_up_to_the_limit(store) -> None:
    ids = _enqueue(store, 5)
    first = claim(store, "w1", FIXED_NOW, lease=LEASE, limit=3)  # an aware now is fine too
    assert [r.id for r in first] == ids[:3]
    assert all(isinstance(r, InboxRow) for r in first)
    assert {(r.state, r.attempts) for r in first} == {("processing", 1)}
    assert first[0].vars == {"n": 0}
    held = _row(store, ids[0])
    assert (held.locked_by, held.locked_until) == ("w1", NOW + LEASE)

    assert [r.id for r in claim(store, "w2", NOW, lease=LEASE, limit=10)] == ids[3:]
    assert claim(store, "w3", NOW, lease=LEASE) == []
    assert claim(store, "w3", NOW, lease=LEASE, limit=0) == []
    assert store.inbox_counts()["processing"] == 5


def test_rows_not_yet_due_are_left_alone(store) -> None:
    later = _enqueue(store, 1, at=NOW + timedelta(minutes=1), prefix="later")
    now = _enqueue(store, 1, prefix="now")
    assert due_count(store, NOW) == 1
    assert [r.id for r in claim(store, "w", NOW, lease=LEASE)] == now
    assert due_count(store, NOW) == 0
    assert claim(store, "w", NOW + timedelta(seconds=59), lease=LEASE) == []
    assert [r.id for r in claim(store, "w", NOW + timedelta(minutes=1), lease=LEASE)] == later


def test_every_claim_counts_an_attempt(store) -> None:
    [rid] = _enqueue(store, 1)
    assert claim(store, "w1", NOW, lease=LEASE)[0].attempts == 1
    assert claim(store, "w2", NOW + LEASE, lease=LEASE) == []  # locked_until == now: still held
    again = claim(store, "w2", NOW + LEASE + SECOND, lease=LEASE)
    assert [(r.id, r.attempts) for r in again] == [(rid, 2)]


def test_an_expired_lease_is_reclaimed_and_the_old_worker_loses_the_row(store) -> None:
    [rid] = _enqueue(store, 1)
    claim(store, "dead-worker", NOW, lease=LEASE)
    later = NOW + LEASE + SECOND
    assert due_count(store, later) == 1
    [row] = claim(store, "rescuer", later, lease=LEASE)
    assert (row.id, row.state, row.attempts) == (rid, "processing", 2)
    assert _row(store, rid).locked_by == "rescuer"

    # The first worker wakes up: nothing it does may touch the row any more.
    assert complete(store, rid, "dead-worker", later) is False
    assert fail(store, rid, "dead-worker", later, "late") == "lost"
    assert defer(store, rid, "dead-worker", later, timedelta(0)) is False
    assert extend(store, rid, "dead-worker", later, LEASE) is False
    after = _row(store, rid)
    assert (after.state, after.locked_by, after.attempts, after.last_error) == (
        "processing", "rescuer", 2, None)

    assert complete(store, rid, "rescuer", later) is True
    done = _row(store, rid)
    assert (done.state, done.finished_at, done.locked_by, done.locked_until) == (
        "done", later, None, None)
    assert complete(store, rid, "rescuer", later) is False  # not twice


def test_extend_pushes_the_lease(store) -> None:
    [rid] = _enqueue(store, 1)
    claim(store, "w", NOW, lease=LEASE)
    later = NOW + LEASE - SECOND
    assert extend(store, rid, "w", later, LEASE) is True
    assert extend(store, rid, "w", later, LEASE) is True  # unchanged values still count
    assert _row(store, rid).locked_until == later + LEASE
    assert claim(store, "other", NOW + LEASE + SECOND, lease=LEASE) == []
    assert len(claim(store, "other", later + LEASE + SECOND, lease=LEASE)) == 1


def test_claim_row_takes_one_specific_claimable_row(store) -> None:
    first, second = _enqueue(store, 2)
    row = claim_row(store, second, "request", NOW, lease=LEASE)
    assert row is not None
    assert (row.id, row.state, row.attempts) == (second, "processing", 1)
    assert claim_row(store, second, "worker", NOW, lease=LEASE) is None  # held
    assert [r.id for r in claim(store, "worker", NOW, lease=LEASE)] == [first]
    complete(store, second, "request", NOW)
    assert claim_row(store, second, "worker", NOW + timedelta(days=1), lease=LEASE) is None
    [future] = _enqueue(store, 1, at=NOW + timedelta(hours=1), prefix="future")
    assert claim_row(store, future, "request", NOW, lease=LEASE) is None
    assert claim_row(store, 999_999, "request", NOW, lease=LEASE) is None


def _rival(store: Store) -> Store:
    """A second Store on the same database; on MariaDB it gives up a lock wait after 1 s."""
    rival = Store(store.url)
    if _is_mariadb(rival):
        sa.event.listen(rival.engine, "connect", lambda dbapi_conn, _record: dbapi_conn.cursor(
        ).execute("SET SESSION innodb_lock_wait_timeout = 1"))
    return rival


def test_a_claim_in_flight_shares_no_row_and_blocks_no_webhook(store) -> None:
    ids = _enqueue(store, 10)
    rival = _rival(store)

    def meanwhile() -> tuple[list[InboxRow], str]:
        return (claim(rival, "rival", NOW, lease=LEASE, limit=3),
                rival.enqueue(InboxEvent("msg_new", "InvoicePaid", 7, {}, NOW, NOW)))

    try:
        with _before_statement(store, "UPDATE inbox", meanwhile) as seen:
            mine = claim(store, "me", NOW, lease=LEASE, limit=3)
    finally:
        rival.dispose()
    [(theirs, enqueued)] = seen
    assert enqueued == "queued"
    mine_ids, rival_ids = [r.id for r in mine], [r.id for r in theirs]
    if _is_mariadb(store):
        # Our three are locked FOR UPDATE: the rival skips them (no wait) and takes the next
        # three; nothing else is locked, so the webhook insert did not wait either.
        assert (mine_ids, rival_ids) == (ids[:3], ids[3:6])
    else:
        # SQLite: the rival got in first; our conditional UPDATE took nothing, so the claim
        # read fresh candidates and took the next three.
        assert (mine_ids, rival_ids) == (ids[3:6], ids[:3])
    assert {_row(store, i).attempts for i in mine_ids + rival_ids} == {1}
    assert due_count(store, NOW) == 11 - len(mine_ids + rival_ids)


def _snapshot_isolated(url: str) -> Store:
    """A Store whose MariaDB sessions run with innodb_snapshot_isolation, the default since
    MariaDB 11.6.2: locking a row changed after the transaction's first plain read fails with
    error 1020 instead of reading the current row."""
    store = Store(url)
    sa.event.listen(store.engine, "connect", lambda dbapi_conn, _record: dbapi_conn.cursor(
    ).execute("SET SESSION innodb_snapshot_isolation = ON"))
    return store


@pytest.fixture
def mariadb_store(mariadb_url: str) -> Iterator[Store]:
    """MariaDB only: row-lock races and server settings SQLite does not have."""
    store = Store(mariadb_url)
    store.upgrade()
    yield store
    store.dispose()


@pytest.mark.mariadb
def test_claim_works_with_innodb_snapshot_isolation(mariadb_store) -> None:
    store = mariadb_store
    ids = _enqueue(store, 10)
    mine = _snapshot_isolated(store.url)
    rival = _rival(store)
    try:
        # The rival claims the oldest rows after our candidates were read, before we lock them.
        with _before_statement(mine, "SELECT inbox.id \nFROM inbox FORCE INDEX",
                               lambda: claim(rival, "rival", NOW, lease=LEASE, limit=3)) as seen:
            got = claim(mine, "me", NOW, lease=LEASE, limit=3)
    finally:
        mine.dispose()
        rival.dispose()
    assert [[r.id for r in rows] for rows in seen] == [ids[:3]]
    assert [r.id for r in got] == ids[3:6]


def test_received_and_finished_keep_their_microseconds(store) -> None:
    """received → applied is measured in milliseconds (bench/applied.py): on MariaDB too the
    inbox keeps the fraction of a second of both times (its DATETIME(6), migration 0006)."""
    received = NOW.replace(microsecond=123456)
    store.enqueue(InboxEvent("msg_fraction", "InvoicePaid", 7, {}, NOW, received))
    (row,) = claim(store, "w1", received, lease=LEASE, limit=1)
    finished = received + timedelta(milliseconds=250)
    assert complete(store, row.id, "w1", finished)
    stored = _row(store, row.id)
    assert (stored.received_at, stored.finished_at) == (received, finished)


# --- failures, retries and dead letters --------------------------------------------------


@pytest.mark.parametrize("draw", [0.0, 0.999])
def test_failures_back_off_on_the_schedule_then_go_dead(store, draw: float) -> None:
    [rid] = _enqueue(store, 1)
    now = NOW
    for attempt in range(1, MAX_ATTEMPTS):
        row = claim_row(store, rid, "w", now, lease=LEASE)
        assert row is not None and row.attempts == attempt
        assert fail(store, rid, "w", now, f"boom {attempt}", rng=lambda: draw) == "retrying"
        after = _row(store, rid)
        assert (after.state, after.last_error, after.locked_by) == (
            "retrying", f"boom {attempt}", None)
        step = RETRY_SCHEDULE[attempt - 1]
        if draw == 0.0:
            assert after.next_attempt_at == now + step * 0.8
        else:  # MariaDB keeps whole seconds (it truncates), hence the second of slack
            assert now + step * 1.19 - SECOND <= after.next_attempt_at < now + step * 1.2
        assert claim_row(store, rid, "w", after.next_attempt_at - SECOND, lease=LEASE) is None
        now = after.next_attempt_at

    assert now - NOW > timedelta(hours=60)  # the schedule spans days
    assert claim_row(store, rid, "w", now, lease=LEASE).attempts == MAX_ATTEMPTS
    assert fail(store, rid, "w", now, "last straw", rng=lambda: draw) == "dead"
    dead = _row(store, rid)
    assert (dead.state, dead.finished_at, dead.last_error, dead.locked_by) == (
        "dead", now, "last straw", None)
    assert claim(store, "w", now + timedelta(days=30), lease=LEASE) == []
    assert [r.id for r in dead_letters(store)] == [rid]


def test_retry_delay_stays_inside_the_jitter_window() -> None:
    for attempts, step in enumerate(RETRY_SCHEDULE, start=1):
        assert queue.retry_delay(attempts, lambda: 0.0) == step * 0.8
        assert step * 0.8 < queue.retry_delay(attempts, lambda: 0.5) < step * 1.2
        assert queue.retry_delay(attempts, lambda: 0.999999) < step * 1.2
    assert queue.retry_delay(1, lambda: 0.5) == timedelta(seconds=5)


def test_a_permanent_failure_is_dead_at_once(store) -> None:
    [rid, other] = _enqueue(store, 2)
    claim(store, "w", NOW, lease=LEASE)
    assert fail(store, rid, "w", NOW, "x" * 5000, permanent=True) == "dead"
    dead = _row(store, rid)
    assert (dead.state, dead.attempts, dead.finished_at) == ("dead", 1, NOW)
    assert dead.last_error == "x" * 2000
    assert fail(store, rid, "w", NOW, "again") == "lost"  # no longer processing
    assert complete(store, other, "w", NOW)
    assert [r.id for r in dead_letters(store)] == [rid]
    assert dead_letters(store, limit=0) == []


def test_requeue_dead_puts_the_row_back_with_fresh_attempts(store) -> None:
    [rid, live] = _enqueue(store, 2)
    claim(store, "w", NOW, lease=LEASE)
    fail(store, rid, "w", NOW, "poison", permanent=True)
    later = NOW + timedelta(days=2)
    assert requeue_dead(store, live, later) is False  # processing, not dead
    assert requeue_dead(store, rid, later) is True
    row = _row(store, rid)
    assert (row.state, row.attempts, row.next_attempt_at, row.last_error, row.finished_at) == (
        "queued", 0, later, "poison", None)
    assert requeue_dead(store, rid, later) is False
    assert dead_letters(store) == []
    assert complete(store, live, "w", later)
    [again] = claim(store, "w", later, lease=LEASE)
    assert (again.id, again.attempts) == (rid, 1)


def test_defer_gives_the_row_back_without_using_an_attempt(store) -> None:
    [rid] = _enqueue(store, 1)
    claim(store, "w", NOW, lease=LEASE)
    assert defer(store, rid, "w", NOW, timedelta(seconds=30)) is True
    row = _row(store, rid)
    assert (row.state, row.attempts, row.next_attempt_at, row.locked_by, row.locked_until) == (
        "queued", 0, NOW + timedelta(seconds=30), None, None)
    assert defer(store, rid, "w", NOW, timedelta(0)) is False  # no longer held
    assert claim(store, "w", NOW + timedelta(seconds=29), lease=LEASE) == []

    now = NOW + timedelta(seconds=30)
    assert claim(store, "w", now, lease=LEASE)[0].attempts == 1
    fail(store, rid, "w", now, "boom", rng=lambda: 0.0)
    now = _row(store, rid).next_attempt_at
    assert claim(store, "w", now, lease=LEASE)[0].attempts == 2
    assert defer(store, rid, "w", now, timedelta(0)) is True
    row = _row(store, rid)
    assert (row.state, row.attempts, row.last_error) == ("retrying", 1, "boom")
    assert claim(store, "w", now, lease=LEASE)[0].attempts == 2


def test_defer_may_say_why(store) -> None:
    [rid] = _enqueue(store, 1)
    claim(store, "w", NOW, lease=LEASE)
    fail(store, rid, "w", NOW, "boom", rng=lambda: 0.0)
    now = _row(store, rid).next_attempt_at
    claim(store, "w", now, lease=LEASE)
    assert defer(store, rid, "w", now, SECOND, error="WHMCS unavailable: " + "x" * 3000)
    row = _row(store, rid)
    assert (row.state, row.attempts, row.next_attempt_at) == ("retrying", 1, now + SECOND)
    assert row.last_error == ("WHMCS unavailable: " + "x" * 3000)[:2000]


def _holding(store: Store, worker: str) -> list[int]:
    """Three rows, of which ``worker`` holds the first two; it holds clients 7 and 8 too,
    "other" holds client 9."""
    ids = _enqueue(store, 3)
    assert [r.id for r in claim(store, worker, NOW, lease=LEASE, limit=2)] == ids[:2]
    for client_id in (7, 8):
        assert acquire_client(store, client_id, worker, NOW, lease=LEASE)
    assert acquire_client(store, 9, "other", NOW, lease=LEASE)
    return ids


def test_extend_held_renews_every_row_and_client_the_worker_holds(store) -> None:
    first, second, free = _holding(store, "w")
    later = NOW + LEASE - SECOND
    assert extend_held(store, "w", later, lease=LEASE) == (2, 2)
    assert {_row(store, i).locked_until for i in (first, second)} == {later + LEASE}
    assert {_lease(store, c).locked_until for c in (7, 8)} == {later + LEASE}
    assert _lease(store, 9).locked_until == NOW + LEASE  # another worker's: untouched
    assert _row(store, free).locked_until is None
    assert [r.id for r in claim(store, "rival", NOW + LEASE + SECOND, lease=LEASE)] == [free]
    assert [r.id for r in claim(store, "rival", later + LEASE + SECOND, lease=LEASE)] == [
        first, second]
    assert extend_held(store, "w", later + LEASE + SECOND, lease=LEASE) == (0, 2)
    assert extend_held(store, "nobody", NOW, lease=LEASE) == (0, 0)


def test_release_held_gives_everything_back_without_counting_attempts(store) -> None:
    done, held, free = _holding(store, "w")
    assert complete(store, done, "w", NOW)
    assert release_held(store, "w", NOW, delay=2 * SECOND) == 1
    row = _row(store, held)
    assert (row.state, row.attempts, row.next_attempt_at, row.locked_by, row.locked_until) == (
        "queued", 0, NOW + 2 * SECOND, None, None)
    assert _row(store, done).state == "done"
    assert {_lease(store, c).locked_by for c in (7, 8)} == {None}
    assert _lease(store, 9).locked_by == "other"
    assert acquire_client(store, 7, "rival", NOW, lease=LEASE)
    assert [r.id for r in claim(store, "rival", NOW, lease=LEASE)] == [free]
    assert [(r.id, r.attempts) for r in claim(store, "rival", NOW + 2 * SECOND,
                                              lease=LEASE)] == [(held, 1)]
    assert release_held(store, "w", NOW) == 0  # nothing left: a no-op


# --- per-client leases -------------------------------------------------------------------


def _lease(store: Store, client_id: int) -> Any:
    with store.engine.connect() as conn:
        return conn.execute(client_lease.select().where(
            client_lease.c.client_id == client_id)).one_or_none()


def test_a_client_lease_is_exclusive_reentrant_and_released(store) -> None:
    assert acquire_client(store, 42, "a", NOW, lease=LEASE) is True
    assert acquire_client(store, 42, "b", NOW, lease=LEASE) is False
    assert acquire_client(store, 43, "b", NOW, lease=LEASE) is True  # other clients are free
    later = NOW + timedelta(seconds=30)
    assert acquire_client(store, 42, "a", later, lease=LEASE) is True  # re-entrant, renewed
    assert _lease(store, 42).locked_until == later + LEASE
    release_client(store, 42, "b")  # not the holder: no effect
    assert acquire_client(store, 42, "b", later, lease=LEASE) is False
    release_client(store, 42, "a")
    assert (_lease(store, 42).locked_by, _lease(store, 42).locked_until) == (None, None)
    assert acquire_client(store, 42, "b", later, lease=LEASE) is True
    release_client(store, 42, "a")  # a second release by the old holder changes nothing
    assert _lease(store, 42).locked_by == "b"


def test_an_expired_client_lease_can_be_taken_over(store) -> None:
    assert acquire_client(store, 5, "a", NOW, lease=LEASE)
    assert acquire_client(store, 5, "b", NOW + LEASE, lease=LEASE) is False  # until == now
    assert extend_client(store, 5, "a", NOW + LEASE - SECOND, lease=LEASE) is True
    assert acquire_client(store, 5, "b", NOW + LEASE + SECOND, lease=LEASE) is False
    takeover = NOW + 2 * LEASE
    assert acquire_client(store, 5, "b", takeover, lease=LEASE) is True
    assert extend_client(store, 5, "a", takeover, lease=LEASE) is False
    release_client(store, 5, "a")
    assert acquire_client(store, 5, "c", takeover, lease=LEASE) is False
    assert _lease(store, 5).locked_by == "b"


@pytest.mark.parametrize("rival_releases", [False, True])
def test_a_client_row_inserted_by_a_rival_meanwhile(store, rival_releases: bool) -> None:
    rival = _rival(store)

    def rival_takes() -> bool:
        took = acquire_client(rival, 9, "rival", NOW, lease=LEASE)
        if rival_releases:
            release_client(rival, 9, "rival")
        return took

    try:
        with _before_statement(store, "INSERT INTO client_lease", rival_takes) as rival_took:
            mine = acquire_client(store, 9, "me", NOW, lease=LEASE)
    finally:
        rival.dispose()
    assert rival_took == [True]
    assert mine is rival_releases
    assert _lease(store, 9).locked_by == ("me" if rival_releases else "rival")


# --- real concurrency (MariaDB) ----------------------------------------------------------


def _threads(count: int, target: Callable[[int], None]) -> None:
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            target(n)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors


@pytest.mark.mariadb
def test_concurrent_workers_claim_every_row_exactly_once(mariadb_store) -> None:
    store = mariadb_store
    _enqueue(store, 300)
    claimed: list[list[int]] = [[] for _ in range(4)]
    start = threading.Barrier(4, timeout=30)

    def work(n: int) -> None:
        own = _snapshot_isolated(store.url)
        try:
            start.wait()
            while rows := claim(own, f"worker-{n}", NOW, lease=LEASE, limit=7):
                for row in rows:
                    claimed[n].append(row.id)
                    assert complete(own, row.id, f"worker-{n}", NOW)
        finally:
            own.dispose()

    _threads(4, work)
    every = [i for ids in claimed for i in ids]
    assert len(every) == len(set(every)) == 300
    assert store.inbox_counts()["done"] == 300
    assert {r.attempts for r in store.events()} == {1}
    assert claim(store, "late", NOW + timedelta(days=1), lease=LEASE) == []


@pytest.mark.mariadb
def test_concurrent_acquire_client_has_one_winner(mariadb_store) -> None:
    store = mariadb_store
    won: list[str] = []
    start = threading.Barrier(8, timeout=30)

    def race(n: int) -> None:
        own = _snapshot_isolated(store.url)
        try:
            start.wait()
            if acquire_client(own, 77, f"worker-{n}", NOW, lease=LEASE):
                won.append(f"worker-{n}")
            # Everyone tries again while the lease is valid: only the holder (re-entrant) wins.
            if acquire_client(own, 77, f"worker-{n}", NOW + SECOND, lease=LEASE):
                won.append(f"worker-{n}")
        finally:
            own.dispose()

    _threads(8, race)
    assert len(won) == 2 and len(set(won)) == 1
    assert _lease(store, 77).locked_by == won[0]
    assert acquire_client(store, 77, "late", NOW + SECOND + LEASE + SECOND, lease=LEASE)
