"""``Resync``: plan every client from one bulk scan, then apply only the diffs.

The scan streams the source's snapshots (``bridge.resync.snapshot``) next to vipgate's own
memory, read in the same client order, and runs the engine's pure ``plan_client`` on each: the
plan is the one an event would have produced. Nothing is held per client beyond the current
one, except the ids of the clients that need a write.

Applying (not ``dry_run``):

- clients that need a WHMCS write, or whose remembered state moves for a reason other than a
  first sighting, are done one small batch at a time under their leases, ``concurrency``
  batches at once: the batch is read again from the source (the scan may be seconds old; an
  event may have been handled meanwhile), planned again and applied through
  ``Engine.apply``, which stores each intent first, audits every change, and is throttled to
  ``rate_per_second`` WHMCS writes;
- clients seen for the first time, with nothing to write, get their memory in bulk, and the
  standing cache is refreshed in bulk where it changed.

An interrupted run leaves every client either done or untouched (or with an intent the next
reconcile settles), so running again finishes the work, and a run right after a complete one
finds nothing to write.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from bridge import queue
from bridge.engine.plan import Change, ClientPlan, plan_client
from bridge.engine.reconcile import Engine
from bridge.model import CachedStanding, ClientMemory, TicketMemory
from bridge.policy.state import Promise
from bridge.resync.snapshot import ClientSnapshot, Source, Window, merge
from bridge.whmcs import WhmcsError

log = logging.getLogger("vipgate.resync")

BATCH = 20  # clients read again, leased and applied together
BOOKKEEPING_BATCH = 1000


@dataclass(frozen=True)
class PlannedChange:
    """One line of the plan or result (``vipgate resync`` prints these)."""

    client_id: int
    kind: str  # group | ticket_priority | ticket_note
    ticket_id: int | None
    before: str | None
    after: str | None
    reasons: tuple[str, ...]
    applied: bool = False
    error: str | None = None

    @classmethod
    def of(cls, change: Change, *, applied: bool = False,
           error: str | None = None) -> PlannedChange:
        return cls(change.client_id, change.kind, change.ticket_id, change.before,
                   change.after, change.reasons, applied, error)

    def as_json(self) -> dict[str, object]:
        def value(text: str | None) -> object:
            if self.kind == "group" and text is not None:
                return int(text)
            return text
        return {"client_id": self.client_id, "kind": self.kind, "ticket_id": self.ticket_id,
                "from": value(self.before), "to": value(self.after),
                "reasons": list(self.reasons), "applied": self.applied,
                **({"error": self.error} if self.error else {})}


@dataclass
class ResyncResult:
    dry_run: bool
    source: str
    clients: int = 0
    standing: Counter[str] = field(default_factory=Counter)
    in_vip: int = 0  # clients the plan keeps or puts in VIP
    planned: Counter[str] = field(default_factory=Counter)  # by kind (+ vip_in / vip_out)
    applied: int = 0
    failed: int = 0
    busy: int = 0  # held by a worker at the time (it reconciles them anyway)
    gone: int = 0  # no longer in WHMCS when read again
    recorded: int = 0  # first-seen clients remembered in bulk
    cached: int = 0  # standing cache rows refreshed in bulk
    complete: bool = True  # False: stopped at the deadline
    failures: list[tuple[int, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> dict[str, object]:
        return {"source": self.source, "dry_run": self.dry_run, "clients": self.clients,
                "standing": {k: self.standing.get(k, 0)
                             for k in ("current", "overdue", "suspended")},
                "in_vip": self.in_vip,
                "changes": {k: self.planned.get(k, 0)
                            for k in ("group", "vip_in", "vip_out", "ticket_priority",
                                      "ticket_note")},
                "applied": self.applied, "failed": self.failed, "busy": self.busy,
                "gone": self.gone, "complete": self.complete,
                "seconds": round(self.seconds, 3)}


class RateLimiter:
    """At most ``rate`` calls per second across threads (evenly spaced)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = 1.0 / rate
        self.clock, self.sleep = clock, sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            now = self.clock()
            at = max(now, self._next)
            self._next = at + self.interval
        if at > now:
            self.sleep(at - now)


