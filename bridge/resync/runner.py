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
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from bridge.engine.plan import Change, ClientPlan, plan_client
from bridge.engine.reconcile import Engine
from bridge.model import CachedStanding, ClientMemory, TicketMemory
from bridge.policy import episodes
from bridge.policy.state import Invoice, Promise
from bridge.resync.snapshot import ClientSnapshot, Source, SplitSource, Window, merge
from bridge.settings import Settings
from bridge.store import Store, snapshots
from bridge.store import inbox as queue
from bridge.whmcs import WhmcsError

log = logging.getLogger("vipgate.resync")

BATCH = 20  # clients read again, leased and applied together
BOOKKEEPING_BATCH = 1000
RANGE_CLIENTS = 50_000  # clients per range when scanning in several processes


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


@dataclass
class _Scanned:
    """A client as the scan planned it, with what vipgate had stored."""

    snapshot: ClientSnapshot
    plan: ClientPlan
    memory: ClientMemory
    tickets: dict[int, TicketMemory]
    cached: CachedStanding | None
    episode: episodes.OpenEpisode | None = None  # the client's open episode
    # how the client's episode moves with the plan (opened, paid into, ended)
    episode_step: episodes.EpisodeStep = episodes.NO_STEP
    episode_invoices: tuple[Invoice, ...] = ()  # its invoices the read left out (applying)


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
        self.range_size = RANGE_CLIENTS
        self.start_method: str | None = None  # None: fork unless threads run, then spawn
        self._read_lock = threading.Lock()

    # --- planning -----------------------------------------------------------------------------

    def window(self, now: datetime) -> Window:
        return Window.of(self.engine.today(now), self.settings.policy)

    def scan(self, client_ids: Iterable[int] | None = None, *,
             now: datetime | None = None, id_range: tuple[int, int] | None = None,
             with_cache: bool = True) -> Iterator[_Scanned]:
        """Every client's plan (or those of ``client_ids``, or with ids in ``id_range``,
        bounds included), in client id order. ``with_cache`` False skips reading the standing
        cache (a dry run does not compare it)."""
        now = now or self.engine.now()
        window = self.window(now)
        ids = None if client_ids is None else sorted(set(client_ids))
        promises = self.store.promises()
        store = self.store
        if id_range is None:
            snapshots = self.source.scan(window, ids)
        elif isinstance(self.source, SplitSource):
            snapshots = self.source.scan(window, id_range=id_range)
        else:
            raise TypeError(f"the {self.source.name} source cannot scan a range of client ids")
        rows = merge(snapshots,
                     store.iter_memories(ids, id_range=id_range),
                     store.iter_ticket_memories(ids, id_range=id_range),
                     store.iter_standings(ids, id_range=id_range) if with_cache else (),
                     store.iter_open_episodes(ids, id_range=id_range) if with_cache else (),
                     key=_client_id)
        for snapshot, memories, tickets, cached, opened in rows:
            yield self._plan(snapshot, memories[0] if memories else None,
                             {t.ticket_id: t for t in tickets},
                             cached[0] if cached else None, promises, window, now,
                             opened[0] if opened else None)

    def _plan(self, snapshot: ClientSnapshot, memory: ClientMemory | None,
              tickets: dict[int, TicketMemory], cached: CachedStanding | None,
              promises: dict[int, tuple], window: Window, now: datetime,
              episode: episodes.OpenEpisode | None = None) -> _Scanned:
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
        moves = episodes.step(episode, client, plan.standing, window.today, now)
        return _Scanned(snapshot, plan, memory, tickets, cached, episode, moves)

    # --- running ------------------------------------------------------------------------------

    def run(self, *, dry_run: bool, client_ids: Iterable[int] | None = None,
            deadline: float | None = None, event_id: str | None = None,
            on_change: Callable[[PlannedChange], None] | None = None,
            on_progress: Callable[[int], None] | None = None) -> ResyncResult:
        """Plan, and unless ``dry_run`` apply. ``deadline`` (``time.monotonic()``) stops the
        scan and the applying (the result is then not ``complete``); ``on_change`` sees every
        planned (dry run) or attempted change, ``on_progress`` how many clients were just
        scanned. Applying to everyone is recorded for the admin page, and a complete run
        takes the day's delinquency snapshot (``bridge.store.snapshots``)."""
        started = time.monotonic()
        result = ResyncResult(dry_run, self.source.name)
        now = self.engine.now()
        tally = _Tally(dry_run, self.settings.policy.vip_group_id, on_change)
        ranges = self._ranges(client_ids)
        if ranges is None:
            for scanned in self.scan(client_ids, now=now, with_cache=not dry_run):
                if deadline is not None and time.monotonic() > deadline:
                    tally.complete = False
                    break
                tally.add(scanned)
                if on_progress:
                    on_progress(1)
                if tally.bookkeeping_due:
                    self._bookkeeping(tally, now)
        else:
            for part in self._scan_in_processes(ranges, now, dry_run, deadline):
                tally.merge(part)
                if on_progress:
                    on_progress(part.clients)
                self._bookkeeping(tally, now)
        tally.into(result)
        if not dry_run:
            self._bookkeeping(tally, now)
            result.recorded, result.cached = tally.recorded, tally.cached
            self._apply(tally.work, result, deadline=deadline, event_id=event_id,
                        on_change=on_change)
        result.seconds = time.monotonic() - started
        if client_ids is None and not dry_run:
            self._record_full_run(result)
        return result

    def _record_full_run(self, result: ResyncResult) -> None:
        """After applying to everyone: the run is kept for the admin page, and a complete
        run takes the day's delinquency snapshot from the refreshed standing cache."""
        snapshots.record_full_reconcile(self.store, self.clock(), clients=result.clients,
                                        applied=result.applied, failed=result.failed,
                                        complete=result.complete)
        if result.complete:
            now = self.engine.now()
            snapshots.take_snapshot(self.store, self.engine.today(now), now,
                                    self.settings.policy.vip_group_id,
                                    timezone=self.settings.bridge.timezone)

    # --- scanning in several processes (the database source, everyone) ------------------------

    def _ranges(self, client_ids: Iterable[int] | None) -> list[tuple[int, int]] | None:
        """Client id ranges to scan in separate processes, or None to scan here."""
        processes = self.settings.resync.processes
        if client_ids is not None or processes <= 1 or not isinstance(self.source, SplitSource):
            return None
        ranges = self.source.id_ranges(self.range_size)
        return ranges if len(ranges) > 1 else None

    def _scan_in_processes(self, ranges: list[tuple[int, int]], now: datetime, dry_run: bool,
                           deadline: float | None) -> Iterator[_Tally]:
        """Each range planned in a child process (the driver's row decoding and the policy
        are CPU-bound Python: one core each); parts come back in client id order."""
        import multiprocessing

        # fork is cheap, but not safe once threads run (a served bridge); spawn then
        method = self.start_method or ("fork" if threading.active_count() == 1 else "spawn")
        context = multiprocessing.get_context(method)
        if method == "fork":
            # No pooled connection may be inherited: a child closing it would close the
            # parent's session too. Both engines reconnect when next used.
            self.source.dispose()
            self.store.engine.dispose()
        url = self.source.url if isinstance(self.source, SplitSource) else ""
        job = _Job(self.settings, url, now, dry_run, deadline)
        workers = min(self.settings.resync.processes, len(ranges))
        log.info("scanning %d client id ranges in %d %s processes", len(ranges), workers,
                 method)
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            yield from pool.map(_scan_range, [(job, lo, hi) for lo, hi in ranges])

    def _bookkeeping(self, tally: _Tally, now: datetime) -> None:
        if tally.dry_run:
            return
        tally.recorded += self.store.add_memories(tally.first_seen, now)
        self.store.open_episodes(tally.openings, now)
        tally.openings.clear()
        tally.cached += self.store.put_standings(tally.caches, older_than=now)
        tally.first_seen.clear()
        tally.caches.clear()

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
            for scanned in self._read_again(held):
                cid = scanned.plan.client_id
                seen.add(cid)
                if deadline is not None and time.monotonic() > deadline:
                    with lock:
                        result.complete = False
                    return
                self._apply_one(scanned.plan, report, event_id, result, lock,
                                scanned.episode_invoices)
            with lock:
                result.gone += len(set(held) - seen)
        finally:
            for cid in held:
                queue.release_client(self.store, cid, self.owner)

    def _read_again(self, ids: list[int]) -> list[_Scanned]:
        """A batch read again and planned, with the invoices of open episodes the read left
        out. The database source's batches are read one at a time and in full before they are
        applied: each read holds a pooled connection per query, and ``concurrency`` batches
        reading at once would exhaust the reader's pool."""
        def read() -> list[_Scanned]:
            return [replace(scanned, episode_invoices=self._episode_invoices(scanned))
                    for scanned in self.scan(ids)]

        if not isinstance(self.source, SplitSource):
            return read()
        with self._read_lock:
            return read()

    def _episode_invoices(self, scanned: _Scanned) -> tuple[Invoice, ...]:
        """The open episode's invoices the source's bulk read left out (paid or cancelled
        since: the database source reads only what is owed), read one by one."""
        episode = scanned.episode
        if episode is None:
            return ()
        read = {inv.id for inv in scanned.snapshot.client.invoices}
        missing = sorted(set(episode.tracked) - read)
        return self.source.invoices(missing) if missing else ()

    def _apply_one(self, plan: ClientPlan, report: Callable[[PlannedChange], None],
                   event_id: str | None, result: ResyncResult, lock: threading.Lock,
                   episode_invoices: tuple[Invoice, ...] = ()) -> None:
        applied: list[Change] = []
        try:
            self.engine.apply(plan, event_id=event_id, applied=applied,
                              episode_invoices=episode_invoices)
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


