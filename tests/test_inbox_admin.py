"""The admin's inbox transitions in ``bridge.store.inbox``: retry now, discard with a note, the
listing by state; each conditional on the state the admin saw. On SQLite and MariaDB."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from bridge.store import Store
from bridge.store import inbox as queue
from bridge.store.inbox import (
    MAX_ERROR_CHARS,
    InboxEvent,
    claim,
    complete,
    discard,
    due_count,
    fail,
    get_row,
    list_state,
    retry_now,
)
from bridge.store.tables import inbox
from tests.helpers import FIXED_NOW

NOW = FIXED_NOW.replace(tzinfo=None)
LATER = NOW + timedelta(days=1)
LEASE = timedelta(minutes=2)
_serial = itertools.count()


def _enqueue(store: Store, count: int, *, prefix: str = "msg", client_id: int = 7) -> list[int]:
    ids = []
    for n in range(count):
        at = NOW + timedelta(seconds=n)
        event = InboxEvent(f"{prefix}_{n}", "InvoicePaid", client_id, {"n": n}, at, at)
        assert store.enqueue(event) == "queued"
        ids.append(store.get_event(f"{prefix}_{n}").id)  # type: ignore[union-attr]
    return ids


def _row(store: Store, row_id: int) -> Any:
    with store.engine.connect() as conn:
        return conn.execute(inbox.select().where(inbox.c.id == row_id)).one()


def in_state(store: Store, state: str) -> int:
    """A row in ``state`` (queued, processing, retrying, done or dead), made the queue's way."""
    [rid] = _enqueue(store, 1, prefix=f"in_{state}_{next(_serial)}")
    if state == "queued":
        return rid
    [row] = [r for r in claim(store, "w", NOW + timedelta(seconds=1), lease=LEASE, limit=20)
             if r.id == rid]
    if state == "retrying":
        assert fail(store, row.id, "w", NOW, "WHMCS unreachable") == "retrying"
    elif state == "dead":
        assert fail(store, row.id, "w", NOW, "poison", permanent=True) == "dead"
    elif state == "done":
        assert complete(store, row.id, "w", NOW)
    return rid


@pytest.mark.parametrize("state", ["dead", "retrying"])
def test_retry_now_queues_the_row_due_now_with_fresh_attempts_and_its_last_error(
        store: Store, state: str) -> None:
    rid = in_state(store, state)
    error = _row(store, rid).last_error
    assert retry_now(store, rid, LATER, seen_state=state)
    row = _row(store, rid)
    assert (row.state, row.attempts, row.next_attempt_at, row.finished_at, row.locked_by,
            row.locked_until, row.last_error) == ("queued", 0, LATER, None, None, None, error)
    [again] = claim(store, "w2", LATER, lease=LEASE)
    assert (again.id, again.attempts) == (rid, 1)


@pytest.mark.parametrize(("actual", "seen"), [
    ("processing", "retrying"),  # a worker claimed it after the admin looked
    ("processing", "dead"),
    ("done", "retrying"),  # it succeeded meanwhile
    ("retrying", "dead"),  # requeued and failed again: the admin saw another row state
    ("dead", "retrying"),
    ("queued", "queued"),  # not retryable: it is due anyway
    ("dead", "processing"),
])
def test_retry_now_changes_nothing_unless_the_row_is_still_as_seen(
        store: Store, actual: str, seen: str) -> None:
    rid = in_state(store, actual)
    before = tuple(_row(store, rid))
    assert retry_now(store, rid, LATER, seen_state=seen) is False
    assert tuple(_row(store, rid)) == before


@pytest.mark.parametrize(("state", "expected_error"), [
    ("queued", "discarded by alice: duplicate of #41"),
    ("retrying", "discarded by alice: duplicate of #41\nlast error: WHMCS unreachable"),
    ("dead", "discarded by alice: duplicate of #41\nlast error: poison"),
])
def test_discard_keeps_the_row_as_discarded_with_the_note_before_the_last_error(
        store: Store, state: str, expected_error: str) -> None:
    rid = in_state(store, state)
    assert discard(store, rid, LATER, seen_state=state,
                   note="discarded by alice: duplicate of #41")
    row = _row(store, rid)
    assert (row.state, row.finished_at, row.locked_by, row.last_error) == (
        "discarded", LATER, None, expected_error)


def test_a_discarded_row_is_never_claimed_counted_apart_and_stays_a_duplicate(
        store: Store) -> None:
    rid = in_state(store, "retrying")
    assert discard(store, rid, NOW, seen_state="retrying", note="x")
    far = NOW + timedelta(days=30)
    assert claim(store, "w", far, lease=LEASE) == []
    assert due_count(store, far) == 0
    counts = store.inbox_counts()
    assert counts["discarded"] == 1 and counts["retrying"] == 0
    row = _row(store, rid)
    again = InboxEvent(row.webhook_id, "InvoicePaid", 7, {}, NOW, NOW)
    assert store.enqueue(again) == "duplicate"
    assert discard(store, rid, far, seen_state="discarded", note="again") is False
    assert retry_now(store, rid, far, seen_state="discarded") is False


