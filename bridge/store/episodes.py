"""Delinquency episodes (``episode``, ``episode_action``, ``episode_payment``): what the
engine and the resync record as a client's debt past the grace begins and ends, and what the
backfill reconstructs from WHMCS's history. The rules are ``bridge.policy.episodes``'.

A client has one open episode at most: ``open_client_id`` (the client id while open, NULL
after) is unique, so a second opening by another writer is ignored and its actions go to the
episode that is open. The engine's episode writes share a transaction with their audit rows
(:meth:`EpisodeStore.record`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bridge.model import AuditEntry
from bridge.policy.episodes import (
    Action,
    EpisodeStep,
    OpenEpisode,
    Payment,
    ReasonTag,
    reason_changes,
)
from bridge.store.audit import audit_rows
from bridge.store.database import Database, utc_naive
from bridge.store.tables import audit, episode, episode_action, episode_payment

LIVE, BACKFILL = "live", "backfill"
MYSQL_DEADLOCK = 1213
DEADLOCK_RETRIES = 5


@dataclass(frozen=True)
class EpisodeRecord:
    """An episode as the admin page and the figures read it."""

    id: int
    client_id: int
    opened_at: datetime  # aware UTC
    opened_on: date
    amount: Decimal
    currency_prefix: str
    currency_suffix: str
    standing: str
    recovered: Decimal
    written_off: Decimal
    ended_at: datetime | None
    ended_on: date | None
    how: str | None
    days: int | None
    source: str
    reason: str | None
    actions: tuple[Action, ...]
    payments: tuple[Payment, ...]
    reason_note: str | None = None

    @property
    def open(self) -> bool:
        return self.ended_on is None


@dataclass(frozen=True)
class EpisodeTag:
    """An episode's days and reason tag, without its actions and payments (the panels)."""

    id: int
    client_id: int
    opened_on: date
    ended_on: date | None
    reason: str | None
    reason_note: str | None


def _tracked(text: str) -> dict[int, Decimal]:
    return {int(k): Decimal(v) for k, v in json.loads(text or "{}").items()}


def dump_tracked(tracked: Mapping[int, Decimal]) -> str:
    return json.dumps({str(k): str(v) for k, v in sorted(tracked.items())})


def _open(row: Any) -> OpenEpisode:
    return OpenEpisode(row.id, row.client_id, row.opened_on, Decimal(row.amount),
                       _tracked(row.tracked), row.standing, Decimal(row.recovered),
                       Decimal(row.written_off))


