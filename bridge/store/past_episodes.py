"""The backfilled delinquency episodes (``vipgate backfill``): written so that a second run
writes nothing, leaving alone what the engine recorded itself. The episode tables and their
live writes: ``bridge.store.episodes``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from bridge.policy.past_episodes import PastEpisode
from bridge.store.database import Database, utc_naive
from bridge.store.episodes import (
    BACKFILL,
    dump_tracked,
    insert_ignoring_open,
    payment_rows,
)
from bridge.store.tables import episode, episode_action, episode_payment

_COMPARED = ("open_client_id", "amount", "currency_prefix", "currency_suffix", "tracked",
             "recovered", "ended_on", "how", "days")


def _same(old: Any, values: Mapping[str, Any], paid: list[tuple[int, Decimal, date]],
          past: PastEpisode) -> bool:
    """Whether a backfilled row already says what was reconstructed (then it is not written
    again: a second run writes nothing)."""
    row = old._mapping
    for name in _COMPARED:
        stored = row[name]
        if isinstance(values[name], Decimal):
            stored = Decimal(stored)
        if stored != values[name]:
            return False
    return paid == [(p.invoice_id, p.amount, p.paid_on) for p in past.payments]


class PastEpisodeStore(Database):
    def write_past_episodes(self, found: Mapping[int, Sequence[PastEpisode]],
                            day_start: Callable[[date], datetime], now: datetime
                            ) -> tuple[int, int, int]:
        """Make the backfilled episodes of these clients what ``found`` says, in one
        transaction: (inserted, updated, deleted).

        Matched by (client, day opened) among the backfilled rows the engine has not carried
        on (``live``): those are vipgate's own record and stay as they are, as does anything
        reconstructed on or after the first day the engine opened an episode of the client.
        A reconstructed open episode is inserted only when the client has none open. A
        backfilled row no longer reconstructed is deleted, unless staff tagged its reason.
        ``day_start``: the moment a day began in WHMCS's time zone (opened_at, ended_at)."""
        c, pc = episode.c, episode_payment.c
        with self.engine.begin() as conn:
            # the clients come by id: one range scan of ix_episode_client_opened, the
            # columns compared only
            rows = conn.execute(sa.select(
                c.id, c.client_id, c.opened_on, c.source, c.live, c.reason,
                *(c[name] for name in _COMPARED if name != "opened_on"))
                .where(c.client_id.between(min(found), max(found)))).all()
            rows = [r for r in rows if r.client_id in found]
            mine: dict[tuple[int, date], Any] = {}
            cutoff: dict[int, date] = {}
            has_open = {r.client_id for r in rows if r.open_client_id is not None}
            for r in rows:
                if r.source == BACKFILL and not r.live:
                    mine[r.client_id, r.opened_on] = r
                else:
                    cutoff[r.client_id] = min(cutoff.get(r.client_id, date.max), r.opened_on)
            paid: dict[int, list[tuple[int, Decimal, date]]] = {}
            if mine:
                for p in conn.execute(sa.select(pc.episode_id, pc.invoice_id, pc.amount,
                                                pc.paid_on)
                                      .where(pc.episode_id.in_([r.id for r in mine.values()]))
                                      .order_by(pc.paid_on, pc.id)):
                    paid.setdefault(p.episode_id, []).append(
                        (p.invoice_id, Decimal(p.amount), p.paid_on))
            wanted: set[tuple[int, date]] = set()
            fresh: list[tuple[dict[str, Any], PastEpisode]] = []
            changed: list[tuple[Any, dict[str, Any], PastEpisode]] = []
            for client_id, episodes in found.items():
                for past in episodes:
                    if past.opened_on >= cutoff.get(client_id, date.max):
                        continue
                    key = (client_id, past.opened_on)
                    values = self._past_values(past, day_start, now)
                    old = mine.get(key)
                    if old is None and past.ended_on is None and client_id in has_open:
                        continue
                    wanted.add(key)
                    if old is None:
                        fresh.append((values, past))
                    elif not _same(old, values, paid.get(old.id, []), past):
                        if old.open_client_id is None and past.ended_on is None \
                                and client_id in has_open:
                            values["open_client_id"] = None
                        changed.append((old, values, past))
            if fresh:
                insert_ignoring_open(conn, [values for values, _ in fresh])
                ids = {(r.client_id, r.opened_on): r.id for r in conn.execute(
                    sa.select(c.id, c.client_id, c.opened_on).where(
                        c.client_id.in_({v["client_id"] for v, _ in fresh}),
                        c.source == BACKFILL, c.live == sa.false()))}
                payments = [row for values, past in fresh
                            if (values["client_id"], past.opened_on) in ids
                            for row in payment_rows(ids[values["client_id"], past.opened_on],
                                                     past.client_id, past.payments)]
                if payments:
                    conn.execute(episode_payment.insert(), payments)
            for old, values, past in changed:
                conn.execute(episode.update().where(c.id == old.id).values(
                    {k: v for k, v in values.items() if k != "opened_at"}))
                conn.execute(episode_payment.delete().where(pc.episode_id == old.id))
                if past.payments:
                    conn.execute(episode_payment.insert(),
                                 payment_rows(old.id, past.client_id, past.payments))
            gone = [r.id for key, r in mine.items() if key not in wanted and r.reason is None]
            if gone:
                conn.execute(episode_payment.delete().where(pc.episode_id.in_(gone)))
                conn.execute(episode_action.delete().where(
                    episode_action.c.episode_id.in_(gone)))
                conn.execute(episode.delete().where(c.id.in_(gone)))
        return len(fresh), len(changed), len(gone)

    @staticmethod
    def _past_values(past: PastEpisode, day_start: Callable[[date], datetime],
                     now: datetime) -> dict[str, Any]:
        return {"client_id": past.client_id,
                "open_client_id": past.client_id if past.ended_on is None else None,
                "opened_at": utc_naive(day_start(past.opened_on)), "opened_on": past.opened_on,
                "amount": past.amount, "currency_prefix": past.currency_prefix[:16],
                "currency_suffix": past.currency_suffix[:16],
                "tracked": dump_tracked(past.tracked), "standing": "overdue",
                "recovered": past.recovered, "written_off": Decimal(0),
                "ended_at": None if past.ended_on is None
                else utc_naive(day_start(past.ended_on)),
                "ended_on": past.ended_on, "how": past.how, "days": past.days,
                "source": BACKFILL, "live": False, "updated_at": utc_naive(now)}

    def backfilled_clients(self) -> list[int]:
        """The clients with backfilled episodes the engine has not carried on, by id."""
        c = episode.c
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(c.client_id).distinct().where(
                c.source == BACKFILL, c.live == sa.false()).order_by(c.client_id)).scalars())
