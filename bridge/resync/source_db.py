"""The read-only WHMCS database source: a handful of set-based queries, streamed.

Four queries, each ordered by client id and read through a server-side cursor on its own
connection, are merged client by client (``bridge.resync.snapshot.merge``):

1. ``tblclients`` with its currency, and the total paid in the look-back window summed in SQL
   (the paid invoices are most of a WHMCS's rows; only their sum matters to the policy);
2. the invoices the policy reads one by one: owed (Unpaid, Payment Pending, Collections) and
   past due, with the balance (``total - SUM(tblaccounts.amountin - amountout)``), and the
   ones paid more than ``late_tolerance_days`` late within the window;
3. the Suspended services (``tblhosting.domainstatus``);
4. the active tickets (statuses with ``tblticketstatuses.showactive``, not merged) of clients.

The reader refuses to write: every connection is put in a read-only session (``SET SESSION
TRANSACTION READ ONLY`` on MariaDB/MySQL, ``PRAGMA query_only`` on SQLite) and any statement
that is not a read is stopped before it reaches the server.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from bridge.engine.plan import OpenTicket
from bridge.model import client_name
from bridge.policy.state import OWED_STATUSES, PAID, SUSPENDED, ClientState, Invoice, Service
from bridge.resync.snapshot import ClientSnapshot, Window, merge
from bridge.whmcs.schema import (
    tblaccounts,
    tblclients,
    tblcurrencies,
    tblhosting,
    tblinvoices,
    tbltickets,
    tblticketstatuses,
)

READ_STATEMENTS = ("select", "show", "set session", "set names", "pragma", "with", "explain",
                   "rollback", "commit", "begin")
CHUNK = 2000  # rows fetched per round trip from a server-side cursor
ID_BATCH = 500  # client ids per query when reading some clients only


class ReadOnlyViolation(RuntimeError):
    """A statement that would write reached the read-only WHMCS database reader."""


def _read_only_engine(url: str) -> Engine:
    from bridge.store.database import make_sql_engine

    engine = make_sql_engine(url, pool_size=6, max_overflow=2)
    mysql = engine.dialect.name in ("mysql", "mariadb")

    @sa.event.listens_for(engine, "connect")
    def _session(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        if mysql:
            # WHMCS keeps zero dates; a strict session would refuse to compare them.
            cursor.execute("SET SESSION sql_mode = REPLACE(REPLACE(REPLACE(@@SESSION.sql_mode,"
                           " 'NO_ZERO_DATE', ''), 'NO_ZERO_IN_DATE', ''),"
                           " 'STRICT_TRANS_TABLES', '')")
            cursor.execute("SET SESSION TRANSACTION READ ONLY")
        else:
            cursor.execute("PRAGMA query_only = ON")
        cursor.close()

    @sa.event.listens_for(engine, "before_cursor_execute", retval=True)
    def _refuse_writes(conn: Any, cursor: Any, statement: str, parameters: Any,
                       context: Any, executemany: bool) -> tuple[str, Any]:
        if executemany or not statement.lstrip().lower().startswith(READ_STATEMENTS):
            raise ReadOnlyViolation("the WHMCS database reader is read-only; refused: "
                                    + statement.strip().split("\n")[0][:80])
        return statement, parameters

    return engine


class WhmcsDbReader:
    """Reads WHMCS's own tables (``[whmcs] database_url``), never writing."""

    name = "db"

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _read_only_engine(url)

    def dispose(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.select(sa.func.count()).select_from(tblclients)
                         .where(tblclients.c.id < 0))

    def count(self, client_ids: Sequence[int] | None = None) -> int:
        """How many clients a scan will hand out (for the progress bar)."""
        if client_ids is not None:
            return len(set(client_ids))
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(tblclients))
                       .scalar() or 0)

    # --- the queries -------------------------------------------------------------------------

    def _queries(self, window: Window, client_ids: Sequence[int] | None,
                 id_range: tuple[int, int] | None = None) -> tuple[sa.Select[Any], ...]:
        c, i, a, h, t = tblclients.c, tblinvoices.c, tblaccounts.c, tblhosting.c, tbltickets.c
        start = datetime.combine(window.start, time())
        end = datetime.combine(window.today + timedelta(days=1), time())
        paid_in_window = sa.and_(i.status == PAID, i.datepaid >= start, i.datepaid < end)
        spent = (sa.select(i.userid.label("userid"), sa.func.sum(i.total).label("spent"))
                 .where(paid_in_window))
        def only(column: Any) -> Any:
            """The subset of clients read: some ids, an id range, or everyone."""
            if client_ids is not None:
                return column.in_(client_ids)
            if id_range is not None:
                return column.between(*id_range)
            return sa.true()

        spent = spent.where(only(i.userid))
        spent_sq = spent.group_by(i.userid).subquery("spent")
        day, cents = self._day, self._cents
        clients = (sa.select(c.id, c.status, c.groupid, day(c.datecreated), c.language,
                             c.currency, cents(spent_sq.c.spent), c.firstname, c.lastname,
                             c.companyname)
                   .select_from(tblclients.outerjoin(spent_sq, spent_sq.c.userid == c.id))
                   .order_by(c.id))
        paid = sa.func.coalesce(
            sa.select(sa.func.sum(a.amountin - a.amountout)).where(a.invoiceid == i.id)
            .correlate(tblinvoices).scalar_subquery(), 0)
        owed = i.status.in_(sorted(OWED_STATUSES))
        # A zero or missing due date falls back to the invoice date (as the API path does):
        # such rows are read and left to the policy.
        no_due = sa.or_(i.duedate.is_(None), sa.cast(i.duedate, sa.String) < "1000-01-01")
        late = sa.or_(no_due, i.datepaid >= self._plus_days(i.duedate,
                                                             window.late_tolerance_days + 1))
        invoices = (sa.select(i.userid, i.id, i.invoicenum, i.status, day(i.date),
                              day(i.duedate), cents(i.total), day(i.datepaid),
                              cents(sa.case((owed, i.total - paid), else_=0)))
                    .where(sa.or_(sa.and_(owed, sa.or_(i.duedate < window.today, no_due)),
                                  sa.and_(paid_in_window, late)))
                    .order_by(i.userid, i.id))
        services = (sa.select(h.userid, h.id, h.domainstatus, h.suspendreason,
                              day(h.nextduedate))
                    .where(h.domainstatus == SUSPENDED).order_by(h.userid, h.id))
        active = sa.select(tblticketstatuses.c.title).where(tblticketstatuses.c.showactive != 0)
        tickets = (sa.select(t.userid, t.id, t.did, t.urgency, t.status)
                   .where(t.merged_ticket_id == 0, t.userid > 0, t.status.in_(active))
                   .order_by(t.userid, t.id))
        return (clients.where(only(c.id)), invoices.where(only(i.userid)),
                services.where(only(h.userid)), tickets.where(only(t.userid)))

    # Dates travel as day numbers (``date.toordinal()``; NULL for WHMCS's zero dates) and money
    # as whole cents: integers are what the driver decodes fastest, and there are millions.

    def _day(self, column: Any) -> Any:
        if self.engine.dialect.name in ("mysql", "mariadb"):
            return sa.func.to_days(column) - 365
        return sa.cast(sa.func.julianday(sa.func.date(column)) - 1721424.5, sa.Integer)

    def _cents(self, amount: Any) -> Any:
        return sa.cast(sa.func.round(amount * 100), sa.BigInteger)

    def currencies(self) -> dict[int, tuple[str, str]]:
        """``tblcurrencies`` as {id: (prefix, suffix)}; key 0 is the default currency (for a
        client whose currency row is gone, as WHMCS falls back to it)."""
        cur = tblcurrencies.c
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(cur.id, cur.prefix, cur.suffix, cur.default)
                                .order_by(cur.default.desc(), cur.id)).all()
        found = {r.id: (r.prefix or "", r.suffix or "") for r in rows}
        found[0] = found[rows[0].id] if rows else ("", "")
        return found

    def _plus_days(self, column: Any, days: int) -> Any:
        if self.engine.dialect.name in ("mysql", "mariadb"):
            return sa.func.date_add(column, sa.text(f"INTERVAL {int(days)} DAY"))
        return sa.func.date(column, f"+{int(days)} days")

    def _stream(self, conn: Connection, query: sa.Select[Any]) -> Iterator[Any]:
        result = conn.execution_options(stream_results=True, max_row_buffer=CHUNK) \
            .execute(query)
        try:
            yield from result
        finally:
            result.close()

    def invoices(self, invoice_ids: Sequence[int]) -> tuple[Invoice, ...]:
        """Some invoices whatever their status, with their balance (``total - SUM(amountin -
        amountout)``; the ones of an open episode that a scan left out)."""
        i, a = tblinvoices.c, tblaccounts.c
        paid = sa.func.coalesce(
            sa.select(sa.func.sum(a.amountin - a.amountout)).where(a.invoiceid == i.id)
            .correlate(tblinvoices).scalar_subquery(), 0)
        day, cents = self._day, self._cents
        found: list[Invoice] = []
        ids = sorted(set(invoice_ids))
        with self.engine.connect() as conn:
            for n in range(0, len(ids), ID_BATCH):
                query = (sa.select(i.userid, i.id, i.invoicenum, i.status, day(i.date),
                                   day(i.duedate), cents(i.total), day(i.datepaid),
                                   cents(i.total - paid))
                         .where(i.id.in_(ids[n:n + ID_BATCH])).order_by(i.id))
                found += (inv for inv in map(_invoice, conn.execute(query)) if inv is not None)
        return tuple(found)

    # --- reading ------------------------------------------------------------------------------

    def scan(self, window: Window, client_ids: Iterable[int] | None = None, *,
             id_range: tuple[int, int] | None = None) -> Iterator[ClientSnapshot]:
        """Every client (or those of ``client_ids``, or with ids in ``id_range``), by id."""
        if client_ids is None:
            yield from self._scan(window, None, id_range)
            return
        ids = sorted(set(client_ids))
        for n in range(0, len(ids), ID_BATCH):
            yield from self._scan(window, ids[n:n + ID_BATCH])

    def id_ranges(self, size: int) -> list[tuple[int, int]]:
        """Client id ranges (bounds included) of about ``size`` clients each, covering all."""
        c = tblclients.c
        with self.engine.connect() as conn:
            low, high, count = conn.execute(sa.select(sa.func.min(c.id), sa.func.max(c.id),
                                                      sa.func.count())).one()
        if not count:
            return []
        parts = max(1, -(-count // size))
        width = -(-(high - low + 1) // parts)
        return [(lo, min(lo + width - 1, high)) for lo in range(low, high + 1, width)]

    def _scan(self, window: Window, client_ids: Sequence[int] | None,
              id_range: tuple[int, int] | None = None) -> Iterator[ClientSnapshot]:
        queries = self._queries(window, client_ids, id_range)
        money = self.currencies()
        conns = [self.engine.connect() for _ in queries]
        try:
            clients, invoices, services, tickets = (
                self._stream(conn, q) for conn, q in zip(conns, queries, strict=True))
            for row, inv_rows, svc_rows, tkt_rows in merge(clients, invoices, services,
                                                           tickets):
                yield ClientSnapshot(_client(row, inv_rows, svc_rows, money),
                                     tuple(OpenTicket(r.id, r.did, r.urgency, r.status)
                                           for r in tkt_rows))
        finally:
            for conn in conns:
                conn.close()

    def floor(self, window: Window) -> int:
        """The bare scans alone (the benchmark's floor): run the same queries, read every row,
        build nothing. Returns the number of rows read."""
        queries = self._queries(window, None)
        count = 0
        for query in queries:
            with self.engine.connect() as conn:
                for _ in self._stream(conn, query):
                    count += 1
        return count


def _client(row: Any, invoices: list[Any], services: list[Any],
            money: dict[int, tuple[str, str]]) -> ClientState:
    client_id, status, group, created, language, currency, spent, first, last, company = row
    prefix, suffix = money.get(currency) or money[0]
    return ClientState(
        id=client_id, status=status, group_id=group or 0, datecreated=_day(created),
        currency_prefix=prefix, currency_suffix=suffix, language=language or None,
        invoices=tuple(inv for inv in map(_invoice, invoices) if inv is not None),
        services=tuple(Service(r[1], r[2], r[3] or "", None if r[4] is None else _day(r[4]))
                       for r in services),
        promise=None, paid_in_window=_money(spent or 0),
        name=client_name(first or "", last or "", company or ""))


def _invoice(row: Any) -> Invoice | None:
    _, invoice_id, number, status, created, due, total, paid, balance = row
    due = due or created
    created = created or due
    if due is None or created is None:  # a broken row with neither date: nothing to judge
        return None
    return Invoice(id=invoice_id, number=number or str(invoice_id), status=status,
                   date=_day(created), duedate=_day(due), total=_money(total),
                   balance=_money(balance or 0), datepaid=None if paid is None else _day(paid))


def _day(ordinal: int) -> date:
    return date.fromordinal(ordinal)


def _money(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)
