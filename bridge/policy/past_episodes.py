"""Past delinquency episodes, reconstructed from a client's invoices and transactions as WHMCS
kept them (``vipgate backfill``; pure). The meaning is ``bridge.policy.episodes``': an episode
runs while the client owes past the grace; here the days come from due dates, ``datepaid``,
cancellation days and the transactions' dates instead of a reconcile's ``today``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal

from bridge.policy.episodes import CLIENT_CLOSED, PAID_UP, WRITTEN_OFF, Payment, ending_kind
from bridge.policy.standing import days_overdue
from bridge.policy.state import COLLECTIONS, OWED_STATUSES, PAID, PAYMENT_PENDING
from bridge.settings import PolicySettings


@dataclass(frozen=True)
class PastInvoice:
    """An invoice as WHMCS kept it (``tblinvoices`` / GetInvoices)."""

    id: int
    status: str
    duedate: date
    total: Decimal
    datepaid: date | None  # None: WHMCS's zero date
    cancelled_on: date | None  # date_cancelled (else updated_at) of a Cancelled invoice


@dataclass(frozen=True)
class PastPayment:
    """A transaction (``tblaccounts`` / GetTransactions) applied to an invoice."""

    invoice_id: int
    amount: Decimal  # amountin - amountout
    paid_on: date


@dataclass(frozen=True)
class ClientHistory:
    client_id: int
    status: str
    currency_prefix: str
    currency_suffix: str
    invoices: tuple[PastInvoice, ...]
    payments: tuple[PastPayment, ...]


@dataclass(frozen=True)
class PastEpisode:
    client_id: int
    opened_on: date
    amount: Decimal
    currency_prefix: str
    currency_suffix: str
    payments: tuple[Payment, ...]
    ended_on: date | None  # None: still open today
    how: str | None
    recovered: Decimal
    days: int | None
    tracked: Mapping[int, Decimal] = field(default_factory=dict)  # owed now (open episode)


@dataclass(frozen=True)
class _Span:
    """One invoice's time past the grace: [late_from, until) (until None: still owed)."""

    invoice: PastInvoice
    late_from: date
    until: date | None
    payments: tuple[PastPayment, ...]


def late_from(duedate: date, grace: int, business: bool) -> date:
    """The first day an invoice due on ``duedate`` is past a grace of ``grace`` days."""
    if not business:
        return duedate + timedelta(days=grace + 1)
    day = duedate + timedelta(days=grace + 1)
    while days_overdue(duedate, day, True) <= grace:
        day += timedelta(days=1)
    return day


def _spans(history: ClientHistory, settings: PolicySettings, today: date) -> list[_Span]:
    by_invoice: dict[int, list[PastPayment]] = {}
    for payment in history.payments:
        by_invoice.setdefault(payment.invoice_id, []).append(payment)
    spans = []
    for invoice in history.invoices:
        status = invoice.status
        if status == COLLECTIONS and not settings.collections_owed:
            continue
        grace = settings.grace_days + (settings.pending_grace_days
                                       if status == PAYMENT_PENDING else 0)
        start = late_from(invoice.duedate, grace, settings.grace_in_business_days)
        if status in OWED_STATUSES:
            until = None
        elif status in (PAID, "Refunded"):
            until = invoice.datepaid
        elif status in WRITTEN_OFF:
            until = invoice.cancelled_on
        else:  # Draft: never owed
            continue
        if until is None and status not in OWED_STATUSES:
            continue  # ended on a day WHMCS did not keep: nothing to say
        if start > today or (until is not None and until <= start):
            continue
        spans.append(_Span(invoice, start, until,
                           tuple(sorted(by_invoice.get(invoice.id, ()),
                                        key=lambda p: p.paid_on))))
    return spans


def _balance(span: _Span, day: date) -> Decimal:
    """What the invoice still owed at the end of ``day`` (a Paid invoice nothing from its
    ``datepaid``: credit applied leaves no transaction)."""
    if span.until is not None and day >= span.until:
        return Decimal(0)
    paid = sum((p.amount for p in span.payments if p.paid_on <= day), Decimal(0))
    return max(span.invoice.total - paid, Decimal(0))


