"""WHMCS's payment history, read for the episodes' backfill (``vipgate backfill``).

Each reader hands out one :class:`bridge.policy.episodes.ClientHistory` per client that ever
had an invoice past the grace, in client id order: the invoices concerned (due date, total,
status, ``datepaid``, the day a cancelled one was cancelled) and the transactions applied to
them. The grace is applied in the read as a filter only, counted in calendar days and without
``pending_grace_days``: that keeps every invoice that can have been late (business days are
never more than calendar days) and leaves the exact rule to the policy.

- :class:`HistoryDbReader`: one set-based query on WHMCS's database (read-only, as the
  resync's ``WhmcsDbReader``), streamed and grouped by client;
- :class:`HistoryApiReader`: GetInvoices and GetClients page by page, GetTransactions per
  client concerned.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from itertools import groupby
from operator import itemgetter
from typing import Any, Protocol

import sqlalchemy as sa

from bridge.policy.past_episodes import ClientHistory, PastInvoice, PastPayment
from bridge.policy.state import OWED_STATUSES, PAID
from bridge.resync.source_db import WhmcsDbReader
from bridge.whmcs import WhmcsClient
from bridge.whmcs.client import MAX_PAGE_SIZE
from bridge.whmcs.schema import tblaccounts, tblclients, tblinvoices

REFUNDED, CANCELLED = "Refunded", "Cancelled"
KNOWN = date(1000, 1, 1)  # WHMCS writes 0000-00-00 for "no date"


class HistorySource(Protocol):
    name: str

    def count(self, grace_days: int, today: date) -> int:
        """How many clients :meth:`histories` hands out (for the progress bar)."""
        ...

    def histories(self, grace_days: int, today: date, *,
                  id_range: tuple[int, int] | None = None) -> Iterator[ClientHistory]: ...

    def dispose(self) -> None: ...


class HistoryDbReader:
    """The history from WHMCS's database, read-only."""

    name = "db"

    def __init__(self, url: str) -> None:
        self.reader = WhmcsDbReader(url)

    def dispose(self) -> None:
        self.reader.dispose()

    def _late(self, grace_days: int, today: date) -> sa.ColumnElement[bool]:
        """Invoices that can have been past the grace: owed and due more than the grace
        ago, paid (or refunded) or cancelled after the grace ended. Zero dates (WHMCS's
        ``0000-00-00``) compare below any real day on both databases."""
        i = tblinvoices.c
        grace_ended = self.reader._plus_days(i.duedate, grace_days + 1)
        return sa.and_(
            i.duedate > KNOWN,
            sa.or_(sa.and_(i.status.in_(sorted(OWED_STATUSES)),
                           i.duedate < today - timedelta(days=grace_days)),
                   sa.and_(i.status.in_((PAID, REFUNDED)), i.datepaid >= grace_ended),
                   sa.and_(i.status == CANCELLED,
                           sa.or_(i.date_cancelled >= grace_ended,
                                  sa.and_(i.date_cancelled < KNOWN,
                                          i.updated_at >= grace_ended)))))

    def id_ranges(self, size: int) -> list[tuple[int, int]]:
        """Client id ranges of about ``size`` clients each (for several processes)."""
        return self.reader.id_ranges(size)

    def _query(self, grace_days: int, today: date,
               id_range: tuple[int, int] | None = None) -> sa.Select[Any]:
        """The invoices concerned with their client's status and currency, each joined to
        its transactions (one row per transaction; one with none when it has none), by
        client and invoice."""
        i, c, a = tblinvoices.c, tblclients.c, tblaccounts.c
        day, cents = self.reader._day, self.reader._cents
        cancelled_on = sa.case((i.date_cancelled > KNOWN, i.date_cancelled),
                               else_=i.updated_at)
        query = (sa.select(i.userid, c.status, c.currency, i.id, i.status, day(i.duedate),
                           cents(i.total), day(i.datepaid), day(cancelled_on), day(a.date),
                           cents(a.amountin - a.amountout))
                 .select_from(tblinvoices.join(tblclients, c.id == i.userid)
                              .outerjoin(tblaccounts, a.invoiceid == i.id))
                 .where(self._late(grace_days, today)).order_by(i.userid, i.id))
        if id_range is not None:
            query = query.where(i.userid.between(*id_range))
        return query

    def count(self, grace_days: int, today: date) -> int:
        i = tblinvoices.c
        with self.reader.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count(sa.distinct(i.userid)))
                                    .where(self._late(grace_days, today))).scalar() or 0)

    def histories(self, grace_days: int, today: date, *,
                  id_range: tuple[int, int] | None = None) -> Iterator[ClientHistory]:
        """Every concerned client's history (those with ids in ``id_range``, bounds
        included), by id."""
        money = self.reader.currencies()
        with self.reader.engine.connect() as conn:
            rows = self.reader._stream(conn, self._query(grace_days, today, id_range))
            for _, found in groupby(rows, key=itemgetter(0)):
                yield _history(list(found), money)


