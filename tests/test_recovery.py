"""Recovery figures (issue 19 item 2): the pure arithmetic (``bridge.policy.recovery``) and
the store's reads over known episodes, on SQLite and MariaDB, with exact figures."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from bridge.model import CachedStanding
from bridge.policy import episodes as ep
from bridge.policy import recovery as rc
from bridge.store import Store
from bridge.store.tables import episode

ZONE = "America/Sao_Paulo"  # UTC-3: a suspension at 02:00 UTC is the day before
NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)
SINCE, UNTIL = date(2026, 11, 1), date(2026, 11, 30)


def d(text: str) -> date:
    return date.fromisoformat(text)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def put_episode(store: Store, client_id: int, opened: str, *,
                actions: tuple[tuple[str, str], ...] = (),
                payments: tuple[tuple[str, str], ...] = (), paid_up: bool = False,
                prefix: str = "R$ ", group: int | None = None) -> None:
    """An episode written through the store as the engine writes it: opened, its actions,
    payments (amount, day) and, when ``paid_up``, ended by payment on the last payment's day."""
    if group is not None:
        store.put_standing(CachedStanding(client_id, "current", 0, Decimal(0), (), prefix, "",
                                          None, NOW.replace(tzinfo=None), None, group))
    opening = ep.Opening(at(opened + "T12:00:00"), d(opened), Decimal("100.00"), prefix, "",
                         {client_id * 10: Decimal("100.00")})
    store.record(client_id, [], ep.EpisodeStep(opening=opening), NOW)
    acts = tuple(ep.Action(kind, at(when), "whmcs" if kind == ep.SUSPENDED else "vipgate")
                 for kind, when in actions)
    pays = tuple(ep.Payment(client_id * 10, Decimal(amount), d(day)) for amount, day in payments)
    ending = None
    if paid_up:
        last = max(p.paid_on for p in pays)
        ending = ep.Ending(at(last.isoformat() + "T15:00:00"), last, ep.PAID_UP,
                           sum((p.amount for p in pays), Decimal(0)), (last - d(opened)).days)
    store.record(client_id, [], ep.EpisodeStep(actions=acts, payments=pays, ending=ending), NOW)