@dataclass
class _Scanned:
    """A client as the scan planned it, with what vipgate had stored."""

    snapshot: ClientSnapshot
    plan: ClientPlan
    memory: ClientMemory
    tickets: dict[int, TicketMemory]
    cached: CachedStanding | None


class Resync:
    """A whole (or partial) reconcile from one source."""

    def __init__(self, engine: Engine, source: Source, *, owner: str = "resync",
                 lease: timedelta = timedelta(minutes=5),
                 clock: Callable[[], datetime] | None = None,
                 concurrency: int | None = None) -> None:
        self.engine, self.source = engine, source
        self.store, self.settings = engine.store, engine.settings
        self.owner = owner
        self.lease = lease
        self.clock = clock or engine.now  # the leases' clock
        self.concurrency = concurrency or self.settings.resync.concurrency

    # --- planning -----------------------------------------------------------------------------

    def window(self, now: datetime) -> Window:
        return Window.of(self.engine.today(now), self.settings.policy)

    def scan(self, client_ids: Iterable[int] | None = None, *,
             now: datetime | None = None) -> Iterator[_Scanned]:
        """Every client's plan (or those of ``client_ids``), in client id order."""
        now = now or self.engine.now()
        window = self.window(now)
        ids = None if client_ids is None else sorted(set(client_ids))
        promises = self.store.promises()
        rows = merge(self.source.scan(window, ids),
                     self.store.iter_memories(ids), self.store.iter_ticket_memories(ids),
                     self.store.iter_standings(ids),
                     key=_client_id)
        for snapshot, memories, tickets, cached in rows:
            yield self._plan(snapshot, memories[0] if memories else None,
                             {t.ticket_id: t for t in tickets},
                             cached[0] if cached else None, promises, window, now)

    def _plan(self, snapshot: ClientSnapshot, memory: ClientMemory | None,
              tickets: dict[int, TicketMemory], cached: CachedStanding | None,
              promises: dict[int, tuple], window: Window, now: datetime) -> _Scanned:
        client = snapshot.client
        memory = memory or ClientMemory(client.id)
        promise = promises.get(client.id)
        if promise is not None:
            client = replace(client, promise=Promise(*promise))
        settings = self.settings
        plan = plan_client(client, snapshot.tickets, memory, tickets, settings.policy,
                           settings.tickets, settings.bridge.language, window.today, now)
        if not snapshot.language_known:
            plan = replace(plan, cache=replace(
                plan.cache, language=cached.language if cached else None))
        return _Scanned(snapshot, plan, memory, tickets, cached)

    # --- running ------------------------------------------------------------------------------

    def run(self, *, dry_run: bool, client_ids: Iterable[int] | None = None,
            deadline: float | None = None, event_id: str | None = None,
            on_change: Callable[[PlannedChange], None] | None = None,
            on_client: Callable[[int], None] | None = None) -> ResyncResult:
        """Plan, and unless ``dry_run`` apply. ``deadline`` (``time.monotonic()``) stops the
        scan and the applying (the result is then not ``complete``); ``on_change`` sees every
        planned (dry run) or attempted change, ``on_client`` every client scanned."""
        started = time.monotonic()
        result = ResyncResult(dry_run, self.source.name)
        now = self.engine.now()
        work: list[int] = []
        first_seen: list[ClientMemory] = []
        caches: list[CachedStanding] = []
        for scanned in self.scan(client_ids, now=now):
            if deadline is not None and time.monotonic() > deadline:
                result.complete = False
                break
            plan = scanned.plan
            result.clients += 1
            result.standing[plan.standing.kind] += 1
            result.in_vip += plan.decision.in_vip
            for change in plan.changes:
                result.planned[change.kind] += 1
                if change.kind == "group":
                    vip = str(self.settings.policy.vip_group_id)
                    result.planned["vip_in" if change.after == vip else "vip_out"] += 1
                if dry_run and on_change:
                    on_change(PlannedChange.of(change))
            if on_client:
                on_client(plan.client_id)
            if dry_run:
                continue
            if _needs_lease(scanned):
                work.append(plan.client_id)
                continue
            if not scanned.memory.known:
                first_seen.append(plan.memory_after)
            if _cache_differs(scanned.cached, plan.cache):
                caches.append(plan.cache)
            if len(first_seen) >= BOOKKEEPING_BATCH or len(caches) >= BOOKKEEPING_BATCH:
                self._bookkeeping(first_seen, caches, now, result)
        if not dry_run:
            self._bookkeeping(first_seen, caches, now, result)
            self._apply(work, result, deadline=deadline, event_id=event_id,
                        on_change=on_change)
        result.seconds = time.monotonic() - started
        return result

    def _bookkeeping(self, first_seen: list[ClientMemory], caches: list[CachedStanding],
                     now: datetime, result: ResyncResult) -> None:
        result.recorded += self.store.add_memories(first_seen, now)
        result.cached += self.store.put_standings(caches, older_than=now)
        first_seen.clear()
        caches.clear()

    def _apply(self, work: list[int], result: ResyncResult, *, deadline: float | None,
               event_id: str | None,
               on_change: Callable[[PlannedChange], None] | None) -> None:
        lock = threading.Lock()
        batches = [work[n:n + BATCH] for n in range(0, len(work), BATCH)]

        def report(change: PlannedChange) -> None:
            with lock:
                if change.applied:
                    result.applied += 1
                elif change.error:
                    result.failed += 1
                if on_change:
                    on_change(change)

        def run_batch(ids: list[int]) -> None:
            if deadline is not None and time.monotonic() > deadline:
                with lock:
                    result.complete = False
                return
            self._apply_batch(ids, result, lock, report, deadline, event_id)

        if self.concurrency <= 1 or len(batches) <= 1:
            for ids in batches:
                run_batch(ids)
            return
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="vipgate-resync") as pool:
            list(pool.map(run_batch, batches))

    def _apply_batch(self, ids: list[int], result: ResyncResult, lock: threading.Lock,
                     report: Callable[[PlannedChange], None], deadline: float | None,
                     event_id: str | None) -> None:
        held = [cid for cid in ids if queue.acquire_client(
            self.store, cid, self.owner, self.clock(), lease=self.lease)]
        with lock:
            result.busy += len(ids) - len(held)
        try:
            if not held:
                return
            seen = set()
            for scanned in self.scan(held):
                cid = scanned.plan.client_id
                seen.add(cid)
                if deadline is not None and time.monotonic() > deadline:
                    with lock:
                        result.complete = False
                    return
                self._apply_one(scanned.plan, report, event_id, result, lock)
            with lock:
                result.gone += len(set(held) - seen)
        finally:
            for cid in held:
                queue.release_client(self.store, cid, self.owner)

    def _apply_one(self, plan: ClientPlan, report: Callable[[PlannedChange], None],
                   event_id: str | None, result: ResyncResult, lock: threading.Lock) -> None:
        applied: list[Change] = []
        try:
            self.engine.apply(plan, event_id=event_id, applied=applied)
        except WhmcsError as exc:
            failed = next((c for c in plan.changes if c not in applied), None)
            for change in applied:
                report(PlannedChange.of(change, applied=True))
            if failed is not None:
                report(PlannedChange.of(failed, error=str(exc)))
            with lock:
                result.failures.append((plan.client_id, str(exc)))
            log.warning("client %s: %s", plan.client_id, exc)
            return
        for change in applied:
            report(PlannedChange.of(change, applied=True))


def _client_id(row: object) -> int:
    if isinstance(row, ClientSnapshot):
        return row.client.id
    return row.client_id  # type: ignore[attr-defined, no-any-return]


def _needs_lease(scanned: _Scanned) -> bool:
    """Whether applying this client needs more than first-sight bookkeeping and the cache:
    a WHMCS write, a staff decision to record, or remembered state that moves."""
    plan = scanned.plan
    if plan.changes or plan.observations:
        return True
    memory = scanned.memory
    if memory.known and plan.memory_after != memory:
        return True
    if not memory.known and plan.memory_after != ClientMemory(
            memory.client_id, known=True, last_group_id=plan.memory_after.last_group_id,
            home_group_id=plan.memory_after.home_group_id):
        return True
    for ticket_id, record in plan.tickets.items():
        if record != scanned.tickets.get(ticket_id, TicketMemory(ticket_id, record.client_id)):
            return True
    return False


def _cache_differs(old: CachedStanding | None, new: CachedStanding) -> bool:
    return old is None or replace(old, updated_at=new.updated_at) != new
