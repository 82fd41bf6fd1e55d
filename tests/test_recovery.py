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
                actions: tuple[tuple[str, str] | tuple[str, str, str], ...] = (),
                payments: tuple[tuple[str, str], ...] = (), paid_up: bool = False,
                prefix: str = "R$ ", group: int | None = None) -> None:
    """An episode written through the store as the engine writes it: opened, its actions,
    payments (amount, day) and, when ``paid_up``, ended by payment on the last payment's day.
    An action is (kind, when) or (kind, when, detail); a trust unlock's actor is the client."""
    if group is not None:
        store.put_standing(CachedStanding(client_id, "current", 0, Decimal(0), (), prefix, "",
                                          None, NOW.replace(tzinfo=None), None, group))
    opening = ep.Opening(at(opened + "T12:00:00"), d(opened), Decimal("100.00"), prefix, "",
                         {client_id * 10: Decimal("100.00")})
    store.record(client_id, [], ep.EpisodeStep(opening=opening), NOW)
    actors = {ep.SUSPENDED: "whmcs", ep.UNLOCKED_BY_TRUST: "client"}
    acts = tuple(ep.Action(a[0], at(a[1]), actors.get(a[0], "vipgate"), None,
                           a[2] if len(a) > 2 else "") for a in actions)
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


# --- the trust unlock -----------------------------------------------------------------------


def unlock(when: str, until: str) -> tuple[str, str, str]:
    """A trust unlock at ``when`` (UTC) until the day ``until``: the action as the unlock
    writes it (the data contract: detail = the day, YYYY-MM-DD)."""
    return (ep.UNLOCKED_BY_TRUST, when, until)


@pytest.fixture
def unlocked(store: Store) -> Store:
    """Unlocks by trust with known figures for November 2026 (São Paulo days)."""
    # 11: 30.00 paid before the unlock, unlocked 11-02 until 11-05, paid up 11-05 (the last
    #     day granted: by the date); the suspension before the unlock is not "again"
    put_episode(store, 11, "2026-10-28",
                actions=((ep.SUSPENDED, "2026-11-01T12:00:00"),
                         unlock("2026-11-02T12:00:00", "2026-11-05")),
                payments=(("30.00", "2026-10-30"), ("70.00", "2026-11-05")), paid_up=True)
    # 12: unlocked 11-04 until 11-07, suspended again 11-08, paid 11-12: later, again
    put_episode(store, 12, "2026-11-01",
                actions=((ep.SUSPENDED, "2026-11-03T12:00:00"),
                         unlock("2026-11-04T12:00:00", "2026-11-07"),
                         (ep.SUSPENDED, "2026-11-08T12:00:00")),
                payments=(("100.00", "2026-11-12"),), paid_up=True)
    # 13: unlocked 11-13 until 11-16, suspended again 11-17, still open
    put_episode(store, 13, "2026-11-10",
                actions=((ep.SUSPENDED, "2026-11-12T12:00:00"),
                         unlock("2026-11-13T12:00:00", "2026-11-16"),
                         (ep.SUSPENDED, "2026-11-17T12:00:00")))
    # 14: dollars, unlocked 11-22 until 11-25, paid 12-03 (after the range): paid, later
    put_episode(store, 14, "2026-11-20", prefix="US$ ",
                actions=((ep.SUSPENDED, "2026-11-21T12:00:00"),
                         unlock("2026-11-22T12:00:00", "2026-11-25")),
                payments=(("40.00", "2026-12-03"),), paid_up=True)
    # 15: unlocked before the range (10-20), paid in it: not an unlock of November
    put_episode(store, 15, "2026-10-15",
                actions=((ep.SUSPENDED, "2026-10-18T12:00:00"),
                         unlock("2026-10-20T12:00:00", "2026-10-23")),
                payments=(("55.00", "2026-11-03"),), paid_up=True)
    # 16: unlocked 2026-12-01 01:00 UTC = 11-30 in São Paulo, then its invoice cancelled
    put_episode(store, 16, "2026-11-27",
                actions=((ep.SUSPENDED, "2026-11-29T12:00:00"),
                         unlock("2026-12-01T01:00:00", "2026-12-04")))
    store.record(16, [], ep.EpisodeStep(written_off=Decimal("100.00"), ending=ep.Ending(
        at("2026-12-02T10:00:00"), d("2026-12-02"), ep.CANCELLED, Decimal(0), None)), NOW)
    # 17: suspended, never unlocked
    put_episode(store, 17, "2026-11-03", actions=((ep.SUSPENDED, "2026-11-05T12:00:00"),),
                payments=(("10.00", "2026-11-07"),), paid_up=True)
    return store


