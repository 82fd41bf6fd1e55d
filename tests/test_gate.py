"""The TicketOpenValidation gate as a pure decision table."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from bridge.model import CachedStanding, OverdueInvoice
from bridge.policy.gate import decide, format_money, language_of, ungated_ticket
from bridge.settings import default_settings
from tests.helpers import FIXED_NOW


def standing(kind: str, days: int = 10, language: str | None = None) -> CachedStanding:
    invoices = () if kind == "current" else (
        OverdueInvoice(1042, "1042", Decimal("1234.50"), "2026-11-11"),)
    total = Decimal("1234.50") if invoices else Decimal(0)
    return CachedStanding(7, kind, days, total, invoices, "R$ ", "", language, FIXED_NOW)


def tickets(**values: object):
    return default_settings().replace(tickets={"billing_departments": "2", **values}).tickets


@pytest.mark.parametrize(("kind", "days", "settings", "blocked"), [
    ("current", 0, {}, False),
    ("overdue", 10, {}, False),
    ("suspended", 1, {}, True),
    ("suspended", 1, {"block_when": "never"}, False),
    ("overdue", 10, {"block_when": "overdue"}, True),
    ("overdue", 3, {"block_when": "overdue", "block_after_days": 5}, False),
    ("overdue", 5, {"block_when": "overdue", "block_after_days": 5}, True),
    ("overdue", 9, {"block_after_days": 7}, True),  # block_when=suspended + days set
    ("overdue", 6, {"block_after_days": 7}, False),
    ("suspended", 1, {"block_when": "overdue", "block_after_days": 5}, False),
])
def test_who_is_blocked_outside_billing(kind, days, settings, blocked) -> None:
    answer = decide(standing(kind, days), 1, False, tickets(**settings), "en", "")
    assert bool(answer.errors) is blocked, answer.reason


def test_billing_departments_and_staff_are_never_blocked() -> None:
    assert decide(standing("suspended"), 2, False, tickets(), "en", "").errors == ()
    assert decide(standing("suspended"), 1, True, tickets(), "en", "").errors == ()
    assert decide(None, 1, False, tickets(), "en", "").errors == ()


@pytest.mark.parametrize(("client_language", "default", "expected"), [
    ("portuguese-br", "en", "Sua conta tem faturas vencidas (#1042; total R$ 1.234,50)"),
    ("english", "pt_BR", "Your account has overdue invoices (#1042; total R$ 1,234.50)"),
    (None, "pt_BR", "Sua conta"),
    ("", "en", "Your account"),
])
def test_message_language_follows_the_client(client_language, default, expected) -> None:
    answer = decide(standing("suspended", language=client_language), 1, False, tickets(),
                    default, "https://whmcs.example.com/")
    assert answer.errors[0].startswith(expected)
    assert answer.errors[0].endswith("https://whmcs.example.com/viewinvoice.php?id=1042")


def test_helpers() -> None:
    assert language_of("Portuguese-PT", "en") == "pt_BR"
    assert format_money(Decimal("0.5"), "$", " USD", "en") == "$0.50 USD"


# --- tickets that never met the gate --------------------------------------------------------

OPENED = FIXED_NOW + timedelta(minutes=5)


@pytest.mark.parametrize(("case", "gate_saw", "now", "opened_in", "dept_now", "replied",
                          "settings", "moved", "answered", "why"), [
    ("e-mailed in by a suspended client", standing("suspended"), standing("suspended"), 1, 1,
     False, {}, 2, True, "without passing the gate"),
    ("reply only", standing("suspended"), standing("suspended"), 1, 1, False,
     {"ungated_tickets": "reply"}, None, True, "without passing the gate"),
    ("keep", standing("suspended"), standing("suspended"), 1, 1, False,
     {"ungated_tickets": "keep"}, None, False, "ungated_tickets = keep"),
    ("moved already (interrupted run)", standing("suspended"), standing("suspended"), 1, 2,
     False, {}, None, True, "already in billing department 2"),
    ("answered already (event again)", standing("suspended"), standing("suspended"), 1, 2,
     True, {}, None, False, "already has a staff reply"),
    ("staff answered it", standing("suspended"), standing("suspended"), 1, 1, True, {}, None,
     False, "already has a staff reply"),
    ("opened in billing", standing("suspended"), standing("suspended"), 2, 2, False, {},
     None, False, "billing department"),
    ("not blocked when opened", standing("overdue"), standing("suspended"), 1, 1, False, {},
     None, False, "would have let it through"),
    ("paid since", standing("suspended"), standing("current"), 1, 1, False, {}, None, False,
     "no longer blocked"),
    ("no standing known", None, standing("suspended"), 1, 1, False, {}, None, False,
     "no standing known"),
    ("standing recomputed after the ticket", replace(standing("suspended"),
     updated_at=OPENED + timedelta(seconds=1)), standing("suspended"), 1, 1, False, {}, None,
     False, "what the gate saw is unknown"),
    ("no billing department set", standing("suspended"), standing("suspended"), 1, 1, False,
     {"billing_departments": ""}, None, True, "no billing department is set"),
])
def test_ungated_ticket_acts_as_the_gate_would_have(case, gate_saw, now, opened_in, dept_now,
                                                    replied, settings, moved, answered,
                                                    why) -> None:
    action = ungated_ticket(gate_saw, now, OPENED, opened_in, dept_now, replied,
                            tickets(**settings), "pt_BR", "https://billing.example.com")
    assert action.move_to == moved, case
    assert (action.reply is not None) == answered, case
    assert any(why in r for r in action.reasons), (case, action.reasons)


def test_ungated_ticket_reply_is_the_gate_message_in_the_clients_language() -> None:
    now = standing("suspended", language="english")
    action = ungated_ticket(standing("suspended"), now, OPENED, 1, 1, False, tickets(),
                            "pt_BR", "https://billing.example.com")
    assert action.reply == decide(now, 1, False, tickets(), "pt_BR",
                                  "https://billing.example.com").errors[0]
    assert action.reply is not None and action.reply.startswith("Your account")
    assert "R$ 1,234.50" in action.reply and "viewinvoice.php?id=1042" in action.reply
