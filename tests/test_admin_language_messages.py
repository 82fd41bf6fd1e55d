"""The admin page's messages in the reader's language, one language per page: the settings'
labels, help and validation messages, the overview's warnings and checks, the flashes after an
action, the admin's own audit reasons, the HTTP error pages. What the operator's CLI prints of
the same messages stays English (``vipgate check``, a config error)."""

from __future__ import annotations

import html
from datetime import timedelta

import pytest
from flask import Flask, g
from werkzeug.exceptions import Forbidden, InternalServerError

from bridge.i18n import Texts
from bridge.model import AuditEntry, GroupRef, WhmcsNames
from bridge.store import Store
from bridge.store import inbox as queue
from tests.admin_helpers import AdminSession
from tests.admin_world import flashes
from tests.helpers import FIXED_NOW

# (Portuguese, English) of what each page shows; each language's page must hold its own and
# none of the other's.
SETTINGS_WORDS = [
    ("Política: situação e VIP", "Policy: standing and VIP"),
    ("Dias de carência", "Grace days"),
    ("Dias que uma fatura em aberto pode ficar vencida antes de o cliente contar como em "
     "atraso.", "Days an unpaid invoice may be overdue before its client counts as overdue."),
    ("Prioridade dos tickets de clientes em atraso; keep = deixar a que o cliente escolheu.",
     "Ticket priority of overdue clients; keep = leave what the client chose."),
    ("Mensagem de bloqueio (inglês)", "Block message (English)"),
    ("O WHMCS não está configurado ([whmcs] url está vazio)",
     "WHMCS is not configured ([whmcs] url is empty)"),
    # a choice's value as the file writes it, named beside it
    (">Alta (High)</option>", ">High</option>"), (">ligado (on)</option>", ">on</option>"),
    (">mover e responder (move_and_reply)</option>", ">move_and_reply</option>"),
]


def _both(page: str, language: str, pairs: list[tuple[str, str]]) -> None:
    """``page`` holds every text of ``language`` and none of the other's."""
    mine, other = (0, 1) if language == "pt_BR" else (1, 0)
    page = html.unescape(page)
    assert [p[mine] for p in pairs if p[mine] not in page] == []
    assert [p[other] for p in pairs if p[other] in page] == []


@pytest.mark.parametrize("language", ["pt_BR", "en"])
def test_the_settings_labels_and_help_in_the_accounts_language(app: Flask,
                                                               language: str) -> None:
    page = AdminSession(app, language=language).text("/admin/settings")
    _both(page, language, SETTINGS_WORDS)


@pytest.mark.parametrize("language", ["pt_BR", "en"])
def test_a_refused_setting_says_why_in_the_accounts_language(app: Flask,
                                                             language: str) -> None:
    admin = AdminSession(app, language=language)
    answer = admin.post("/admin/settings", {
        "action": "save", "policy-grace_days": "soon",
        "tickets-block_message_en": "Pay {what}", "tickets-block_when": "later"})
    assert answer.status_code == 400
    _both(answer.get_data(as_text=True), language, [
        ("esperava um número inteiro de 0 a 365", "expected a whole number from 0 to 365"),
        ("campo desconhecido {what}; esperava {invoices}, {total}, {days}, {link}",
         "unknown placeholder {what}; expected {invoices}, {total}, {days}, {link}"),
        ("esperava um destes: suspended, overdue, never",
         "expected one of suspended, overdue, never"),
    ])


def test_the_config_file_error_of_the_same_setting_stays_english(tmp_path) -> None:
    """The operator's CLI reads config errors in English (the admin page translates them)."""
    from bridge.settings import ConfigError, load_settings

    path = tmp_path / "vipgate.ini"
    path.write_text("[policy]\ngrace_days = soon\n")
    with pytest.raises(ConfigError, match=r"\[policy\] grace_days = 'soon' .*: expected a "
                                          r"whole number from 0 to 365$"):
        load_settings(path, environ={})


