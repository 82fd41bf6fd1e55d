"""Ticket handling: the priority matrix, restoring priorities, staff notes, the gate's cache."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.policy.gate import decide as gate_decide
from bridge.policy.standing import Standing, standing
from bridge.policy.state import Promise
from bridge.policy.tickets import (
    apply_ticket_action,
    cached_standing,
    desired_priority,
    staff_note,
    ticket_action,
    ticket_standing,
)
from bridge.settings import TicketSettings, default_settings
from tests.helpers import FIXED_NOW
from tests.test_policy_standing import TODAY, client, inv, policy, suspended_service

PRIORITIES = ("Low", "Medium", "High")


def tickets(**values: object) -> TicketSettings:
    return default_settings().replace(tickets={"billing_departments": "2", **values}).tickets


def standing_of(*invoices, services=(), promise=None, **values) -> Standing:
    return standing(client(*invoices, services=services, promise=promise), policy(**values),
                    TODAY)


ACTIVE_PROMISE = Promise(TODAY + timedelta(days=2), "")


@pytest.mark.parametrize(("state", "expected"), [
    (standing_of(), "current"),
    (standing_of(inv(days=10)), "overdue"),
    (standing_of(inv(days=10), services=(suspended_service(),)), "suspended"),
    (standing_of(inv(days=10), promise=ACTIVE_PROMISE), "current"),
    (standing_of(inv(days=10), services=(suspended_service(),), promise=ACTIVE_PROMISE),
     "current"),
    (standing_of(inv(days=10), promise=Promise(TODAY - timedelta(days=1), "")), "overdue"),
])
def test_active_promise_counts_as_current_for_tickets(state, expected) -> None:
    assert ticket_standing(state) == expected


# --- the priority matrix -----------------------------------------------------------------


@pytest.mark.parametrize(("kind", "in_vip", "values", "expected"), [
    ("current", True, {}, "High"),  # defaults: VIP High, current keep, overdue/suspended Low
    ("current", False, {}, None),
    ("overdue", False, {}, "Low"),
    ("suspended", False, {}, "Low"),
    ("overdue", True, {}, "Low"),  # VIP only counts while current
    ("current", True, {"priority_vip": "keep"}, None),
    ("current", True, {"priority_vip": "Medium"}, "Medium"),
    ("current", False, {"priority_current": "Medium"}, "Medium"),
    ("overdue", False, {"priority_overdue": "keep"}, None),
    ("overdue", False, {"priority_overdue": "Medium"}, "Medium"),
    ("suspended", False, {"priority_suspended": "keep"}, None),
    ("suspended", True, {"priority_suspended": "High"}, "High"),
])
def test_priority_matrix(kind, in_vip, values, expected) -> None:
    assert desired_priority(kind, in_vip, tickets(**values)) == expected


def test_unknown_standing_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown standing"):
        desired_priority("late", False, tickets())


# --- ticket actions ----------------------------------------------------------------------


@pytest.mark.parametrize(("current", "original", "managed", "desired", "expected"), [
    ("High", None, None, "Low", ("Low", "High", False)),
    ("Low", None, None, "Low", (None, None, False)),
    ("Medium", None, None, None, (None, None, False)),
    ("Low", "High", "Low", "Low", (None, None, False)),
    ("Low", "High", "Low", "Medium", ("Medium", None, False)),
    ("Low", "High", "Low", None, ("High", None, True)),
    ("Low", "Low", "Low", None, (None, None, True)),
    ("Medium", "High", "Low", "Low", (None, None, False)),
], ids=["lowers-and-records-original", "already-as-desired", "keep-leaves-untouched",
        "stays-lowered", "changes-again-keeps-first-original", "restores-original",
        "original-equals-current", "staff-changed"])
def test_ticket_action_table(current, original, managed, desired, expected) -> None:
    action = ticket_action(current, original, managed, desired)
    assert (action.new_priority, action.record_original, action.clear_record) == expected, \
        action.reasons


def test_overdue_client_ticket_is_lowered_and_restored_when_paid() -> None:
    rules = tickets()
    late = standing_of(inv(1042, days=6))
    lowered = ticket_action("Medium", None, None,
                            desired_priority(ticket_standing(late), False, rules))
    assert (lowered.new_priority, lowered.record_original) == ("Low", "Medium")
    assert lowered.reasons == ("priority Medium set to Low",)
    state = apply_ticket_action(lowered, "Medium", None, None)
    assert state == ("Low", "Medium", "Low")
    restored = ticket_action(*state, desired_priority(ticket_standing(standing_of()), False,
                                                      rules))
    assert restored.new_priority == "Medium" and restored.clear_record
    assert apply_ticket_action(restored, *state) == ("Medium", None, None)


def test_staff_raised_priority_is_left_alone() -> None:
    action = ticket_action("High", "Medium", "Low", "Low")
    assert not action.changes
    assert action.reasons == ("staff changed the priority to High after vipgate set Low: "
                              "left alone",)


def test_staff_change_is_kept_when_the_client_pays_and_the_record_is_dropped() -> None:
    action = ticket_action("High", "Medium", "Low", None)
    assert action.new_priority is None and action.clear_record
    assert apply_ticket_action(action, "High", "Medium", "Low") == ("High", None, None)


@given(st.sampled_from(PRIORITIES), st.none() | st.sampled_from(PRIORITIES),
       st.none() | st.sampled_from(PRIORITIES), st.none() | st.sampled_from(PRIORITIES))
def test_ticket_action_applied_twice_changes_nothing_the_second_time(
        current: str, original: str | None, managed: str | None, desired: str | None) -> None:
    first = ticket_action(current, original, managed, desired)
    state = apply_ticket_action(first, current, original, managed)
    second = ticket_action(*state, desired)
    assert second.new_priority is None
    assert apply_ticket_action(second, *state) == state
    if first.new_priority is not None:
        assert state[0] == desired or (desired is None and state[0] == original)


# --- staff note --------------------------------------------------------------------------


def test_staff_note_lists_overdue_invoices_in_english() -> None:
    state = standing_of(inv(1042, days=6, total="1234.50"), inv(1043, days=1))
    assert staff_note(state, tickets(), "en") == (
        "vipgate: client has overdue invoices (standing: overdue).\n"
        "- Invoice #1042: R$ 1,234.50, due 2026-11-15 (6 days overdue)\n"
        "Total overdue: R$ 1,234.50")


def test_staff_note_in_portuguese_for_a_suspended_client() -> None:
    state = standing_of(inv(7, days=4, balance="40.00", total="90.00"),
                        services=(suspended_service(),), grace_in_business_days=False)
    assert staff_note(state, tickets(), "pt_BR") == (
        "vipgate: cliente com faturas vencidas (situação: suspenso).\n"
        "- Fatura #7: R$ 40,00, venceu em 17/11/2026 (4 dias de atraso)\n"
        "Total vencido: R$ 40,00")


def test_staff_note_counts_business_days_when_configured() -> None:
    state = standing_of(inv(7, days=8), grace_days=0, grace_in_business_days=True)
    assert "(5 dias úteis de atraso)" in (staff_note(state, tickets(), "pt_BR") or "")
    assert "(5 business days overdue)" in (staff_note(state, tickets(), "en") or "")


@pytest.mark.parametrize(("state", "values"), [
    (standing_of(), {}),
    (standing_of(inv(days=2)), {}),  # within the grace
    (standing_of(inv(days=10), promise=ACTIVE_PROMISE), {}),
    (standing_of(inv(days=10)), {"staff_note": False}),
], ids=["current", "within-grace", "promise", "staff-note-off"])
def test_no_staff_note(state, values) -> None:
    assert staff_note(state, tickets(**values), "en") is None


# --- the standing cache and the gate -----------------------------------------------------


@pytest.mark.parametrize(("services", "promise", "values", "department", "blocked"), [
    ((suspended_service(),), None, {}, 1, True),
    ((suspended_service(),), None, {}, 2, False),  # billing department
    ((suspended_service(),), ACTIVE_PROMISE, {}, 1, False),
    ((), None, {}, 1, False),  # overdue, block_when=suspended
    ((), None, {"block_when": "overdue"}, 1, True),
    ((), None, {"block_when": "overdue", "block_after_days": 11}, 1, False),
    ((suspended_service(),), None, {"block_when": "never"}, 1, False),
])
def test_gate_reads_the_cached_standing(services, promise, values, department,
                                        blocked) -> None:
    state = client(inv(1042, days=10), services=services, promise=promise)
    cached = cached_standing(state, standing(state, policy(), TODAY), FIXED_NOW)
    answer = gate_decide(cached, department, False, tickets(**values), "en", "")
    assert bool(answer.errors) is blocked, answer.reason
    if blocked:
        assert answer.errors[0].startswith(
            "Sua conta tem faturas vencidas (#1042; total R$ 89,90)")


def test_cached_standing_carries_days_total_and_invoices() -> None:
    state = client(inv(1042, days=10), inv(1043, days=5))
    cached = cached_standing(state, standing(state, policy(), TODAY), FIXED_NOW)
    assert (cached.client_id, cached.standing, cached.overdue_days) == (7, "overdue", 10)
    assert [i.number for i in cached.invoices] == ["1042", "1043"]
    assert cached.invoices[0].due_date == "2026-11-11"
    assert str(cached.overdue_total) == "179.80"


def test_the_priority_reasons_name_whmcs_priorities_in_the_readers_language() -> None:
    from bridge.i18n import Texts
    from bridge.store.reasons import dump_reasons, load_reasons

    [moved] = ticket_action("Medium", None, None, "Low").reasons
    [staff] = ticket_action("High", "Medium", "Low", None).reasons
    assert (moved, staff) == ("priority Medium set to Low", "staff changed the priority to "
                              "High after vipgate set Low: left alone, record dropped")
    kept = load_reasons(dump_reasons((moved, staff)))  # as the audit log keeps them
    assert [Texts("pt_BR").reason(r) for r in kept] == [
        "prioridade Média alterada para Baixa",
        "a equipe mudou a prioridade para Alta depois que o vipgate definiu Baixa: mantida, "
        "registro descartado"]
