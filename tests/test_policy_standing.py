"""Standing (current / overdue / suspended) as decision tables, plus properties.

The builders at the top (``inv``, ``client``, ``policy``) are used by the other
``test_policy_*`` modules too.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.policy.standing import RANK, business_days_after, days_overdue, standing
from bridge.policy.state import ClientState, Invoice, Promise, Service
from bridge.settings import PolicySettings, default_settings

TODAY = date(2026, 11, 21)  # a Saturday, the day of tests.helpers.FIXED_NOW
MON, TUE, FRI, SAT = date(2026, 11, 16), date(2026, 11, 17), date(2026, 11, 13), date(2026, 11, 14)


def inv(number: int = 1042, days: int = 10, total: str = "89.90", balance: str | None = None,
        status: str = "Unpaid", datepaid: date | None = None,
        duedate: date | None = None) -> Invoice:
    """An invoice due ``days`` days before TODAY (unless ``duedate`` is given)."""
    due = duedate or TODAY - timedelta(days=days)
    owed = Decimal(total if balance is None else balance)
    if status == "Paid" and balance is None:
        owed = Decimal(0)
    return Invoice(number, str(number), status, due - timedelta(days=7), due, Decimal(total),
                   owed, datepaid)


def client(*invoices: Invoice, services: tuple[Service, ...] = (),
           promise: Promise | None = None, status: str = "Active", group_id: int = 1,
           datecreated: date = date(2020, 1, 15)) -> ClientState:
    return ClientState(7, status, group_id, datecreated, "R$ ", "", "portuguese-br",
                       tuple(invoices), services, promise)


def suspended_service(reason: str = "Overdue on Payment") -> Service:
    return Service(31, "Suspended", reason, TODAY - timedelta(days=20))


@lru_cache(maxsize=256)
def _policy(items: tuple[tuple[str, object], ...]) -> PolicySettings:
    return default_settings().replace(policy=dict(items)).policy


def policy(**values: object) -> PolicySettings:
    """Default policy (grace 3, pending grace 2, VIP group 5, default group 0) with changes."""
    return _policy(tuple(sorted({"vip_group_id": 5, **values}.items())))


def kind(*invoices: Invoice, today: date = TODAY, **values: object) -> str:
    return standing(client(*invoices), policy(**values), today).kind


# --- overdue and the grace ---------------------------------------------------------------


def test_invoice_past_grace_is_overdue_with_a_readable_reason() -> None:
    result = standing(client(inv(1042, days=6)), policy(), TODAY)
    assert result.kind == "overdue"
    assert "invoice #1042 R$ 89.90 overdue 6 days > grace 3" in result.reasons
    assert result.overdue_total == Decimal("89.90")
    assert result.max_days == 6


@pytest.mark.parametrize(("invoices", "values", "expected"), [
    ((), {}, "current"),
    ((inv(days=0),), {"grace_days": 0}, "current"),  # due today is not overdue yet
    ((inv(days=-5),), {}, "current"),
    ((inv(days=3),), {}, "current"),  # 3 days is within a grace of 3
    ((inv(days=4),), {}, "overdue"),
    ((inv(days=1),), {"grace_days": 0}, "overdue"),
    ((inv(days=10),), {"grace_days": 10}, "current"),
    ((inv(days=11),), {"grace_days": 10}, "overdue"),
    ((inv(days=30, balance="0.00"),), {}, "current"),
], ids=["no-invoices", "due-today", "not-due-yet", "within-grace", "past-grace",
        "grace-zero", "grace-10-within", "grace-10-past", "balance-zero"])
def test_grace_days_decide_when_an_unpaid_invoice_counts(invoices, values, expected) -> None:
    assert kind(*invoices, **values) == expected


@pytest.mark.parametrize("status", ["Draft", "Paid", "Cancelled", "Refunded"])
def test_only_unpaid_payment_pending_and_collections_invoices_are_owed(status) -> None:
    assert kind(inv(days=40, status=status, balance="89.90")) == "current"


# --- Collections: unpaid debt handed over for collection (whmcs-reference §6) -------------


@pytest.mark.parametrize(("days", "values", "expected"), [
    (40, {}, "overdue"),
    (3, {}, "current"),  # owed from its due date, with the plain grace
    (4, {}, "overdue"),
    (0, {"grace_days": 0}, "current"),  # due today is not overdue yet
    (40, {"collections_owed": False}, "current"),
    (40, {"collections_owed": True, "min_overdue_amount": "100"}, "current"),
], ids=["long-past", "within-grace", "past-grace", "due-today", "setting-off",
        "under-min-amount"])
def test_collections_invoice_is_owed_from_its_due_date(days, values, expected) -> None:
    assert kind(inv(days=days, status="Collections"), **values) == expected


def test_collections_reason_says_the_invoice_is_in_collections() -> None:
    result = standing(client(inv(1042, days=40, status="Collections", balance="50.00")),
                      policy(), TODAY)
    assert result.kind == "overdue"
    assert result.overdue_total == Decimal("50.00")
    assert ("invoice #1042 R$ 50.00 (of R$ 89.90) in Collections overdue 40 days > grace 3"
            in result.reasons)


def test_collections_with_nothing_left_to_pay_is_not_owed() -> None:
    assert kind(inv(days=40, status="Collections", balance="0.00")) == "current"


def test_collections_owed_off_ignores_only_collections() -> None:
    result = standing(client(inv(1, days=40, status="Collections"), inv(2, days=6)),
                      policy(collections_owed=False), TODAY)
    assert [i.invoice.id for i in result.overdue] == [2]
    assert not any("Collections" in r for r in result.reasons)


@pytest.mark.parametrize(("days", "values", "expected"), [
    (5, {}, "current"),  # grace 3 + pending 2
    (6, {}, "overdue"),
    (4, {"pending_grace_days": 0}, "overdue"),
    (10, {"pending_grace_days": 7}, "current"),
    (11, {"pending_grace_days": 7}, "overdue"),
])
def test_payment_pending_gets_extra_grace(days, values, expected) -> None:
    assert kind(inv(days=days, status="Payment Pending"), **values) == expected
    assert kind(inv(days=days), **values) == "overdue"


def test_payment_pending_reason_names_the_longer_grace() -> None:
    result = standing(client(inv(9, days=6, status="Payment Pending")), policy(), TODAY)
    assert "invoice #9 R$ 89.90 overdue 6 days > grace 5 (Payment Pending)" in result.reasons


def test_partial_payment_reduces_the_balance_but_not_the_standing() -> None:
    result = standing(client(inv(1042, days=6, total="100.00", balance="40.00")), policy(),
                      TODAY)
    assert result.kind == "overdue"
    assert result.overdue_total == Decimal("40.00")
    assert "invoice #1042 R$ 40.00 (of R$ 100.00) overdue 6 days > grace 3" in result.reasons
    assert kind(inv(days=6, total="100.00", balance="0.00")) == "current"


@pytest.mark.parametrize(("today", "due", "business", "expected"), [
    (MON, FRI, False, "overdue"),  # 3 calendar days > grace 2
    (MON, FRI, True, "current"),  # 1 business day
    (TUE, FRI, True, "current"),  # 2 business days, within grace 2
    (date(2026, 11, 18), FRI, True, "overdue"),  # Wednesday: 3 business days
    (TUE, SAT, True, "current"),  # due on Saturday counts from Monday: 1 business day
    (TUE, SAT, False, "overdue"),
])
def test_weekend_boleto_counts_business_days(today, due, business, expected) -> None:
    values = {"grace_days": 2, "grace_in_business_days": business}
    assert kind(inv(duedate=due), today=today, **values) == expected


@pytest.mark.parametrize(("due", "today", "business", "days"), [
    (FRI, MON, False, 3),
    (FRI, MON, True, 1),
    (FRI, date(2026, 11, 18), True, 3),
    (SAT, MON, True, 0),
    (SAT, TUE, True, 1),
    (date(2026, 11, 15), MON, True, 0),  # Sunday
    (FRI, date(2026, 11, 27), True, 10),
    (MON, MON, True, 0),
])
def test_days_overdue(due, today, business, days) -> None:
    assert days_overdue(due, today, business) == days


@given(st.dates(date(2020, 1, 1), date(2030, 1, 1)), st.integers(0, 60))
def test_business_days_match_counting_one_by_one(start: date, span: int) -> None:
    end = start + timedelta(days=span)
    one_by_one = sum(1 for k in range(1, span + 1) if (start + timedelta(days=k)).weekday() < 5)
    assert business_days_after(start, end) == one_by_one


@pytest.mark.parametrize(("invoices", "minimum", "expected"), [
    ((inv(1, balance="5.00"),), "10", "current"),
    ((inv(1, balance="5.00"), inv(2, balance="5.00")), "10", "overdue"),  # total counts
    ((inv(1, balance="9.99"),), "10", "current"),
    ((inv(1, balance="10.00"),), "10", "overdue"),
    ((inv(1, balance="5.00"), inv(2, days=1, balance="50.00")), "10", "current"),  # in grace
    ((inv(1, balance="0.01"),), "0", "overdue"),
])
def test_min_overdue_amount_ignores_small_balances(invoices, minimum, expected) -> None:
    result = standing(client(*invoices), policy(min_overdue_amount=minimum), TODAY)
    assert result.kind == expected
    if expected == "current" and any(i.balance and i.duedate < TODAY - timedelta(3)
                                     for i in invoices):
        assert any("min_overdue_amount R$ 10.00: ignored" in r for r in result.reasons)
        assert result.overdue == () and result.overdue_total == 0


def test_overdue_lists_the_invoices_past_grace_oldest_first() -> None:
    result = standing(client(inv(3, days=5), inv(1, days=20), inv(2, days=2)), policy(), TODAY)
    assert [i.invoice.number for i in result.overdue] == ["1", "3"]
    assert result.overdue_total == Decimal("179.80")
    assert result.max_days == 20
    assert "invoice #2 R$ 89.90 overdue 2 days within grace 3" in result.reasons


# --- suspended ---------------------------------------------------------------------------


@pytest.mark.parametrize(("invoices", "service_status", "expected"), [
    ((inv(days=10),), "Suspended", "suspended"),
    ((inv(days=10),), "Active", "overdue"),
    ((inv(days=10),), "Terminated", "overdue"),
    ((inv(days=2),), "Suspended", "current"),  # owes, but within the grace
    ((), "Suspended", "current"),  # suspended for another reason, owes nothing
    ((inv(days=10, status="Paid"),), "Suspended", "current"),
])
def test_suspended_needs_a_suspended_service_and_debt_past_grace(invoices, service_status,
                                                                  expected) -> None:
    service = Service(31, service_status, "", None)
    result = standing(client(*invoices, services=(service,)), policy(), TODAY)
    assert result.kind == expected
    if service_status == "Suspended":
        assert "service #31 is Suspended" in result.reasons


# --- promises ----------------------------------------------------------------------------


@pytest.mark.parametrize(("until", "active"), [
    (TODAY + timedelta(days=5), True),
    (TODAY, True),
    (TODAY - timedelta(days=1), False),
])
def test_promise_is_reported_but_does_not_change_kind(until, active) -> None:
    promise = Promise(until, "pays on Friday")
    result = standing(client(inv(days=10), promise=promise), policy(), TODAY)
    assert result.kind == "overdue"
    assert result.promise_active is active
    state = "active" if active else "expired"
    assert f"promise to pay until {until.isoformat()} (pays on Friday) {state}" in result.reasons


# --- properties --------------------------------------------------------------------------

STATUSES = ("Unpaid", "Payment Pending", "Paid", "Cancelled", "Draft")


@st.composite
def invoices(draw: st.DrawFn) -> Invoice:
    cents = draw(st.integers(0, 50_000))
    paid = draw(st.integers(0, cents))
    return inv(draw(st.integers(1, 10**6)), days=draw(st.integers(-10, 60)),
               total=str(Decimal(cents) / 100), balance=str(Decimal(cents - paid) / 100),
               status=draw(st.sampled_from(STATUSES)))


@st.composite
def clients(draw: st.DrawFn) -> ClientState:
    services = tuple(Service(i, draw(st.sampled_from(("Active", "Suspended", "Terminated"))),
                             "", None) for i in range(draw(st.integers(0, 2))))
    promise = draw(st.none() | st.builds(
        Promise, st.dates(TODAY - timedelta(days=5), TODAY + timedelta(days=5)), st.just("")))
    return replace(client(*draw(st.lists(invoices(), max_size=5)), services=services,
                          promise=promise), group_id=draw(st.sampled_from((0, 1, 2, 5))))


policies = st.builds(
    policy, grace_days=st.integers(0, 10), grace_in_business_days=st.booleans(),
    pending_grace_days=st.integers(0, 5), min_overdue_amount=st.sampled_from(("0", "10", "100")))


@settings(max_examples=150, deadline=None)
@given(clients(), policies, st.data())
def test_paying_never_makes_standing_worse(state: ClientState, rules: PolicySettings,
                                           data: st.DataObject) -> None:
    if not state.invoices:
        return
    index = data.draw(st.integers(0, len(state.invoices) - 1))
    target = state.invoices[index]
    part = data.draw(st.sampled_from(("all", "part")))
    if part == "all":
        paid = replace(target, status="Paid", balance=Decimal(0), datepaid=TODAY)
    else:
        paid = replace(target, balance=(target.balance / 2).quantize(Decimal("0.01")))
    after_state = replace(state, invoices=(*state.invoices[:index], paid,
                                           *state.invoices[index + 1:]))
    before, after = standing(state, rules, TODAY), standing(after_state, rules, TODAY)
    assert RANK[after.kind] <= RANK[before.kind]
    assert after.overdue_total <= before.overdue_total
    assert after.max_days <= before.max_days