class _Tally:
    """What a scan adds up to: counts, the changes (dry run), the clients to apply under
    their leases, and the bulk bookkeeping. Picklable: a child process returns one."""

    def __init__(self, dry_run: bool, vip_group_id: int,
                 on_change: Callable[[PlannedChange], None] | None = None) -> None:
        self.dry_run, self.vip = dry_run, str(vip_group_id)
        self.on_change = on_change
        self.changes: list[PlannedChange] | None = None  # kept when nobody listens
        self.clients = self.in_vip = self.recorded = self.cached = 0
        self.standing: Counter[str] = Counter()
        self.planned: Counter[str] = Counter()
        self.work: list[int] = []
        self.first_seen: list[ClientMemory] = []
        self.openings: list[tuple[int, episodes.EpisodeStep]] = []  # episodes opened in bulk
        self.caches: list[CachedStanding] = []
        self.complete = True

    def add(self, scanned: _Scanned) -> None:
        plan = scanned.plan
        self.clients += 1
        self.standing[plan.standing.kind] += 1
        self.in_vip += plan.decision.in_vip
        for change in plan.changes:
            self.planned[change.kind] += 1
            if change.kind == "group":
                self.planned["vip_in" if change.after == self.vip else "vip_out"] += 1
            if self.dry_run:
                self._report(PlannedChange.of(change))
        if self.dry_run:
            return
        if _needs_lease(scanned):
            self.work.append(plan.client_id)
            return
        if not scanned.memory.known:
            self.first_seen.append(plan.memory_after)
        if scanned.episode_step.changed:  # an opening only (anything else takes the lease)
            self.openings.append((plan.client_id, scanned.episode_step))
        if _cache_differs(scanned.cached, plan.cache):
            self.caches.append(plan.cache)

    def _report(self, change: PlannedChange) -> None:
        if self.on_change is not None:
            self.on_change(change)
        elif self.changes is not None:
            self.changes.append(change)

    @property
    def bookkeeping_due(self) -> bool:
        return (len(self.first_seen) >= BOOKKEEPING_BATCH or len(self.caches) >= BOOKKEEPING_BATCH
                or len(self.openings) >= BOOKKEEPING_BATCH)

    def merge(self, part: _Tally) -> None:
        self.clients += part.clients
        self.in_vip += part.in_vip
        self.standing.update(part.standing)
        self.planned.update(part.planned)
        for change in part.changes or ():
            self._report(change)
        self.work += part.work
        self.first_seen += part.first_seen
        self.openings += part.openings
        self.caches += part.caches
        self.complete = self.complete and part.complete

    def into(self, result: ResyncResult) -> None:
        result.clients, result.in_vip = self.clients, self.in_vip
        result.standing, result.planned = self.standing, self.planned
        result.complete = self.complete

    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "on_change": None}