def money(totals: tuple[rc.CurrencyTotal, ...]) -> list[tuple[str, str]]:
    return [(t.currency_prefix, str(t.amount)) for t in totals]


def test_the_trust_unlocks_of_the_range(unlocked: Store) -> None:
    r = unlocked.recovery(SINCE, UNTIL, ZONE)
    u = r.trust
    assert u.made == 5  # 11, 12, 13, 14, 16 (15 unlocked in October, 17 never)
    assert u.counts == {"paid": 3, "paid_by_date": 1, "paid_later": 2, "open": 1,
                        "ended_unpaid": 1, "suspended_again": 2}
    assert (u.share("paid"), u.share("paid_by_date"), u.share("suspended_again")) == (
        Decimal("60.00"), Decimal("20.00"), Decimal("40.00"))
    # from the unlock's day on: 11's 30.00 paid before it is left out; 14's after the range in
    assert money(u.recovered["paid"]) == [("R$ ", "170.00"), ("US$ ", "40.00")]
    assert money(u.recovered["paid_by_date"]) == [("R$ ", "70.00")]
    assert money(u.recovered["paid_later"]) == [("R$ ", "100.00"), ("US$ ", "40.00")]
    assert set(u.recovered) == {"paid", "paid_by_date", "paid_later"}


def test_an_unlock_is_not_a_first_action(unlocked: Store) -> None:
    """The unlocked episodes count under their suspension, the other figures as before."""
    r = unlocked.recovery(SINCE, UNTIL, ZONE)
    by = {f.key: f for f in r.by["first_action"]}
    assert sorted(by) == ["suspended"]
    assert r.total.paid == 4  # 11, 12, 15, 17 ended in November (14 in December)
    assert months(r.total) == [("2026-11", "R$ ", "235.00", 4)]  # 70 + 100 + 55 + 10


def test_the_unlock_s_day_is_whmcs_s(unlocked: Store) -> None:
    """In UTC, 16's unlock (2026-12-01 01:00 UTC) is out of November."""
    u = unlocked.recovery(SINCE, UNTIL, "UTC").trust
    assert (u.made, u.counts["ended_unpaid"]) == (4, 0)
    december = unlocked.recovery(d("2026-12-01"), d("2026-12-31"), "UTC").trust
    assert (december.made, december.counts["ended_unpaid"], december.recovered) == (1, 1, {})


def test_a_range_without_unlocks(unlocked: Store) -> None:
    u = unlocked.recovery(d("2026-09-01"), d("2026-09-30"), ZONE).trust
    assert (u.made, u.recovered, u.share("paid")) == (0, {}, None)
    assert set(u.counts.values()) == {0}


def test_episodes_without_unlocks(known: Store) -> None:
    assert known.recovery(SINCE, UNTIL, ZONE).trust == rc.TrustUnlocks()


def test_a_second_unlock_of_an_episode_counts_once_by_the_first(store: Store) -> None:
    """At most one unlock an episode is written; were there two, the first one counts."""
    put_episode(store, 21, "2026-11-01",
                actions=(unlock("2026-11-02T12:00:00", "2026-11-05"),
                         unlock("2026-11-06T12:00:00", "2026-11-09")),
                payments=(("20.00", "2026-11-07"),), paid_up=True)
    u = store.recovery(SINCE, UNTIL, ZONE).trust
    assert (u.made, u.counts["paid_later"]) == (1, 1)
    assert store.recovery(d("2026-11-06"), UNTIL, ZONE).trust.made == 0


def test_an_unlock_whose_detail_is_not_a_day_is_an_error(store: Store) -> None:
    put_episode(store, 22, "2026-11-01", actions=(unlock("2026-11-02T12:00:00", "5/11/2026"),))
    with pytest.raises(ValueError, match=r"episode \d+: the trust unlock's detail '5/11/2026' "
                                         r"is not a day written YYYY-MM-DD"):
        store.recovery(SINCE, UNTIL, ZONE)


# the pure arithmetic


UNLOCKED_AT = datetime(2026, 11, 2, 12)  # naive UTC, as stored


