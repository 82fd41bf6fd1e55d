"""Delinquency episodes: when a client's debt past the grace begins and how it ends (pure).

An episode of a client opens on the day its standing (``bridge.policy.standing``) stops being
``current`` — an invoice owed past the grace — and ends on the day it is ``current`` again, or
when the client is closed or gone from WHMCS. It records the debt it opened with, every action
taken during it (:data:`ACTION_KINDS`), the payments of its invoices, how it ended
(:data:`END_KINDS`), the amount recovered and the days to recover.

Two ways in, one meaning:

- :func:`step` — live: the engine (and the resync) compare the open episode with the client as
  WHMCS shows it now and get what changed (:class:`EpisodeStep`);
- :func:`reconstruct` — the past: a client's invoices and transactions as WHMCS kept them give
  its past episodes day by day (``vipgate backfill``).

Nothing here reads or writes; ``now`` and ``today`` (WHMCS's time zone) are passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from bridge.model import TICKET_PRIORITIES
from bridge.policy.standing import Standing, days_overdue
from bridge.policy.state import (
    COLLECTIONS,
    OWED_STATUSES,
    PAID,
    PAYMENT_PENDING,
    ClientState,
    Invoice,
)
from bridge.settings import PolicySettings

# How an episode ended.
PAID_UP = "paid"  # the debt past the grace was paid (recovered > 0, nothing cancelled)
CANCELLED = "cancelled"  # an invoice of the episode was cancelled (the rest may have been paid)
CLIENT_CLOSED = "client_closed"  # the client was closed in WHMCS while it owed
CLIENT_GONE = "client_gone"  # the client no longer exists in WHMCS
OTHER = "other"  # neither paid nor cancelled: a due date moved, the grace or minimum changed
END_KINDS = (PAID_UP, CANCELLED, CLIENT_CLOSED, CLIENT_GONE, OTHER)

# What was done during an episode. The last two are for the trust unlock and the staff's
# reason tag (issue 19 items 5 and 3).
LEFT_VIP = "left_vip"
TICKET_LOWERED = "ticket_lowered"
TICKET_BLOCKED = "ticket_blocked"
SUSPENDED = "suspended"
PROMISE = "promise"
UNLOCKED_BY_TRUST = "unlocked_by_trust"
REASON_TAGGED = "reason_tagged"
ACTION_KINDS = (LEFT_VIP, TICKET_LOWERED, TICKET_BLOCKED, SUSPENDED, PROMISE,
                UNLOCKED_BY_TRUST, REASON_TAGGED)

# Invoice statuses that end a debt without payment.
WRITTEN_OFF = frozenset({"Cancelled"})


@dataclass(frozen=True)
class Payment:
    """Money paid to one of the episode's invoices."""

    invoice_id: int
    amount: Decimal
    paid_on: date


@dataclass(frozen=True)
class Action:
    """Something vipgate (``actor`` vipgate), WHMCS (``whmcs``) or staff (an admin name) did
    during the episode."""

    kind: str  # one of ACTION_KINDS
    at: datetime
    actor: str
    ticket_id: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class Opening:
    opened_at: datetime
    opened_on: date  # WHMCS's day
    amount: Decimal  # owed past the grace
    currency_prefix: str
    currency_suffix: str
    tracked: Mapping[int, Decimal]  # invoice id -> balance owed


@dataclass(frozen=True)
class Ending:
    ended_at: datetime
    ended_on: date
    how: str  # one of END_KINDS
    recovered: Decimal
    days: int | None  # days to recover (paid only): ended_on - opened_on


@dataclass(frozen=True)
class OpenEpisode:
    """The client's open episode as the store keeps it."""

    id: int
    client_id: int
    opened_on: date
    amount: Decimal
    tracked: Mapping[int, Decimal]  # the episode's invoices still owed, with their balance
    standing: str  # the last standing seen (overdue | suspended)
    recovered: Decimal = Decimal(0)  # paid so far
    written_off: Decimal = Decimal(0)  # cancelled so far


@dataclass(frozen=True)
class EpisodeStep:
    """What changes in a client's episode at one reconcile. ``opening``: a new episode (its
    first actions in ``actions``); otherwise the open one moves on: ``payments``, ``tracked``
    (None: unchanged), ``standing`` (None: unchanged), ``written_off`` (added), ``ending``."""

    opening: Opening | None = None
    actions: tuple[Action, ...] = ()
    payments: tuple[Payment, ...] = ()
    tracked: Mapping[int, Decimal] | None = None
    standing: str | None = None
    written_off: Decimal = Decimal(0)
    ending: Ending | None = None

    @property
    def changed(self) -> bool:
        return bool(self.opening or self.actions or self.payments or self.ending
                    or self.tracked is not None or self.standing is not None)


NO_STEP = EpisodeStep()


