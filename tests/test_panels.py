"""vipgate's panels inside WHMCS: what each shows (pure rendering) and how the bridge answers
the page hooks (signed, from its own tables, in the right language)."""

from __future__ import annotations

import html
import re
import time
from datetime import date, datetime
from decimal import Decimal

import pytest
from standardwebhooks import Webhook

from bridge.model import (
    AuditEntry,
    CachedStanding,
    ClientMemory,
    OverdueInvoice,
    TicketMemory,
    WhmcsNames,
)
from bridge.panels import client_language
from bridge.panels.view import (
    EpisodeFacts,
    PanelFacts,
    client_summary,
    headline,
    home_banner,
    submit_ticket,
    ticket_badge,
)
from bridge.policy import episodes as ep
from bridge.settings import default_settings
from bridge.signing import verify
from bridge.web.app import create_app
from tests.helpers import FIXED_NOW, OTHER_SECRET, SECRET, envelope, post_signed

HOSTILE = '<script>alert("x")</script>&\'"'
TODAY = date(2026, 11, 21)
TICKETS = default_settings().replace(tickets={"billing_departments": "2,5"}).tickets
PANELS = default_settings().panels


def standing(kind: str = "suspended", *, billing: str | None = None, days: int = 12,
             number: str = "1042", prefix: str = "R$ ", language: str | None = None,
             in_vip: bool | None = False, eligible: bool | None = True,
             reasons: tuple[str, ...] = ("invoice #1042 overdue 12 days", "standing suspended"),
             vip_reasons: tuple[str, ...] = ("eligible by rule",)) -> CachedStanding:
    invoices = () if kind == "current" and billing in (None, "current") else (
        OverdueInvoice(1042, number, Decimal("89.90"), "2026-11-09"),
        OverdueInvoice(1043, "1043", Decimal("99.90"), "2026-11-09"))
    total = sum((i.balance for i in invoices), Decimal("0"))
    return CachedStanding(7, kind, days if invoices else 0, total, invoices, prefix, "",
                          language, FIXED_NOW.replace(tzinfo=None), billing or kind, 1, in_vip,
                          eligible, reasons, vip_reasons)


def text_of(markup: str) -> str:
    """What a reader sees: tags dropped, entities decoded, spaces collapsed."""
    spaced = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())
    return re.sub(r" ([:;,.])", r"\1", spaced)


# --- what each panel shows ---------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "language", "expected"), [
    ("current", "en", "Current"),
    ("overdue", "en", "Overdue · 12 days"),
    ("suspended", "pt_BR", "Suspenso · 12 dias"),
    ("overdue", "pt_BR", "Em atraso · 12 dias"),
])
def test_headline(kind: str, language: str, expected: str) -> None:
    assert headline(standing(kind), language) == expected


def test_headline_shows_what_is_owed_even_under_a_promise() -> None:
    # a promise makes the ticket standing current; staff still see the debt
    assert headline(standing("current", billing="overdue"), "en") == "Overdue · 12 days"


def test_client_summary_has_standing_vip_invoices_promise_reasons_changes_and_link() -> None:
    facts = PanelFacts(7, standing("overdue", in_vip=False, eligible=True),
                       ClientMemory(7, pinned=True, known=True),
                       (date(2026, 11, 30), "pays on the 30th"),
                       [AuditEntry(datetime(2026, 11, 20, 9), "vipgate", "group", 7, None, "4",
                                   "1", ("standing overdue",))],
                       names=WhmcsNames({1: "VIP"}))  # group 4: a name vipgate has not read
    shown = text_of(client_summary(facts, language="en", today=TODAY,
                                   whmcs_url="https://billing.example.com",
                                   admin_link="https://vipgate.example.com/admin/clients/7"))
    for part in ("Standing: Overdue · 12 days",
                 "VIP: out of the VIP group until paid (eligible); pinned by staff",
                 "Overdue invoices: 2 invoices · R$ 189.80",
                 "#1042 · R$ 89.90 · due 2026-11-09",
                 "Promise to pay until 2026-11-30: pays on the 30th",
                 "Why this standing: invoice #1042 overdue 12 days standing suspended",
                 "Why this VIP decision: eligible by rule",
                 "Last changes: 2026-11-20 VIP group: #4 → VIP (#1) (vipgate)",
                 "Open in vipgate"):
        assert part in shown, part
    markup = client_summary(facts, language="en", today=TODAY, whmcs_url="https://b.example",
                            admin_link="https://vipgate.example.com/admin/clients/7")
    assert 'href="https://b.example/viewinvoice.php?id=1042"' in markup
    assert 'href="https://vipgate.example.com/admin/clients/7"' in markup