def facts(ended: str | None = None, how: str | None = None, until: str = "2026-11-05",
          suspensions: tuple[str, ...] = (), episode_id: int = 1,
          unlocked_on: str = "2026-11-02") -> rc.UnlockFacts:
    return rc.UnlockFacts(episode_id, UNLOCKED_AT, d(unlocked_on), d(until),
                          None if ended is None else d(ended), how,
                          tuple(datetime.fromisoformat(s) for s in suspensions))


@pytest.mark.parametrize(("unlock_facts", "outcomes"), [
    (facts(), ("open",)),
    (facts("2026-11-04", ep.PAID_UP), ("paid", "paid_by_date")),
    (facts("2026-11-05", ep.PAID_UP), ("paid", "paid_by_date")),  # the last day granted
    (facts("2026-11-06", ep.PAID_UP), ("paid", "paid_later")),
    (facts("2026-11-04", ep.CANCELLED), ("ended_unpaid",)),
    (facts("2026-11-04", ep.OTHER), ("ended_unpaid",)),
    (facts("2026-11-04", ep.CLIENT_GONE), ("ended_unpaid",)),
    (facts(suspensions=("2026-11-01T12:00:00", "2026-11-02T12:00:00")), ("open",)),
    (facts(suspensions=("2026-11-02T12:00:01",)), ("open", "suspended_again")),
    (facts("2026-11-20", ep.PAID_UP, suspensions=("2026-11-06T12:00:00",)),
     ("paid", "paid_later", "suspended_again")),
])
def test_what_became_of_an_unlock(unlock_facts: rc.UnlockFacts,
                                  outcomes: tuple[str, ...]) -> None:
    assert unlock_facts.outcomes() == outcomes


def paid(episode_id: int, day: str, amount: str, prefix: str = "R$ ") -> rc.PaidMoney:
    return rc.PaidMoney(episode_id, d(day), Decimal(amount), prefix, "")


def test_the_unlocks_figures_count_those_made_in_the_range() -> None:
    unlocks = [facts("2026-11-05", ep.PAID_UP),
               facts("2026-12-10", ep.PAID_UP, episode_id=2, unlocked_on="2026-11-30",
                     until="2026-12-03"),  # paid after the range: paid, later
               facts(episode_id=3, unlocked_on="2026-10-31"),  # before the range
               facts(episode_id=4, unlocked_on="2026-12-01"),  # after it
               facts(episode_id=5, suspensions=("2026-11-09T00:00:00",))]
    pay = [paid(1, "2026-11-01", "5.00"),  # the day before the unlock: not counted
           paid(1, "2026-11-02", "10.00"), paid(1, "2026-11-05", "15.00"),
           paid(2, "2026-12-10", "7.00", "US$ "), paid(3, "2026-11-03", "99.00"),
           paid(5, "2026-11-10", "3.00")]  # an open episode's partial payment: no outcome
    u = rc.trust_unlocks(unlocks, pay, SINCE, UNTIL)
    assert u.made == 3
    assert u.counts == {"paid": 2, "paid_by_date": 1, "paid_later": 1, "open": 1,
                        "ended_unpaid": 0, "suspended_again": 1}
    assert [u.share(o) for o in rc.UNLOCK_OUTCOMES] == [
        Decimal("66.67"), Decimal("33.33"), Decimal("33.33"), Decimal("33.33"), Decimal(0),
        Decimal("33.33")]
    assert money(u.recovered["paid"]) == [("R$ ", "25.00"), ("US$ ", "7.00")]
    assert money(u.recovered["paid_by_date"]) == [("R$ ", "25.00")]
    assert money(u.recovered["paid_later"]) == [("US$ ", "7.00")]


def test_no_unlocks() -> None:
    u = rc.trust_unlocks([], [paid(1, "2026-11-03", "1.00")], SINCE, UNTIL)
    assert (u.made, u.recovered, [u.share(o) for o in rc.UNLOCK_OUTCOMES]) == (
        0, {}, [None] * len(rc.UNLOCK_OUTCOMES))
    assert rc.recovery([], [], SINCE, UNTIL).trust == u


@pytest.mark.parametrize("detail", ["", "5/11/2026", "20261105", "2026-11-5", "2026-11-05 ",
                                    "2026-11-05T00:00", "2026-11-31", "2026-13-01",
                                    "２０２６-11-05"])
def test_an_unlock_s_detail_must_be_a_day(detail: str) -> None:
    with pytest.raises(ValueError, match="episode 7: the trust unlock's detail"):
        rc.unlock_until(detail, 7)
    assert rc.unlock_until("2026-11-05", 7) == date(2026, 11, 5)
