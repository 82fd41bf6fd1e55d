"""The standing cache (``standing``): each client's last computed standing and VIP decision,
which the ticket gate and the panels answer from; and the admin page's VIP roster, read over
the client memory joined with it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from bridge.model import CachedStanding, OverdueInvoice
from bridge.store.database import Database, upsert, utc_naive
from bridge.store.reasons import dump_reasons, load_reasons
from bridge.store.tables import membership, standing


@dataclass(frozen=True)
class RosterRow:
    """One client of the admin page's VIP roster: vipgate's memory of it and its cached
    standing (None: no reconcile has cached it yet)."""

    client_id: int
    pinned: bool
    excluded: bool
    home_group_id: int | None
    last_group_id: int | None
    standing: CachedStanding | None
    held_since: datetime | None = None  # a staff hold (aware UTC)
    held_by: str | None = None  # the admin who made it, when known


# The admin page's roster tabs (see StandingStore.roster).
ROSTER_TABS = ("members", "pinned", "excluded", "eligible", "all")


def _roster_filters(vip_group_id: int) -> dict[str, sa.ColumnElement[bool]]:
    """Each roster tab as a condition over membership LEFT JOIN standing.

    A member is a client whose group vipgate last saw (or set) in WHMCS is the VIP group:
    what WHMCS holds, not what the last plan wanted (a resync caches its decisions before
    applying them)."""
    m, s = membership.c, standing.c
    if vip_group_id:
        member: sa.ColumnElement[bool] = m.last_group_id == vip_group_id
        outside = sa.or_(m.last_group_id.is_(None), m.last_group_id != vip_group_id)
    else:  # no VIP group managed: nobody is a member
        member, outside = sa.false(), sa.true()
    return {"members": member, "pinned": m.pinned == sa.true(),
            "excluded": m.excluded == sa.true(),
            "eligible": sa.and_(s.eligible == sa.true(), outside), "all": sa.true()}


def _standing_values(row: CachedStanding) -> dict[str, Any]:
    return {
        "standing": row.standing,
        "overdue_days": row.overdue_days,
        "overdue_total": row.overdue_total,
        "invoices": json.dumps([
            {"id": i.invoice_id, "number": i.number, "balance": str(i.balance),
             "due_date": i.due_date} for i in row.invoices]),
        "currency_prefix": row.currency_prefix,
        "currency_suffix": row.currency_suffix,
        "language": row.language,
        "updated_at": utc_naive(row.updated_at),
        "billing_standing": row.billing_standing,
        "group_id": row.group_id,
        "in_vip": row.in_vip,
        "eligible": row.eligible,
        "standing_reasons": dump_reasons(row.standing_reasons),
        "vip_reasons": dump_reasons(row.vip_reasons),
        "name": None if row.name is None else row.name[:255],
    }


def _standing(row: Any) -> CachedStanding:
    invoices = tuple(OverdueInvoice(i["id"], i["number"], Decimal(i["balance"]),
                                    i["due_date"]) for i in json.loads(row.invoices))
    return CachedStanding(row.client_id, row.standing, row.overdue_days,
                          Decimal(row.overdue_total), invoices, row.currency_prefix,
                          row.currency_suffix, row.language, row.updated_at,
                          row.billing_standing, row.group_id,
                          None if row.in_vip is None else bool(row.in_vip),
                          None if row.eligible is None else bool(row.eligible),
                          load_reasons(row.standing_reasons), load_reasons(row.vip_reasons),
                          row.name)


class StandingStore(Database):
    def put_standing(self, row: CachedStanding) -> None:
        with self.engine.begin() as conn:
            upsert(conn, standing, "client_id", row.client_id, _standing_values(row))

    def get_standing(self, client_id: int) -> CachedStanding | None:
        with self.engine.connect() as conn:
            row = conn.execute(standing.select().where(standing.c.client_id == client_id)).first()
        return None if row is None else _standing(row)

    def client_names(self, client_ids: Iterable[int]) -> dict[int, str]:
        """The names the standing cache holds for ``client_ids`` (as WHMCS had them when the
        client was last read); clients without one are left out."""
        ids = sorted(set(client_ids))
        names: dict[int, str] = {}
        c = standing.c
        with self.engine.connect() as conn:
            for n in range(0, len(ids), 500):
                names.update(conn.execute(sa.select(c.client_id, c.name).where(
                    c.client_id.in_(ids[n:n + 500]), c.name.is_not(None), c.name != "")).all())
        return names

    def roster(self, tab: str, vip_group_id: int, *, client_ids: list[int] | None = None,
               offset: int = 0, limit: int = 50) -> list[RosterRow]:
        """A page of the remembered clients in roster ``tab`` (:data:`ROSTER_TABS`), by id."""
        where = _roster_filters(vip_group_id)[tab]
        query = (sa.select(*membership.c).select_from(membership.outerjoin(
            standing, standing.c.client_id == membership.c.client_id)).where(where)
            .order_by(membership.c.client_id).offset(offset).limit(limit))
        if client_ids is not None:
            query = query.where(membership.c.client_id.in_(client_ids))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            ids = [r.client_id for r in rows]
            cached = {r.client_id: _standing(r) for r in conn.execute(
                standing.select().where(standing.c.client_id.in_(ids)))} if ids else {}
        return [RosterRow(r.client_id, bool(r.pinned), bool(r.excluded), r.home_group_id,
                          r.last_group_id, cached.get(r.client_id),
                          None if r.held_since is None else r.held_since.replace(tzinfo=UTC),
                          r.held_by)
                for r in rows]

    def roster_counts(self, vip_group_id: int, *,
                      client_ids: list[int] | None = None) -> dict[str, int]:
        """How many remembered clients each roster tab holds (one pass over the table)."""
        filters = _roster_filters(vip_group_id)
        query = sa.select(*(sa.func.coalesce(sa.func.sum(sa.case((where, 1), else_=0)), 0)
                            .label(tab) for tab, where in filters.items())).select_from(
            membership.outerjoin(standing, standing.c.client_id == membership.c.client_id))
        if client_ids is not None:
            query = query.where(membership.c.client_id.in_(client_ids))
        with self.engine.connect() as conn:
            row = conn.execute(query).one()
        return {tab: int(row._mapping[tab]) for tab in filters}

    def iter_standings(self, client_ids: list[int] | None = None, *, page: int = 5000,
                       id_range: tuple[int, int] | None = None) -> Iterator[CachedStanding]:
        """The standing cache, by client id."""
        return map(_standing, self._keyset(standing, ("client_id",), client_ids, page,
                                           id_range))

    def put_standings(self, rows: list[CachedStanding], *, older_than: datetime) -> int:
        """Write many cache rows in a few statements; a row another writer refreshed after
        ``older_than`` (it saw newer WHMCS data than this batch) is left alone. Returns how
        many were written."""
        if not rows:
            return 0
        cutoff = utc_naive(older_than)
        c = standing.c
        with self.engine.begin() as conn:
            present = dict(conn.execute(sa.select(c.client_id, c.updated_at).where(
                c.client_id.in_([r.client_id for r in rows]))).all())
            fresh = [{"client_id": r.client_id, **_standing_values(r)}
                     for r in rows if r.client_id not in present]
            stale = [{"cid": r.client_id, **_standing_values(r)} for r in rows
                     if r.client_id in present and present[r.client_id] <= cutoff]
            if fresh:
                conn.execute(standing.insert(), fresh)
            if stale:
                names = [k for k in stale[0] if k != "cid"]
                conn.execute(standing.update()
                             .where(c.client_id == sa.bindparam("cid"), c.updated_at <= cutoff)
                             .values({k: sa.bindparam(k) for k in names}), stale)
        return len(fresh) + len(stale)
