"""The worker: claims inbox rows, maps each event to what must be reconciled, reconciles.

One event at a time per client (a lease in ``client_lease``); any number of workers over one
MariaDB/MySQL (rows claimed with SKIP LOCKED), one over SQLite. A failed event is retried on
the Standard Webhooks schedule and then dead-lettered, kept with its last error
(``bridge.queue``). The worker's clock is the service's clock (leases, retry times); the
engine's clock is the business clock.
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
from dataclasses import dataclass
from datetime import datetime, timedelta

import hooks
from bridge import queue
from bridge.engine.reconcile import Engine, ReconcileError
from bridge.resync import make_source
from bridge.resync.runner import Resync, ResyncResult
from bridge.store import InboxRow
from bridge.whmcs import WhmcsError
from hooks.registry import Subjects

log = logging.getLogger("vipgate.worker")

LEASE = timedelta(minutes=5)
BUSY_DELAY = timedelta(seconds=2)


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


class Worker:
    def __init__(self, engine: Engine, *, clock: Callable[[], datetime],
                 name: str | None = None, lease: timedelta = LEASE, batch: int = 10,
                 rng: Callable[[], float] = random.random) -> None:
        self.engine = engine
        self.store = engine.store
        self.clock = clock
        self.name = name or worker_name()
        self.lease = lease
        self.batch = batch
        self.rng = rng

    # --- leases ---------------------------------------------------------------------------

    def acquire(self, client_id: int) -> bool:
        return queue.acquire_client(self.store, client_id, self.name, self.clock(),
                                    lease=self.lease)

    def release(self, client_id: int) -> None:
        queue.release_client(self.store, client_id, self.name)

    # --- processing -----------------------------------------------------------------------

    def full_reconcile(self, event_id: str, deadline: float | None) -> ResyncResult:
        """PreCronJob and DailyCronJob: the resync's bulk path (``vipgate resync``), from the
        WHMCS database when ``[whmcs] database_url`` is set, else the API's bulk lists."""
        source = make_source(self.engine)
        try:
            return Resync(self.engine, source, owner=self.name, clock=self.clock,
                          lease=self.lease).run(
                dry_run=False, deadline=deadline, event_id=event_id)
        finally:
            source.dispose()

    def run_once(self) -> list[Outcome]:
        """Claim a batch of due rows and process them; returns what happened to each."""
        rows = queue.claim(self.store, self.name, self.clock(), lease=self.lease,
                           limit=self.batch)
        return [self.process(row) for row in rows]

    def drain(self, max_rounds: int = 1000) -> list[Outcome]:
        """Process until nothing is due (demo and tests); deferred rows are retried."""
        outcomes: list[Outcome] = []
        for _ in range(max_rounds):
            batch = self.run_once()
            if not batch:
                break
            outcomes += batch
        return outcomes

    def run_forever(self, stop: threading.Event, idle_seconds: float = 0.5) -> None:
        log.info("worker %s started", self.name)
        while not stop.is_set():
            try:
                busy = self.run_once()
            except Exception:  # the database may be away for a while; keep the loop alive
                log.exception("worker %s: claiming failed", self.name)
                busy = []
            if not busy:
                stop.wait(idle_seconds)
        log.info("worker %s stopped", self.name)

    def process(self, row: InboxRow, *, deadline: float | None = None) -> Outcome:
        """Handle one claimed row and settle it (done, deferred, retrying or dead)."""
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
                    queue.defer(self.store, row.id, self.name, self.clock(), timedelta(0))
                    outcome.state = "deferred"
                    return outcome
                return self._complete(row, outcome)
            client_ids = self.engine.clients_for(subjects.clients, subjects.invoices,
                                                 subjects.tickets)
            busy = [c for c in client_ids if not self.acquire(c)]
            held = [c for c in client_ids if c not in busy]
            try:
                if busy:
                    queue.defer(self.store, row.id, self.name, self.clock(), BUSY_DELAY)
                    outcome.state = "deferred"
                    return outcome
                for client_id in held:
                    done = self.engine.reconcile_client(client_id, event_id=row.webhook_id)
                    outcome.clients += 1
                    outcome.changes += len(done.applied)
            finally:
                for client_id in held:
                    self.release(client_id)
            return self._complete(row, outcome)
        except Exception as exc:
            log.warning("event %s (%s) failed: %s", row.webhook_id, row.hook, exc,
                        exc_info=not isinstance(exc, ReconcileError | WhmcsError))
            return self._fail(row, outcome, f"{type(exc).__name__}: {exc}")

    def _complete(self, row: InboxRow, outcome: Outcome) -> Outcome:
        if not queue.complete(self.store, row.id, self.name, self.clock()):
            outcome.state = "lost"
        return outcome

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
