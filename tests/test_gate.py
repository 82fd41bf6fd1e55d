"""The TicketOpenValidation gate as a pure decision table."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from bridge.i18n import Texts
from bridge.model import CachedStanding, OverdueInvoice, WhmcsNames
from bridge.policy.gate import decide, format_money, language_of, ungated_ticket
from bridge.settings import default_settings
from bridge.store.reasons import dump_reasons, load_reasons
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


@pytest.mark.parametrize(("page", "client_language", "default", "expected"), [
    ("portuguese-br", "english", "en", "Sua conta"),  # the client area's, over the client's
    ("English", "portuguese-br", "pt_BR", "Your account"),
    ("portuguese-pt", None, "en", "Sua conta"),
    ("french", "portuguese-br", "en", "Sua conta"),  # one vipgate lacks: the client's
    ("french", None, "en", "Your account"),  # then the default
    (None, "portuguese-br", "en", "Sua conta"),  # a stub that sends none
])
def test_message_language_follows_the_client_area(page, client_language, default,
                                                  expected) -> None:
    """The stub sends the language the client reads the client area in (WHMCS passes none to
    TicketOpenValidation): the refusal is written in it."""
    answer = decide(standing("suspended", language=client_language), 1, False, tickets(),
                    default, "", page_language=page)
    assert answer.errors[0].startswith(expected)


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


# --- the reasons, in the reader's language ----------------------------------------------------

NAMES = WhmcsNames(departments={1: "Suporte", 2: "Financeiro"})


def stored(reasons: tuple[str, ...]) -> tuple[str, ...]:
    """As the audit log keeps them and reads them back (bridge/store/reasons.py)."""
    return load_reasons(dump_reasons(reasons))


@pytest.mark.parametrize(("answer", "english", "portuguese"), [
    (decide(standing("suspended"), 1, False, tickets(), "en", ""),
     "standing suspended, overdue 10 days, department 1 is not a billing department",
     "situação suspensa, 10 dias de atraso, o departamento Suporte (#1) não é financeiro"),
    (decide(standing("overdue", days=1), 1, False, tickets(block_when="overdue"), "en", ""),
     "standing overdue, overdue 1 day, department 1 is not a billing department",
     "situação em atraso, 1 dia de atraso, o departamento Suporte (#1) não é financeiro"),
    (decide(standing("suspended"), 2, False, tickets(), "en", ""),
     "department 2 is a billing department", "o departamento Financeiro (#2) é financeiro"),
    (decide(standing("current"), 1, False, tickets(), "en", ""),
     "standing current is not blocked (block_when=suspended)",
     "situação em dia não bloqueia (block_when=suspended)"),
    (decide(standing("suspended"), 1, True, tickets(), "en", ""), "opened by staff",
     "aberto pela equipe"),
    (decide(None, 1, False, tickets(), "en", ""), "no standing known for this client",
     "nenhuma situação conhecida para este cliente"),
])
def test_the_gates_answer_says_why_in_english_and_reads_in_portuguese(
        answer, english: str, portuguese: str) -> None:
    """The English text is what the webhook logs; the message reads in Portuguese with the
    departments by name, kept as the audit log keeps it."""
    assert answer.reason == english
    (kept,) = stored((answer.reason,))
    assert (kept, Texts("pt_BR").reason(kept, NAMES)) == (english, portuguese)


def test_what_was_done_with_a_ticket_round_the_gate_reads_in_portuguese() -> None:
    """The reasons of the audit rows of a moved and answered ticket: English as before,
    Portuguese with department names (ids before the names are read), after the store's
    round trip."""
    action = ungated_ticket(standing("suspended"), standing("suspended"), OPENED, 1, 1, False,
                            tickets(), "pt_BR", "https://billing.example.com")
    assert action.reasons == (
        "opened in department 1 without passing the gate, which would have refused it "
        "(standing suspended, overdue 10 days, department 1 is not a billing department)",
        "moved to billing department 2", "answered with the block message")
    kept = stored(action.reasons)
    assert kept == action.reasons
    assert [Texts("pt_BR").reason(r, NAMES) for r in kept] == [
        "aberto no departamento Suporte (#1) sem passar pela verificação de abertura, que o "
        "teria recusado (situação suspensa, 10 dias de atraso, o departamento Suporte (#1) "
        "não é financeiro)",
        "movido para o departamento financeiro Financeiro (#2)",
        "respondido com a mensagem de bloqueio"]
    assert Texts("en").reason(kept[1], WhmcsNames()) == "moved to billing department #2"
    assert Texts("en").reason(kept[1], NAMES) == (
        "moved to billing department Financeiro (#2)")


@pytest.mark.parametrize(("gate_saw", "now", "dept_now", "replied", "settings", "portuguese"), [
    (standing("suspended"), standing("suspended"), 2, False, {},
     "já está no departamento financeiro Financeiro (#2)"),
    (standing("suspended"), standing("suspended"), 1, False, {"billing_departments": ""},
     "nenhum departamento financeiro configurado: não foi movido"),
    (standing("suspended"), standing("suspended"), 1, True, {},
     "o ticket já tem resposta da equipe"),
    (standing("suspended"), standing("current"), 1, False, {},
     "não está mais bloqueado: situação em dia não bloqueia (block_when=suspended)"),
    (standing("overdue"), standing("suspended"), 1, False, {},
     "a verificação de abertura o teria deixado passar: situação em atraso não bloqueia "
     "(block_when=suspended)"),
    (None, standing("suspended"), 1, False, {},
     "nenhuma situação conhecida quando o ticket foi aberto: a verificação de abertura o "
     "teria deixado passar"),
    (replace(standing("suspended"), updated_at=OPENED + timedelta(seconds=1)),
     standing("suspended"), 1, False, {},
     f"a situação foi recalculada em {(OPENED + timedelta(seconds=1)).isoformat()}, depois "
     f"que o ticket foi aberto em {OPENED.isoformat()}: não se sabe o que a verificação de "
     "abertura viu"),
    (standing("suspended"), standing("suspended"), 1, False, {"ungated_tickets": "keep"},
     "ungated_tickets = keep"),
])
def test_every_reason_about_a_ticket_round_the_gate_reads_in_portuguese(
        gate_saw, now, dept_now, replied, settings, portuguese: str) -> None:
    action = ungated_ticket(gate_saw, now, OPENED, 1, dept_now, replied, tickets(**settings),
                            "pt_BR", "https://billing.example.com")
    shown = [Texts("pt_BR").reason(r, NAMES) for r in stored(action.reasons)]
    assert portuguese in shown, shown
