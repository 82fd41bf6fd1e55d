"""The audit log (``audit``): every change vipgate made in WHMCS and every admin action, with
the reasons, as the admin page lists, filters and exports it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from bridge.model import AuditEntry
from bridge.store.database import Database, utc_naive
from bridge.store.reasons import dump_reasons, load_reasons
from bridge.store.tables import audit


@dataclass(frozen=True)
class AuditFilter:
    """What the admin page's audit log is narrowed to; ``since``/``until`` are naive UTC
    (``since`` inclusive, ``until`` exclusive)."""

    client_id: int | None = None
    action: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _audit_where(query: Any, filters: AuditFilter) -> Any:
    """``query`` narrowed by ``filters``: client and time use ix_audit_client_at / ix_audit_at,
    action and actor are checked on the rows those indexes give."""
    c = audit.c
    for column, value in ((c.client_id, filters.client_id), (c.action, filters.action),
                          (c.actor, filters.actor)):
        if value is not None:
            query = query.where(column == value)
    if filters.since is not None:
        query = query.where(c.at >= utc_naive(filters.since))
    if filters.until is not None:
        query = query.where(c.at < utc_naive(filters.until))
    return query


def audit_entry(row: Any) -> AuditEntry:
    return AuditEntry(row.at, row.actor, row.action, row.client_id, row.ticket_id, row.before,
                      row.after, load_reasons(row.reasons), row.event_id, row.id)


def audit_rows(entries: Sequence[AuditEntry]) -> list[dict[str, Any]]:
    """The ``audit`` rows of ``entries`` (texts cut to their columns)."""
    return [{"at": utc_naive(e.at), "actor": e.actor[:64], "action": e.action[:32],
             "client_id": e.client_id, "ticket_id": e.ticket_id,
             "before": None if e.before is None else e.before[:255],
             "after": None if e.after is None else e.after[:255],
             "reasons": dump_reasons(e.reasons),
             "event_id": e.event_id} for e in entries]


class AuditStore(Database):
    def add_audit(self, entries: list[AuditEntry]) -> None:
        if not entries:
            return
        with self.engine.begin() as conn:
            conn.execute(audit.insert(), audit_rows(entries))

    def audit_page(self, filters: AuditFilter, *, limit: int,
                   offset: int = 0) -> list[AuditEntry]:
        """A page of the rows ``filters`` match, newest first (by ``at``, then id)."""
        query = _audit_where(audit.select(), filters).order_by(
            audit.c.at.desc(), audit.c.id.desc()).limit(limit).offset(offset)
        with self.engine.connect() as conn:
            return [audit_entry(r) for r in conn.execute(query)]

    def audit_count(self, filters: AuditFilter, *, cap: int | None = None) -> int:
        """How many rows ``filters`` match, counting no further than ``cap``."""
        ids = _audit_where(sa.select(audit.c.id), filters)
        if cap is not None:
            ids = ids.limit(cap)
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(ids.subquery()))
                       .scalar() or 0)

    def iter_audit(self, filters: AuditFilter, *, page: int = 1000) -> Iterator[AuditEntry]:
        """Every row ``filters`` match, newest first, a page at a time (keyset on (at, id):
        no read held open between pages; rows added meanwhile are newer and not included)."""
        c = audit.c
        last: tuple[datetime, int] | None = None
        while True:
            query = _audit_where(audit.select(), filters)
            if last is not None:
                query = query.where(sa.or_(c.at < last[0],
                                           sa.and_(c.at == last[0], c.id < last[1])))
            with self.engine.connect() as conn:
                rows = conn.execute(query.order_by(c.at.desc(), c.id.desc()).limit(page)).all()
            yield from map(audit_entry, rows)
            if len(rows) < page:
                return
            last = (rows[-1].at, rows[-1].id)

    def audit_actions(self) -> list[str]:
        """The actions present in the audit log, sorted (no index on ``action``: this reads
        the whole table; the admin page keeps the answer a while)."""
        with self.engine.connect() as conn:
            return sorted(conn.execute(sa.select(audit.c.action).distinct()).scalars())

    def audit_log(self, *, client_id: int | None = None, action: str | None = None,
                  since_id: int = 0, limit: int = 1000) -> list[AuditEntry]:
        """Audit rows, oldest first, after ``since_id``."""
        query = audit.select().where(audit.c.id > since_id)
        if client_id is not None:
            query = query.where(audit.c.client_id == client_id)
        if action is not None:
            query = query.where(audit.c.action == action)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(audit.c.id).limit(limit)).all()
        return [AuditEntry(r.at, r.actor, r.action, r.client_id, r.ticket_id, r.before, r.after,
                           load_reasons(r.reasons), r.event_id, r.id) for r in rows]

    def recent_audit(self, client_id: int, limit: int = 50) -> list[AuditEntry]:
        """A client's newest audit rows, newest first."""
        query = audit.select().where(audit.c.client_id == client_id).order_by(
            audit.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [AuditEntry(r.at, r.actor, r.action, r.client_id, r.ticket_id, r.before, r.after,
                           load_reasons(r.reasons), r.event_id, r.id) for r in rows]