@pytest.mark.parametrize(("by", "language", "expected"), [
    ("alice", "en", "VIP: in the VIP group; pinned by staff; kept in VIP by alice since "
                    "2026-11-20 while owing, until paid up"),
    (None, "pt_BR", "VIP: no grupo VIP; fixado pela equipe; mantido no VIP pela equipe desde "
                    "20/11/2026 com débito, até quitar"),
])
def test_client_summary_shows_a_staff_hold_with_who_and_since_when(
        by: str | None, language: str, expected: str) -> None:
    held = ClientMemory(7, pinned=True, known=True, held_since=datetime(2026, 11, 20, 9),
                        held_by=by)
    facts = PanelFacts(7, standing("overdue", in_vip=True, eligible=True), held, None, [])
    shown = text_of(client_summary(facts, language=language, today=TODAY, whmcs_url="",
                                   admin_link=""))
    assert expected in shown


def test_client_summary_in_portuguese_and_without_a_past_promise_or_link() -> None:
    facts = PanelFacts(7, standing("suspended"), None, (date(2026, 11, 20), "old"), [])
    shown = text_of(client_summary(facts, language="pt_BR", today=TODAY, whmcs_url="",
                                   admin_link=""))
    assert "Situação: Suspenso · 12 dias" in shown
    assert "Faturas vencidas: 2 faturas · R$ 189,80" in shown
    assert "#1042 · R$ 89,90 · venceu em 09/11/2026" in shown
    assert "Últimas mudanças: nenhuma ainda" in shown
    assert "Promessa" not in shown  # expired yesterday
    assert "Abrir no vipgate" not in shown


def test_client_summary_shows_the_engines_reasons_in_the_panels_language() -> None:
    """The reasons the policy gave, in Portuguese: money with Brazilian digits, the groups by
    their WHMCS names, and no English word left (setting names aside, none in these)."""
    from bridge.policy.standing import standing as policy_standing
    from bridge.policy.state import Membership
    from bridge.policy.vip import vip_decision
    from tests.test_policy_standing import client, inv, policy

    owing = client(inv(1042, days=5, total="1200.00"), group_id=5)
    settings = policy(vip_group_id=5, default_group_id=2)
    now = policy_standing(owing, settings, TODAY)
    decision = vip_decision(owing, Membership(pinned=True), now, settings, TODAY)
    cached = standing("overdue", reasons=now.reasons, vip_reasons=decision.reasons)
    names = WhmcsNames({5: "VIP Ouro", 2: "Clientes"})
    lines = {}
    for language in ("pt_BR", "en"):
        markup = client_summary(PanelFacts(7, cached, None, None, [], names=names),
                                language=language, today=TODAY, whmcs_url="", admin_link="")
        lists = re.findall(r'<ul class="vipgate-reasons">(.*?)</ul>', markup, re.S)
        lines[language] = [text_of(item) for found in lists
                           for item in re.findall(r"<li>(.*?)</li>", found, re.S)]
    assert lines["pt_BR"] == [
        "fatura #1042 R$ 1.200,00 vencida há 5 dias > carência 3",
        "situação em atraso",
        "elegível: fixado pela equipe",
        "situação em atraso: fatura #1042 R$ 1.200,00 vencida há 5 dias > carência 3",
        "fora do VIP: sai do VIP para o grupo Clientes (#2)"]
    english = {"invoice", "overdue", "days", "grace", "standing", "eligible", "pinned", "by",
               "staff", "not", "in", "leaves", "for", "group"}
    assert [w for line in lines["pt_BR"] for w in re.findall(r"[a-z]+", line)
            if w in english] == []
    assert lines["en"] == [
        "invoice #1042 R$ 1,200.00 overdue 5 days > grace 3",
        "standing overdue",
        "eligible: pinned by staff",
        "standing overdue: invoice #1042 R$ 1,200.00 overdue 5 days > grace 3",
        "not in VIP: leaves VIP for group Clientes (#2)"]