def tag(store: Store, client_id: int, reason: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(episode.update().where(episode.c.client_id == client_id)
                     .values(reason=reason))


@pytest.fixture
def known(store: Store) -> Store:
    """Eight clients' episodes with known figures for November 2026 (São Paulo days)."""
    # 1: left VIP, suspended 2026-11-03 02:00 UTC (= 11-02 in São Paulo), paid 11-05: 6 days,
    #    3 days after the suspension; tagged "forgot"
    put_episode(store, 1, "2026-10-30", group=2,
                actions=((ep.LEFT_VIP, "2026-10-30T12:00:00"),
                         (ep.SUSPENDED, "2026-11-03T02:00:00")),
                payments=(("100.00", "2026-11-05"),), paid_up=True)
    tag(store, 1, "forgot")
    # 2: a ticket blocked, paid in two parts, ended 11-20: 19 days
    put_episode(store, 2, "2026-11-01", group=2,
                actions=((ep.TICKET_BLOCKED, "2026-11-02T14:00:00"),),
                payments=(("30.00", "2026-11-10"), ("20.00", "2026-11-20")), paid_up=True)
    # 3: suspended 11-04, paid 11-15: 14 days, 11 after the suspension
    put_episode(store, 3, "2026-11-01", group=3,
                actions=((ep.SUSPENDED, "2026-11-04T12:00:00"),),
                payments=(("50.00", "2026-11-15"),), paid_up=True)
    # 4: dollars, no action, no group known; 40.00 paid before the range, 60.00 in it
    put_episode(store, 4, "2026-10-20", prefix="US$ ",
                payments=(("40.00", "2026-10-25"), ("60.00", "2026-11-02")), paid_up=True)
    # 5: suspended 11-12, still open
    put_episode(store, 5, "2026-11-10", group=3, actions=((ep.SUSPENDED, "2026-11-12T12:00:00"),))
    # 6: wholly before the range
    put_episode(store, 6, "2026-09-01", group=2, payments=(("10.00", "2026-09-03"),),
                paid_up=True)
    # 7: no action, paid 11-27: 2 days
    put_episode(store, 7, "2026-11-25", group=2, payments=(("25.00", "2026-11-27"),),
                paid_up=True)
    # 8: suspended 2026-12-01 01:00 UTC = 11-30 22:00 in São Paulo: in the range; open
    put_episode(store, 8, "2026-11-28", group=3, actions=((ep.SUSPENDED, "2026-12-01T01:00:00"),))
    return store


def months(f: rc.Figures) -> list[tuple[str, str, str, int]]:
    return [(m.month, m.currency_prefix, str(m.amount), m.episodes) for m in f.recovered]


def test_the_range_s_figures_over_every_episode(known: Store) -> None:
    r = known.recovery(SINCE, UNTIL, ZONE)
    t = r.total
    assert months(t) == [("2026-11", "R$ ", "225.00", 4), ("2026-11", "US$ ", "60.00", 1)]
    assert t.paid == 5  # 1, 2, 3, 4, 7 (6 ended before the range)
    assert t.within == {3: 1, 7: 2, 15: 4, 30: 5}
    assert [t.within_share(n) for n in rc.WITHIN_DAYS] == [
        Decimal("20.00"), Decimal("40.00"), Decimal("80.00"), Decimal("100.00")]
    assert t.median_days == Decimal(13)  # 2, 6, 13, 14, 19
    assert (t.suspended, t.suspended_paid, t.phenomenon) == (4, 1, Decimal("25.00"))


def test_figures_by_first_action(known: Store) -> None:
    by = {f.key: f for f in known.recovery(SINCE, UNTIL, ZONE).by["first_action"]}
    assert sorted(by) == ["left_vip", "none", "suspended", "ticket_blocked"]
    assert (by["left_vip"].paid, by["left_vip"].within[7], by["left_vip"].phenomenon) == (
        1, 1, Decimal("100.00"))
    assert by["ticket_blocked"].median_days == 19 and by["ticket_blocked"].suspended == 0
    assert by["ticket_blocked"].phenomenon is None
    s = by["suspended"]
    assert (s.paid, s.within[7], s.within[15], s.median_days) == (1, 0, 1, Decimal(14))
    assert (s.suspended, s.suspended_paid) == (3, 0)
    assert months(s) == [("2026-11", "R$ ", "50.00", 1)]
    n = by["none"]
    assert (n.paid, n.within[3], n.median_days) == (2, 1, Decimal("7.5"))
    assert months(n) == [("2026-11", "R$ ", "25.00", 1), ("2026-11", "US$ ", "60.00", 1)]


def test_figures_by_group_and_by_reason(known: Store) -> None:
    r = known.recovery(SINCE, UNTIL, ZONE)
    group = {f.key: f for f in r.by["group"]}
    assert sorted(group) == ["2", "3", "unknown"]
    assert (group["2"].paid, group["2"].median_days, months(group["2"])) == (
        3, Decimal(6), [("2026-11", "R$ ", "175.00", 3)])
    assert (group["3"].suspended, group["3"].suspended_paid, group["3"].paid) == (3, 0, 1)
    assert months(group["unknown"]) == [("2026-11", "US$ ", "60.00", 1)]
    reason = {f.key: f for f in r.by["reason"]}
    assert sorted(reason) == ["forgot", "untagged"]
    assert (reason["forgot"].paid, reason["forgot"].suspended_paid) == (1, 1)
    assert (reason["untagged"].paid, reason["untagged"].suspended) == (4, 3)


def test_the_suspension_s_day_is_whmcs_s(known: Store) -> None:
    """In UTC, client 8's suspension (2026-12-01 01:00 UTC) is out of November and client 1's
    (11-03 02:00) is 3 days before its payment all the same."""
    t = known.recovery(SINCE, UNTIL, "UTC").total
    assert (t.suspended, t.suspended_paid) == (3, 1)


def test_a_range_without_episodes_and_a_reversed_range(store: Store) -> None:
    t = store.recovery(SINCE, UNTIL, ZONE).total
    assert (t.recovered, t.paid, t.median_days, t.within_share(7), t.phenomenon) == (
        (), 0, None, None, None)
    with pytest.raises(ValueError, match="after its end"):
        store.recovery(UNTIL, SINCE, ZONE)


@pytest.mark.parametrize(("values", "expected"), [
    ([], None), ([4], Decimal(4)), ([9, 1, 5], Decimal(5)), ([1, 2, 3, 10], Decimal("2.5"))])
def test_median(values: list[int], expected: Decimal | None) -> None:
    assert rc.median(values) == expected


def test_the_first_action_is_the_earliest_counted_one() -> None:
    t1, t2 = at("2026-11-01T10:00:00"), at("2026-11-02T10:00:00")
    assert rc.first_action([]) == rc.NO_ACTION
    assert rc.first_action([(ep.PROMISE, t1, 1), (ep.TICKET_LOWERED, t1, 2)]) == rc.NO_ACTION
    assert rc.first_action([(ep.SUSPENDED, t2, 1), (ep.TICKET_BLOCKED, t1, 2)]) == \
        ep.TICKET_BLOCKED
    assert rc.first_action([(ep.SUSPENDED, t1, 2), (ep.LEFT_VIP, t1, 1)]) == ep.LEFT_VIP


def test_share_rounds_to_cents() -> None:
    assert rc.share(1, 3) == Decimal("33.33") and rc.share(0, 0) is None