def insert_ignoring_open(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Insert episodes; one whose client already has an open episode is left out."""
    if conn.dialect.name == "sqlite":
        conn.execute(sqlite_insert(episode).on_conflict_do_nothing(), rows)
    else:
        conn.execute(mysql.insert(episode).prefix_with("IGNORE"), rows)


def opening_row(client_id: int, step: EpisodeStep, now: datetime) -> dict[str, Any]:
    """The ``episode`` row of ``step``'s opening (its standing: suspended when it opens with
    the suspension, else overdue)."""
    o = step.opening
    assert o is not None
    suspended = any(a.kind == "suspended" for a in step.actions)
    return {"client_id": client_id, "open_client_id": client_id,
            "opened_at": utc_naive(o.opened_at), "opened_on": o.opened_on, "amount": o.amount,
            "currency_prefix": o.currency_prefix[:16], "currency_suffix": o.currency_suffix[:16],
            "tracked": dump_tracked(o.tracked),
            "standing": "suspended" if suspended else "overdue",
            "source": LIVE, "live": True, "updated_at": utc_naive(now)}


def action_row(episode_id: int, client_id: int, action: Action) -> dict[str, Any]:
    return {"episode_id": episode_id, "client_id": client_id, "kind": action.kind[:32],
            "at": utc_naive(action.at), "actor": action.actor[:64],
            "ticket_id": action.ticket_id, "detail": action.detail[:255]}


def payment_rows(episode_id: int, client_id: int,
                  payments: Sequence[Payment]) -> list[dict[str, Any]]:
    return [{"episode_id": episode_id, "client_id": client_id, "invoice_id": p.invoice_id,
             "amount": p.amount, "paid_on": p.paid_on} for p in payments]


class EpisodeStore(Database):
    def open_episode(self, client_id: int) -> OpenEpisode | None:
        with self.engine.connect() as conn:
            row = conn.execute(episode.select().where(
                episode.c.open_client_id == client_id)).first()
        return None if row is None else _open(row)

    def iter_open_episodes(self, client_ids: list[int] | None = None, *, page: int = 5000,
                           id_range: tuple[int, int] | None = None) -> Iterator[OpenEpisode]:
        """The open episodes, by client id (keyset pages, no read held open)."""
        key = episode.c.open_client_id
        last = None
        while True:
            query = episode.select().where(key.is_not(None)).order_by(key).limit(page)
            if client_ids is not None:
                query = query.where(key.in_(client_ids))
            if id_range is not None:
                query = query.where(key.between(*id_range))
            if last is not None:
                query = query.where(key > last)
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
            yield from map(_open, rows)
            if len(rows) < page:
                return
            last = rows[-1].open_client_id

    def record(self, client_id: int, entries: Sequence[AuditEntry], step: EpisodeStep,
               now: datetime) -> None:
        """Audit rows and the client's episode step, in one transaction. An opening when the
        client already has an open episode (another writer opened it) is ignored, and the
        step's actions go to the open one; a step other than an opening without an open
        episode writes the audit rows only."""
        with self.engine.begin() as conn:
            is_open = episode.c.open_client_id == client_id
            if step.opening is not None and conn.execute(
                    sa.select(episode.c.id).where(is_open)).first() is None:
                insert_ignoring_open(conn, [opening_row(client_id, step, now)])
            if step.changed:
                query = episode.select().where(is_open)
                if conn.dialect.name != "sqlite":
                    query = query.with_for_update()
                row = conn.execute(query).first()
                if row is not None:
                    self._step(conn, row, step, now)
            if entries:
                conn.execute(audit.insert(), audit_rows(entries))

    @staticmethod
    def _step(conn: sa.Connection, row: Any, step: EpisodeStep, now: datetime) -> None:
        if step.actions:
            conn.execute(episode_action.insert(),
                         [action_row(row.id, row.client_id, a) for a in step.actions])
        if step.payments:
            conn.execute(episode_payment.insert(),
                         payment_rows(row.id, row.client_id, step.payments))
        recovered = Decimal(row.recovered) + sum((p.amount for p in step.payments), Decimal(0))
        values: dict[str, Any] = {"updated_at": utc_naive(now), "live": True,
                                  "recovered": recovered,
                                  "written_off": Decimal(row.written_off) + step.written_off}
        if step.tracked is not None:
            values["tracked"] = dump_tracked(step.tracked)
        if step.standing is not None:
            values["standing"] = step.standing
        elif step.actions and any(a.kind == "suspended" for a in step.actions):
            values["standing"] = "suspended"
        if step.ending is not None:
            e = step.ending
            values.update(open_client_id=None, ended_at=utc_naive(e.ended_at),
                          ended_on=e.ended_on, how=e.how, days=e.days)
        conn.execute(episode.update().where(episode.c.id == row.id).values(values))

    def open_episodes(self, openings: Sequence[tuple[int, EpisodeStep]], now: datetime) -> None:
        """Open these clients' episodes in bulk (a resync's bookkeeping: openings with no
        WHMCS write), with their first actions; a client that has an open episode meanwhile
        keeps it and gets nothing."""
        if not openings:
            return
        c = episode.c
        with self.engine.begin() as conn:
            insert_ignoring_open(conn, [opening_row(cid, s, now) for cid, s in openings
                                        if s.opening is not None])
            acting = {cid: s.actions for cid, s in openings if s.actions}
            if not acting:
                return
            mine = conn.execute(sa.select(c.id, c.open_client_id).where(
                c.open_client_id.in_(list(acting)), c.updated_at == utc_naive(now),
                c.source == LIVE)).all()
            rows = [action_row(r.id, r.open_client_id, a) for r in mine
                    for a in acting[r.open_client_id]]
            if rows:
                conn.execute(episode_action.insert(), rows)

    def add_episode_action(self, client_id: int, action: Action) -> bool:
        """Add ``action`` to the client's open episode, in one statement; False when the
        client has none."""
        values = action_row(0, client_id, action)
        del values["episode_id"]
        columns = ["episode_id", *values]
        select = sa.select(episode.c.id, *(sa.literal(v, type_=episode_action.c[k].type)
                                           for k, v in values.items())) \
            .where(episode.c.open_client_id == client_id)
        with self.engine.begin() as conn:
            done = conn.execute(episode_action.insert().from_select(columns, select))
        return bool(done.rowcount)

    def tag_reason(self, client_id: int, episode_id: int, tag: ReasonTag, actor: str,
                   now: datetime) -> ReasonTag | None:
        """Set the client's episode's reason tag (replacing the one it had), with its
        ``reason_tagged`` action and the audit row (before → after), in one transaction.
        Returns the tag it had (None: none); LookupError when the client has no such
        episode."""
        c = episode.c
        with self.engine.begin() as conn:
            query = episode.select().where(c.id == episode_id, c.client_id == client_id)
            if conn.dialect.name != "sqlite":
                query = query.with_for_update()
            row = conn.execute(query).first()
            if row is None:
                raise LookupError(f"client {client_id} has no episode {episode_id}")
            before = None if row.reason is None else ReasonTag(row.reason, row.reason_note or "")
            entry, action = reason_changes(client_id, row.id, row.opened_on, before, tag, actor,
                                           now)
            conn.execute(episode.update().where(c.id == row.id).values(
                reason=tag.reason, reason_note=tag.note or None))
            conn.execute(episode_action.insert(), [action_row(row.id, client_id, action)])
            conn.execute(audit.insert(), audit_rows([entry]))
        return before

    def episodes(self, client_id: int, *, limit: int = 100) -> list[EpisodeRecord]:
        """A client's episodes, newest first, with their actions and payments."""
        with self.engine.connect() as conn:
            rows = conn.execute(episode.select().where(episode.c.client_id == client_id)
                                .order_by(episode.c.opened_on.desc(), episode.c.id.desc())
                                .limit(limit)).all()
            ids = [r.id for r in rows]
            actions: dict[int, list[Action]] = {}
            payments: dict[int, list[Payment]] = {}
            if ids:
                for a in conn.execute(episode_action.select().where(
                        episode_action.c.episode_id.in_(ids)).order_by(episode_action.c.id)):
                    actions.setdefault(a.episode_id, []).append(Action(
                        a.kind, a.at.replace(tzinfo=UTC), a.actor, a.ticket_id, a.detail))
                for p in conn.execute(episode_payment.select().where(
                        episode_payment.c.episode_id.in_(ids))
                        .order_by(episode_payment.c.paid_on, episode_payment.c.id)):
                    payments.setdefault(p.episode_id, []).append(
                        Payment(p.invoice_id, Decimal(p.amount), p.paid_on))
        return [EpisodeRecord(
            r.id, r.client_id, r.opened_at.replace(tzinfo=UTC), r.opened_on, Decimal(r.amount),
            r.currency_prefix, r.currency_suffix, r.standing, Decimal(r.recovered),
            Decimal(r.written_off), None if r.ended_at is None else r.ended_at.replace(tzinfo=UTC),
            r.ended_on, r.how, r.days, r.source, r.reason, tuple(actions.get(r.id, ())),
            tuple(payments.get(r.id, ())), r.reason_note) for r in rows]

    def latest_episode(self, client_id: int) -> EpisodeTag | None:
        """The client's open episode, else its latest opened (the client's rows by
        ``ix_episode_client_opened``)."""
        c = episode.c
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(c.id, c.client_id, c.opened_on, c.ended_on, c.reason,
                                         c.reason_note)
                               .where(c.client_id == client_id)
                               .order_by(c.open_client_id.is_(None), c.opened_on.desc(),
                                         c.id.desc()).limit(1)).first()
        return None if row is None else EpisodeTag(row.id, row.client_id, row.opened_on,
                                                   row.ended_on, row.reason, row.reason_note)

    def episode_counts(self) -> dict[str, int]:
        """How many episodes there are: open, ended, backfilled."""
        c = episode.c
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(
                sa.func.count(), sa.func.count(c.open_client_id),
                sa.func.coalesce(sa.func.sum(sa.case((c.source == BACKFILL, 1), else_=0)), 0))
            ).one()
        return {"episodes": int(row[0]), "open": int(row[1]), "backfilled": int(row[2])}