@pytest.mark.parametrize(("entry", "language", "expected"), [
    (AuditEntry(datetime(2026, 11, 20, 9), "vipgate", "ticket_priority", 7, 9, "High", "Low",
                ()), "pt_BR", "20/11/2026 prioridade do ticket #9: Alta → Baixa (vipgate)"),
    (AuditEntry(datetime(2026, 11, 20, 9), "alice", "membership", 7, None, "rules",
                "pinned+held", ()), "pt_BR",
     "20/11/2026 participação no VIP: pelas regras → fixado+mantido (alice)"),
    (AuditEntry(datetime(2026, 11, 20, 9), "alice", "membership", 7, None, "rules",
                "pinned+held", ()), "en",
     "2026-11-20 VIP membership: by the rules → pinned+held (alice)"),
    (AuditEntry(datetime(2026, 11, 20, 9), "vipgate", "some_new_action", 7, None, None, "x",
                ()), "pt_BR", "20/11/2026 some new action: - → x (vipgate)"),
])
def test_last_changes_read_in_one_language(entry: AuditEntry, language: str,
                                           expected: str) -> None:
    """The actions, priorities and membership flags of the last changes are translated; an
    action the panel has no name for keeps vipgate's own."""
    facts = PanelFacts(7, standing("overdue"), None, None, [entry])
    shown = text_of(client_summary(facts, language=language, today=TODAY, whmcs_url="",
                                   admin_link=""))
    assert expected in shown


def test_client_summary_for_a_client_vipgate_has_not_seen() -> None:
    shown = text_of(client_summary(PanelFacts(7, None), language="en", today=TODAY,
                                   whmcs_url="", admin_link="https://v.example/admin/clients/7"))
    assert "vipgate has not evaluated this client yet." in shown and "Open in vipgate" in shown


@pytest.mark.parametrize(("ticket", "language", "expected"), [
    (TicketMemory(9, 7, "High", "Low"), "en",
     "vipgate · Overdue · 12 days · R$ 189.80 · 2 invoices · priority lowered by vipgate "
     "(was High)"),
    (TicketMemory(9, 7, "High", "Low"), "pt_BR",
     "vipgate · Em atraso · 12 dias · R$ 189,80 · 2 faturas · prioridade reduzida pelo "
     "vipgate (era Alta)"),
    (TicketMemory(9, 7, "Low", "High"), "en",
     "vipgate · Overdue · 12 days · R$ 189.80 · 2 invoices · priority raised by vipgate "
     "(was Low)"),
    (None, "en", "vipgate · Overdue · 12 days · R$ 189.80 · 2 invoices"),
    (TicketMemory(9, 7, note_key="ids:1042"), "en",
     "vipgate · Overdue · 12 days · R$ 189.80 · 2 invoices"),
])
def test_ticket_badge_line(ticket: TicketMemory | None, language: str, expected: str) -> None:
    badge = ticket_badge(PanelFacts(7, standing("overdue"), ticket=ticket), language=language)
    assert text_of(badge) == expected
    assert "alert-warning" in badge


def test_ticket_badge_of_a_current_vip_client_and_of_an_unknown_one() -> None:
    badge = ticket_badge(PanelFacts(7, standing("current", in_vip=True)), language="en")
    assert text_of(badge) == "vipgate · Current · VIP" and "alert-success" in badge
    assert ticket_badge(PanelFacts(0, None), language="en") == ""


def test_submit_ticket_leaves_only_billing_departments_for_a_blocked_client() -> None:
    answer = submit_ticket(PanelFacts(7, standing("suspended")), TICKETS, language="en",
                           whmcs_url="https://billing.example.com")
    assert answer.departments == (2, 5)
    shown = text_of(answer.html)
    assert "Only the billing department is open to you now" in shown
    assert "#1042, #1043" in shown and "R$ 189.80" in shown
    assert "Pay invoice #1042 · R$ 89.90" in shown
    link = "https://billing.example.com/viewinvoice.php?id=1042"
    assert f'<a href="{link}">{link}</a>' in answer.html  # the message's link is clickable
    assert 'href="viewinvoice.php?id=1043"' in answer.html  # same WHMCS: relative


