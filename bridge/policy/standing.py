"""Standing: is a client current, overdue or suspended today?

| kind        | when                                                                        |
|-------------|-----------------------------------------------------------------------------|
| `current`   | nothing owed past the grace (or the total owed past it is under             |
|             | `min_overdue_amount`)                                                       |
| `overdue`   | owes past the grace, and no service is Suspended                            |
| `suspended` | owes past the grace, and at least one service is Suspended                  |

`suspended` needs debt *past the grace* too, so the three rows split every client exactly once
and "current" always means "nothing owed past the grace". A service suspended for another
reason (abuse, a manual suspension) therefore never cuts a client's grace short.

A promise to pay does not change ``kind``; it is reported in ``promise_active`` and the callers
decide what it is worth (tickets: current; VIP: only with ``promise_restores_vip``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

from bridge.i18n import N_, format_money, why
from bridge.model import Money, Reason, ReasonValue
from bridge.policy.state import COLLECTIONS, PAYMENT_PENDING, SUSPENDED, ClientState, Invoice
from bridge.settings import PolicySettings

StandingKind = Literal["current", "overdue", "suspended"]
RANK: dict[str, int] = {"current": 0, "overdue": 1, "suspended": 2}


@dataclass(frozen=True)
class OverdueItem:
    invoice: Invoice
    days: int  # days since the due date (business days when grace_in_business_days is on)
    grace: int  # grace_days, plus pending_grace_days for Payment Pending
    business_days: bool

    @property
    def beyond_grace(self) -> bool:
        return self.days > self.grace


@dataclass(frozen=True)
class Standing:
    kind: StandingKind
    overdue: tuple[OverdueItem, ...]  # the invoices owed past the grace that count, oldest first
    overdue_total: Decimal  # sum of their balances
    max_days: int  # the largest of their days overdue (0 when none)
    promise_active: bool
    reasons: tuple[Reason, ...]
    currency_prefix: str = ""
    currency_suffix: str = ""

    def money(self, amount: Decimal, language: str = "en") -> str:
        return format_money(amount, self.currency_prefix, self.currency_suffix, language)


def business_days_after(start: date, end: date) -> int:
    """How many Mondays to Fridays d there are with ``start < d <= end`` (holidays not known)."""
    if end <= start:
        return 0
    weeks, rest = divmod((end - start).days, 7)
    first = start.weekday()
    return weeks * 5 + sum(1 for i in range(1, rest + 1) if (first + i) % 7 < 5)


def days_overdue(duedate: date, today: date, business: bool) -> int:
    """Days since ``duedate``. In business days, a due date on a weekend moves to Monday: a
    boleto due on Saturday can be paid on Monday without being late."""
    if not business:
        return max((today - duedate).days, 0)
    if duedate.weekday() >= 5:
        duedate += timedelta(days=7 - duedate.weekday())
    return business_days_after(duedate, today)


def overdue_items(client: ClientState, settings: PolicySettings,
                  today: date) -> tuple[OverdueItem, ...]:
    """Every invoice still owed (Unpaid, Payment Pending, or Collections unless
    ``collections_owed`` is off; balance > 0) whose due date is before today, oldest first,
    whether or not it is past the grace. Collections counts from its due date with the plain
    grace, like Unpaid."""
    business = settings.grace_in_business_days
    items = []
    for invoice in client.invoices:
        if not invoice.counts_as_owed(settings.collections_owed) or invoice.duedate >= today:
            continue
        grace = settings.grace_days
        if invoice.status == PAYMENT_PENDING:
            grace += settings.pending_grace_days
        items.append(OverdueItem(invoice, days_overdue(invoice.duedate, today, business),
                                 grace, business))
    return tuple(sorted(items, key=lambda i: (i.invoice.duedate, i.invoice.id)))


def describe(item: OverdueItem, prefix: str, suffix: str) -> Reason:
    """``invoice #1042 R$ 89.90 overdue 6 days > grace 3``; a Collections invoice reads
    ``invoice #1042 R$ 89.90 in Collections overdue 40 days > grace 3``."""
    inv = item.invoice
    amount: Money | Reason = Money(inv.balance, prefix, suffix)
    if inv.balance < inv.total:
        amount = why.gettext("%(balance)s (of %(total)s)", balance=amount,
                             total=Money(inv.total, prefix, suffix))
    if inv.status == COLLECTIONS:
        amount = why.gettext("%(amount)s in Collections", amount=amount)
    grace: int | Reason = item.grace
    if inv.status == PAYMENT_PENDING:
        grace = why.gettext("%(grace)d (Payment Pending)", grace=item.grace)
    values: dict[str, ReasonValue] = {"number": inv.number, "amount": amount, "grace": grace}
    if item.beyond_grace and item.business_days:
        return why.ngettext("invoice #%(number)s %(amount)s overdue %(num)d business day > "
                            "grace %(grace)s",
                            "invoice #%(number)s %(amount)s overdue %(num)d business days > "
                            "grace %(grace)s", item.days, **values)
    if item.beyond_grace:
        return why.ngettext("invoice #%(number)s %(amount)s overdue %(num)d day > grace "
                            "%(grace)s",
                            "invoice #%(number)s %(amount)s overdue %(num)d days > grace "
                            "%(grace)s", item.days, **values)
    if item.business_days:
        return why.ngettext("invoice #%(number)s %(amount)s overdue %(num)d business day "
                            "within grace %(grace)s",
                            "invoice #%(number)s %(amount)s overdue %(num)d business days "
                            "within grace %(grace)s", item.days, **values)
    return why.ngettext("invoice #%(number)s %(amount)s overdue %(num)d day within grace "
                        "%(grace)s",
                        "invoice #%(number)s %(amount)s overdue %(num)d days within grace "
                        "%(grace)s", item.days, **values)


