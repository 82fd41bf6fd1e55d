"""Promises to pay that staff registered (``promise``): a client with one keeps its VIP
group until the promised day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from bridge.store.database import Database, upsert, utc_naive
from bridge.store.tables import promise


@dataclass(frozen=True)
class PromiseRecord:
    """A promise to pay as staff registered it."""

    client_id: int
    until: date
    note: str
    created_by: str
    created_at: datetime


class PromiseStore(Database):
    def promises(self) -> dict[int, tuple[date, str]]:
        """Every promise to pay (few: staff register them one by one)."""
        with self.engine.connect() as conn:
            return {r.client_id: (r.until, r.note) for r in conn.execute(promise.select())}

    def get_promise(self, client_id: int) -> tuple[date, str] | None:
        """A promise to pay registered by staff: (until, note)."""
        with self.engine.connect() as conn:
            row = conn.execute(promise.select().where(promise.c.client_id == client_id)).first()
        return None if row is None else (row.until, row.note)

    def set_promise(self, client_id: int, until: date, note: str, by: str,
                    now: datetime) -> None:
        with self.engine.begin() as conn:
            upsert(conn, promise, "client_id", client_id, {
                "until": until, "note": note, "created_by": by, "created_at": utc_naive(now)})

    def promise_records(self) -> list[PromiseRecord]:
        """Every promise to pay with who registered it, latest ``until`` first."""
        with self.engine.connect() as conn:
            rows = conn.execute(promise.select().order_by(promise.c.until.desc(),
                                                          promise.c.client_id)).all()
        return [PromiseRecord(r.client_id, r.until, r.note, r.created_by, r.created_at)
                for r in rows]

    def clear_promise(self, client_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(promise.delete().where(promise.c.client_id == client_id))
