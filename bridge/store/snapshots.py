"""Daily delinquency snapshots: the figures the admin dashboard charts, one row per day.

A snapshot is counted from vipgate's standing cache (``standing``), which a complete resync
has just brought up to date, with set-based SQL (the cache can hold a million clients):

- a client's standing is its *billing* standing (``billing_standing``; ``standing``, the
  ticket standing, for rows written before that was kept), so a promise to pay does not hide
  a debt; delinquent = overdue + suspended;
- the overdue amount is the sum of the delinquent clients' ``overdue_total``. Currencies are
  not converted: with several currencies the sum mixes them; the latest snapshot's split by
  currency is kept beside it (:func:`currency_split`);
- aging buckets by ``overdue_days`` (the oldest overdue invoice's days past its due date, as
  the policy counts them: business days when ``grace_in_business_days`` is on);
- by due day of month: the day of month of the oldest overdue invoice's due date, read from
  the cache's invoice list (oldest first). ``snapshot day - overdue_days`` would be cheaper
  but is not the due date when days are business days;
- VIP removals and restorations: vipgate's own group changes out of and into the VIP group
  (``audit`` rows, action ``group``, actor ``vipgate``) during the day in WHMCS's time zone.

The dashboard reads the rows back with :func:`snapshots`, :func:`latest` and :func:`before`.
Every non-dry-run full reconcile is recorded in the meta key ``last_full_reconcile``. A day's
bounds in WHMCS's time zone are ``bridge.days``'.

Today's figures follow events: they are counted when they are read (:func:`live`), not kept
up to date row by row. The engine refreshes a client's standing cache row and writes its
audit row on every event, so counting the cache and the day's audit rows when the page asks
gives what happened until then, with nothing to keep consistent: no per-event counter that
several workers would have to update (no lost update, no row lock on the hot path), and no
drift between a counter and the cache it summarises (a resync repairs the cache; a counter it
would have to recount). The cost is one pass over the cache per read, measured by
``bench/figures.py`` (docs/PERFORMANCE.md).

Past days are closed at their end in WHMCS's time zone (:func:`close_days`, called by the
worker): the day's row is counted right after midnight and marked final (``closed_at``);
nothing overwrites it after. A day is closed only when vipgate was running at its end (the
worker's last check, the meta key ``days_watched``, within :data:`CLOSE_GAP` of it); a day
whose end vipgate did not see keeps the row it had (the 09:00 reconcile's, say), not closed,
or none: the dashboard says so rather than count a past day from today's cache.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from bridge.days import business_day, day_bounds
from bridge.store.database import utc_naive
from bridge.store.meta import MetaStore
from bridge.store.tables import audit, daily_snapshot, standing

AGING_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("1-7", 1, 7), ("8-15", 8, 15), ("16-30", 16, 30), ("31-60", 31, 60), ("60+", 61, None))
DUE_DAYS = tuple(range(1, 32))
DELINQUENT = ("overdue", "suspended")
LAST_FULL_RECONCILE = "last_full_reconcile"
CURRENCY_SPLIT = "daily_snapshot_currencies"
CENTS = Decimal("0.01")
DAYS_WATCHED = "days_watched"
# A day is closed when the worker checked within this long before its end (it checks every
# minute while running; a long event, a full reconcile, holds the check back meanwhile).
CLOSE_GAP = timedelta(minutes=30)


@dataclass(frozen=True)
class Snapshot:
    """One day's figures (``day`` in WHMCS's time zone; ``taken_at`` naive UTC)."""

    day: date
    taken_at: datetime
    clients: int  # rows in the standing cache
    delinquent: int  # overdue + suspended
    overdue: int
    suspended: int
    overdue_total: Decimal  # summed over currencies, not converted
    vip_members: int
    vip_removed: int
    vip_restored: int
    aging: Mapping[str, int]  # AGING_BUCKETS labels -> delinquent clients
    by_due_day: Mapping[int, int]  # 1..31 -> delinquent clients
    # When the day was closed (naive UTC): its figures are final. None: still open, or a
    # past day whose end vipgate did not see (its figures are as of ``taken_at``).
    closed_at: datetime | None = None
    # Counted when read (today's, :func:`live`): ``taken_at`` is then the newest write it
    # counts (a standing cache row or a VIP move), not when it was counted.
    live: bool = False

    @property
    def share(self) -> float:
        """Delinquent clients as a percentage of the clients in the cache."""
        return 100.0 * self.delinquent / self.clients if self.clients else 0.0


@dataclass(frozen=True)
class CurrencyTotal:
    prefix: str
    suffix: str
    clients: int
    amount: Decimal


# --- taking a snapshot ------------------------------------------------------------------------


def take_snapshot(store: MetaStore, day: date, taken_at: datetime, vip_group_id: int, *,
                  timezone: str) -> Snapshot:
    """Count ``day``'s figures from the standing cache and the audit log, and store them
    (a day's latest snapshot wins). ``timezone`` is WHMCS's (``[bridge] timezone``): it
    decides which audit rows fall on ``day``."""
    snapshot, currencies = compute(store, day, taken_at, vip_group_id, timezone=timezone)
    save(store, snapshot, currencies)
    return snapshot


def compute(store: MetaStore, day: date, taken_at: datetime, vip_group_id: int, *,
            timezone: str) -> tuple[Snapshot, list[CurrencyTotal]]:
    """``day``'s figures and the overdue amount by currency, without storing anything."""
    snapshot, currencies, _newest = _count(store, day, taken_at, vip_group_id,
                                           timezone=timezone)
    return snapshot, currencies


def live(store: MetaStore, day: date, now: datetime, vip_group_id: int, *,
         timezone: str) -> tuple[Snapshot, list[CurrencyTotal]]:
    """``day``'s figures counted now (today's, on the dashboard), stored nowhere; its
    ``taken_at`` is the newest write it counts (capped at ``now``): what it was last updated
    by. Empty cache: ``clients`` is 0 and ``taken_at`` is ``now``."""
    snapshot, currencies, newest = _count(store, day, now, vip_group_id, timezone=timezone)
    moment = snapshot.taken_at if newest is None else min(newest, snapshot.taken_at)
    return replace(snapshot, taken_at=moment, live=True), currencies


def _count(store: MetaStore, day: date, taken_at: datetime, vip_group_id: int, *,
           timezone: str) -> tuple[Snapshot, list[CurrencyTotal], datetime | None]:
    """:func:`compute`, and the newest write counted (cache row or VIP move; naive UTC)."""
    kind = sa.func.coalesce(standing.c.billing_standing, standing.c.standing)
    delinquent = kind.in_(DELINQUENT)
    days = standing.c.overdue_days

    def count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
        return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)

    def aged(low: int, high: int | None) -> sa.ColumnElement[bool]:
        if high is None:
            return sa.and_(delinquent, days >= low)
        if low == AGING_BUCKETS[0][1]:  # 0 days cannot be past the grace; counted as 1-7
            return sa.and_(delinquent, days <= high)
        return sa.and_(delinquent, days.between(low, high))

    totals = sa.select(
        sa.func.count().label("clients"),
        sa.func.max(standing.c.updated_at).label("cache_at"),
        count(kind == "overdue").label("overdue"),
        count(kind == "suspended").label("suspended"),
        count(standing.c.in_vip == sa.true()).label("vip_members"),
        *(count(aged(low, high)).label(f"aged_{n}")
          for n, (_, low, high) in enumerate(AGING_BUCKETS)))
    due_day = sa.cast(sa.func.substr(_oldest_due_date(store), 9, 2), sa.Integer)
    cents = sa.cast(sa.func.round(standing.c.overdue_total * 100), sa.BigInteger)
    split = (sa.select(standing.c.currency_prefix, standing.c.currency_suffix,
                       due_day.label("due_day"), sa.func.count().label("clients"),
                       sa.func.sum(cents).label("cents"))
             .where(delinquent)
             .group_by(standing.c.currency_prefix, standing.c.currency_suffix, due_day))
    start, end = day_bounds(day, timezone)
    vip = str(vip_group_id)
    moves = sa.select(count(audit.c.before == vip).label("removed"),
                      count(audit.c.after == vip).label("restored"),
                      sa.func.max(audit.c.at).label("moved_at")).where(
        audit.c.action == "group", audit.c.actor == "vipgate",
        sa.or_(audit.c.before == vip, audit.c.after == vip),
        audit.c.at >= start, audit.c.at < end)
    with store.engine.connect() as conn:
        row = conn.execute(totals).one()
        groups = conn.execute(split).all()
        moved = conn.execute(moves).one()
    by_due_day = dict.fromkeys(DUE_DAYS, 0)
    by_currency: dict[tuple[str, str], list[int]] = {}  # (prefix, suffix) -> [clients, cents]
    for prefix, suffix, dom, clients, amount in groups:
        if dom in by_due_day:
            by_due_day[dom] += int(clients)
        tally = by_currency.setdefault((prefix, suffix), [0, 0])
        tally[0] += int(clients)
        tally[1] += int(amount or 0)
    currencies = [CurrencyTotal(p, s, n, _money(c)) for (p, s), (n, c) in
                  sorted(by_currency.items(), key=lambda item: (-item[1][0], item[0]))]
    overdue, suspended = int(row.overdue), int(row.suspended)
    snapshot = Snapshot(
        day=day, taken_at=utc_naive(taken_at).replace(microsecond=0), clients=int(row.clients),
        delinquent=overdue + suspended, overdue=overdue, suspended=suspended,
        overdue_total=_money(sum(cents for _, cents in by_currency.values())),
        vip_members=int(row.vip_members), vip_removed=int(moved.removed),
        vip_restored=int(moved.restored),
        aging={label: int(getattr(row, f"aged_{n}"))
               for n, (label, _, _) in enumerate(AGING_BUCKETS)},
        by_due_day=by_due_day)
    stamps = [_naive(m) for m in (row.cache_at, moved.moved_at) if m is not None]
    return snapshot, currencies, max(stamps, default=None)