@pytest.mark.parametrize(("actual", "seen"), [
    ("processing", "queued"), ("processing", "retrying"), ("done", "queued"),
    ("retrying", "queued"), ("dead", "retrying"), ("processing", "processing"),
    ("done", "done"),
])
def test_discard_changes_nothing_unless_the_row_is_still_as_seen(
        store: Store, actual: str, seen: str) -> None:
    rid = in_state(store, actual)
    before = tuple(_row(store, rid))
    assert discard(store, rid, LATER, seen_state=seen, note="no") is False
    assert tuple(_row(store, rid)) == before


def test_a_long_note_and_error_are_cut_to_the_error_column_size(store: Store) -> None:
    rid = in_state(store, "dead")
    assert discard(store, rid, NOW, seen_state="dead", note="n" * (MAX_ERROR_CHARS + 50))
    assert _row(store, rid).last_error == "n" * MAX_ERROR_CHARS


def test_a_worker_holding_the_row_keeps_it_and_finishes_it(store: Store) -> None:
    rid = in_state(store, "retrying")
    [held] = claim(store, "w", LATER, lease=LEASE)  # between the admin's look and click
    assert held.id == rid
    assert retry_now(store, rid, LATER, seen_state="retrying") is False
    assert discard(store, rid, LATER, seen_state="retrying", note="x") is False
    assert complete(store, rid, "w", LATER)
    assert _row(store, rid).state == "done"


def test_list_state_orders_each_state_as_the_admin_reads_it(store: Store) -> None:
    dead = [in_state(store, "dead") for _ in range(2)]
    done = [in_state(store, "done") for _ in range(2)]
    queued = _enqueue(store, 3, prefix="q")
    with store.engine.begin() as conn:  # the oldest queued row is due last
        conn.execute(inbox.update().where(inbox.c.id == queued[0])
                     .values(next_attempt_at=NOW + timedelta(hours=1)))
    assert [x.row.id for x in list_state(store, "queued", limit=10)] == [
        queued[1], queued[2], queued[0]]
    assert [x.row.id for x in list_state(store, "queued", limit=2, offset=1)] == [
        queued[2], queued[0]]
    assert [x.row.id for x in list_state(store, "dead", limit=10)] == dead[::-1]
    assert [x.row.id for x in list_state(store, "done", limit=10)] == done[::-1]
    [listed] = list_state(store, "done", limit=1)
    assert listed.finished_at == NOW and listed.locked_by is None
    assert list_state(store, "retrying", limit=10) == []
    assert get_row(store, 10_000) is None
    assert get_row(store, queued[0]).row.webhook_id == "q_0"  # type: ignore[union-attr]


# --- a claim's row lock on MariaDB -------------------------------------------------------


@pytest.fixture
def mariadb_store(mariadb_url: str) -> Iterator[Store]:
    store = Store(mariadb_url)
    store.upgrade()
    yield store
    store.dispose()


def _updates_running(store: Store) -> int:
    """UPDATEs of the inbox the server is running now (information_schema.innodb_trx would
    say LOCK WAIT, but it is a cache refreshed only when not read for 0.1 s)."""
    with store.engine.connect() as conn:
        return int(conn.execute(sa.text(
            "SELECT COUNT(*) FROM information_schema.processlist "
            "WHERE db = DATABASE() AND info LIKE 'UPDATE inbox SET%' "
            "AND id <> CONNECTION_ID()")).scalar() or 0)


@pytest.mark.mariadb
def test_a_retry_waiting_on_a_claims_row_lock_sees_the_claimed_row_and_does_nothing(
        mariadb_store: Store) -> None:
    store = mariadb_store
    rid = in_state(store, "retrying")
    rival = store.engine.connect()
    outcome: list[bool] = []
    admin = threading.Thread(target=lambda: outcome.append(
        queue.retry_now(store, rid, LATER, seen_state="retrying")))
    try:
        with rival.begin():
            rival.execute(sa.select(inbox.c.id).where(inbox.c.id == rid).with_for_update())
            rival.execute(inbox.update().where(inbox.c.id == rid).values(
                state="processing", locked_by="rival", locked_until=LATER + LEASE))
            admin.start()
            deadline = time.monotonic() + 20
            while not _updates_running(store):  # the admin's UPDATE waits for the lock
                assert admin.is_alive(), f"the admin's UPDATE did not wait: {outcome}"
                assert time.monotonic() < deadline, "the admin's UPDATE never ran"
    finally:
        rival.close()
        if admin.ident is not None:  # started
            admin.join(timeout=30)
    assert outcome == [False]
    row = _row(store, rid)
    assert (row.state, row.locked_by) == ("processing", "rival")