@pytest.mark.parametrize("language", ["pt_BR", "en"])
def test_the_overview_warnings_and_checks_in_the_accounts_language(
        app: Flask, store: Store, language: str) -> None:
    store.put_stub_version("0.0.1", FIXED_NOW)
    store.put_stub_rejected(2, [{"rejected_at": "2026-11-21T10:05:00+00:00",
                                 "hook": "InvoicePaid", "webhook_id": "msg_1", "reason": ""}],
                            FIXED_NOW)
    page = AdminSession(app, language=language).text("/admin/")
    _both(page, language, [
        ("[bridge] public_url está vazio: install-stub precisa de --url",
         "[bridge] public_url is empty: install-stub needs --url"),
        ("[whmcs] url está vazio: o vipgate não consegue acessar a API do WHMCS",
         "[whmcs] url is empty: vipgate cannot reach WHMCS's API"),
        ("[policy] vip_group_id é 0: nenhum grupo VIP é gerenciado",
         "[policy] vip_group_id is 0: no VIP group is managed"),
        ("o stub PHP no WHMCS envia versão 0.0.1", "the PHP stub in WHMCS sends version 0.0.1"),
        ("a ponte recusou 2 evento(s)", "the bridge refused 2 event(s)"),
        ("msg_1: sem motivo informado", "msg_1: no reason given"),
        ("não configurado: [whmcs] url está vazio, o vipgate não consegue acessar o WHMCS",
         "not configured: [whmcs] url is empty, vipgate cannot reach WHMCS"),
        ("não configurado ([whmcs] database_url está vazio)",
         "not configured ([whmcs] database_url is empty)"),
        ("acessível (", "reachable ("),
    ])


def test_whmcs_and_permission_warnings_keep_english_text_and_read_in_portuguese() -> None:
    """What ``vipgate check`` prints is the string (English); the page renders the message."""
    from bridge.checks import permission_warnings, whmcs_warnings
    from bridge.settings import default_settings
    from bridge.whmcs import ClientGroup

    [lacks] = permission_warnings(["UpdateClient"])
    assert lacks.startswith("the WHMCS API credential lacks permission for UpdateClient "
                            "(write): vipgate cannot move clients in and out of the VIP group")
    assert Texts("pt_BR").reason(lacks).startswith(
        "falta à credencial de API do WHMCS a permissão para UpdateClient (escrita): o vipgate "
        "não consegue pôr e tirar clientes do grupo VIP")
    policy = default_settings().replace(policy={"vip_group_id": 9, "grace_days": 6}).policy
    found = whmcs_warnings(policy, (ClientGroup(1, "VIP", True),), "on", "5")
    assert found == [
        "[policy] vip_group_id = 9: WHMCS has no such client group (groups: 1 VIP)",
        "[policy] grace_days = 6 >= WHMCS's AutoSuspensionDays 5: a client leaves VIP only "
        "after the cron would have suspended it; make grace_days smaller"]
    assert [Texts("pt_BR").reason(w) for w in found] == [
        "[policy] vip_group_id = 9: o WHMCS não tem esse grupo de clientes (grupos: 1 VIP)",
        "[policy] grace_days = 6 >= AutoSuspensionDays 5 do WHMCS: um cliente só sai do VIP "
        "depois de o cron já o ter suspendido; diminua grace_days"]


def test_a_change_written_to_whmcs_reads_in_either_language_with_group_names() -> None:
    from bridge.engine.plan import Change

    group = Change("group", 7, None, "2", "1", ())
    priority = Change("ticket_priority", 7, 40, "Low", "High", ())
    names = WhmcsNames({1: "VIP"})
    assert Texts("pt_BR").reason(group.summary, names) == "grupo #2 -> VIP (#1)"
    assert Texts("pt_BR").reason(priority.summary) == "ticket #40: prioridade Baixa -> Alta"
    assert Texts("en").reason(group.summary, names) == "group #2 -> VIP (#1)"
    assert group.summary.values["after"] == GroupRef(1)


# --- flashes and the audit reasons they leave ------------------------------------------------

