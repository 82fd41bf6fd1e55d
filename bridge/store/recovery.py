"""The recovery figures' reads over the episode tables (``episode``, ``episode_action``,
``episode_payment``): set-based statements for a range of WHMCS days, whatever the number of
episodes — three for the episodes' figures, three for the trust unlocks'; the arithmetic
(shares, medians, breakdowns) is ``bridge.policy.recovery``.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa

from bridge import days
from bridge.policy.episodes import PAID_UP, SUSPENDED, UNLOCKED_BY_TRUST
from bridge.policy.recovery import (
    FIRST_ACTION_KINDS,
    UNKNOWN_GROUP,
    UNTAGGED,
    EpisodeFacts,
    PaidMoney,
    Recovery,
    UnlockFacts,
    first_action,
    recovery,
    unlock_until,
)
from bridge.store.database import Database
from bridge.store.tables import episode, episode_action, episode_payment, standing


class RecoveryStore(Database):
    def recovery(self, since: date, until: date, timezone: str) -> Recovery:
        """The recovery figures of WHMCS days ``since``..``until`` (``timezone``: WHMCS's, to
        tell the day of a suspension)."""
        if since > until:
            raise ValueError(f"the range's start {since} is after its end {until}")
        e, a, p = episode.c, episode_action.c, episode_payment.c
        start, end = days.day_bounds(since, timezone)[0], days.day_bounds(until, timezone)[1]
        suspended_in = (sa.select(a.episode_id.label("id")).where(a.kind == SUSPENDED)
                        .group_by(a.episode_id)
                        .having(sa.and_(sa.func.min(a.at) >= start, sa.func.min(a.at) < end)))
        # the episodes concerned: ended by payment, paid into, or first suspended in the range
        chosen = sa.union(
            sa.select(e.id.label("id")).where(e.how == PAID_UP, e.ended_on.between(since, until)),
            sa.select(p.episode_id.label("id")).where(p.paid_on.between(since, until)),
            suspended_in).subquery("chosen")
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(e.id, e.opened_on, e.ended_on, e.how, e.days, e.reason,
                          standing.c.group_id)
                .select_from(chosen.join(episode, e.id == chosen.c.id)
                             .outerjoin(standing, standing.c.client_id == e.client_id))).all()
            actions: dict[int, list[tuple[str, datetime, int]]] = {}
            for act in conn.execute(
                    sa.select(a.episode_id, a.kind, a.at, a.id)
                    .select_from(chosen.join(episode_action, a.episode_id == chosen.c.id))
                    .where(a.kind.in_(FIRST_ACTION_KINDS))):
                actions.setdefault(act.episode_id, []).append((act.kind, act.at, act.id))
            money = [PaidMoney(r.episode_id, r.paid_on, Decimal(r.amount), r.currency_prefix,
                               r.currency_suffix) for r in conn.execute(
                sa.select(p.episode_id, p.paid_on, sa.func.sum(p.amount).label("amount"),
                          e.currency_prefix, e.currency_suffix)
                .select_from(episode_payment.join(episode, e.id == p.episode_id))
                .where(p.paid_on.between(since, until))
                .group_by(p.episode_id, p.paid_on, e.currency_prefix, e.currency_suffix))]
            unlocks, unlock_money = self._unlocks(conn, start, end, timezone)
        facts = []
        for r in rows:
            mine = actions.get(r.id, [])
            suspensions = [at for kind, at, _id in mine if kind == SUSPENDED]
            facts.append(EpisodeFacts(
                r.id, r.opened_on, r.ended_on, r.how, r.days, first_action(mine),
                days.business_day(min(suspensions), timezone)
                if suspensions else None,
                UNKNOWN_GROUP if r.group_id is None else str(r.group_id),
                r.reason or UNTAGGED))
        return recovery(facts, money, since, until, unlocks, unlock_money)

    @staticmethod
    def _unlocks(conn: sa.Connection, start: datetime, end: datetime,
                 timezone: str) -> tuple[list[UnlockFacts], list[PaidMoney]]:
        """The episodes first unlocked by trust in ``start``..``end`` (naive UTC, half open):
        their unlock (the first: its day and detail), suspensions and payments of any day."""
        e, a, p = episode.c, episode_action.c, episode_payment.c
        unlocked = (sa.select(a.episode_id.label("id")).where(a.kind == UNLOCKED_BY_TRUST)
                    .group_by(a.episode_id)
                    .having(sa.and_(sa.func.min(a.at) >= start, sa.func.min(a.at) < end))
                    ).subquery("unlocked")
        ends = {r.id: r for r in conn.execute(
            sa.select(e.id, e.ended_on, e.how)
            .select_from(unlocked.join(episode, e.id == unlocked.c.id)))}
        first: dict[int, tuple[datetime, int, str]] = {}
        suspensions: dict[int, list[datetime]] = {}
        for act in conn.execute(
                sa.select(a.episode_id, a.kind, a.at, a.id, a.detail)
                .select_from(unlocked.join(episode_action, a.episode_id == unlocked.c.id))
                .where(a.kind.in_((UNLOCKED_BY_TRUST, SUSPENDED)))):
            if act.kind == SUSPENDED:
                suspensions.setdefault(act.episode_id, []).append(act.at)
            elif act.episode_id not in first or (act.at, act.id) < first[act.episode_id][:2]:
                first[act.episode_id] = (act.at, act.id, act.detail)
        money = [PaidMoney(r.episode_id, r.paid_on, Decimal(r.amount), r.currency_prefix,
                           r.currency_suffix) for r in conn.execute(
            sa.select(p.episode_id, p.paid_on, sa.func.sum(p.amount).label("amount"),
                      e.currency_prefix, e.currency_suffix)
            .select_from(unlocked.join(episode_payment, p.episode_id == unlocked.c.id)
                         .join(episode, e.id == p.episode_id))
            .group_by(p.episode_id, p.paid_on, e.currency_prefix, e.currency_suffix))]
        unlocks = [UnlockFacts(ident, at, days.business_day(at, timezone),
                               unlock_until(detail, ident), ends[ident].ended_on,
                               ends[ident].how, tuple(suspensions.get(ident, ())))
                   for ident, (at, _id, detail) in sorted(first.items()) if ident in ends]
        return unlocks, money