@pytest.mark.parametrize("facts", [
    PanelFacts(7, standing("current")),
    PanelFacts(7, standing("overdue")),  # block_when = suspended (the default)
    PanelFacts(7, None),
])
def test_submit_ticket_leaves_the_page_alone_for_others(facts: PanelFacts) -> None:
    answer = submit_ticket(facts, TICKETS, language="en", whmcs_url="")
    assert (answer.html, answer.departments) == ("", None)


def test_home_banner_for_overdue_and_suspended_clients_only() -> None:
    banner = home_banner(PanelFacts(7, standing("overdue")), PANELS, language="pt_BR")
    assert "Você tem 2 faturas em atraso, R$ 189,80 no total." in text_of(banner)
    assert 'href="viewinvoice.php?id=1042"' in banner and "alert-warning" in banner
    suspended = home_banner(PanelFacts(7, standing("suspended")), PANELS, language="en")
    assert text_of(suspended).startswith("Your services are suspended: 2 invoices overdue")
    assert home_banner(PanelFacts(7, standing("current")), PANELS, language="en") == ""
    off = default_settings().replace(panels={"home_banner": "off"}).panels
    assert home_banner(PanelFacts(7, standing("overdue")), off, language="en") == ""


def test_hostile_values_are_escaped_in_every_panel() -> None:
    hostile = standing("suspended", number=HOSTILE, prefix=HOSTILE, reasons=(HOSTILE,),
                       vip_reasons=(HOSTILE,))
    facts = PanelFacts(7, hostile, ClientMemory(7), (date(2026, 12, 1), HOSTILE),
                       [AuditEntry(FIXED_NOW, HOSTILE, HOSTILE, 7, 3, HOSTILE, HOSTILE, ())],
                       TicketMemory(3, 7, HOSTILE, "Low"),
                       episode=EpisodeFacts(1, TODAY, None, HOSTILE, HOSTILE))
    message = default_settings().replace(tickets={
        "billing_departments": "2", "block_message_en": HOSTILE + " {invoices} {link}"}).tickets
    rendered = [
        client_summary(facts, language="en", today=TODAY, whmcs_url="https://b.example",
                       admin_link="https://v.example/admin/clients/7"),
        ticket_badge(facts, language="en"),
        submit_ticket(facts, message, language="en", whmcs_url="https://b.example").html,
        home_banner(facts, PANELS, language="en"),
    ]
    for markup in rendered:
        assert markup
        assert "<script" not in markup and 'alert("x")' not in markup
        assert "&lt;script&gt;" in markup


@pytest.mark.parametrize(("page", "client", "expected"), [
    ("english", "portuguese-br", "en"),
    ("portuguese-pt", None, "pt_BR"),
    (None, "english", "en"),
    ("spanish", "english", "en"),  # not one of ours: the client's own
    ("spanish", None, "pt_BR"),  # then [bridge] language
    ("", "", "pt_BR"),
])
def test_client_language(page: str | None, client: str | None, expected: str) -> None:
    assert client_language(page, client, "pt_BR") == expected


# --- the bridge's answers ------------------------------------------------------------------------


@pytest.fixture
def panel_client(settings, store, clock):
    tuned = settings.replace(tickets={"billing_departments": "2"},
                             bridge={"language": "en", "public_url": "https://vip.example.com"},
                             webhook={"secrets": f"{SECRET},{OTHER_SECRET}"})
    return create_app(tuned, store=store, clock=clock).test_client()


def ask(client, hook: str, variables: dict, *, secret: str = SECRET):
    response = post_signed(client, envelope(hook, variables), secret=secret, msg_id="msg_page1")
    assert response.status_code == 200, response.json
    return response


