"""The hook registry: a declared spec, one handler per hook, handlers get only what they name."""

from __future__ import annotations

import pytest

import hooks
from bridge.payloads import VARS_SCHEMAS
from hooks.registry import (
    HOOK_SPEC,
    PanelQuestion,
    Registry,
    RegistryError,
    Subjects,
    TicketGateQuestion,
)


def test_every_hook_in_the_spec_has_one_handler_and_one_schema() -> None:
    assert set(hooks.registry.handlers) == set(HOOK_SPEC) == set(VARS_SCHEMAS)
    assert len(HOOK_SPEC) == 23
    sync = {name for name, spec in HOOK_SPEC.items() if spec.sync}
    assert sync == {"TicketOpenValidation", "AdminAreaClientSummaryPage",
                    "AdminAreaViewTicketPage", "ClientAreaPageSubmitTicket",
                    "ClientAreaHomepage"}


def test_unknown_hook_fails_at_registration_naming_it() -> None:
    registry = Registry(HOOK_SPEC)
    with pytest.raises(RegistryError, match="unknown hook 'InvoicePayed'"):
        registry.on("InvoicePayed")(lambda invoiceid: None)


def test_second_handler_fails_naming_both() -> None:
    registry = Registry(HOOK_SPEC)

    def first(invoiceid): ...

    def second(invoiceid): ...

    registry.on("InvoicePaid")(first)
    with pytest.raises(RegistryError, match=r"first and .*second"):
        registry.on("InvoicePaid")(second)


def test_incomplete_registry_is_reported() -> None:
    with pytest.raises(RegistryError, match="no handler for hook"):
        Registry(HOOK_SPEC).check_complete()


@pytest.mark.parametrize(("hook", "variables", "expected"), [
    ("InvoicePaid", {"invoiceid": 5, "invoice": object()}, Subjects(invoices=frozenset({5}))),
    ("AddInvoicePayment", {"invoiceid": 6}, Subjects(invoices=frozenset({6}))),
    ("AfterModuleSuspend", {"serviceid": 9, "userid": 3}, Subjects(clients=frozenset({3}))),
    ("ClientAdd", {"client_id": 4}, Subjects(clients=frozenset({4}))),
    ("ClientEdit", {"userid": 4, "groupid": 2}, Subjects(clients=frozenset({4}))),
    ("TicketOpen", {"ticketid": 8, "userid": 4, "deptid": 3},
     Subjects(clients=frozenset({4}), tickets=frozenset({8}), opened=frozenset({(8, 3)}))),
    ("TicketOpen", {"ticketid": 8, "userid": 4},
     Subjects(clients=frozenset({4}), tickets=frozenset({8}), opened=frozenset({(8, 0)}))),
    ("TicketOpenAdmin", {"ticketid": 8, "userid": 4, "deptid": 3},
     Subjects(clients=frozenset({4}), tickets=frozenset({8}))),
    ("TicketOpen", {"ticketid": 8, "userid": 0}, Subjects(tickets=frozenset({8}))),
    ("TicketPriorityChange", {"ticketid": 8, "priority": "Low"},
     Subjects(tickets=frozenset({8}))),
    ("PreCronJob", {}, Subjects(everyone=True)),
    ("DailyCronJob", {}, Subjects(everyone=True)),
    ("AfterCronJob", {}, Subjects()),
    ("TicketOpenValidation", {"clientId": 4, "departmentId": 2, "isAdmin": True},
     TicketGateQuestion(4, 2, True)),
    ("AdminAreaClientSummaryPage", {"userid": 4}, PanelQuestion("client_summary", 4)),
    ("AdminAreaViewTicketPage", {"ticketid": 8, "userid": 4},
     PanelQuestion("ticket_badge", 4, ticket_id=8)),
    ("AdminAreaViewTicketPage", {"ticketid": 8}, PanelQuestion("ticket_badge", 0, ticket_id=8)),
    ("ClientAreaPageSubmitTicket", {"userid": 4, "language": "english"},
     PanelQuestion("submit_ticket", 4, language="english")),
    ("ClientAreaHomepage", {"userid": 4, "language": ""}, PanelQuestion("home_banner", 4)),
])
def test_handlers_map_events_to_subjects(hook, variables, expected) -> None:
    assert hooks.registry.dispatch(hook, variables) == expected
    assert hooks.registry.dispatch(hook, variables) == expected  # idempotent
