"""The worker recovers from faults in seconds: it gives back what an error left held, renews
short leases while it works, and waits out a WHMCS outage without spending the events'
attempts. On SQLite and MariaDB, with a fixed clock moved by hand and a fake WHMCS client (the
edge vipgate does not own) behind the real engine."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from bridge.engine import liveness
from bridge.engine.liveness import FIRST_PAUSE, MAX_PAUSE, Heartbeat
from bridge.engine.reconcile import Engine
from bridge.settings import Settings
from bridge.store import Store
from bridge.store import inbox as queue
from bridge.store.inbox import InboxEvent
from bridge.whmcs import WhmcsNotFound, WhmcsUnavailable
from bridge.worker import LEASE, Outcome, Worker
from tests.helpers import FIXED_NOW, Clock

NOW = FIXED_NOW.replace(tzinfo=None)
SECOND = timedelta(seconds=1)
WAIT = 30.0  # an upper bound for threads to meet, never a measured duration


class FakeWhmcs:
    """WHMCS as the engine sees it. ``down``: every call is unavailable (the probe's too);
    ``broken_reads``: WHMCS answers the probe, but reading a client fails; ``gate`` set: a
    client read waits for it (a slow WHMCS). A client read that gets through finds no client:
    the engine's reconcile then ends there, successfully."""

    def __init__(self) -> None:
        self.down = False
        self.broken_reads = False
        self.gate: threading.Event | None = None
        self.entered = threading.Event()
        self.calls: list[str] = []

    def get_client_groups(self) -> tuple[()]:
        self.calls.append("GetClientGroups")
        if self.down:
            raise WhmcsUnavailable("GetClientGroups", "connection refused")
        return ()

    def read_client(self, client_id: int, *, promise: Any = None, known: Any = None) -> Any:
        self.calls.append("GetClientsDetails")
        if self.down or self.broken_reads:
            raise WhmcsUnavailable("GetClientsDetails", "HTTP 503")
        if self.gate is not None:
            self.entered.set()
            assert self.gate.wait(WAIT)
        raise WhmcsNotFound("GetClientsDetails", "Client Not Found")

    def probes(self) -> int:
        return self.calls.count("GetClientGroups")


@pytest.fixture
def fake() -> FakeWhmcs:
    return FakeWhmcs()


@pytest.fixture
def engine(settings: Settings, store: Store, clock: Clock, fake: FakeWhmcs) -> Engine:
    return Engine(settings, store, whmcs=lambda: fake, now=clock)


def _worker(engine: Engine, clock: Clock, name: str = "w1", **options: Any) -> Worker:
    return Worker(engine, clock=clock, name=name, rng=lambda: 0.0, **options)


def _events(store: Store, *clients: int) -> list[int]:
    """One ClientEdit per client, in order; their inbox ids."""
    ids = []
    for client_id in clients:
        msg = f"msg_{client_id}_{len(store.events())}"
        event = InboxEvent(msg, "ClientEdit", client_id, {"userid": client_id}, NOW, NOW)
        assert store.enqueue(event) == "queued"
        ids.append(store.get_event(msg).id)  # type: ignore[union-attr]
    return ids


def _row(store: Store, row_id: int) -> queue.Listed:
    listed = queue.get_row(store, row_id)
    assert listed is not None
    return listed


def _holder(store: Store, client_id: int) -> str | None:
    from bridge.store.tables import client_lease

    with store.engine.connect() as conn:
        return conn.execute(sa.select(client_lease.c.locked_by).where(
            client_lease.c.client_id == client_id)).scalar()


def _database_gone() -> sa.exc.OperationalError:
    return sa.exc.OperationalError("UPDATE inbox", {}, Exception("Lost connection"))


# --- A: what an error left held goes back ------------------------------------------------


# The database goes away while the second event settles: from that call on, these fail.
@pytest.mark.parametrize("gone_from", [
    {"complete": 2},  # the event was reconciled; marking it done fails
    {"release_client": 2, "fail": 1},  # giving its client back fails, and so does the rest
], ids=["complete", "release_client"])
def test_an_error_mid_batch_gives_the_rest_back_at_the_next_round(
        store: Store, engine: Engine, clock: Clock, monkeypatch: pytest.MonkeyPatch,
        gone_from: dict[str, int]) -> None:
    first, second, third = _events(store, 1, 2, 3)
    real = {name: getattr(queue, name) for name in gone_from}

    def failing(name: str) -> Callable[..., Any]:
        calls: list[int] = []

        def call(*args: Any, **kwargs: Any) -> Any:
            calls.append(1)
            if len(calls) >= gone_from[name]:
                raise _database_gone()
            return real[name](*args, **kwargs)

        return call

    for name in gone_from:
        monkeypatch.setattr(queue, name, failing(name))
    worker = _worker(engine, clock)
    with pytest.raises(sa.exc.OperationalError):
        worker.run_once()
    assert _row(store, first).row.state == "done"
    assert {_row(store, i).locked_by for i in (second, third)} == {"w1"}
    if "release_client" in gone_from:
        assert _holder(store, 2) == "w1"  # the client lease was left behind as well

    for name, function in real.items():
        monkeypatch.setattr(queue, name, function)
    clock.advance(seconds=3)
    worker.batch = 0  # this round gives back and claims nothing, so the rest can be seen
    assert worker.run_once() == []
    for row_id in (second, third):
        back = _row(store, row_id)
        assert (back.row.state, back.row.attempts, back.row.next_attempt_at) == (
            "queued", 0, NOW + 3 * SECOND)
        assert (back.locked_by, back.locked_until) == (None, None)
    assert _holder(store, 2) is None

    rival = _worker(engine, clock, "rival")
    outcomes = rival.run_once()  # at once: no lease to wait for
    assert [(o.row_id, o.state) for o in outcomes] == [(second, "done"), (third, "done")]
    assert {_row(store, i).row.attempts for i in (second, third)} == {1}


def test_giving_back_is_tried_again_while_the_database_is_away(
        store: Store, engine: Engine, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    [row_id] = _events(store, 1)
    worker = _worker(engine, clock)
    real_complete, real_release = queue.complete, queue.release_held

    def gone(*_args: Any, **_kwargs: Any) -> Any:
        raise _database_gone()

    monkeypatch.setattr(queue, "complete", gone)
    with pytest.raises(sa.exc.OperationalError):
        worker.run_once()
    monkeypatch.setattr(queue, "complete", real_complete)
    monkeypatch.setattr(queue, "release_held", gone)
    with pytest.raises(sa.exc.OperationalError):
        worker.run_once()  # still down: nothing claimed, the rows stay to give back
    assert _row(store, row_id).locked_by == "w1"
    monkeypatch.setattr(queue, "release_held", real_release)
    assert [(o.row_id, o.state) for o in worker.run_once()] == [(row_id, "done")]
    assert _row(store, row_id).row.attempts == 1


# --- B: short leases, renewed while the worker works -------------------------------------


def test_the_lease_is_30_seconds_renewed_every_10() -> None:
    worker = Worker(SimpleNamespace(store=None), clock=Clock())  # type: ignore[arg-type]
    assert worker.lease == LEASE == timedelta(seconds=30)
    assert worker.beat_seconds == 10


def test_leases_of_a_silent_worker_expire_and_a_beating_one_keeps_them(
        store: Store, engine: Engine, clock: Clock) -> None:
    silent, beating = _worker(engine, clock, "silent"), _worker(engine, clock, "beating")
    rival = _worker(engine, clock, "rival")
    [mine, theirs] = _events(store, 1, 2)
    assert [r.id for r in queue.claim(store, "silent", clock(), lease=LEASE, limit=1)] == [mine]
    assert [r.id for r in queue.claim(store, "beating", clock(), lease=LEASE, limit=1)] == [
        theirs]
    assert silent.acquire(1) and beating.acquire(2)

    clock.advance(seconds=20)
    beating.beat()
    clock.advance(seconds=10)  # 30 s: both leases end now; a lease is held up to its end
    assert queue.claim(store, "rival", clock(), lease=LEASE) == []
    clock.advance(seconds=1)
    assert [r.id for r in queue.claim(store, "rival", clock(), lease=LEASE)] == [mine]
    assert rival.acquire(1) and not rival.acquire(2)
    assert _row(store, theirs).locked_by == "beating"
    clock.advance(seconds=20)  # 51 s: the beat at 20 s held until 50 s
    assert [r.id for r in queue.claim(store, "rival", clock(), lease=LEASE)] == [theirs]
    assert rival.acquire(2)


def _wait_until(condition: Callable[[], bool], changed: threading.Condition) -> None:
    with changed:
        assert changed.wait_for(condition, WAIT)


def test_a_long_event_keeps_its_row_its_batch_and_its_client(
        store: Store, engine: Engine, clock: Clock, fake: FakeWhmcs) -> None:
    slow, waiting = _events(store, 1, 2)
    fake.gate = threading.Event()
    worker = _worker(engine, clock, beat_seconds=0.001)
    beats: list[Any] = []
    changed = threading.Condition()

    def counted_beat() -> None:
        Worker.beat(worker)
        with changed:
            beats.append(clock())
            changed.notify_all()

    worker.beat = counted_beat  # type: ignore[method-assign]
    outcomes: list[Outcome] = []
    runner = threading.Thread(target=lambda: outcomes.extend(worker.run_once()))
    runner.start()
    try:
        assert fake.entered.wait(WAIT)  # WHMCS is slow to answer the first event
        rival = _worker(engine, clock, "rival")
        for _ in range(4):  # two minutes in 20-second steps, well past the 30-s lease
            clock.advance(seconds=20)
            seen = len(beats)
            _wait_until(lambda n=seen: len(beats) >= n + 2, changed)  # surely beat since
            assert queue.claim(store, "rival", clock(), lease=LEASE) == []
            assert not rival.acquire(1)
            assert {_row(store, i).locked_by for i in (slow, waiting)} == {"w1"}
            assert _row(store, waiting).locked_until >= clock().replace(tzinfo=None) + 29 * SECOND
    finally:
        fake.gate.set()
        runner.join(WAIT)
    assert [(o.row_id, o.state) for o in outcomes] == [(slow, "done"), (waiting, "done")]
    assert not any(t.name == "heartbeat-w1" for t in threading.enumerate())  # stopped


def test_heartbeat_failures_are_logged_and_the_event_still_settles(
        store: Store, engine: Engine, clock: Clock, fake: FakeWhmcs,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    [row_id] = _events(store, 1)
    failures: list[int] = []
    changed = threading.Condition()

    def database_away(*_args: Any, **_kwargs: Any) -> Any:
        with changed:
            failures.append(1)
            changed.notify_all()
        raise _database_gone()

    monkeypatch.setattr(queue, "extend_held", database_away)
    fake.gate = threading.Event()
    worker = _worker(engine, clock, beat_seconds=0.001)
    outcomes: list[Outcome] = []
    runner = threading.Thread(target=lambda: outcomes.extend(worker.run_once()))
    with caplog.at_level(logging.WARNING, "vipgate.worker"):
        runner.start()
        try:
            _wait_until(lambda: len(failures) >= 3, changed)  # it keeps trying
        finally:
            fake.gate.set()
            runner.join(WAIT)
    assert [(o.row_id, o.state) for o in outcomes] == [(row_id, "done")]
    assert "worker w1: heartbeat failed: OperationalError" in caplog.text


def test_a_heartbeat_that_ends_quickly_never_beats() -> None:
    beats: list[int] = []
    with Heartbeat(lambda: beats.append(1), 3600, "quick"):
        pass
    assert beats == []


# --- C: WHMCS down is not the events' fault ----------------------------------------------


def test_whmcs_down_defers_without_attempts_and_pauses_with_a_doubling_backoff(
        store: Store, engine: Engine, clock: Clock, fake: FakeWhmcs,
        caplog: pytest.LogCaptureFixture) -> None:
    ids = _events(store, 1, 2, 3)
    fake.down = True
    worker = _worker(engine, clock)
    caplog.set_level(logging.INFO, "vipgate.worker")
    [outcome] = worker.drain()  # drain stops when the worker pauses
    assert (outcome.row_id, outcome.state) == (ids[0], "deferred")
    assert outcome.error == "WHMCS unavailable: WHMCS GetClientsDetails: HTTP 503"
    for row_id in ids:  # the first deferred, the rest of the batch given back unprocessed
        row = _row(store, row_id)
        assert (row.row.state, row.row.attempts, row.row.next_attempt_at, row.locked_by) == (
            "queued", 0, NOW + FIRST_PAUSE, None)
    assert _row(store, ids[0]).row.last_error == outcome.error  # the admin inbox shows why
    assert fake.calls == ["GetClientsDetails", "GetClientGroups"]

    pauses = []
    while len(pauses) < 7:  # each failed probe doubles the pause, up to 30 s
        assert worker.paused is not None
        pauses.append(worker.paused.delay.total_seconds())
        probes = fake.probes()
        clock.advance(seconds=pauses[-1] - 0.5)
        assert worker.run_once() == [] and fake.probes() == probes  # not even probing
        clock.advance(seconds=0.5)
        assert worker.run_once() == [] and fake.probes() == probes + 1
    assert pauses == [1, 2, 4, 8, 16, 30, 30]
    assert worker.paused.delay == MAX_PAUSE  # type: ignore[union-attr]

    fake.down = False
    clock.advance(seconds=30)
    outcomes = worker.drain()  # the first good probe resumes: the backlog right away
    assert [(o.row_id, o.state) for o in outcomes] == [(i, "done") for i in ids]
    assert worker.paused is None
    assert {_row(store, i).row.attempts for i in ids} == {1}
    logged = [(r.levelname, r.getMessage()) for r in caplog.records
              if r.name == "vipgate.worker" and r.levelno >= logging.INFO
              and "WHMCS" in r.getMessage() and not r.getMessage().startswith("event ")]
    assert logged == [
        ("WARNING", "worker w1: WHMCS unavailable, pausing: WHMCS GetClientGroups: "
                    "connection refused"),
        ("INFO", "worker w1: WHMCS is back, resuming (down since 2026-11-21T12:00:00+00:00)")]


class _SteppingStop(threading.Event):
    """``run_forever``'s stop event with a fake wait: it moves the clock instead of sleeping,
    records how long it was asked to wait, and stops the loop after ``rounds`` waits."""

    def __init__(self, clock: Clock, rounds: int, on_wait: Callable[[int], None]) -> None:
        super().__init__()
        self.clock, self.rounds, self.on_wait = clock, rounds, on_wait
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None
        self.waits.append(timeout)
        self.clock.advance(seconds=timeout)
        self.on_wait(len(self.waits))
        if len(self.waits) >= self.rounds:
            self.set()
        return self.is_set()


def test_run_forever_waits_out_the_pause_and_then_applies_the_backlog(
        store: Store, engine: Engine, clock: Clock, fake: FakeWhmcs) -> None:
    ids = _events(store, 1, 2)
    fake.down = True

    def whmcs_back_after_four_waits(waits: int) -> None:
        fake.down = waits < 4

    stop = _SteppingStop(clock, 6, whmcs_back_after_four_waits)
    worker = _worker(engine, clock)
    worker.run_forever(stop, idle_seconds=0.5)
    assert stop.waits == [1, 2, 4, 8, 0.5, 0.5]  # the pauses, then idle once all is done
    assert {_row(store, i).row.state for i in ids} == {"done"}
    assert {_row(store, i).row.attempts for i in ids} == {1}


def test_run_forever_stops_while_paused(store: Store, engine: Engine, clock: Clock,
                                        fake: FakeWhmcs) -> None:
    _events(store, 1)
    fake.down = True
    stop = threading.Event()
    worker = _worker(engine, clock)
    worker.run_once()  # paused now
    runner = threading.Thread(target=worker.run_forever, args=(stop, 0.5))
    runner.start()
    stop.set()  # the wait for the pause ends with stop, whatever the pause's length
    runner.join(WAIT)
    assert not runner.is_alive()


def test_an_event_failing_while_whmcs_answers_is_counted_and_ends_dead(
        store: Store, engine: Engine, clock: Clock, fake: FakeWhmcs) -> None:
    [row_id] = _events(store, 1)
    fake.broken_reads = True  # the probe succeeds: the failure is this event's
    worker = _worker(engine, clock)
    for attempt in range(1, queue.MAX_ATTEMPTS + 1):
        [outcome] = worker.run_once()
        row = _row(store, row_id).row
        assert row.attempts == attempt and worker.paused is None
        if attempt < queue.MAX_ATTEMPTS:
            assert outcome.state == "retrying"
            assert row.next_attempt_at - clock().replace(tzinfo=None) == queue.retry_delay(
                attempt, lambda: 0.0)
            clock.now = row.next_attempt_at.replace(tzinfo=FIXED_NOW.tzinfo)
    assert outcome.state == "dead"
    assert outcome.error == "WhmcsUnavailable: WHMCS GetClientsDetails: HTTP 503"
    assert [r.id for r in queue.dead_letters(store)] == [row_id]


def test_a_precron_request_gives_the_event_back_without_probing_or_pausing(
        store: Store, engine: Engine, clock: Clock, fake: FakeWhmcs) -> None:
    [row_id] = _events(store, 1)
    fake.down = True
    request = _worker(engine, clock, "precron", pause_on_outage=False)
    claimed = queue.claim_row(store, row_id, "precron", clock(), lease=LEASE)
    assert claimed is not None
    outcome = request.process(claimed)
    assert (outcome.state, outcome.error) == (
        "deferred", "WHMCS unavailable: WHMCS GetClientsDetails: HTTP 503")
    assert fake.probes() == 0 and request.paused is None
    row = _row(store, row_id).row
    assert (row.state, row.attempts, row.next_attempt_at) == ("queued", 0, NOW)


def test_next_pause_doubles_from_one_second_up_to_thirty() -> None:
    now = FIXED_NOW
    pause = liveness.next_pause(None, now)
    delays = [pause.delay]
    for step in range(1, 8):
        pause = liveness.next_pause(pause, now + step * SECOND)
        delays.append(pause.delay)
    assert [d.total_seconds() for d in delays] == [1, 2, 4, 8, 16, 30, 30, 30]
    assert (pause.since, pause.until) == (now, now + 7 * SECOND + MAX_PAUSE)


@pytest.fixture(autouse=True)
def _no_stray_heartbeats() -> Iterator[None]:
    yield
    assert not [t for t in threading.enumerate() if t.name.startswith("heartbeat-")
                and t.is_alive()]