FLASH_WORDS = {
    "pt_BR": ["Cliente 7 excluído. Nenhuma API do WHMCS está configurada: o grupo será "
              "corrigido na próxima reconciliação.",
              "O cliente 7 já está como excluído: nada mudou.",
              "Cliente 7 retirado da lista de exclusão. Nenhuma API do WHMCS está configurada: "
              "o grupo será corrigido na próxima reconciliação.",
              "Cliente 7 fixado. Nenhuma API do WHMCS está configurada: o grupo será corrigido "
              "na próxima reconciliação.",
              "Cliente 7 desafixado. Nenhuma API do WHMCS está configurada: o grupo será "
              "corrigido na próxima reconciliação.",
              "Nenhuma API do WHMCS está configurada ([whmcs] url): nada a reconciliar.",
              "Promessa de pagamento até 28/11/2026 salva para o cliente 7. Nenhuma API do "
              "WHMCS está configurada: os tickets dele acompanham na próxima reconciliação.",
              "Promessa de pagamento até 30/11/2026 salva para o cliente 7 (substitui a que ia "
              "até 28/11/2026). Nenhuma API do WHMCS está configurada: os tickets dele "
              "acompanham na próxima reconciliação.",
              "Promessa do cliente 7 cancelada. Nenhuma API do WHMCS está configurada: os "
              "tickets dele acompanham na próxima reconciliação.",
              "O cliente 7 não tem promessa de pagamento.",
              "O cliente 7 está ocupado (um worker está reconciliando-o): tente de novo em "
              "instantes.",
              "Retrato de 21/11/2026 tirado: 1 cliente, inadimplentes: 1."],
    "en": ["Client 7 excluded. No WHMCS API is configured: the group will be fixed at the "
           "next reconcile.",
           "Client 7 is already excluded: nothing changed.",
           "Client 7 taken off the exclusion list. No WHMCS API is configured: the group will "
           "be fixed at the next reconcile.",
           "Client 7 pinned. No WHMCS API is configured: the group will be fixed at the next "
           "reconcile.",
           "Client 7 unpinned. No WHMCS API is configured: the group will be fixed at the next "
           "reconcile.",
           "No WHMCS API is configured ([whmcs] url): nothing to reconcile.",
           "Promise to pay by 2026-11-28 saved for client 7. No WHMCS API is configured: its "
           "tickets will follow at the next reconcile.",
           "Promise to pay by 2026-11-30 saved for client 7 (it replaces the one until "
           "2026-11-28). No WHMCS API is configured: its tickets will follow at the next "
           "reconcile.",
           "Promise of client 7 cancelled. No WHMCS API is configured: its tickets will follow "
           "at the next reconcile.",
           "Client 7 has no promise to pay.",
           "Client 7 is busy (a worker is reconciling it): try again in a moment.",
           "Snapshot of 2026-11-21 taken: 1 delinquent of 1 client."],
}
AUDIT_WORDS = {
    "pt_BR": ["excluído: nunca no VIP (página de administração)",
              "retirado da lista de exclusão: as regras decidem (página de administração)",
              "fixado: no VIP, digam o que disserem as regras, enquanto pagar (página de "
              "administração)",
              "desafixado: as regras de elegibilidade decidem (página de administração)",
              "promessa cancelada: combinado por telefone",
              "entrou a partir de 127.0.0.1",
              "retrato de 21/11/2026 tirado do cache de situações: 1 cliente, "
              "inadimplentes: 1"],
    "en": ["excluded: never in VIP (admin page)",
           "taken off the exclusion list: the rules decide (admin page)",
           "pinned: in VIP whatever the rules say, while paying (admin page)",
           "unpinned: the eligibility rules decide (admin page)",
           "promise cancelled: agreed on the phone",
           "logged in from 127.0.0.1",
           "snapshot of 2026-11-21 taken from the standing cache: 1 client, 1 delinquent"],
}


@pytest.mark.parametrize("language", ["pt_BR", "en"])
def test_the_flashes_after_an_action_and_its_audit_reasons_in_the_accounts_language(
        app: Flask, store: Store, language: str) -> None:
    from tests.test_admin_dashboard import put

    admin = AdminSession(app, language=language)
    note = "combinado por telefone" if language == "pt_BR" else "agreed on the phone"
    shown: list[str] = []

    def send(path: str, data: dict[str, str]) -> None:
        answer = admin.post(path, data)
        assert answer.status_code == 302, answer.get_data(as_text=True)[:500]
        shown.extend(text for _kind, text in flashes(admin.text(answer.headers["Location"])))

    for action in ("exclude", "exclude", "include", "pin", "unpin"):
        send("/admin/clients/7/membership", {"action": action})
    send("/admin/clients/7/reconcile", {})
    today = FIXED_NOW.date()
    for until in (today + timedelta(days=7), today + timedelta(days=9)):
        send("/admin/promises", {"client_id": "7", "until": until.isoformat(), "note": note})
    send("/admin/promises/7/cancel", {})
    send("/admin/promises/7/cancel", {})
    assert queue.acquire_client(store, 7, "worker-1", FIXED_NOW, lease=timedelta(minutes=5))
    send("/admin/clients/7/membership", {"action": "pin"})
    put(store, 1, "overdue", days=4, total="10.00", due="2026-11-17")
    send("/admin/dashboard/snapshot", {})
    other = "en" if language == "pt_BR" else "pt_BR"
    assert [text for text in FLASH_WORDS[language] if text not in shown] == []
    assert [text for text in FLASH_WORDS[other] if text in shown] == []

    audit = html.unescape(admin.text("/admin/audit"))
    assert [text for text in AUDIT_WORDS[language] if text not in audit] == []
    assert [text for text in AUDIT_WORDS[other] if text in audit] == []


