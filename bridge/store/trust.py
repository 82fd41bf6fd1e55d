"""Trust unlocks (``trust_unlock``): what a client unlocked from the client-area banner, until
when, and how it ended. The rules are ``bridge.policy.trust``'s; the WHMCS calls are
``bridge.engine.trust``'s.

An unlock is written in two steps around the WHMCS calls, as the engine's other writes: first
the intent (:meth:`TrustStore.begin_unlock`, state ``pending``: the unique
``open_episode_id`` keeps a second request for the same episode out), then the outcome:
:meth:`TrustStore.finish_unlock` (``applied``, in one transaction with the episode's
``unlocked_by_trust`` action and the audit row) or :meth:`TrustStore.fail_unlock`
(``failed``: nothing of it counts, the episode may be unlocked again).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from bridge.model import AuditEntry
from bridge.policy.episodes import Action
from bridge.store.audit import audit_rows
from bridge.store.database import Database, utc_naive
from bridge.store.episodes import action_row
from bridge.store.tables import audit, episode, episode_action, trust_unlock

PENDING, APPLIED, FAILED = "pending", "applied", "failed"


@dataclass(frozen=True)
class TrustUnlock:
    id: int
    client_id: int
    episode_id: int
    unlocked_at: datetime  # aware UTC
    unlocked_on: date
    until: date
    service_ids: tuple[int, ...]
    state: str
    cleared_at: datetime | None
    outcome: str | None
    # the episode as it is now (read with the unlock by unlocks_to_settle)
    episode_ended_on: date | None = None
    episode_how: str | None = None


def _ids(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in (text or "").split(",") if p.strip().isdigit())


def dump_ids(ids: Sequence[int]) -> str:
    return ",".join(str(i) for i in ids)[:255]


def _unlock(row: Any) -> TrustUnlock:
    mapping = row._mapping
    return TrustUnlock(row.id, row.client_id, row.episode_id,
                       row.unlocked_at.replace(tzinfo=UTC), row.unlocked_on, row.until,
                       _ids(row.service_ids), row.state,
                       None if row.cleared_at is None else row.cleared_at.replace(tzinfo=UTC),
                       row.outcome, mapping.get("ended_on"), mapping.get("how"))


class TrustStore(Database):
    def begin_unlock(self, client_id: int, episode_id: int, until: date,
                     service_ids: Sequence[int], now: datetime, today: date) -> int | None:
        """Record the intent to unlock (``pending``); None when the episode already has an
        unlock (pending or applied): another request came first."""
        try:
            with self.engine.begin() as conn:
                done = conn.execute(trust_unlock.insert().values(
                    client_id=client_id, episode_id=episode_id, open_episode_id=episode_id,
                    unlocked_at=utc_naive(now), unlocked_on=today, until=until,
                    service_ids=dump_ids(service_ids), state=PENDING))
        except sa.exc.IntegrityError:
            return None
        key = done.inserted_primary_key
        assert key is not None
        return int(key[0])

    def finish_unlock(self, unlock_id: int, overridden: Sequence[int], action: Action,
                      entry: AuditEntry) -> None:
        """The unlock landed: ``applied`` with the services whose override vipgate set, the
        episode's ``unlocked_by_trust`` action and the audit row, in one transaction."""
        with self.engine.begin() as conn:
            row = conn.execute(trust_unlock.select().where(
                trust_unlock.c.id == unlock_id)).one()
            conn.execute(trust_unlock.update().where(trust_unlock.c.id == unlock_id).values(
                state=APPLIED, service_ids=dump_ids(overridden), unlocked_at=utc_naive(
                    action.at)))
            conn.execute(episode_action.insert(),
                         [action_row(row.episode_id, row.client_id, action)])
            conn.execute(audit.insert(), audit_rows([entry]))

    def fail_unlock(self, unlock_id: int, now: datetime, overridden: Sequence[int] = (),
                    entry: AuditEntry | None = None) -> None:
        """The unlock did not land: ``failed``, no longer the episode's unlock (the client may
        try again); ``overridden``: services whose override vipgate set and could not lift
        (the regular pass lifts them), ``entry``: an audit row when WHMCS was changed."""
        with self.engine.begin() as conn:
            values: dict[str, Any] = {"state": FAILED, "open_episode_id": None,
                                      "service_ids": dump_ids(overridden)}
            if not overridden:
                values.update(cleared_at=utc_naive(now), outcome=FAILED)
            conn.execute(trust_unlock.update().where(trust_unlock.c.id == unlock_id)
                         .values(values))
            if entry is not None:
                conn.execute(audit.insert(), audit_rows([entry]))

    def clear_unlock(self, unlock_id: int, outcome: str, now: datetime,
                     entry: AuditEntry | None = None) -> None:
        """The override is lifted (or staff's own was left): ``outcome`` paid | expired |
        ended | failed, with the audit row of the WHMCS change when there was one."""
        with self.engine.begin() as conn:
            conn.execute(trust_unlock.update().where(trust_unlock.c.id == unlock_id).values(
                cleared_at=utc_naive(now), outcome=outcome[:16]))
            if entry is not None:
                conn.execute(audit.insert(), audit_rows([entry]))

    def unlock_days(self, client_id: int) -> list[date]:
        """The days (WHMCS's) of the client's unlocks that count: pending or applied."""
        c = trust_unlock.c
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(sa.select(c.unlocked_on).where(
                c.client_id == client_id, c.state.in_((PENDING, APPLIED))))]

    def client_unlocks(self, client_id: int) -> list[TrustUnlock]:
        """The client's unlocks, newest first."""
        c = trust_unlock.c
        with self.engine.connect() as conn:
            rows = conn.execute(trust_unlock.select().where(c.client_id == client_id)
                                .order_by(c.id.desc())).all()
        return [_unlock(r) for r in rows]

    def active_unlock(self, client_id: int) -> TrustUnlock | None:
        """The client's applied unlock whose override is not lifted yet (the banner)."""
        c = trust_unlock.c
        with self.engine.connect() as conn:
            row = conn.execute(trust_unlock.select().where(
                c.client_id == client_id, c.state == APPLIED, c.cleared_at.is_(None))
                .order_by(c.id.desc()).limit(1)).first()
        return None if row is None else _unlock(row)

    def unlocks_to_settle(self) -> list[TrustUnlock]:
        """Every unlock not settled yet (applied or failed with an override left, pending),
        with its episode's end (None: still open)."""
        c = trust_unlock.c
        query = (sa.select(trust_unlock, episode.c.ended_on, episode.c.how)
                 .outerjoin(episode, episode.c.id == c.episode_id)
                 .where(c.cleared_at.is_(None)).order_by(c.id))
        with self.engine.connect() as conn:
            return [_unlock(r) for r in conn.execute(query).all()]

    def open_episode_actions(self, client_id: int) -> tuple[int, list[Action]] | None:
        """The client's open episode's id and actions; None when it has none open."""
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(episode.c.id).where(
                episode.c.open_client_id == client_id)).first()
            if found is None:
                return None
            rows = conn.execute(episode_action.select().where(
                episode_action.c.episode_id == found.id).order_by(episode_action.c.id)).all()
        return int(found.id), [Action(a.kind, a.at.replace(tzinfo=UTC), a.actor, a.ticket_id,
                                      a.detail) for a in rows]
