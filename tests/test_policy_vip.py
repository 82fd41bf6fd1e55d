"""VIP membership: eligibility, the group decision, staff changes and adoption."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.policy.standing import standing
from bridge.policy.state import ClientState, Membership, Promise
from bridge.policy.vip import (
    MembershipChange,
    add_months,
    adopt,
    eligible,
    follow_staff_change,
    months_between,
    vip_decision,
)
from bridge.settings import PolicySettings
from tests.test_policy_standing import (
    TODAY,
    clients,
    inv,
    policies,
    suspended_service,
)
from tests.test_policy_standing import client as make_client
from tests.test_policy_standing import policy as base_policy

VIP, HOME, DEFAULT = 5, 2, 9


def policy(**values: object) -> PolicySettings:
    """The tests of the eligibility rules turn them on (the default is off, tested below)."""
    return base_policy(**{"promote_by_rules": True, **values})

PINNED = Membership(pinned=True)
NOBODY = Membership()


def paid(number: int, months_ago: int = 1, late: int = 0, total: str = "100.00"):
    """A Paid invoice due ``months_ago`` months before TODAY, paid ``late`` days after."""
    due = add_months(TODAY, -months_ago)
    return inv(number, duedate=due, total=total, status="Paid",
               datepaid=due + timedelta(days=late))


def decide(state: ClientState, membership: Membership = NOBODY, **values: object):
    rules = policy(**{"default_group_id": DEFAULT, **values})
    return vip_decision(state, membership, standing(state, rules, TODAY), rules, TODAY)


# --- eligibility -------------------------------------------------------------------------


def test_by_default_the_rules_promote_nobody_into_vip() -> None:
    """A first run must never move paying clients INTO the group exempt from suspension."""
    rules = base_policy(default_group_id=DEFAULT)
    state = make_client(*GOOD_HISTORY, group_id=HOME)
    verdict = eligible(state, NOBODY, rules, TODAY)
    assert not verdict.ok
    assert verdict.reasons == ("not eligible: not put in VIP by staff, and promote_by_rules "
                               "is off",)
    decision = vip_decision(state, NOBODY, standing(state, rules, TODAY), rules, TODAY)
    assert decision.target_group_id == HOME and not decision.in_vip


def test_by_default_a_pinned_client_still_leaves_when_owing_and_returns_when_paid() -> None:
    rules = base_policy(default_group_id=DEFAULT)
    owing = make_client(inv(7, days=10), group_id=VIP)
    out = vip_decision(owing, PINNED, standing(owing, rules, TODAY), rules, TODAY)
    assert out.target_group_id == DEFAULT and not out.in_vip
    paid_up = make_client(*GOOD_HISTORY, group_id=DEFAULT)
    back = vip_decision(paid_up, PINNED, standing(paid_up, rules, TODAY), rules, TODAY)
    assert back.target_group_id == VIP and back.in_vip

GOOD_HISTORY = (paid(1, 2), paid(2, 3))


@pytest.mark.parametrize(("state", "membership", "values", "ok"), [
    (make_client(*GOOD_HISTORY), NOBODY, {}, True),
    (make_client(datecreated=TODAY), PINNED, {"min_spend": "1000"}, True),
    (make_client(*GOOD_HISTORY), Membership(pinned=True, excluded=True), {}, False),
    (make_client(*GOOD_HISTORY), Membership(excluded=True), {}, False),
    (make_client(*GOOD_HISTORY, status="Inactive"), PINNED, {}, False),
    (make_client(*GOOD_HISTORY, status="Closed"), NOBODY, {}, False),
], ids=["rules-met", "pinned-skips-rules", "excluded-beats-pinned", "excluded",
        "inactive", "closed"])
def test_pinned_excluded_and_client_status(state, membership, values, ok) -> None:
    assert eligible(state, membership, policy(**values), TODAY).ok is ok


@pytest.mark.parametrize(("created", "months", "ok"), [
    (add_months(TODAY, -12), 12, True),
    (add_months(TODAY, -12) + timedelta(days=1), 12, False),
    (add_months(TODAY, -11), 12, False),
    (add_months(TODAY, -11), 6, True),
    (TODAY, 0, True),
])
def test_min_tenure_months(created, months, ok) -> None:
    state = make_client(*GOOD_HISTORY, datecreated=created)
    verdict = eligible(state, NOBODY, policy(min_tenure_months=months), TODAY)
    assert verdict.ok is ok, verdict.reasons


@pytest.mark.parametrize(("history", "values", "ok"), [
    ((paid(1, 2, late=5),), {}, True),  # late_tolerance_days 5 by default
    ((paid(1, 2, late=6),), {}, False),
    ((paid(1, 2, late=6),), {"late_tolerance_days": 10}, True),
    ((paid(1, 13, late=30),), {}, True),  # outside the 12-month look-back
    ((paid(1, 13, late=30),), {"lookback_months": 24}, False),
    ((inv(1, days=6),), {"grace_days": 10}, False),  # still unpaid, already 6 days late
    ((inv(1, days=5),), {"grace_days": 10}, True),
], ids=["on-tolerance", "past-tolerance", "tolerance-10", "outside-lookback",
        "lookback-24", "unpaid-late", "unpaid-within-tolerance"])
def test_late_payments_in_the_lookback_window(history, values, ok) -> None:
    verdict = eligible(make_client(*history), NOBODY, policy(**values), TODAY)
    assert verdict.ok is ok, verdict.reasons


@pytest.mark.parametrize(("collections_owed", "ok"), [(True, False), (False, True)])
def test_a_collections_invoice_blocks_vip_eligibility_unless_the_setting_is_off(
        collections_owed, ok) -> None:
    state = make_client(*GOOD_HISTORY, inv(1090, days=30, status="Collections"))
    verdict = eligible(state, NOBODY, policy(collections_owed=collections_owed), TODAY)
    assert verdict.ok is ok, verdict.reasons
    late = "invoice #1090 in Collections still unpaid 30 days after its due date > " \
           "late_tolerance_days 5"
    assert (late in verdict.reasons) is not ok


def test_a_pinned_vip_with_a_collections_invoice_leaves_vip() -> None:
    decision = decide(make_client(inv(1042, days=40, status="Collections"), group_id=VIP),
                      PINNED)
    assert (decision.in_vip, decision.target_group_id) == (False, DEFAULT)
    assert any("in Collections overdue 40 days" in r for r in decision.reasons)


def test_late_payment_reason_names_invoice_and_days() -> None:
    verdict = eligible(make_client(paid(1077, 2, late=9)), NOBODY, policy(), TODAY)
    assert "invoice #1077 paid 9 days late (2026-09-30) > late_tolerance_days 5" \
        in verdict.reasons


@pytest.mark.parametrize(("history", "values", "ok"), [
    ((paid(1, 1, total="300"), paid(2, 2, total="199.99")), {"min_spend": "500"}, False),
    ((paid(1, 1, total="300"), paid(2, 2, total="200")), {"min_spend": "500"}, True),
    ((paid(1, 1, total="300"), paid(2, 14, total="200")), {"min_spend": "500"}, False),
    ((paid(1, 1, total="300"), paid(2, 14, total="200")),
     {"min_spend": "500", "lookback_months": 15}, True),
    ((inv(1, days=-3, total="900"),), {"min_spend": "500"}, False),  # unpaid is not spent
])
def test_min_spend_counts_paid_invoices_in_the_window(history, values, ok) -> None:
    verdict = eligible(make_client(*history), NOBODY, policy(**values), TODAY)
    assert verdict.ok is ok, verdict.reasons
    assert any("paid R$ " in r for r in verdict.reasons)


@pytest.mark.parametrize(("start", "months", "expected"), [
    (date(2026, 1, 31), 1, date(2026, 2, 28)),
    (date(2024, 1, 31), 1, date(2024, 2, 29)),
    (date(2026, 11, 21), -12, date(2025, 11, 21)),
    (date(2026, 3, 31), -1, date(2026, 2, 28)),
])
def test_add_months_clamps_to_month_end(start, months, expected) -> None:
    assert add_months(start, months) == expected


def test_months_between_counts_whole_months() -> None:
    assert months_between(date(2026, 1, 31), date(2026, 2, 28)) == 1
    assert months_between(date(2026, 1, 15), date(2026, 2, 14)) == 0
    assert months_between(date(2026, 1, 15), date(2025, 1, 1)) == 0


# --- the group decision ------------------------------------------------------------------


@pytest.mark.parametrize(("group", "membership", "invoices", "in_vip", "target"), [
    (1, PINNED, (), True, VIP),  # eligible and current: moved in
    (VIP, PINNED, (), True, VIP),  # stays
    (VIP, Membership(pinned=True, home_group_id=HOME), (inv(days=10),), False, HOME),
    (VIP, PINNED, (inv(days=10),), False, DEFAULT),  # no home recorded: default group
    (VIP, Membership(pinned=True, home_group_id=0), (inv(days=10),), False, 0),  # no group
    (VIP, Membership(pinned=True, home_group_id=VIP), (inv(days=10),), False, DEFAULT),
    (3, PINNED, (inv(days=10),), False, 3),  # outside VIP the group is left alone
    (3, Membership(excluded=True), (), False, 3),
    (VIP, Membership(excluded=True, home_group_id=HOME), (), False, HOME),
], ids=["moves-in", "stays-in", "leaves-to-home", "leaves-to-default", "home-is-no-group",
        "home-is-vip", "outside-untouched", "excluded-outside", "excluded-leaves"])
def test_vip_decision_and_target_group(group, membership, invoices, in_vip, target) -> None:
    decision = decide(make_client(*invoices, group_id=group), membership)
    assert (decision.in_vip, decision.target_group_id) == (in_vip, target), decision.reasons


def test_moving_in_records_the_home_group() -> None:
    assert decide(make_client(group_id=3), PINNED).record_home_group_id == 3
    assert decide(make_client(group_id=VIP), PINNED).record_home_group_id is None


def test_default_group_id_is_where_clients_without_home_go() -> None:
    state = make_client(inv(days=10), group_id=VIP)
    assert decide(state, PINNED, default_group_id=4).target_group_id == 4


def test_vip_group_id_zero_leaves_the_group_as_is() -> None:
    decision = decide(make_client(inv(days=10), group_id=3), PINNED, vip_group_id=0)
    assert (decision.in_vip, decision.target_group_id) == (False, 3)
    assert "no VIP group managed" in decision.reasons[0]


def test_overdue_reason_is_carried_into_the_decision() -> None:
    decision = decide(make_client(inv(1042, days=6), group_id=VIP), PINNED)
    assert "standing overdue: invoice #1042 R$ 89.90 overdue 6 days > grace 3" \
        in decision.reasons


@pytest.mark.parametrize(("restores", "in_vip"), [(False, False), (True, True)])
def test_promise_restores_vip_only_when_configured(restores, in_vip) -> None:
    state = make_client(inv(days=10), group_id=VIP,
                        promise=Promise(TODAY + timedelta(days=3), "Friday"))
    assert decide(state, PINNED, promise_restores_vip=restores).in_vip is in_vip


def test_expired_promise_never_restores_vip() -> None:
    state = make_client(inv(days=10), group_id=VIP, promise=Promise(TODAY - timedelta(1), ""))
    assert decide(state, PINNED, promise_restores_vip=True).in_vip is False


def test_pinned_client_with_overdue_invoice_leaves_vip_and_comes_back_when_paid() -> None:
    membership = adopt([7])[7]  # seed story: already in VIP, adopted as pinned
    late = inv(1042, days=6)
    state = make_client(late, group_id=VIP)
    out = decide(state, membership)
    assert (out.in_vip, out.target_group_id) == (False, DEFAULT)
    suspended = replace(make_client(late, services=(suspended_service(),)), group_id=DEFAULT)
    assert decide(suspended, membership).in_vip is False
    paid_state = replace(suspended, invoices=(replace(late, status="Paid", balance=Decimal(0),
                                                      datepaid=TODAY),))
    back = decide(paid_state, membership)
    assert (back.in_vip, back.target_group_id, back.record_home_group_id) == (True, VIP,
                                                                              DEFAULT)


def test_unpinned_client_paying_late_stays_out_after_paying() -> None:
    late = replace(paid(1042, 0, late=0), datepaid=TODAY, duedate=TODAY - timedelta(days=8))
    assert decide(make_client(*GOOD_HISTORY, late, group_id=HOME)).in_vip is False


@pytest.mark.parametrize(("balance", "in_vip"), [
    ("89.90", False), ("40.00", False), ("0.01", False), ("0.00", True)])
def test_partial_payment_keeps_client_out_until_balance_is_zero(balance, in_vip) -> None:
    state = make_client(inv(1042, days=6, balance=balance), group_id=HOME)
    assert decide(state, PINNED).in_vip is in_vip


# --- staff changes and adoption ----------------------------------------------------------


@pytest.mark.parametrize(("old", "new", "caused", "values", "expected"), [
    (2, VIP, False, {}, MembershipChange(True, False, 2, "")),
    (VIP, 3, False, {}, MembershipChange(False, True, None, "")),
    (2, VIP, True, {}, None),  # vipgate's own write
    (2, VIP, False, {"follow_staff_changes": False}, None),
    (2, VIP, False, {"vip_group_id": 0}, None),
    (2, 3, False, {}, None),  # VIP not involved
    (VIP, VIP, False, {}, None),
], ids=["moved-in-pins", "moved-out-unpins-and-excludes", "own-write", "follow-off",
        "no-vip-group", "other-groups", "no-change"])
def test_staff_group_changes_are_followed(old, new, caused, values, expected) -> None:
    rules = policy(**values)
    change = follow_staff_change(old, new, rules.vip_group_id, caused, rules)
    if expected is None:
        assert change is None
    else:
        assert change is not None
        assert (change.pinned, change.excluded, change.home_group_id) == (
            expected.pinned, expected.excluded, expected.home_group_id)
        assert "staff moved the client" in change.reason


def test_staff_moves_are_not_fought_on_the_next_decision() -> None:
    rules = policy()
    excluded = Membership(excluded=True, home_group_id=HOME)
    moved_in = follow_staff_change(2, VIP, VIP, False, rules)
    assert moved_in is not None
    pinned = moved_in.apply(excluded)
    assert pinned == Membership(True, False, 2)
    assert decide(make_client(group_id=VIP), pinned).in_vip is True
    moved_out = follow_staff_change(VIP, 3, VIP, False, rules)
    assert moved_out is not None
    after = moved_out.apply(pinned)
    assert after == Membership(False, True, 2)
    assert decide(make_client(*GOOD_HISTORY, group_id=3), after).target_group_id == 3


def test_adoption_pins_current_members_and_keeps_what_is_known() -> None:
    known = {8: Membership(excluded=True, home_group_id=HOME)}
    assert adopt([7, 8], known) == {7: Membership(True, False, None),
                                    8: Membership(True, True, HOME)}
    assert adopt([]) == {}


# --- property ----------------------------------------------------------------------------


def _owed_past_grace(state: ClientState, rules: PolicySettings) -> Decimal:
    """An independent count of what is owed past the grace (days counted one by one)."""
    total = Decimal(0)
    for invoice in state.invoices:
        if invoice.status not in ("Unpaid", "Payment Pending") or invoice.balance <= 0 \
                or invoice.duedate >= TODAY:
            continue
        start = invoice.duedate
        if rules.grace_in_business_days:
            while start.weekday() >= 5:
                start += timedelta(days=1)
            days = sum(1 for k in range(1, (TODAY - start).days + 1)
                       if (start + timedelta(days=k)).weekday() < 5)
        else:
            days = (TODAY - start).days
        grace = rules.grace_days + (rules.pending_grace_days
                                    if invoice.status == "Payment Pending" else 0)
        if days > grace:
            total += invoice.balance
    return total


@settings(max_examples=200, deadline=None)
@given(clients(), policies, st.booleans(), st.booleans())
def test_client_owing_past_grace_is_never_in_vip_and_a_paying_pinned_one_is(
        state: ClientState, rules: PolicySettings, pinned: bool, restores: bool) -> None:
    rules = replace(rules, promise_restores_vip=restores, min_tenure_months=0, min_spend=0)
    decision = vip_decision(state, Membership(pinned=pinned), standing(state, rules, TODAY),
                            rules, TODAY)
    owed = _owed_past_grace(state, rules)
    promise = state.promise is not None and state.promise.until >= TODAY
    if owed > 0 and owed >= rules.min_overdue_amount and not (promise and restores):
        assert not decision.in_vip
        assert decision.target_group_id != rules.vip_group_id
    elif pinned:  # a pinned, Active client who owes nothing that counts is in VIP
        assert decision.in_vip and decision.target_group_id == rules.vip_group_id