class HistoryApiReader:
    """The history through WHMCS's API, for installations without database access: every
    invoice (GetInvoices, 1,000 a page) and every client's status (GetClients), then
    GetTransactions for each client concerned (the action has no pages). Slower than the
    database at scale: one call per concerned client."""

    name = "api"

    def __init__(self, whmcs: WhmcsClient) -> None:
        self.whmcs = whmcs

    def dispose(self) -> None:
        self.whmcs.close()

    def count(self, grace_days: int, today: date) -> int:
        return self.whmcs.count_clients()

    def histories(self, grace_days: int, today: date, *,
                  id_range: tuple[int, int] | None = None) -> Iterator[ClientHistory]:
        late_before = today - timedelta(days=grace_days)
        invoices: dict[int, list[PastInvoice]] = {}
        money: dict[int, tuple[str, str]] = {}
        for inv in self.whmcs.iter_invoices(page_size=MAX_PAGE_SIZE):
            if inv.duedate is None or (id_range and not id_range[0] <= inv.userid <= id_range[1]):
                continue
            grace_ended = inv.duedate + timedelta(days=grace_days + 1)
            cancelled_on = inv.date_cancelled or inv.updated_at
            if inv.status in OWED_STATUSES:
                late = inv.duedate < late_before
            elif inv.status in (PAID, REFUNDED):
                late = inv.datepaid is not None and inv.datepaid >= grace_ended
            elif inv.status == CANCELLED:
                late = cancelled_on is not None and cancelled_on >= grace_ended
            else:
                late = False
            if late:
                invoices.setdefault(inv.userid, []).append(PastInvoice(
                    inv.id, inv.status, inv.duedate, inv.total, inv.datepaid, cancelled_on))
                money.setdefault(inv.userid, (inv.currency_prefix, inv.currency_suffix))
        status = {c.id: c.status for c in self.whmcs.iter_clients(page_size=MAX_PAGE_SIZE)
                  if c.id in invoices}
        for client_id in sorted(invoices):
            mine = {i.id for i in invoices[client_id]}
            payments = sorted((PastPayment(t.invoiceid, t.amountin - t.amountout, t.date)
                               for t in self.whmcs.client_transactions(client_id)
                               if t.invoiceid in mine and t.date is not None),
                              key=lambda p: (p.paid_on, p.invoice_id))
            yield ClientHistory(client_id, status.get(client_id, "Active"), *money[client_id],
                                tuple(invoices[client_id]), tuple(payments))


def _history(rows: list[Any], money: dict[int, tuple[str, str]]) -> ClientHistory:
    """One client's history from its rows (an invoice repeated once per transaction)."""
    first = rows[0]
    prefix, suffix = money.get(first[2]) or money[0]
    invoices: list[PastInvoice] = []
    payments: list[PastPayment] = []
    last = None
    for r in rows:
        if r[3] != last:
            last = r[3]
            invoices.append(PastInvoice(r[3], r[4], _day(r[5]), _money(r[6]),
                                        None if r[7] is None else _day(r[7]),
                                        None if r[8] is None else _day(r[8])))
        if r[9] is not None:
            payments.append(PastPayment(r[3], _money(r[10]), _day(r[9])))
    return ClientHistory(first[0], first[1], prefix, suffix, tuple(invoices), tuple(payments))


def _day(ordinal: int) -> date:
    return date.fromordinal(ordinal)


def _money(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)
