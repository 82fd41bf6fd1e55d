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

The **trust unlock** (issue 19 item 5) has figures of its own (:func:`trust_unlocks`): the
episodes whose client unlocked its services (an ``unlocked_by_trust`` action, its ``detail`` the
day until which they are unlocked) on a day of the range, and what became of them as known now:
ended by payment (by that day or later, with the money paid from the unlock's day on), still
open, ended otherwise, suspended again after the unlock. An unlock is not a first action: the
client does it, after a suspension, so it is never what was done first about the debt.
"""

from __future__ import annotations

import re
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
UNLOCK_OUTCOMES = ("paid", "paid_by_date", "paid_later", "open", "ended_unpaid",
                   "suspended_again")  # the trust unlock's figures, besides how many were made
ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # an unlock's detail


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
class UnlockFacts:
    """One episode unlocked by trust as the figures see it (its first unlock, if several)."""

    episode_id: int
    unlocked_at: datetime  # naive UTC, as stored
    unlocked_on: date  # the unlock's WHMCS day
    until: date  # the day the services were unlocked until (the action's detail)
    ended_on: date | None
    how: str | None
    suspensions: tuple[datetime, ...] = ()  # the episode's suspended actions (naive UTC)

    @property
    def paid(self) -> bool:
        return self.how == PAID_UP and self.ended_on is not None

    def outcomes(self) -> tuple[str, ...]:
        """The :data:`UNLOCK_OUTCOMES` it counts in."""
        out: list[str] = []
        if self.paid:
            assert self.ended_on is not None
            out += ["paid", "paid_by_date" if self.ended_on <= self.until else "paid_later"]
        elif self.ended_on is None:
            out.append("open")
        else:
            out.append("ended_unpaid")
        if any(at > self.unlocked_at for at in self.suspensions):
            out.append("suspended_again")
        return tuple(out)


@dataclass(frozen=True)
class CurrencyTotal:
    currency_prefix: str
    currency_suffix: str
    amount: Decimal


@dataclass(frozen=True)
class TrustUnlocks:
    """The trust unlocks made in the range, and what became of them: ``counts`` per
    :data:`UNLOCK_OUTCOMES`, ``recovered`` per outcome among paid, paid_by_date, paid_later
    (what those episodes were paid from the unlock's day on, per currency)."""

    made: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(UNLOCK_OUTCOMES, 0))
    recovered: dict[str, tuple[CurrencyTotal, ...]] = field(default_factory=dict)

    def share(self, outcome: str) -> Decimal | None:
        """``outcome``'s share of the unlocks made (None without any)."""
        return share(self.counts[outcome], self.made)


@dataclass(frozen=True)
class Recovery:
    since: date
    until: date
    total: Figures
    by: dict[str, list[Figures]] = field(default_factory=dict)  # breakdown -> keys, sorted
    trust: TrustUnlocks = field(default_factory=TrustUnlocks)


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


def unlock_until(detail: str, episode_id: int) -> date:
    """The day an ``unlocked_by_trust`` action's ``detail`` names (``YYYY-MM-DD`` exactly);
    ValueError naming the episode otherwise."""
    try:
        if not ISO_DAY.fullmatch(detail):
            raise ValueError(detail)
        return date.fromisoformat(detail)
    except ValueError:
        raise ValueError(f"episode {episode_id}: the trust unlock's detail {detail[:40]!r} is "
                         f"not a day written YYYY-MM-DD") from None


def trust_unlocks(unlocks: Sequence[UnlockFacts], money: Sequence[PaidMoney], since: date,
                  until: date) -> TrustUnlocks:
    """The figures of the unlocks made on a day of ``since``..``until`` (``unlocks``; others
    are left out), as known now: an episode paid after the range counts as paid. ``money``:
    those episodes' payments, whatever their day (each counts from its unlock's day on)."""
    made = [u for u in unlocks if since <= u.unlocked_on <= until]
    counts = dict.fromkeys(UNLOCK_OUTCOMES, 0)
    outcomes: dict[int, tuple[str, ...]] = {}
    for u in made:
        outcomes[u.episode_id] = u.outcomes()
        for outcome in outcomes[u.episode_id]:
            counts[outcome] += 1
    from_day = {u.episode_id: u.unlocked_on for u in made}
    sums: dict[str, dict[tuple[str, str], Decimal]] = {}
    for m in money:
        if m.episode_id not in from_day or m.paid_on < from_day[m.episode_id]:
            continue
        for outcome in outcomes[m.episode_id]:
            if outcome.startswith("paid"):
                bucket = sums.setdefault(outcome, {})
                key = (m.currency_prefix, m.currency_suffix)
                bucket[key] = bucket.get(key, Decimal(0)) + m.amount
    recovered = {outcome: tuple(CurrencyTotal(p, s, a) for (p, s), a in sorted(bucket.items()))
                 for outcome, bucket in sums.items()}
    return TrustUnlocks(len(made), counts, recovered)


def recovery(facts: Sequence[EpisodeFacts], money: Sequence[PaidMoney], since: date,
             until: date, unlocks: Sequence[UnlockFacts] = (),
             unlock_money: Sequence[PaidMoney] = ()) -> Recovery:
    """The figures of the range from the episodes concerned (``facts``: ended in the range or
    first suspended in it, and those paid into) and their payments dated in the range; and
    those of the trust unlocks made in the range (``unlocks``, with their episodes' payments,
    ``unlock_money``: :func:`trust_unlocks`)."""
    if since > until:
        raise ValueError(f"the range's start {since} is after its end {until}")
    trust = trust_unlocks(unlocks, unlock_money, since, until)
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
    return Recovery(since, until, total, by, trust)