def test_the_audit_logs_english_text_is_kept_for_the_csv_and_older_rows(
        app: Flask, store: Store) -> None:
    """The stored reasons are messages whose string is English (the CSV export); a row an
    older version wrote (plain English) is shown as it is."""
    admin = AdminSession(app, language="pt_BR")
    admin.post("/admin/clients/7/membership", {"action": "exclude"})
    store.add_audit([AuditEntry(FIXED_NOW, "bob", "pin", 8, None, "rules", "pinned",
                                ("pinned: in VIP whatever the rules say, while paying "
                                 "(admin page)",))])
    [entry] = store.audit_log(client_id=7, action="exclude")
    assert entry.reasons == ("excluded: never in VIP (admin page)",)
    assert entry.reasons[0].msgid == "excluded: never in VIP (admin page)"  # type: ignore[attr-defined]
    page = admin.text("/admin/audit")
    assert "excluído: nunca no VIP (página de administração)" in page
    assert "pinned: in VIP whatever the rules say, while paying (admin page)" in page
    csv = admin.get("/admin/audit.csv").get_data(as_text=True)
    assert "excluded: never in VIP (admin page)" in csv and "excluído" not in csv


@pytest.mark.parametrize("language", ["pt_BR", "en"])
def test_the_audit_logs_actions_and_values_in_the_accounts_language(
        app: Flask, store: Store, language: str) -> None:
    """Actions and their before/after values read in the reader's language; the stored
    values (the filter's keys, the CSV) stay as they are."""
    store.add_audit([
        AuditEntry(FIXED_NOW, "bob", "pin", 8, None, "rules", "pinned", ()),
        AuditEntry(FIXED_NOW, "staff", "membership", 9, None, "unknown", "excluded", ()),
        AuditEntry(FIXED_NOW, "bob", "promise", 10, None, None, "until 2026-11-28", ()),
        AuditEntry(FIXED_NOW, "vipgate", "ticket_priority", 11, 40, "Medium", "Low", ())])
    admin = AdminSession(app, language=language)
    page = admin.text("/admin/audit")
    _both(page, language, [
        (">Fixar</td>", ">Pin</td>"), ("pelas regras → fixado", "by the rules → pinned"),
        ("participação no VIP", "VIP membership"),
        ("desconhecido → excluído", "unknown → excluded"),
        ("até 28/11/2026", "until 2026-11-28"), ("Média → Baixa", "Medium → Low")])
    assert 'title="ticket_priority"' in page and '<option value="promise">' in page
    csv = admin.get("/admin/audit.csv").get_data(as_text=True)
    assert "until 2026-11-28" in csv and "rules,pinned" in csv


# --- HTTP error pages ------------------------------------------------------------------------

ERRORS = {
    "pt_BR": {"/admin/no-such-page": (404, ["404 · Não encontrado", "Esta página não existe."]),
              "/admin/clients/7/reconcile": (405, ["405 · Método não permitido",
                                                   "a ação de um botão não é uma página"]),
              "/admin/inbox?state=lost": (404, ["A entrada não tem o estado 'lost'"])},
    "en": {"/admin/no-such-page": (404, ["404 · Not Found", "There is no such page."]),
           "/admin/clients/7/reconcile": (405, ["405 · Method Not Allowed",
                                                "a button's action is not a page"]),
           "/admin/inbox?state=lost": (404, ["No inbox state 'lost'"])},
}
WERKZEUG = ["The requested URL was not found", "The method is not allowed",
            "Internal Server Error", "The server encountered an internal error"]


@pytest.mark.parametrize("language", ["pt_BR", "en"])
def test_the_error_pages_in_the_accounts_language(app: Flask, language: str) -> None:
    from bridge.admin import admin_error_page

    admin = AdminSession(app, language=language)
    other = "en" if language == "pt_BR" else "pt_BR"
    for path, (status, shown) in ERRORS[language].items():
        answer = admin.get(path)
        page = html.unescape(answer.get_data(as_text=True))
        assert answer.status_code == status
        assert [text for text in shown if text not in page] == [], path
        assert [text for text in ERRORS[other][path][1] + WERKZEUG if text in page] == [], path
    with app.test_request_context("/admin/"):
        g.admin = admin.name
        forbidden, code = admin_error_page(Forbidden())
        assert code == 403
        broken, code = admin_error_page(InternalServerError())
        assert code == 500
    expected = {"pt_BR": ("403 · Proibido", "500 · Erro interno do servidor"),
                "en": ("403 · Forbidden", "500 · Internal Server Error")}[language]
    assert expected[0] in forbidden and expected[1] in broken
    assert "The server encountered an internal error" not in broken


def test_a_refused_form_says_why_in_the_accounts_language(app: Flask) -> None:
    answer = AdminSession(app, language="pt_BR").client.post("/admin/dashboard/snapshot",
                                                             data={})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400
    assert "Falta o token CSRF." in page and "The CSRF token is missing" not in page


def test_the_webhook_apis_errors_stay_english_json(app: Flask) -> None:
    AdminSession(app, language="pt_BR")
    answer = app.test_client().get("/hooks/no-such-hook")
    assert answer.status_code == 404 and answer.is_json
    assert answer.get_json()["message"].startswith("The requested URL was not found")