def step(episode: OpenEpisode | None, client: ClientState | None, current: Standing | None,
         today: date, now: datetime, *,
         extra_invoices: Iterable[Invoice] = ()) -> EpisodeStep:
    """The episode's move when the client reads as ``client`` with standing ``current`` at
    ``now`` (``today`` in WHMCS's time zone). ``client`` None: gone from WHMCS.
    ``extra_invoices``: invoices of the episode read apart (a bulk read that leaves out the
    ones no longer owed), as :class:`bridge.policy.state.Invoice`."""
    if client is None or current is None:
        if episode is None:
            return NO_STEP
        return EpisodeStep(ending=_ending(episode, (), Decimal(0), CLIENT_GONE, today, now))
    late = current.kind != "current"
    closed = client.status == "Closed"
    if episode is None:
        if not late or closed:
            return NO_STEP
        first = (Action(SUSPENDED, now, "whmcs"),) if current.kind == "suspended" else ()
        return EpisodeStep(opening=Opening(
            now, today, current.overdue_total, client.currency_prefix, client.currency_suffix,
            {i.invoice.id: i.invoice.balance for i in current.overdue}), actions=first)
    invoices = {inv.id: inv for inv in (*extra_invoices, *client.invoices)}
    payments: list[Payment] = []
    tracked: dict[int, Decimal] = {}
    written_off = Decimal(0)
    for invoice_id, owed in episode.tracked.items():
        invoice = invoices.get(invoice_id)
        if invoice is None:  # not read: its fate is unknown, it leaves the episode
            continue
        if invoice.status == PAID or (invoice.status in OWED_STATUSES and invoice.balance <= 0):
            if owed > 0:
                payments.append(Payment(invoice_id, owed, invoice.datepaid or today))
        elif invoice.status in OWED_STATUSES:
            if invoice.balance < owed:
                payments.append(Payment(invoice_id, owed - invoice.balance, today))
            tracked[invoice_id] = invoice.balance
        elif invoice.status in WRITTEN_OFF:
            written_off += owed
        else:  # Refunded, Draft: no longer owed, neither paid nor cancelled here
            continue
    for item in current.overdue:  # invoices that went past the grace during the episode
        tracked.setdefault(item.invoice.id, item.invoice.balance)
    actions: tuple[Action, ...] = ()
    standing: str | None = None
    if late and current.kind != episode.standing:
        standing = current.kind
        if current.kind == "suspended":
            actions = (Action(SUSPENDED, now, "whmcs"),)
    ending = None
    recovered = sum((p.amount for p in payments), Decimal(0))
    if closed or not late:
        how = CLIENT_CLOSED if closed else _how(episode.written_off + written_off,
                                               episode.recovered + recovered)
        ending = _ending(episode, payments, recovered, how, today, now)
    return EpisodeStep(actions=actions, payments=tuple(payments),
                       tracked=None if tracked == dict(episode.tracked) else tracked,
                       standing=standing, written_off=written_off, ending=ending)


def _how(written_off: Decimal, recovered: Decimal) -> str:
    if written_off > 0:
        return CANCELLED
    return PAID_UP if recovered > 0 else OTHER


def _ending(episode: OpenEpisode, payments: Sequence[Payment], recovered: Decimal, how: str,
            today: date, now: datetime) -> Ending:
    """The end at ``today``; a payment WHMCS dates earlier (an event lost and caught up by a
    resync) ends a paid episode on that day."""
    ended_on = today
    if how == PAID_UP and payments:
        ended_on = min(today, max(max(p.paid_on for p in payments), episode.opened_on))
    days = (ended_on - episode.opened_on).days if how == PAID_UP else None
    return Ending(now, ended_on, how, episode.recovered + recovered, days)


def change_action(kind: str, before: str | None, after: str | None, vip_group_id: int,
                  ticket_id: int | None, now: datetime, actor: str) -> Action | None:
    """The episode action behind one change vipgate made in WHMCS (an audit row's action,
    before and after), or None when it is not one."""
    vip = str(vip_group_id)
    if kind == "group" and vip_group_id and before == vip and after != vip:
        return Action(LEFT_VIP, now, actor, None, f"{before} -> {after}")
    if kind == "ticket_priority" and before in TICKET_PRIORITIES and after in TICKET_PRIORITIES \
            and TICKET_PRIORITIES.index(after) < TICKET_PRIORITIES.index(before):
        return Action(TICKET_LOWERED, now, actor, ticket_id, f"{before} -> {after}")
    if kind == "ticket_department":  # a ticket that got round the gate, moved to billing
        return Action(TICKET_BLOCKED, now, actor, ticket_id, f"moved to department {after}")
    return None


# --- the past: episodes from WHMCS's invoices and transactions ---------------------------------


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
    how = None if ended is None else _how(Decimal(1) if cancelled else Decimal(0), recovered)
    days = (ended - opened).days if ended is not None and how == PAID_UP else None
    return PastEpisode(history.client_id, opened, opening, history.currency_prefix,
                       history.currency_suffix, tuple(payments), ended, how, recovered, days)
