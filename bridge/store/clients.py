"""The engine's memory of clients and tickets: ``membership`` (pins, exclusions, the groups
vipgate saw and set, staff holds) and ``managed_ticket`` (the priorities vipgate changed)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from bridge.model import ClientMemory, TicketMemory
from bridge.store.database import Database, upsert, utc_naive
from bridge.store.tables import managed_ticket, membership


def _memory_values(memory: ClientMemory, now: datetime) -> dict[str, Any]:
    return {"pinned": memory.pinned, "excluded": memory.excluded,
            "home_group_id": memory.home_group_id, "last_group_id": memory.last_group_id,
            "pending_group_id": memory.pending_group_id, "updated_at": utc_naive(now),
            "held_since": None if memory.held_since is None else utc_naive(memory.held_since),
            "held_by": memory.held_by}


def _memory(row: Any) -> ClientMemory:
    return ClientMemory(row.client_id, bool(row.pinned), bool(row.excluded), row.home_group_id,
                        row.last_group_id, row.pending_group_id, known=True,
                        held_since=None if row.held_since is None
                        else row.held_since.replace(tzinfo=UTC), held_by=row.held_by)


class ClientStore(Database):
    def get_memory(self, client_id: int) -> ClientMemory:
        with self.engine.connect() as conn:
            row = conn.execute(membership.select().where(
                membership.c.client_id == client_id)).first()
        if row is None:
            return ClientMemory(client_id)
        return _memory(row)

    def memories(self, client_ids: list[int] | None = None) -> dict[int, ClientMemory]:
        """Every remembered client (or those of ``client_ids``)."""
        query = membership.select()
        if client_ids is not None:
            query = query.where(membership.c.client_id.in_(client_ids))
        with self.engine.connect() as conn:
            return {r.client_id: _memory(r) for r in conn.execute(query)}

    def iter_memories(self, client_ids: list[int] | None = None, *, page: int = 5000,
                      id_range: tuple[int, int] | None = None) -> Iterator[ClientMemory]:
        """Every remembered client (or those of ``client_ids``, or in ``id_range``), by id."""
        return map(_memory, self._keyset(membership, ("client_id",), client_ids, page,
                                         id_range))

    def add_memories(self, memories: list[ClientMemory], now: datetime) -> int:
        """Record clients seen for the first time, in one go; a client another writer
        recorded meanwhile keeps its row. Returns how many were added."""
        if not memories:
            return 0
        ids = [m.client_id for m in memories]
        with self.engine.begin() as conn:
            present = set(conn.execute(sa.select(membership.c.client_id)
                                       .where(membership.c.client_id.in_(ids))).scalars())
            rows = [_memory_values(m, now) | {"client_id": m.client_id}
                    for m in memories if m.client_id not in present]
            if rows:
                conn.execute(membership.insert(), rows)
        return len(rows)

    def save_memory(self, memory: ClientMemory, now: datetime) -> None:
        with self.engine.begin() as conn:
            upsert(conn, membership, "client_id", memory.client_id,
                         _memory_values(memory, now))

    def iter_ticket_memories(self, client_ids: list[int] | None = None, *, page: int = 5000,
                             id_range: tuple[int, int] | None = None
                             ) -> Iterator[TicketMemory]:
        """Every ticket record, by client id then ticket id."""
        for r in self._keyset(managed_ticket, ("client_id", "ticket_id"), client_ids, page,
                              id_range):
            yield TicketMemory(r.ticket_id, r.client_id, r.original_priority,
                               r.managed_priority, r.pending_priority, r.note_key)

    def ticket_memories(self, client_id: int) -> dict[int, TicketMemory]:
        with self.engine.connect() as conn:
            rows = conn.execute(managed_ticket.select().where(
                managed_ticket.c.client_id == client_id)).all()
        return {r.ticket_id: TicketMemory(r.ticket_id, r.client_id, r.original_priority,
                                          r.managed_priority, r.pending_priority, r.note_key)
                for r in rows}

    def ticket_memory(self, ticket_id: int) -> TicketMemory | None:
        with self.engine.connect() as conn:
            r = conn.execute(managed_ticket.select().where(
                managed_ticket.c.ticket_id == ticket_id)).first()
        return None if r is None else TicketMemory(r.ticket_id, r.client_id, r.original_priority,
                                                   r.managed_priority, r.pending_priority,
                                                   r.note_key)

    def save_ticket_memory(self, memory: TicketMemory, now: datetime) -> None:
        """Store the record, or drop it when it is empty."""
        with self.engine.begin() as conn:
            if memory.empty:
                conn.execute(managed_ticket.delete().where(
                    managed_ticket.c.ticket_id == memory.ticket_id))
                return
            upsert(conn, managed_ticket, "ticket_id", memory.ticket_id, {
                "client_id": memory.client_id, "original_priority": memory.original_priority,
                "managed_priority": memory.managed_priority,
                "pending_priority": memory.pending_priority, "note_key": memory.note_key,
                "updated_at": utc_naive(now)})