@dataclass(frozen=True)
class _Job:
    settings: Settings
    source_url: str
    now: datetime
    dry_run: bool
    deadline: float | None


_CHILD: dict[str, Resync] = {}


def _scan_range(task: tuple[_Job, int, int]) -> _Tally:
    """In a child process: plan the clients with ids in [lo, hi] (reads only)."""
    from bridge.resync.source_db import WhmcsDbReader

    job, lo, hi = task
    resync = _CHILD.get("resync")
    if resync is None:
        store = Store(job.settings.bridge.database_url)
        engine = Engine(job.settings, store, whmcs=_no_api, now=lambda: job.now)
        resync = _CHILD["resync"] = Resync(engine, WhmcsDbReader(job.source_url))
    tally = _Tally(job.dry_run, job.settings.policy.vip_group_id)
    tally.changes = []
    for scanned in resync.scan(now=job.now, id_range=(lo, hi), with_cache=not job.dry_run):
        if job.deadline is not None and time.monotonic() > job.deadline:
            tally.complete = False
            break
        tally.add(scanned)
    return tally


def _no_api() -> Any:
    raise RuntimeError("a scanning process does not call WHMCS's API")


class _OfClient(Protocol):
    """A row of vipgate's memory about one client (ClientMemory, TicketMemory, ...)."""

    @property
    def client_id(self) -> int: ...


def _client_id(row: ClientSnapshot | _OfClient) -> int:
    if isinstance(row, ClientSnapshot):
        return row.client.id
    return row.client_id


def _needs_lease(scanned: _Scanned) -> bool:
    """Whether applying this client needs more than first-sight bookkeeping, the cache and
    an episode's opening: a WHMCS write, a staff decision to record, or remembered state that
    moves (an episode paid into or ended among it)."""
    plan = scanned.plan
    step = scanned.episode_step
    if plan.changes or plan.observations or (step.changed and step.opening is None):
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
