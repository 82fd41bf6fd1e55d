"""The worker: claims inbox rows, maps each event to what must be reconciled, reconciles
(the cron events through the resync's bulk path, :mod:`bridge.resync`).

One event at a time per client (a lease in ``client_lease``); any number of workers over one
MariaDB/MySQL (rows claimed with SKIP LOCKED), one over SQLite. A client is reconciled once per
claimed batch: a later row of the batch asking only for it is covered (:class:`Round`). A
failed event is retried on the Standard Webhooks schedule and then dead-lettered, kept with its
last error (``bridge.store.inbox``). The worker's clock is the service's clock (leases, retry
times); the engine's clock is the business clock.

Faults cost seconds, not a lease or a retry step:

- Leases are short (:data:`LEASE`) and renewed by a heartbeat while an event is processed
  (``bridge.engine.liveness.Heartbeat``), so a killed worker's rows and clients are free again
  within :data:`LEASE`.
- An error that escapes a round (the database went away mid-batch) leaves rows and client
  leases behind; the next round gives them all back first (``queue.release_held``).
- WHMCS being down is not the event's fault: when an event fails with ``WhmcsUnavailable`` and a
  cheap read of WHMCS fails too, the event goes back without its attempt counted and the worker
  pauses claiming (``liveness.Pause``: 1 s, doubling up to 30 s), probing WHMCS before it claims
  again. When the probe succeeds the failure is the event's own: counted, retried, dead-lettered.

Every minute the loop also closes the dashboard's day that just ended in WHMCS's time zone
(``bridge.store.snapshots.close_days``), before it claims anything of the new day.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlalchemy as sa

import hooks
from bridge import first_run
from bridge.engine import trust
from bridge.engine.liveness import Heartbeat, Pause, next_pause, probe_whmcs
from bridge.engine.names import REFRESH as NAMES_REFRESH
from bridge.engine.names import RETRY as NAMES_RETRY
from bridge.engine.names import refresh_names
from bridge.engine.reconcile import Engine, ReconcileError
from bridge.resync import make_source
from bridge.resync.runner import Resync, ResyncResult
from bridge.store import inbox as queue
from bridge.store import snapshots
from bridge.store.inbox import InboxRow
from bridge.whmcs import InvoiceDetails, WhmcsError, WhmcsUnavailable
from hooks.registry import Subjects

log = logging.getLogger("vipgate.worker")

LEASE = timedelta(seconds=30)  # renewed every third of it while an event is processed
BUSY_DELAY = timedelta(seconds=2)
DAYS_CHECK = timedelta(minutes=1)  # how often the loop looks for a day to close


def worker_name(prefix: str = "worker") -> str:
    return f"{prefix}-{socket.gethostname()[:24]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass
class Outcome:
    row_id: int
    hook: str
    state: str  # done, retrying, dead, deferred, lost
    clients: int = 0
    changes: int = 0
    error: str | None = None
    covered: bool = False  # done without a reconcile of its own: see Round


@dataclass
class Round:
    """What one claimed batch has learned. Every row of the batch was stored before the claim,
    so WHMCS's change behind it was made before; a client reconciled in the round was read
    from WHMCS after the claim, so after that change. A later row of the batch that asks only
    for clients reconciled earlier in the round is covered by that reconcile and is done
    without another (AddInvoicePayment then InvoicePaid of one payment: one reconcile, not
    two). Only plain rows: not the whole-installation ones, not a ticket just opened (the
    gate's follow-up is per ticket), not one naming the admin behind it (a staff hold)."""

    reconciled: set[int] = field(default_factory=set)
    owners: dict[tuple[str, int], int] = field(default_factory=dict)  # (kind, id) → client
    # GetInvoice answers of the owner look-ups, read after the claim like the reconciles: the
    # reconcile of the invoice's client takes its balance from them (Engine.clients_for)
    invoices: dict[int, InvoiceDetails] = field(default_factory=dict)


class Worker:
    """``pause_on_outage`` False (the PreCronJob request, which must not wait): an event that
    fails with WHMCS unavailable goes back to the background worker, due at once and its
    attempt not counted, without probing WHMCS or pausing."""

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime],
                 name: str | None = None, lease: timedelta = LEASE, batch: int = 10,
                 rng: Callable[[], float] = random.random, pause_on_outage: bool = True,
                 beat_seconds: float | None = None) -> None:
        self.engine = engine
        self.store = engine.store
        self.clock = clock
        self.name = name or worker_name()
        self.lease = lease
        self.batch = batch
        self.rng = rng
        self.pause_on_outage = pause_on_outage
        self.beat_seconds = lease.total_seconds() / 3 if beat_seconds is None else beat_seconds
        self.paused: Pause | None = None  # WHMCS found down: no claim before paused.until
        self._holding = False  # a round did not finish: rows or client leases may be left
        self._names_due: datetime | None = None  # when to read WHMCS's names again
        self._days_due: datetime | None = None  # when to look for a day to close again
        self._trust_due: datetime | None = None  # when to settle trust unlocks again

    # --- leases ---------------------------------------------------------------------------

    def acquire(self, client_id: int) -> bool:
        return queue.acquire_client(self.store, client_id, self.name, self.clock(),
                                    lease=self.lease)

    def release(self, client_id: int) -> None:
        queue.release_client(self.store, client_id, self.name)

    def beat(self) -> None:
        """Renew every lease this worker holds (its claimed rows, its clients)."""
        queue.extend_held(self.store, self.name, self.clock(), lease=self.lease)

    # --- WHMCS outages --------------------------------------------------------------------

    def probe(self) -> str | None:
        """None when WHMCS answers a cheap read, else why it is unavailable."""
        return probe_whmcs(self.engine.whmcs(), self.name)

    def ready(self) -> bool:
        """Whether to claim now: not while paused; when a pause ends, WHMCS is probed first
        (back: the pause ends; still down: the next, longer pause starts)."""
        if self.paused is None:
            return True
        now = self.clock()
        if now < self.paused.until:
            return False
        down = self.probe()
        if down is not None:
            self.paused = next_pause(self.paused, now)
            log.debug("worker %s: WHMCS still unavailable, pausing %s s: %s", self.name,
                      self.paused.delay.total_seconds(), down)
            return False
        log.info("worker %s: WHMCS is back, resuming (down since %s)", self.name,
                 self.paused.since.isoformat(timespec="seconds"))
        self.paused = None
        return True

    def _whmcs_down(self, row: InboxRow, outcome: Outcome, exc: Exception) -> Outcome | None:
        """After ``exc`` (WHMCS unavailable, or clients of a full reconcile failed): give the
        row back, its attempt not counted, when WHMCS is down (a failed probe; a PreCronJob
        request gives a WhmcsUnavailable back without asking). None: WHMCS answers, the failure
        is the event's."""
        if self.pause_on_outage:
            down = self.probe()
            if down is None:
                return None
            if self.paused is None:
                log.warning("worker %s: WHMCS unavailable, pausing: %s", self.name, down)
            now = self.clock()
            self.paused = next_pause(self.paused, now)
            delay = self.paused.delay
        elif isinstance(exc, WhmcsUnavailable):
            now, delay = self.clock(), timedelta(0)
        else:  # a request cannot tell a full reconcile's failures from an outage: as before
            return None
        outcome.error = f"WHMCS unavailable: {exc}"
        log.info("event %s (%s) deferred: %s", row.webhook_id, row.hook, outcome.error)
        outcome.state = "deferred"
        if not queue.defer(self.store, row.id, self.name, now, delay, error=outcome.error):
            outcome.state = "lost"
        return outcome

    # --- the loop -------------------------------------------------------------------------

    def run_once(self) -> list[Outcome]:
        """Claim a batch of due rows and process them; returns what happened to each.

        Nothing is claimed while WHMCS is found down (see :meth:`ready`); a batch cut short by
        an outage goes back at once. What an earlier, interrupted round left held is given
        back first."""
        if self._holding:
            given = queue.release_held(self.store, self.name, self.clock())
            log.info("worker %s: gave back %d event(s) left from an interrupted round",
                     self.name, given)
            self._holding = False
        if not self.ready():
            return []
        self._holding = True
        rows = queue.claim(self.store, self.name, self.clock(), lease=self.lease,
                           limit=self.batch)
        outcomes: list[Outcome] = []
        round_ = Round()
        for row in rows:
            if self.paused is not None:  # WHMCS went down: the rest waits for the pause
                queue.release_held(self.store, self.name, self.clock(),
                                   delay=self.paused.delay)
                break
            outcomes.append(self.process(row, round_=round_))
        self._holding = False
        return outcomes

    def drain(self, max_rounds: int = 1000) -> list[Outcome]:
        """Process until nothing is due, or WHMCS is found down (demo and tests); deferred
        rows are retried."""
        outcomes: list[Outcome] = []
        for _ in range(max_rounds):
            batch = self.run_once()
            if not batch:
                break
            outcomes += batch
        return outcomes

    def _wait_seconds(self, idle: float) -> float:
        """How long to wait after a round that found nothing: ``idle``, or what is left of
        a pause."""
        if self.paused is None:
            return idle
        return max(idle, (self.paused.until - self.clock()).total_seconds())

    def refresh_names(self) -> None:
        """Read WHMCS's group and department names when they are due (hourly; five minutes
        after a failure), never while paused: the admin page and the panels show them."""
        now = self.clock()
        if self.paused is not None or (self._names_due is not None and now < self._names_due):
            return
        try:
            done = refresh_names(self.store, self.engine.whmcs(), now)
        except Exception as exc:  # names are a nicety: never a reason to stop the worker
            log.warning("worker %s: WHMCS's names not refreshed: %s", self.name, exc)
            done = False
        self._names_due = now + (NAMES_REFRESH if done else NAMES_RETRY)

    def close_days(self) -> date | None:
        """Close the dashboard's day that ended since the last check (every
        :data:`DAYS_CHECK`), by the business clock; returns the day closed. A failure is
        logged: the next check tries again."""
        now = self.clock()
        if self._days_due is not None and now < self._days_due:
            return None
        self._days_due = now + DAYS_CHECK
        settings = self.engine.settings
        try:
            closed = snapshots.close_days(self.store, self.engine.now(),
                                          settings.policy.vip_group_id,
                                          timezone=settings.bridge.timezone)
        except Exception as exc:  # the figures are never a reason to stop the worker
            log.warning("worker %s: could not look for a day to close: %s", self.name, exc)
            return None
        if closed is None:
            return None
        log.info("worker %s: closed %s's figures: %d delinquent of %d clients", self.name,
                 closed.day, closed.delinquent, closed.clients)
        return closed.day

    def settle_trust(self, *, force: bool = False) -> int:
        """Lift the overrides of the trust unlocks that ended (``bridge.engine.trust.settle``)
        every :data:`DAYS_CHECK` (``force``: now), never while WHMCS is found down; returns
        how many were settled. A failure is logged: the next pass tries again."""
        now = self.clock()
        if self.paused is not None or (
                not force and self._trust_due is not None and now < self._trust_due):
            return 0
        self._trust_due = now + DAYS_CHECK
        try:
            return trust.settle(self.engine)
        except Exception as exc:  # never a reason to stop the worker or fail a cron event
            log.warning("worker %s: trust unlocks not settled: %s", self.name, exc)
            return 0

    def run_forever(self, stop: threading.Event, idle_seconds: float = 0.5) -> None:
        log.info("worker %s started", self.name)
        while not stop.is_set():
            try:
                self.close_days()
                self.settle_trust()
                self.refresh_names()
                busy = self.run_once()
            except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
                # the database is away (restarting): one line a round, not a traceback
                log.warning("worker %s: round failed, the database does not answer: %s",
                            self.name, exc.orig if exc.orig is not None else exc)
                busy = []
            except Exception:  # keep the loop alive whatever happened
                log.exception("worker %s: round failed", self.name)
                busy = []
            if not busy:
                stop.wait(self._wait_seconds(idle_seconds))
        log.info("worker %s stopped", self.name)

    # --- one event ------------------------------------------------------------------------

    def full_reconcile(self, event_id: str, deadline: float | None) -> ResyncResult:
        """PreCronJob and DailyCronJob: the resync's bulk path (``vipgate resync``), from the
        WHMCS database when ``[whmcs] database_url`` is set, else the API's bulk lists.

        Until a first full reconcile has been confirmed (``bridge.first_run``) it only plans,
        and the plan waits on the admin overview."""
        # Before WHMCS's cron suspends: the unlocks whose date passed lose their override.
        self.settle_trust(force=True)
        source = make_source(self.engine)
        gated = not first_run.confirmed(self.store)
        try:
            result = Resync(self.engine, source, owner=self.name, clock=self.clock,
                            lease=self.lease).run(
                dry_run=gated, deadline=deadline, event_id=event_id)
        finally:
            source.dispose()
        if gated and result.complete:
            first_run.record_plan(self.store, result.summary(), self.clock())
            log.info("full reconcile only planned, waiting for confirmation (vipgate resync or "
                     "the admin overview): %s", first_run.describe(result.summary()))
        return result

    def process(self, row: InboxRow, *, deadline: float | None = None,
                round_: Round | None = None) -> Outcome:
        """Handle one claimed row and settle it (done, deferred, retrying or dead), renewing
        this worker's leases meanwhile. ``round_``: the batch it was claimed in (see
        :class:`Round`)."""
        with Heartbeat(self.beat, self.beat_seconds, self.name):
            return self._process(row, deadline, round_)

    def _process(self, row: InboxRow, deadline: float | None,
                 round_: Round | None = None) -> Outcome:
        outcome = Outcome(row.id, row.hook, "done")
        try:
            subjects = hooks.registry.dispatch(row.hook, row.vars)
        except (TypeError, ValueError, KeyError) as exc:  # a poison message: never retried
            return self._fail(row, outcome, f"cannot map the event: {exc}", permanent=True)
        if not isinstance(subjects, Subjects) or subjects.empty:
            return self._complete(row, outcome)
        try:
            if subjects.everyone:
                full = self.full_reconcile(row.webhook_id, deadline)
                outcome.clients, outcome.changes = full.clients, full.applied
                if full.failures:
                    raise ReconcileError(full.failures)
                if not full.complete:
                    return self._defer(row, outcome, timedelta(0))
            elif not self._reconcile_clients(row, subjects, outcome, round_):
                return self._defer(row, outcome, BUSY_DELAY)
        except (WhmcsUnavailable, ReconcileError) as exc:
            return self._whmcs_down(row, outcome, exc) or self._failed(row, outcome, exc)
        except Exception as exc:
            return self._failed(row, outcome, exc)
        return self._complete(row, outcome)

    def _reconcile_clients(self, row: InboxRow, subjects: Subjects, outcome: Outcome,
                           round_: Round | None = None) -> bool:
        """Reconcile the event's clients under their leases; False when one is busy. Nothing
        to do when the round already reconciled them all after this row was stored."""
        round_ = Round() if round_ is None else round_
        client_ids = self.engine.clients_for(
            subjects.clients, subjects.invoices, subjects.tickets, owners=round_.owners,
            read=round_.invoices)
        plain = not subjects.opened and subjects.staff is None
        if plain and client_ids and round_.reconciled.issuperset(
                client_ids):
            outcome.covered = True
            log.debug("event %s (%s) covered by this round's reconcile of client(s) %s",
                      row.webhook_id, row.hook, client_ids)
            return True
        held: list[int] = []
        try:
            for client_id in client_ids:
                if not self.acquire(client_id):
                    return False
                held.append(client_id)
            for client_id in held:
                done = self.engine.reconcile_client(
                    client_id, event_id=row.webhook_id, opened=subjects.opened,
                    opened_at=row.occurred_at, staff=subjects.staff, known=round_.invoices)
                outcome.clients += 1
                outcome.changes += len(done.applied)
                round_.reconciled.add(client_id)
        finally:
            for client_id in held:
                self.release(client_id)
        return True

    def _defer(self, row: InboxRow, outcome: Outcome, delay: timedelta) -> Outcome:
        outcome.state = "deferred"
        if not queue.defer(self.store, row.id, self.name, self.clock(), delay):
            outcome.state = "lost"
        return outcome

    def _complete(self, row: InboxRow, outcome: Outcome) -> Outcome:
        if not queue.complete(self.store, row.id, self.name, self.clock()):
            outcome.state = "lost"
        return outcome

    def _failed(self, row: InboxRow, outcome: Outcome, exc: Exception) -> Outcome:
        log.warning("event %s (%s) failed: %s", row.webhook_id, row.hook, exc,
                    exc_info=not isinstance(exc, ReconcileError | WhmcsError))
        return self._fail(row, outcome, f"{type(exc).__name__}: {exc}")

    def _fail(self, row: InboxRow, outcome: Outcome, error: str, *,
              permanent: bool = False) -> Outcome:
        outcome.error = error
        outcome.state = queue.fail(self.store, row.id, self.name, self.clock(), error,
                                   rng=self.rng, permanent=permanent)
        return outcome


def start_worker_thread(worker: Worker, idle_seconds: float = 0.5
                        ) -> tuple[threading.Thread, threading.Event]:
    """The in-process worker of ``vipgate serve`` (embedded default)."""
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop, idle_seconds),
                              name="vipgate-worker", daemon=True)
    thread.start()
    return thread, stop


def monotonic_deadline(seconds: float) -> float:
    return time.monotonic() + seconds
