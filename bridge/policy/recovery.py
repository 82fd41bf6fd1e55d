"""Recovery figures (issue 19 item 2): what the delinquency episodes brought back, in money and
days (pure arithmetic over the facts ``bridge.store.recovery`` reads).

For a range of WHMCS days ``since``..``until``:

- **recovered per month**: the episodes' payments dated in the range, summed per month and per
  currency (never converted);
- **paid within 3, 7, 15, 30 days**: of the episodes that ended by payment (``how`` = paid) in
  the range, the share whose ``days`` (ended_on − opened_on) is at most that many days;
- **median days to pay**: the median of those episodes' ``days``;
- **the seed's phenomenon**: of the episodes whose first suspension by WHMCS falls in the
  range, the share that ended by payment within 7 days of that suspension's day.

Each is also given per **first action** (the earliest of left VIP, ticket blocked, suspended in
the episode; ``none`` when it has none of them), per **client group** (the group vipgate last
read from WHMCS; ``unknown`` before it read one) and per **reason tag** (``untagged`` when staff
gave none).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from bridge.policy.episodes import LEFT_VIP, PAID_UP, SUSPENDED, TICKET_BLOCKED

WITHIN_DAYS = (3, 7, 15, 30)
PHENOMENON_DAYS = 7
FIRST_ACTION_KINDS = (LEFT_VIP, TICKET_BLOCKED, SUSPENDED)  # what "first action" looks at
NO_ACTION = "none"
UNTAGGED = "untagged"
UNKNOWN_GROUP = "unknown"
BREAKDOWNS = ("first_action", "group", "reason")


@dataclass(frozen=True)
class EpisodeFacts:
    """One episode as the figures see it."""

    episode_id: int
    opened_on: date
    ended_on: date | None
    how: str | None
    days: int | None
    first_action: str  # one of FIRST_ACTION_KINDS or NO_ACTION
    suspended_on: date | None  # WHMCS day of its first suspension
    group: str  # group id as text, or UNKNOWN_GROUP
    reason: str  # the reason tag, or UNTAGGED

    def key(self, breakdown: str) -> str:
        """Its key in ``breakdown`` (one of :data:`BREAKDOWNS`)."""
        return str(getattr(self, breakdown))


@dataclass(frozen=True)
class PaidMoney:
    """Money paid to one episode's invoices on one day."""

    episode_id: int
    paid_on: date
    amount: Decimal
    currency_prefix: str
    currency_suffix: str


@dataclass(frozen=True)
class MonthTotal:
    month: str  # YYYY-MM
    currency_prefix: str
    currency_suffix: str
    amount: Decimal
    episodes: int  # episodes paid into that month in that currency


@dataclass(frozen=True)
class Figures:
    """The figures of one set of episodes (all of them, or one key of a breakdown)."""

    key: str
    recovered: tuple[MonthTotal, ...]
    paid: int  # episodes ended by payment in the range
    within: dict[int, int]  # {3: episodes paid within 3 days, ...}
    median_days: Decimal | None
    suspended: int  # episodes first suspended in the range
    suspended_paid: int  # of those, paid within PHENOMENON_DAYS of the suspension

    def within_share(self, days: int) -> Decimal | None:
        return share(self.within[days], self.paid)

    @property
    def phenomenon(self) -> Decimal | None:
        return share(self.suspended_paid, self.suspended)


@dataclass(frozen=True)
class Recovery:
    since: date
    until: date
    total: Figures
    by: dict[str, list[Figures]] = field(default_factory=dict)  # breakdown -> keys, sorted


def share(part: int, whole: int) -> Decimal | None:
    """``part`` of ``whole`` in percent, to two decimals (None when ``whole`` is 0)."""
    if not whole:
        return None
    return (Decimal(100 * part) / Decimal(whole)).quantize(Decimal("0.01"))


def median(values: Iterable[int]) -> Decimal | None:
    """The median (the mean of the two middle values for an even count); None when empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return Decimal(ordered[mid])
    return Decimal(ordered[mid - 1] + ordered[mid]) / 2


def first_action(actions: Iterable[tuple[str, datetime, int]]) -> str:
    """The kind of the earliest of ``actions`` (kind, at, id) that is one of
    :data:`FIRST_ACTION_KINDS` (ties: the one recorded first), else :data:`NO_ACTION`."""
    counted = [(at, ident, kind) for kind, at, ident in actions if kind in FIRST_ACTION_KINDS]
    return min(counted)[2] if counted else NO_ACTION


def _figures(key: str, facts: Sequence[EpisodeFacts], money: Sequence[PaidMoney],
             since: date, until: date) -> Figures:
    amounts: dict[tuple[str, str, str], Decimal] = {}
    paid_into: dict[tuple[str, str, str], set[int]] = {}
    for m in money:
        k = (f"{m.paid_on.year:04d}-{m.paid_on.month:02d}", m.currency_prefix,
             m.currency_suffix)
        amounts[k] = amounts.get(k, Decimal(0)) + m.amount
        paid_into.setdefault(k, set()).add(m.episode_id)
    recovered = tuple(MonthTotal(month, prefix, suffix, amounts[month, prefix, suffix],
                                 len(paid_into[month, prefix, suffix]))
                      for month, prefix, suffix in sorted(amounts))
    paid = [f.days for f in facts if f.how == PAID_UP and f.days is not None
            and f.ended_on is not None and since <= f.ended_on <= until]
    suspended = [f for f in facts if f.suspended_on is not None
                 and since <= f.suspended_on <= until]
    suspended_paid = sum(1 for f in suspended if f.how == PAID_UP and f.ended_on is not None
                         and f.suspended_on is not None
                         and (f.ended_on - f.suspended_on).days <= PHENOMENON_DAYS)
    return Figures(key, recovered, len(paid), {n: sum(1 for d in paid if d <= n)
                                               for n in WITHIN_DAYS},
                   median(paid), len(suspended), suspended_paid)


def recovery(facts: Sequence[EpisodeFacts], money: Sequence[PaidMoney], since: date,
             until: date) -> Recovery:
    """The figures of the range from the episodes concerned (``facts``: ended in the range or
    first suspended in it, and those paid into) and their payments dated in the range."""
    if since > until:
        raise ValueError(f"the range's start {since} is after its end {until}")
    money = [m for m in money if since <= m.paid_on <= until]
    by_id = {f.episode_id: f for f in facts}
    total = _figures("all", facts, money, since, until)
    by: dict[str, list[Figures]] = {}
    for breakdown in BREAKDOWNS:
        facts_by: dict[str, list[EpisodeFacts]] = {}
        for f in facts:
            facts_by.setdefault(f.key(breakdown), []).append(f)
        money_by: dict[str, list[PaidMoney]] = {}
        for m in money:
            if m.episode_id in by_id:
                money_by.setdefault(by_id[m.episode_id].key(breakdown), []).append(m)
        by[breakdown] = [_figures(k, facts_by[k], money_by.get(k, []), since, until)
                         for k in sorted(facts_by)]
    return Recovery(since, until, total, by)
