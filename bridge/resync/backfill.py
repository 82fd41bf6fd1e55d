"""``vipgate backfill``: the past delinquency episodes, reconstructed from WHMCS's invoices and
transactions (``bridge.policy.episodes.reconstruct``) and written in batches.

Idempotent: each client's backfilled episodes are matched by the day they opened and written
only where they differ, so a second run writes nothing; what the engine recorded itself
(episodes it opened, or backfilled ones it carried on) is never touched
(``EpisodeStore.write_past_episodes``). Clients whose backfilled episodes no longer follow
from WHMCS's history (the grace was changed, an invoice was edited) lose them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from zoneinfo import ZoneInfo

from bridge.policy.episodes import ClientHistory, PastEpisode, reconstruct
from bridge.resync.history import HistorySource
from bridge.settings import Settings
from bridge.store import Store

BATCH = 2000  # clients written in one transaction


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


def _with_stored(histories: Iterator[ClientHistory],
                 stored: list[int]) -> Iterator[tuple[int, ClientHistory | None]]:
    """Every client of ``histories`` and of ``stored`` (clients with backfilled episodes;
    both by id), with its history (None: nothing late any more)."""
    pending = iter(stored)
    nxt = next(pending, None)
    for history in histories:
        while nxt is not None and nxt < history.client_id:
            yield nxt, None
            nxt = next(pending, None)
        if nxt == history.client_id:
            nxt = next(pending, None)
        yield history.client_id, history
    while nxt is not None:
        yield nxt, None
        nxt = next(pending, None)


def run_backfill(store: Store, settings: Settings, source: HistorySource, now: datetime, *,
                 on_progress: Callable[[int], None] | None = None) -> BackfillResult:
    """Reconstruct and write every client's past episodes as of ``now``."""
    started = time.monotonic()
    zone = ZoneInfo(settings.bridge.timezone)
    today = now.astimezone(zone).date()
    policy = settings.policy
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

    for client_id, history in _with_stored(source.histories(policy.grace_days, today),
                                           store.backfilled_clients()):
        episodes = [] if history is None else reconstruct(history, policy, today)
        if history is not None:
            result.clients += 1
            if on_progress is not None:
                on_progress(1)
        result.episodes += len(episodes)
        result.open += sum(1 for e in episodes if e.ended_on is None)
        found[client_id] = episodes
        if len(found) >= BATCH:
            flush()
    if found:
        flush()
    result.seconds = time.monotonic() - started
    return result