def test_answers_are_signed_for_the_request_with_the_secret_that_verified_it(
        panel_client, store) -> None:
    store.put_standing(standing("suspended"))
    for secret in (SECRET, OTHER_SECRET):
        response = ask(panel_client, "AdminAreaClientSummaryPage", {"userid": "7"},
                       secret=secret)
        assert response.headers["webhook-id"] == "msg_page1"
        headers = {k.lower(): v for k, v in response.headers.items()}
        # the standardwebhooks package agrees (it checks the timestamp against the wall clock,
        # so the fixed test clock is checked with our own verify)
        verify([secret], headers, response.data, FIXED_NOW.timestamp(), 300)
        other = OTHER_SECRET if secret == SECRET else SECRET
        with pytest.raises(Exception, match="does not match"):
            verify([other], headers, response.data, FIXED_NOW.timestamp(), 300)
        assert "Suspended · 12 days" in text_of(response.json["html"])
    assert store.events() == []  # questions, not events


def test_gate_answers_are_signed_too(panel_client) -> None:
    response = ask(panel_client, "TicketOpenValidation", {"departmentId": "1"})
    headers = {k.lower(): v for k, v in response.headers.items()}
    verify([SECRET], headers, response.data, FIXED_NOW.timestamp(), 300)


def test_standardwebhooks_verifies_an_answer_signed_now(settings, store) -> None:
    client = create_app(settings, store=store).test_client()  # wall clock
    store.put_standing(standing("overdue"))
    response = post_signed(client, envelope("AdminAreaViewTicketPage", {"ticketid": 9,
                                                                          "userid": 7}),
                           timestamp=int(time.time()))
    headers = {k.lower(): v for k, v in response.headers.items()}
    assert Webhook(SECRET).verify(response.data, headers) == response.json


def test_client_summary_answer_links_to_the_admin_page(panel_client, store) -> None:
    store.put_standing(standing("suspended"))
    markup = ask(panel_client, "AdminAreaClientSummaryPage", {"userid": 7}).json["html"]
    assert 'href="https://vip.example.com/admin/clients/7"' in markup
    shown = text_of(markup)
    assert "Why this standing: invoice #1042 overdue 12 days" in shown


@pytest.mark.parametrize(("episode", "language", "expected"), [
    (EpisodeFacts(3, date(2026, 11, 9), None, None), "en",
     "Delinquency episode open since 2026-11-09 · Reason: reason not tagged yet · Tag the "
     "reason in vipgate"),
    (EpisodeFacts(3, date(2026, 11, 9), None, "boleto"), "pt_BR",
     "Episódio de inadimplência aberto desde 09/11/2026 · Motivo: esqueceu ou perdeu o boleto "
     "· Trocar o motivo no vipgate"),
    (EpisodeFacts(3, date(2026, 10, 1), date(2026, 10, 9), "other", "moved abroad"), "en",
     "Last delinquency episode: 2026-10-01 to 2026-10-09 · Reason: other (moved abroad) · "
     "Change the reason in vipgate"),
    (EpisodeFacts(3, date(2026, 10, 1), date(2026, 10, 9), "financial"), "pt_BR",
     "Último episódio de inadimplência: 01/10/2026 a 09/10/2026 · Motivo: dificuldade "
     "financeira · Trocar o motivo no vipgate"),
])
def test_client_summary_shows_the_episode_s_reason_with_a_link_to_tag_it(
        episode: EpisodeFacts, language: str, expected: str) -> None:
    link = "https://v.example/admin/clients/7"
    for standing_ in (standing("overdue"), None):  # also for a client not evaluated yet
        markup = client_summary(PanelFacts(7, standing_, episode=episode), language=language,
                                today=TODAY, whmcs_url="", admin_link=link)
        assert expected in text_of(markup)
        assert f'href="{link}#episodes"' in markup
    no_link = text_of(client_summary(PanelFacts(7, standing("overdue"), episode=episode),
                                     language=language, today=TODAY, whmcs_url="",
                                     admin_link=""))
    assert expected.rsplit(" · ", 1)[0] in no_link and "vipgate #" not in no_link
    assert "in vipgate" not in no_link and "no vipgate" not in no_link
    without = text_of(client_summary(PanelFacts(7, standing("overdue")), language=language,
                                     today=TODAY, whmcs_url="", admin_link=link))
    assert "Reason:" not in without and "Motivo:" not in without