def _changes(span: _Span, today: date) -> Iterator[tuple[date, Decimal]]:
    """How the span moves the client's debt past the grace: (day, change), the debt being
    each invoice's balance at the end of the day, while it is past the grace."""
    total = span.invoice.total
    paid = Decimal(0)
    payments = iter(span.payments)
    payment = next(payments, None)
    while payment is not None and payment.paid_on <= span.late_from:
        paid += payment.amount
        payment = next(payments, None)
    owed = max(total - paid, Decimal(0))
    yield span.late_from, owed
    end = today if span.until is None else min(span.until - timedelta(days=1), today)
    while payment is not None and payment.paid_on <= end:
        paid += payment.amount
        now_owed = max(total - paid, Decimal(0))
        if now_owed != owed:
            yield payment.paid_on, now_owed - owed
            owed = now_owed
        payment = next(payments, None)
    if span.until is not None and span.until <= today and owed:
        yield span.until, -owed


def reconstruct(history: ClientHistory, settings: PolicySettings,
                today: date) -> list[PastEpisode]:
    """The client's episodes as its invoices and transactions tell them, oldest first; the
    last one is open when the client still owes past the grace ``today``. Days are WHMCS's
    calendar days; the status an invoice has now is the only one known (a Payment Pending
    invoice had its extra grace all along). Actions are not known (see docs/RECOVERY.md)."""
    spans = _spans(history, settings, today)
    if not spans:
        return []
    changes = sorted(c for s in spans for c in _changes(s, today))
    minimum = settings.min_overdue_amount
    episodes: list[PastEpisode] = []
    opened: date | None = None
    opening = owed = Decimal(0)
    n = 0
    while n < len(changes):
        day = changes[n][0]
        while n < len(changes) and changes[n][0] == day:
            owed += changes[n][1]
            n += 1
        late = owed > 0 and owed >= minimum
        if late and opened is None:
            opened, opening = day, owed
        elif not late and opened is not None:
            episodes.append(_past(history, spans, opened, opening, day))
            opened = None
    if opened is not None:
        episode = _past(history, spans, opened, opening, None)
        if history.status == "Closed":
            episode = replace(episode, ended_on=today, how=CLIENT_CLOSED)
        else:
            episode = replace(episode, tracked={
                s.invoice.id: _balance(s, today) for s in spans
                if s.until is None and _balance(s, today) > 0})
        episodes.append(episode)
    return episodes


def _past(history: ClientHistory, spans: Sequence[_Span], opened: date, opening: Decimal,
          ended: date | None) -> PastEpisode:
    """The episode from ``opened`` to ``ended`` (None: open): its invoices are the ones past
    the grace at some time within it."""
    end = ended or date.max
    mine = [s for s in spans if s.late_from < end and (s.until is None or s.until > opened)]
    payments: list[Payment] = []
    cancelled = False
    for span in mine:
        paid = Decimal(0)
        for payment in span.payments:
            if span.until is not None and payment.paid_on > span.until:
                continue
            if opened <= payment.paid_on <= end and payment.amount > 0:
                payments.append(Payment(span.invoice.id, payment.amount, payment.paid_on))
            paid += payment.amount
        if span.until is not None and opened <= span.until <= end:
            if span.invoice.status in WRITTEN_OFF:
                cancelled = True
            elif paid < span.invoice.total:  # the rest by credit, on the day it was paid
                payments.append(Payment(span.invoice.id, span.invoice.total - paid,
                                        span.until))
    payments.sort(key=lambda p: (p.paid_on, p.invoice_id))
    recovered = sum((p.amount for p in payments), Decimal(0))
    how = None if ended is None else ending_kind(Decimal(1) if cancelled else Decimal(0), recovered)
    days = (ended - opened).days if ended is not None and how == PAID_UP else None
    return PastEpisode(history.client_id, opened, opening, history.currency_prefix,
                       history.currency_suffix, tuple(payments), ended, how, recovered, days)
