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

from bridge.policy.gate import format_money
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
    reasons: tuple[str, ...]
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


def describe(item: OverdueItem, prefix: str, suffix: str) -> str:
    """``invoice #1042 R$ 89.90 overdue 6 days > grace 3``; a Collections invoice reads
    ``invoice #1042 R$ 89.90 in Collections overdue 40 days > grace 3``."""
    inv = item.invoice
    amount = format_money(inv.balance, prefix, suffix, "en")
    if inv.balance < inv.total:
        amount += f" (of {format_money(inv.total, prefix, suffix, 'en')})"
    if inv.status == COLLECTIONS:
        amount += " in Collections"
    unit = "business days" if item.business_days else "days"
    if item.days == 1:
        unit = unit[:-1]
    grace = str(item.grace)
    if inv.status == PAYMENT_PENDING:
        grace = f"{item.grace} (Payment Pending)"
    compare = f"> grace {grace}" if item.beyond_grace else f"within grace {grace}"
    return f"invoice #{inv.number} {amount} overdue {item.days} {unit} {compare}"


def standing(client: ClientState, settings: PolicySettings, today: date) -> Standing:
    """The client's standing on ``today`` (WHMCS time zone), with the reasons."""
    prefix, suffix = client.currency_prefix, client.currency_suffix
    items = overdue_items(client, settings, today)
    reasons = [describe(i, prefix, suffix) for i in items] or [
        "no unpaid invoice past its due date"]
    late = tuple(i for i in items if i.beyond_grace)
    total = sum((i.invoice.balance for i in late), Decimal(0))
    if late and total < settings.min_overdue_amount:
        reasons.append(f"owed past the grace {format_money(total, prefix, suffix, 'en')} < "
                       f"min_overdue_amount "
                       f"{format_money(settings.min_overdue_amount, prefix, suffix, 'en')}: "
                       "ignored")
        late, total = (), Decimal(0)
    suspended = [s for s in client.services if s.status == SUSPENDED]
    for service in suspended:
        why = f" ({service.suspendreason})" if service.suspendreason else ""
        reasons.append(f"service #{service.id} is Suspended{why}")
    kind: StandingKind = "current"
    if late:
        kind = "suspended" if suspended else "overdue"
    promise = client.promise
    active = promise is not None and promise.until >= today
    if promise is not None:
        note = f" ({promise.note})" if promise.note else ""
        state = "active" if active else "expired"
        reasons.append(f"promise to pay until {promise.until.isoformat()}{note} {state}")
    reasons.append(f"standing {kind}")
    return Standing(kind, late, total, max((i.days for i in late), default=0), active,
                    tuple(reasons), prefix, suffix)