def test_client_summary_answer_shows_the_reason_staff_tagged(panel_client, store) -> None:
    store.put_standing(standing("suspended"))
    opened = ep.Opening(FIXED_NOW, date(2026, 11, 9), Decimal("89.90"), "R$ ", "",
                        {1042: Decimal("89.90")})
    store.record(7, [], ep.EpisodeStep(opening=opened), FIXED_NOW)
    asked = text_of(ask(panel_client, "AdminAreaClientSummaryPage", {"userid": 7}).json["html"])
    assert "Delinquency episode open since 2026-11-09 · Reason: reason not tagged yet" in asked
    [episode] = store.episodes(7)
    store.tag_reason(7, episode.id, ep.check_reason("dispute", "charged twice"), "maria",
                     FIXED_NOW)
    markup = ask(panel_client, "AdminAreaClientSummaryPage", {"userid": 7}).json["html"]
    assert "Reason: dispute (charged twice) · Change the reason in vipgate" in text_of(markup)
    assert 'href="https://vip.example.com/admin/clients/7#episodes"' in markup
    assert "episode reason tagged: - → dispute (maria)" in text_of(markup)  # last changes


def test_ticket_badge_finds_the_client_from_the_ticket_record(panel_client, store) -> None:
    store.put_standing(standing("overdue"))
    store.save_ticket_memory(TicketMemory(9, 7, "High", "Low"), FIXED_NOW)
    answer = ask(panel_client, "AdminAreaViewTicketPage", {"ticketid": "9", "userid": "0"})
    assert "priority lowered by vipgate (was High)" in text_of(answer.json["html"])
    unknown = ask(panel_client, "AdminAreaViewTicketPage", {"ticketid": "10"})
    assert unknown.json == {"html": ""}


@pytest.mark.parametrize(("variables", "client_language_", "expected_title"), [
    ({"userid": 7, "language": "portuguese-br"}, None, "só o departamento financeiro"),
    ({"userid": 7, "language": "english"}, "portuguese-br", "Only the billing department"),
    ({"userid": 7}, "portuguese-br", "só o departamento financeiro"),
    ({"userid": 7}, None, "Only the billing department"),  # [bridge] language = en
])
def test_submit_ticket_answer_in_the_clients_language(
        panel_client, store, variables, client_language_, expected_title) -> None:
    store.put_standing(standing("suspended", language=client_language_))
    body = ask(panel_client, "ClientAreaPageSubmitTicket", variables).json
    assert body["departments"] == [2]
    assert expected_title in text_of(body["html"])


def test_pages_of_nobody_in_particular_are_left_alone(panel_client, store) -> None:
    store.put_standing(standing("suspended"))
    assert ask(panel_client, "ClientAreaPageSubmitTicket", {"userid": 0}).json == {
        "html": "", "departments": None}
    assert ask(panel_client, "ClientAreaHomepage", {"language": "english"}).json == {"html": ""}
    assert ask(panel_client, "ClientAreaHomepage", {"userid": 8}).json == {"html": ""}


def test_home_banner_follows_the_setting_saved_on_the_admin_page(panel_client, store) -> None:
    from bridge import overrides

    store.put_standing(standing("overdue"))
    assert "2 invoices overdue" in text_of(
        ask(panel_client, "ClientAreaHomepage", {"userid": 7}).json["html"])
    live = panel_client.application.extensions["vipgate"].live
    changes, errors = overrides.save(store, live.base, {("panels", "home_banner"): "off"},
                                     actor="ana", now=FIXED_NOW)
    assert errors == {} and len(changes) == 1
    live.reload()  # what the next look (at most 2 s later) does
    assert ask(panel_client, "ClientAreaHomepage", {"userid": 7}).json == {"html": ""}


@pytest.mark.parametrize(("hook", "variables", "field"), [
    ("AdminAreaClientSummaryPage", {}, "vars.userid"),
    ("AdminAreaClientSummaryPage", {"userid": "x"}, "vars.userid"),
    ("AdminAreaViewTicketPage", {"userid": 3}, "vars.ticketid"),
    ("ClientAreaPageSubmitTicket", {"userid": "x"}, "vars.userid"),
    ("ClientAreaHomepage", {"language": "x" * 65}, "vars.language"),
])
def test_bad_page_questions_are_rejected_naming_the_field(panel_client, store, hook, variables,
                                                          field) -> None:
    response = post_signed(panel_client, envelope(hook, variables))
    assert response.status_code == 400
    assert field in response.json["fields"]
    assert store.events() == []