# "standing <kind>", the last reason of every standing (translated where it is shown)
STANDING_REASONS = {"current": N_("standing current"), "overdue": N_("standing overdue"),
                    "suspended": N_("standing suspended")}


def standing(client: ClientState, settings: PolicySettings, today: date) -> Standing:
    """The client's standing on ``today`` (WHMCS time zone), with the reasons."""
    prefix, suffix = client.currency_prefix, client.currency_suffix
    items = overdue_items(client, settings, today)
    reasons = [describe(i, prefix, suffix) for i in items] or [
        why.gettext("no unpaid invoice past its due date")]
    late = tuple(i for i in items if i.beyond_grace)
    total = sum((i.invoice.balance for i in late), Decimal(0))
    if late and total < settings.min_overdue_amount:
        reasons.append(why.gettext(
            "owed past the grace %(total)s < min_overdue_amount %(minimum)s: ignored",
            total=Money(total, prefix, suffix),
            minimum=Money(settings.min_overdue_amount, prefix, suffix)))
        late, total = (), Decimal(0)
    suspended = [s for s in client.services if s.status == SUSPENDED]
    for service in suspended:
        if service.suspendreason:
            reasons.append(why.gettext("service #%(id)s is Suspended (%(why)s)",
                                       id=service.id, why=service.suspendreason))
        else:
            reasons.append(why.gettext("service #%(id)s is Suspended", id=service.id))
    kind: StandingKind = "current"
    if late:
        kind = "suspended" if suspended else "overdue"
    promise = client.promise
    active = promise is not None and promise.until >= today
    if promise is not None:
        if promise.note and active:
            reasons.append(why.gettext("promise to pay until %(until)s (%(note)s) active",
                                       until=promise.until, note=promise.note))
        elif promise.note:
            reasons.append(why.gettext("promise to pay until %(until)s (%(note)s) expired",
                                       until=promise.until, note=promise.note))
        elif active:
            reasons.append(why.gettext("promise to pay until %(until)s active",
                                       until=promise.until))
        else:
            reasons.append(why.gettext("promise to pay until %(until)s expired",
                                       until=promise.until))
    reasons.append(why.gettext(STANDING_REASONS[kind]))
    return Standing(kind, late, total, max((i.days for i in late), default=0), active,
                    tuple(reasons), prefix, suffix)
