"""The admin page's language: the account's choice (saved in vipgate's database), else
``[bridge] language``; money, numbers and dates formatted for it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask

from bridge.model import ClientMemory
from bridge.store import Store
from tests.admin_helpers import ADMIN, AdminSession, csrf_token
from tests.helpers import FIXED_NOW
from tests.test_admin_dashboard import put, snap

TODAY = FIXED_NOW.date()


def _dashboard_figures(store: Store) -> None:
    put(store, 1, "overdue", days=4, total="1234.56", due="2026-11-17")
    put(store, 2, "current")
    snap(store, TODAY - timedelta(days=1))
    put(store, 2, "suspended", days=40, total="1000.00", due="2026-10-12")
    snap(store, TODAY)


@pytest.mark.parametrize(("language", "shown", "absent"), [
    ("pt_BR", ['<html lang="pt-BR">', "<h1>Painel de inadimplência</h1>",
               "Hoje: 21/11/2026", "Atualizado às 12:00 (fuso horário do WHMCS)",
               "R$ 2.234,56",  # the overdue amount of the two clients
               "+R$ 1.000,00 em relação a 20/11/2026", "1 em atraso, 1 suspensos",
               ">Visão geral</a>", ">Sair</button>"],
     ["Delinquent clients", "2,234.56"]),
    ("en", ['<html lang="en">', "<h1>Delinquency dashboard</h1>",
            "Today: 2026-11-21", "Updated 12:00 (WHMCS time zone)", "R$ 2,234.56",
            "+R$ 1,000.00 vs 2026-11-20",
            "1 overdue, 1 suspended", ">Overview</a>", ">Log out</button>"],
     ["Painel de inadimplência", "2.234,56"]),
])
def test_the_dashboard_speaks_the_accounts_language_with_its_money_and_dates(
        app: Flask, store: Store, language: str, shown: list[str], absent: list[str]) -> None:
    _dashboard_figures(store)
    html = AdminSession(app, language=language).text("/admin/dashboard")
    assert [text for text in shown if text not in html] == []
    assert [text for text in absent if text in html] == []


def test_an_account_without_a_choice_reads_the_configured_language(
        settings, store: Store, clock) -> None:
    from bridge.web.app import create_app

    for language, heading in (("pt_BR", "Painel de inadimplência"),
                              ("en", "Delinquency dashboard")):
        app = create_app(settings.replace(bridge={"language": language}), store=store,
                         clock=clock)
        assert f"<h1>{heading}</h1>" in AdminSession(app, language=None).text(
            "/admin/dashboard")


def test_the_login_page_is_in_the_configured_language(settings, store: Store, clock) -> None:
    from bridge.web.app import create_app

    app = create_app(settings, store=store, clock=clock)  # [bridge] language: pt_BR
    html = app.test_client().get("/admin/login").get_data(as_text=True)
    assert "Entrar no vipgate" in html and ">Conta<" in html and ">Senha<" in html


def test_an_account_changes_its_language_and_back_to_the_configured_one(
        app: Flask, store: Store) -> None:
    admin = AdminSession(app, language=None)  # [bridge] language: pt_BR
    assert "<h1>Painel de inadimplência</h1>" in admin.text("/admin/dashboard")
    answer = admin.post("/admin/language", {"language": "en", "next": "/admin/dashboard"})
    assert answer.status_code == 302 and answer.headers["Location"] == "/admin/dashboard"
    assert store.admin_language(ADMIN) == "en"
    assert "<h1>Delinquency dashboard</h1>" in admin.text("/admin/dashboard")
    admin.post("/admin/language", {"language": ""})
    assert store.admin_language(ADMIN) is None
    assert "<h1>Painel de inadimplência</h1>" in admin.text("/admin/dashboard")


@pytest.mark.parametrize("value", ["fr", "pt-BR", "en; drop table"])
def test_an_unknown_language_is_refused_with_the_languages_there_are(
        app: Flask, store: Store, value: str) -> None:
    admin = AdminSession(app, language="en")
    answer = admin.post("/admin/language", {"language": value})
    assert answer.status_code == 302
    assert store.admin_language(ADMIN) == "en"
    html = admin.text("/admin/")
    assert "Unknown language: choose one of pt_BR, en." in html


def test_the_language_form_needs_its_csrf_token(app: Flask, store: Store) -> None:
    admin = AdminSession(app, language="en")
    answer = admin.client.post("/admin/language", data={"language": "pt_BR"})
    assert answer.status_code == 400
    assert store.admin_language(ADMIN) == "en"
    assert csrf_token(admin.text("/admin/"))


def test_the_overview_in_both_languages(app: Flask, store: Store) -> None:
    pt = AdminSession(app, language="pt_BR").text("/admin/")
    assert "<h1>Visão geral</h1>" in pt and ">Avisos</h2>" in pt
    assert "API do WHMCS" in pt and "nenhuma mensagem morta" in pt and ">na fila</a>" in pt
    assert "Última reconciliação completa" in pt and "<p>nunca</p>" in pt
    assert "Last full reconcile" not in pt and "no dead letters" not in pt
    en = AdminSession(app, name="bob", language="en").text("/admin/")
    assert "<h1>Overview</h1>" in en and "no dead letters" in en and "<p>never</p>" in en


def test_the_vip_roster_in_both_languages(app: Flask, store: Store) -> None:
    put(store, 1, "overdue", days=12, total="1234.56", due="2026-11-09")
    store.save_memory(ClientMemory(1, known=True, last_group_id=0), FIXED_NOW)
    pt = AdminSession(app, language="pt_BR").text("/admin/roster?tab=all")
    assert "<h1>Lista VIP</h1>" in pt and "Todos conhecidos" in pt
    assert "R$ 1.234,56 · 12 dias" in pt and ">em atraso</span>" in pt
    assert ">Fixar</button>" in pt and ">Excluir</button>" in pt
    en = AdminSession(app, name="bob", language="en").text("/admin/roster?tab=all")
    assert "R$ 1,234.56 · 12 days" in en and ">overdue</span>" in en and ">Pin</button>" in en


def test_the_promises_page_and_its_form_errors_in_both_languages(app: Flask) -> None:
    pt = AdminSession(app, language="pt_BR")
    html = pt.text("/admin/promises")
    assert "<h1>Promessas de pagamento</h1>" in html and "Hoje é 21/11/2026." in html
    answer = pt.post("/admin/promises", {"client_id": "0", "until": "2026-11-01", "note": ""})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 400
    assert "O id de um cliente é um número inteiro a partir de 1." in html
    assert "A data já passou: hoje é 21/11/2026." in html
    assert "Escreva o que foi combinado (fica na auditoria)." in html
    en = AdminSession(app, name="bob", language="en")
    answer = en.post("/admin/promises", {"client_id": "0", "until": "2026-11-01", "note": ""})
    html = answer.get_data(as_text=True)
    assert "A client id is a whole number from 1." in html
    assert "The date is in the past: today is 2026-11-21." in html


def test_the_client_lookup_in_both_languages(app: Flask, store: Store) -> None:
    put(store, 7, "overdue", days=12, total="10.00", due="2026-11-09")
    store.save_memory(ClientMemory(7, known=True, last_group_id=3), FIXED_NOW)
    pt = AdminSession(app, language="pt_BR")
    html = pt.text("/admin/clients?q=Ana")  # no [whmcs] url: a name cannot be searched
    assert "<h1>Busca de clientes</h1>" in html
    assert "Buscar por nome ou e-mail precisa da API do WHMCS ([whmcs] url)." in html
    html = pt.text("/admin/roster?tab=all")
    assert "<td>grupo 3" in html
    en = AdminSession(app, name="bob", language="en").text("/admin/roster?tab=all")
    assert "<td>group 3" in en


@pytest.mark.parametrize(("language", "shown"), [
    ("pt_BR", ["<h1>Entrada</h1>", "Em processamento", "Nenhum evento em processamento."]),
    ("en", ["<h1>Inbox</h1>", "Processing", "No processing events."]),
])
def test_the_inbox_in_both_languages(app: Flask, language: str, shown: list[str]) -> None:
    html = AdminSession(app, language=language).text("/admin/inbox?state=processing")
    assert [text for text in shown if text not in html] == []


def test_the_audit_log_in_both_languages_with_plural_entries(app: Flask, store: Store) -> None:
    from bridge.model import AuditEntry

    store.add_audit([AuditEntry(FIXED_NOW, "vipgate", "group", 7, None, "4", "1", ("why",))])
    pt = AdminSession(app, language="pt_BR")
    html = pt.text("/admin/audit")
    assert "<h1>Auditoria</h1>" in html
    assert "2 registros, mais novos primeiro" in html  # the group change and alice's login
    html = pt.text("/admin/audit?client_id=7")
    assert "1 registro, mais novos primeiro" in html
    answer = pt.get("/admin/audit?client_id=x")
    assert "O id de um cliente é um número inteiro acima de 0" in answer.get_data(as_text=True)
    en = AdminSession(app, name="bob", language="en").text("/admin/audit?client_id=7")
    assert "1 entry, newest first" in en


@pytest.mark.parametrize(("language", "shown"), [
    ("pt_BR", ["<h1>Cliente #7</h1>", ">em atraso</span>", "(em cache)", "Decisão de VIP",
               "Tickets abertos", "Reconciliar agora", "Grupo de origem:",
               "Registrar uma promessa na página de promessas"]),
    ("en", ["<h1>Client #7</h1>", ">overdue</span>", "(cached)", "VIP decision",
            "Open tickets", "Reconcile now", "Home group:",
            "Register a promise on the promises page"]),
])
def test_the_client_page_in_both_languages(app: Flask, store: Store, language: str,
                                           shown: list[str]) -> None:
    put(store, 7, "overdue", days=12, total="10.00", due="2026-11-09")
    html = AdminSession(app, language=language).text("/admin/clients/7")
    assert [text for text in shown if text not in html] == []


@pytest.mark.parametrize(("language", "shown"), [
    ("pt_BR", ["<h1>Configurações</h1>", "Salvar mudanças", "Prévia das mensagens",
               "Nenhuma configuração foi mudada nesta página ainda"]),
    ("en", ["<h1>Settings</h1>", "Save changes", "Preview messages",
            "No setting was changed on this page yet"]),
])
def test_the_settings_page_frame_in_both_languages(app: Flask, language: str,
                                                   shown: list[str]) -> None:
    """The page's own words; the settings' labels and help are still English."""
    html = AdminSession(app, language=language).text("/admin/settings")
    assert [text for text in shown if text not in html] == []


def test_a_form_without_its_token_is_refused_in_the_accounts_language(app: Flask) -> None:
    admin = AdminSession(app, language="pt_BR")
    answer = admin.client.post("/admin/dashboard/snapshot", data={})
    assert answer.status_code == 400
    assert "Formulário expirado ou forjado" in answer.get_data(as_text=True)
