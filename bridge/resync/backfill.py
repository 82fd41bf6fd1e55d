"""``vipgate backfill``: the past delinquency episodes, reconstructed from WHMCS's invoices and
transactions (``bridge.policy.past_episodes.reconstruct``) and written in batches.

Idempotent: each client's backfilled episodes are matched by the day they opened and written
only where they differ, so a second run writes nothing; what the engine recorded itself
(episodes it opened, or backfilled ones it carried on) is never touched
(``PastEpisodeStore.write_past_episodes``). Clients whose backfilled episodes no longer follow
from WHMCS's history (the grace was changed, an invoice was edited) lose them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from zoneinfo import ZoneInfo

from bridge.policy.past_episodes import PastEpisode, reconstruct
from bridge.resync.history import HistoryDbReader, HistorySource
from bridge.settings import PolicySettings, Settings
from bridge.store import Store

BATCH = 2000  # clients written in one transaction
RANGE_CLIENTS = 25_000  # clients per range read in a child process


@dataclass
class BackfillResult:
    clients: int = 0  # clients with an invoice that may have been past the grace
    episodes: int = 0  # episodes reconstructed
    open: int = 0  # of which still open today
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    seconds: float = 0.0

    def summary(self) -> dict[str, object]:
        return {"clients": self.clients, "episodes": self.episodes, "open": self.open,
                "inserted": self.inserted, "updated": self.updated, "deleted": self.deleted,
                "seconds": round(self.seconds, 3)}


def _with_stored(found: Iterator[tuple[int, list[PastEpisode]]], stored: list[int]
                 ) -> Iterator[tuple[int, list[PastEpisode] | None]]:
    """Every client of ``found`` and of ``stored`` (clients with backfilled episodes; both
    by id), with its episodes (None: nothing past the grace any more in WHMCS's history)."""
    pending = iter(stored)
    nxt = next(pending, None)
    for client_id, episodes in found:
        while nxt is not None and nxt < client_id:
            yield nxt, None
            nxt = next(pending, None)
        if nxt == client_id:
            nxt = next(pending, None)
        yield client_id, episodes
    while nxt is not None:
        yield nxt, None
        nxt = next(pending, None)


def run_backfill(store: Store, settings: Settings, source: HistorySource, now: datetime, *,
                 on_progress: Callable[[int], None] | None = None,
                 processes: int | None = None) -> BackfillResult:
    """Reconstruct and write every client's past episodes as of ``now``. A database source
    is read and reconstructed in ``processes`` child processes (default ``[resync]
    processes``), one range of client ids each; this process writes."""
    started = time.monotonic()
    zone = ZoneInfo(settings.bridge.timezone)
    today = now.astimezone(zone).date()
    result = BackfillResult()

    @cache
    def day_start(day: date) -> datetime:
        return datetime.combine(day, datetime.min.time(), zone).astimezone(UTC)

    found: dict[int, list[PastEpisode]] = {}

    def flush() -> None:
        inserted, updated, deleted = store.write_past_episodes(found, day_start, now)
        result.inserted += inserted
        result.updated += updated
        result.deleted += deleted
        found.clear()

    for client_id, episodes in _with_stored(_reconstructed(source, settings, today, processes),
                                            store.backfilled_clients()):
        if episodes is not None:
            result.clients += 1
            if on_progress is not None:
                on_progress(1)
        episodes = episodes or []
        result.episodes += len(episodes)
        result.open += sum(1 for e in episodes if e.ended_on is None)
        found[client_id] = episodes
        if len(found) >= BATCH:
            flush()
    if found:
        flush()
    result.seconds = time.monotonic() - started
    return result


def _reconstructed(source: HistorySource, settings: Settings, today: date,
                   processes: int | None) -> Iterator[tuple[int, list[PastEpisode]]]:
    """(client id, its episodes) for every client of the source, by id."""
    workers = settings.resync.processes if processes is None else processes
    ranges = source.id_ranges(RANGE_CLIENTS) if isinstance(source, HistoryDbReader) \
        and workers > 1 else []
    if len(ranges) <= 1:
        for history in source.histories(settings.policy.grace_days, today):
            yield history.client_id, reconstruct(history, settings.policy, today)
        return
    import multiprocessing

    assert isinstance(source, HistoryDbReader)
    method = "fork" if threading.active_count() == 1 else "spawn"
    if method == "fork":
        source.dispose()  # no pooled connection crosses the fork
    jobs = [(source.reader.url, settings.policy, today, lo, hi) for lo, hi in ranges]
    with ProcessPoolExecutor(min(workers, len(ranges)),
                             mp_context=multiprocessing.get_context(method)) as pool:
        for part in pool.map(_range, jobs):
            yield from part


def _range(job: tuple[str, PolicySettings, date, int, int]
           ) -> list[tuple[int, list[PastEpisode]]]:
    """In a child process: the episodes of the clients with ids in [lo, hi]."""
    url, policy, today, lo, hi = job
    reader = HistoryDbReader(url)
    try:
        return [(h.client_id, reconstruct(h, policy, today))
                for h in reader.histories(policy.grace_days, today, id_range=(lo, hi))]
    finally:
        reader.dispose()