def _naive(moment: datetime | str) -> datetime:
    """A MAX() over a DateTime column: SQLite gives it back as text."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return utc_naive(moment).replace(microsecond=0)


def _oldest_due_date(store: MetaStore) -> sa.ColumnElement[Any]:
    """The first (oldest) invoice's ``due_date`` in the cache's JSON list, as text."""
    path = "$[0].due_date"
    if store.engine.dialect.name == "sqlite":
        return sa.func.json_extract(standing.c.invoices, path)
    return sa.func.json_unquote(sa.func.json_extract(standing.c.invoices, path))


def _money(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(CENTS)


# --- storing and reading ------------------------------------------------------------------


def save(store: MetaStore, snapshot: Snapshot, currencies: Sequence[CurrencyTotal] = ()) -> bool:
    """Insert or replace ``snapshot.day``'s row, unless a snapshot of that day taken later
    is stored (the latest wins) or the day is closed (final: nothing replaces it; of two
    workers closing a day, one does). Returns whether the row was written; the overdue amount
    by currency is then kept as the latest split."""
    values = _values(snapshot)
    c = daily_snapshot.c
    written = False
    for attempt in range(2):
        try:
            with store.engine.begin() as conn:
                if conn.execute(daily_snapshot.update()
                                .where(c.day == snapshot.day, c.taken_at <= snapshot.taken_at,
                                       c.closed_at.is_(None))
                                .values(values)).rowcount:
                    written = True
                elif conn.execute(sa.select(c.day).where(c.day == snapshot.day)).first() is None:
                    conn.execute(daily_snapshot.insert().values(day=snapshot.day, **values))
                    written = True
            break
        except sa.exc.IntegrityError:  # another process inserted the day meanwhile
            if attempt:
                raise
    if written:
        store.meta_put(CURRENCY_SPLIT, json.dumps({
            "day": snapshot.day.isoformat(),
            "totals": [{"prefix": t.prefix, "suffix": t.suffix, "clients": t.clients,
                        "amount": str(t.amount)} for t in currencies]}))
    return written


def _values(s: Snapshot) -> dict[str, Any]:
    return {"taken_at": s.taken_at, "clients": s.clients, "delinquent": s.delinquent,
            "overdue": s.overdue, "suspended": s.suspended, "overdue_total": s.overdue_total,
            "vip_members": s.vip_members, "vip_removed": s.vip_removed,
            "vip_restored": s.vip_restored, "aging": json.dumps(dict(s.aging)),
            "by_due_day": json.dumps({str(d): n for d, n in s.by_due_day.items()}),
            "closed_at": None if s.closed_at is None else utc_naive(s.closed_at)}


def snapshots(store: MetaStore, since: date, until: date) -> list[Snapshot]:
    """The snapshots of ``since`` to ``until`` (both included), oldest first."""
    c = daily_snapshot.c
    query = daily_snapshot.select().where(c.day.between(since, until)).order_by(c.day)
    with store.engine.connect() as conn:
        return [_snapshot(r) for r in conn.execute(query)]


def latest(store: MetaStore) -> Snapshot | None:
    """The newest snapshot, or None when none was taken yet."""
    return _one(store, daily_snapshot.select().order_by(daily_snapshot.c.day.desc()).limit(1))


def first_day(store: MetaStore) -> date | None:
    """The oldest day with a snapshot; None when none was taken yet."""
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.min(daily_snapshot.c.day))).scalar()


def before(store: MetaStore, day: date) -> Snapshot | None:
    """The newest snapshot of a day before ``day``."""
    c = daily_snapshot.c
    return _one(store, daily_snapshot.select().where(c.day < day)
                .order_by(c.day.desc()).limit(1))


def _one(store: MetaStore, query: sa.Select[Any]) -> Snapshot | None:
    with store.engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else _snapshot(row)


def _snapshot(row: Any) -> Snapshot:
    aging = json.loads(row.aging)
    due = json.loads(row.by_due_day)
    return Snapshot(row.day, row.taken_at, row.clients, row.delinquent, row.overdue,
                    row.suspended, Decimal(row.overdue_total).quantize(CENTS), row.vip_members,
                    row.vip_removed, row.vip_restored,
                    {label: int(aging.get(label, 0)) for label, _, _ in AGING_BUCKETS},
                    {d: int(due.get(str(d), 0)) for d in DUE_DAYS}, row.closed_at)


def currency_split(store: MetaStore, day: date) -> list[CurrencyTotal] | None:
    """The overdue amount by currency of ``day``'s snapshot, when it is the latest one
    stored (only the latest split is kept); None otherwise."""
    text = store.meta_get(CURRENCY_SPLIT)
    if text is None:
        return None
    data = json.loads(text)
    if data.get("day") != day.isoformat():
        return None
    return [CurrencyTotal(t["prefix"], t["suffix"], int(t["clients"]), Decimal(t["amount"]))
            for t in data["totals"]]


# --- closing days ------------------------------------------------------------------------------


def close_day(store: MetaStore, day: date, now: datetime, vip_group_id: int, *,
              timezone: str) -> Snapshot | None:
    """Count ``day``'s figures now and store them as final (``closed_at`` = ``now``). None
    when nothing was stored: the day is closed already, or the standing cache is empty (no
    full reconcile yet: zeros would not be the day's figures)."""
    moment = utc_naive(now).replace(microsecond=0)
    snapshot, currencies = compute(store, day, moment, vip_group_id, timezone=timezone)
    if not snapshot.clients:
        return None
    snapshot = replace(snapshot, closed_at=moment)
    return snapshot if save(store, snapshot, currencies) else None


def close_days(store: MetaStore, now: datetime, vip_group_id: int, *,
               timezone: str) -> Snapshot | None:
    """The worker's check (every minute): close the day that ended since the last check, when
    that check was within :data:`CLOSE_GAP` of the day's end, then record this check. Days
    that ended while nobody checked (vipgate stopped) are left as they are: their end was not
    seen. Returns the row closed, if any. Safe with several workers: a day is closed once,
    and a check recorded out of order only makes a later check close nothing new."""
    moment = utc_naive(now).replace(microsecond=0)
    watched = _watched(store)
    if watched is not None and watched >= moment:
        return None  # another worker checked since (or the clock went back): nothing new
    closed = None
    if watched is not None:
        day = business_day(watched, timezone)
        _start, end = day_bounds(day, timezone)
        if end <= moment and end - watched <= CLOSE_GAP:
            closed = close_day(store, day, moment, vip_group_id, timezone=timezone)
    store.meta_put(DAYS_WATCHED, moment.isoformat())
    return closed


def _watched(store: MetaStore) -> datetime | None:
    """The last check of :func:`close_days` (naive UTC); None before the first, or when the
    stored text cannot be read (the next check starts again from itself)."""
    text = store.meta_get(DAYS_WATCHED)
    try:
        return None if text is None else utc_naive(datetime.fromisoformat(text))
    except ValueError:
        return None


# --- the last full reconcile ------------------------------------------------------------------


def record_full_reconcile(store: MetaStore, at: datetime, *, clients: int, applied: int,
                          failed: int, complete: bool) -> None:
    """Keep what the last non-dry-run full reconcile did (the Overview page shows it)."""
    moment = at.astimezone(UTC) if at.tzinfo is not None else at.replace(tzinfo=UTC)
    store.meta_put(LAST_FULL_RECONCILE, json.dumps({
        "at": moment.replace(microsecond=0).isoformat(), "clients": clients,
        "applied": applied, "failed": failed, "complete": complete}))


def last_full_reconcile(store: MetaStore) -> dict[str, Any] | None:
    """What :func:`record_full_reconcile` kept, with ``at`` as an aware datetime; None when no
    full reconcile ran yet. ValueError, naming the stored text, when it cannot be read."""
    text = store.meta_get(LAST_FULL_RECONCILE)
    if text is None:
        return None
    try:
        value = json.loads(text)
        at = datetime.fromisoformat(str(value["at"]))
    except (ValueError, TypeError, KeyError):
        raise ValueError(f"unreadable (meta {LAST_FULL_RECONCILE} = {text[:80]!r})") from None
    return {"at": at if at.tzinfo else at.replace(tzinfo=UTC),
            "clients": value.get("clients"), "applied": value.get("applied"),
            "failed": value.get("failed"), "complete": bool(value.get("complete"))}
