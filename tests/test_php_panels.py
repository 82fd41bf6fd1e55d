"""The stub's page hooks, run by the real ``php`` against a running bridge: what WHMCS's
client summary, ticket view, submit-ticket page and client-area home get back, that they get
nothing (quickly) when the bridge is down or slow, and nothing when an answer is not signed by
the bridge for that very request."""

from __future__ import annotations

import html
import json
import re
import sqlite3
import time
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from bridge.model import CachedStanding, OverdueInvoice, TicketMemory
from bridge.policy import episodes as ep
from bridge.settings import Settings, default_settings
from bridge.signing import signed_headers
from tests.conftest import LiveBridge
from tests.helpers import FIXED_NOW, OTHER_SECRET, SECRET
from tests.php_helpers import Captured, CaptureServer, Whmcs

pytestmark = pytest.mark.php

HOSTILE = '<img src=x onerror="alert(1)">&\''
DEPARTMENTS = [{"id": 1, "name": "Suporte", "description": "Técnico"},
               {"id": 2, "name": "Financeiro", "description": "Faturas"},
               {"id": 3, "name": "Comercial", "description": ""}]
GENERIC_REFUSAL = ("Support tickets are temporarily unavailable. "
                   "Please try again in a few minutes.")


@pytest.fixture
def settings(database_url: str) -> Settings:
    return default_settings().replace(bridge={"database_url": database_url, "language": "en",
                                              "public_url": "https://vip.example.com"},
                                      webhook={"secrets": SECRET},
                                      tickets={"billing_departments": "2"},
                                      whmcs={"url": "https://billing.example.com"})


def _standing(kind: str, *, number: str = "1042", prefix: str = "R$ ",
              language: str | None = None) -> CachedStanding:
    invoices = () if kind == "current" else (
        OverdueInvoice(1042, number, Decimal("89.90"), "2026-11-09"),)
    return CachedStanding(42, kind, 0 if kind == "current" else 12,
                          sum((i.balance for i in invoices), Decimal(0)), invoices, prefix, "",
                          language, FIXED_NOW.replace(tzinfo=None), kind, 1, False, True,
                          ("invoice #1042 is 12 days overdue",), ("eligible by rule",))


def text_of(markup: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def submit_vars(**extra: Any) -> dict[str, Any]:
    return {"companyname": "Hospeda", "filename": "submitticket", "language": "english",
            "loggedin": True, "clientsdetails": {"userid": 42, "id": 42, "firstname": "Ana"},
            "step": 1, "departments": DEPARTMENTS, **extra}


def _tickets_table(whmcs: Whmcs, rows: list[tuple[int, int]]) -> None:
    """WHMCS's tbltickets in the database the stub's Capsule hands out."""
    path = whmcs.spool_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE tbltickets (id INTEGER PRIMARY KEY, userid INTEGER, "
                     "title TEXT)")
        conn.executemany("INSERT INTO tbltickets (id, userid, title) VALUES (?, ?, 'x')", rows)


# --- answers from a running bridge -------------------------------------------------------------


def test_client_summary_panel(whmcs: Whmcs, live_bridge: LiveBridge) -> None:
    live_bridge.store.put_standing(_standing("suspended"))
    whmcs.install(live_bridge.url)
    [panel] = whmcs.fire("AdminAreaClientSummaryPage", {"userid": 42})["returns"]
    shown = text_of(panel)
    assert "Standing: Suspended · 12 days" in shown
    assert "invoice #1042 is 12 days overdue" in shown and "eligible by rule" in shown
    assert 'href="https://vip.example.com/admin/clients/42"' in panel
    assert whmcs.logged() == [] and whmcs.spool() == []
    assert live_bridge.store.events() == []  # answered, not stored


def test_client_summary_panel_shows_the_episode_s_reason(whmcs: Whmcs,
                                                         live_bridge: LiveBridge) -> None:
    store = live_bridge.store
    store.put_standing(_standing("suspended"))
    store.record(42, [], ep.EpisodeStep(opening=ep.Opening(
        FIXED_NOW, date(2026, 11, 9), Decimal("89.90"), "R$ ", "", {1042: Decimal("89.90")})),
        FIXED_NOW)
    [episode] = store.episodes(42)
    store.tag_reason(42, episode.id, ep.check_reason("other", "<b>moved</b> abroad"), "maria",
                     FIXED_NOW)
    whmcs.install(live_bridge.url)
    [panel] = whmcs.fire("AdminAreaClientSummaryPage", {"userid": 42})["returns"]
    assert ("Delinquency episode open since 2026-11-09 · Reason: other (<b>moved</b> abroad) · "
            "Change the reason in vipgate") in text_of(panel)
    assert "&lt;b&gt;moved&lt;/b&gt;" in panel  # staff's note is text
    assert 'href="https://vip.example.com/admin/clients/42#episodes"' in panel


def test_ticket_badge_reads_the_tickets_client_from_whmcs(whmcs: Whmcs,
                                                          live_bridge: LiveBridge) -> None:
    live_bridge.store.put_standing(_standing("overdue"))
    _tickets_table(whmcs, [(501, 42), (502, 0)])
    whmcs.install(live_bridge.url)
    [badge] = whmcs.fire("AdminAreaViewTicketPage", {"ticketid": 501})["returns"]
    assert text_of(badge) == "vipgate · Overdue · 12 days · R$ 89.90 · 1 invoice"
    assert whmcs.fire("AdminAreaViewTicketPage", {"ticketid": 502})["returns"] == []  # guest
    assert whmcs.logged() == []


def test_ticket_badge_without_tbltickets_falls_back_to_vipgates_record(
        whmcs: Whmcs, live_bridge: LiveBridge) -> None:
    live_bridge.store.put_standing(_standing("overdue"))
    live_bridge.store.save_ticket_memory(TicketMemory(501, 42, "High", "Low"), FIXED_NOW)
    whmcs.install(live_bridge.url)
    [badge] = whmcs.fire("AdminAreaViewTicketPage", {"ticketid": "501"})["returns"]
    assert "priority lowered by vipgate (was High)" in text_of(badge)
    [entry] = whmcs.logged()
    assert "cannot read the ticket's client" in entry["response"]


@pytest.mark.parametrize("who", [
    {},  # clientsdetails, as ClientAreaPage hooks get it
    {"clientsdetails": None, "client": {"__object__": {"id": 42}}},  # WHMCS 8's client object
    {"clientsdetails": None, "__session__": {"uid": "42"}},  # only the session
])
def test_submit_ticket_offers_only_billing_to_a_blocked_client(
        whmcs: Whmcs, live_bridge: LiveBridge, who: dict[str, Any]) -> None:
    live_bridge.store.put_standing(_standing("suspended"))
    whmcs.install(live_bridge.url)
    [returned] = whmcs.fire("ClientAreaPageSubmitTicket",
                            submit_vars(step=2, deptid=1, **who))["returns"]
    assert returned["departments"] == [DEPARTMENTS[1]]
    assert returned["vipgate_blocked"] is True
    assert returned["deptid"] == 2  # the form opens on the billing department
    notice = text_of(returned["vipgate_notice"])
    assert "Only the billing department is open to you now" in notice
    assert "#1042" in notice and "R$ 89.90" in notice


def test_submit_ticket_in_the_language_of_the_page(whmcs: Whmcs,
                                                   live_bridge: LiveBridge) -> None:
    live_bridge.store.put_standing(_standing("suspended", language="english"))
    whmcs.install(live_bridge.url)
    [returned] = whmcs.fire("ClientAreaPageSubmitTicket",
                            submit_vars(language="portuguese-br"))["returns"]
    assert "só o departamento financeiro" in text_of(returned["vipgate_notice"])
    assert "deptid" not in returned  # step 1: nothing chosen yet


def test_submit_ticket_is_left_alone_for_a_current_client(whmcs: Whmcs,
                                                          live_bridge: LiveBridge) -> None:
    live_bridge.store.put_standing(_standing("current"))
    whmcs.install(live_bridge.url)
    assert whmcs.fire("ClientAreaPageSubmitTicket", submit_vars())["returns"] == []
    assert whmcs.logged() == []


def test_homepage_banner_in_the_sessions_language(whmcs: Whmcs,
                                                  live_bridge: LiveBridge) -> None:
    live_bridge.store.put_standing(_standing("overdue"))
    whmcs.install(live_bridge.url)
    session = {"__session__": {"uid": 42, "Language": "portuguese-br"}}
    [banner] = whmcs.fire("ClientAreaHomepage", session)["returns"]
    assert "Você tem 1 fatura em atraso, R$ 89,90 no total." in text_of(banner)
    assert 'href="viewinvoice.php?id=1042"' in banner


def test_nobody_logged_in_asks_nothing(whmcs: Whmcs,
                                       capture: Callable[..., CaptureServer]) -> None:
    bridge = capture(status=200)
    whmcs.install(bridge.url)
    assert whmcs.fire("ClientAreaHomepage", {})["returns"] == []
    assert whmcs.fire("ClientAreaPageSubmitTicket",
                      submit_vars(clientsdetails=None))["returns"] == []
    assert whmcs.fire("AdminAreaClientSummaryPage", {"userid": 0})["returns"] == []
    assert bridge.requests == []


def test_hostile_values_arrive_escaped(whmcs: Whmcs, live_bridge: LiveBridge) -> None:
    # (WHMCS currency prefixes are short: the cache keeps 16 characters)
    live_bridge.store.put_standing(_standing("suspended", number=HOSTILE, prefix="<u>R$</u>"))
    whmcs.install(live_bridge.url)
    outputs = [
        *whmcs.fire("AdminAreaClientSummaryPage", {"userid": 42})["returns"],
        *whmcs.fire("ClientAreaHomepage", {"__session__": {"uid": 42}})["returns"],
        whmcs.fire("ClientAreaPageSubmitTicket", submit_vars())["returns"][0]["vipgate_notice"],
    ]
    assert len(outputs) == 3
    for markup in outputs:
        assert "<img" not in markup and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in markup
        assert "<u>" not in markup and "&lt;u&gt;R$&lt;/u&gt;" in markup


def test_page_hooks_send_only_their_whitelisted_vars(
        whmcs: Whmcs, capture: Callable[..., CaptureServer]) -> None:
    bridge = capture(status=200, answer=b'{"html": ""}')
    _tickets_table(whmcs, [(501, 42)])
    whmcs.install(bridge.url)
    whmcs.fire("AdminAreaClientSummaryPage", {"userid": "42", "adminid": 1})
    whmcs.fire("AdminAreaViewTicketPage", {"ticketid": 501})
    whmcs.fire("ClientAreaPageSubmitTicket", submit_vars(token="csrf-token"))
    whmcs.fire("ClientAreaHomepage", {"__session__": {"uid": 42, "Language": "english"}})
    sent = [json.loads(r.body) for r in bridge.requests]
    assert [(d["hook"], d["vars"]) for d in sent] == [
        ("AdminAreaClientSummaryPage", {"userid": 42}),
        ("AdminAreaViewTicketPage", {"ticketid": 501, "userid": 42}),
        ("ClientAreaPageSubmitTicket", {"userid": 42, "language": "english"}),
        ("ClientAreaHomepage", {"userid": 42, "language": "english"}),
    ]


# --- no bridge, a slow bridge, a forged answer ----------------------------------------------------

PAGE_CALLS = [
    ("AdminAreaClientSummaryPage", {"userid": 42}),
    ("AdminAreaViewTicketPage", {"ticketid": 501}),
    ("ClientAreaPageSubmitTicket", submit_vars()),
    ("ClientAreaHomepage", {"__session__": {"uid": 42}}),
]


@pytest.mark.parametrize(("hook", "variables"), PAGE_CALLS)
def test_unreachable_bridge_shows_nothing_at_once(whmcs: Whmcs, closed_url: str, hook: str,
                                                  variables: dict[str, Any]) -> None:
    whmcs.install(closed_url)
    result = whmcs.fire(hook, variables)
    assert result["returns"] == []
    assert result["elapsed_ms"] < 300
    assert any("no answer from the bridge" in e["response"] for e in whmcs.logged())
    assert whmcs.spool() == []  # questions are never spooled


@pytest.mark.parametrize(("hook", "variables"), PAGE_CALLS)
def test_slow_bridge_costs_the_page_at_most_one_second(
        whmcs: Whmcs, capture: Callable[..., CaptureServer], hook: str,
        variables: dict[str, Any]) -> None:
    hanging = capture(hang=True)
    whmcs.install(hanging.url)
    started = time.monotonic()
    result = whmcs.fire(hook, variables)
    assert result["returns"] == []
    assert 900 <= result["elapsed_ms"] <= 1300
    assert time.monotonic() - started < 5  # php start-up included
    assert whmcs.spool() == []


def _forger(answer: bytes, secret: str | None, *, other_id: bool = False,
            age: int = 0) -> Callable[[Captured], dict[str, str]]:
    def headers(request: Captured) -> dict[str, str]:
        if secret is None:
            return {}
        msg_id = "msg_someone_else" if other_id else request.headers["webhook-id"]
        return signed_headers([secret], msg_id, int(time.time()) - age, answer)

    return headers


FORGED_HTML = b'{"html": "<script>steal()</script>", "departments": [], "errors": ["No."]}'


@pytest.mark.parametrize(("secret", "other_id", "age", "problem"), [
    (None, False, 0, "not signed"),
    (OTHER_SECRET, False, 0, "does not match"),
    (SECRET, True, 0, "another request"),
    (SECRET, False, 3600, "five minutes"),
])
def test_an_answer_not_signed_by_the_bridge_for_this_request_is_ignored(
        whmcs: Whmcs, capture: Callable[..., CaptureServer], secret: str | None,
        other_id: bool, age: int, problem: str) -> None:
    forger = capture(status=200, answer=FORGED_HTML,
                     answer_headers=_forger(FORGED_HTML, secret, other_id=other_id, age=age))
    whmcs.install(forger.url)
    for hook, variables in PAGE_CALLS:
        assert whmcs.fire(hook, variables)["returns"] == [], hook
    # the gate too: a forged "blocked" is not obeyed (fail open), nor a forged "allowed"
    assert whmcs.fire("TicketOpenValidation", {"clientId": 42, "departmentId": 1})[
        "returns"] == []
    whmcs.set_config("fail_open", "false")
    assert whmcs.fire("TicketOpenValidation", {"clientId": 42, "departmentId": 1})[
        "returns"] == [GENERIC_REFUSAL]
    logged = [e["response"] for e in whmcs.logged() if "ticket's client" not in e["response"]]
    assert len(logged) == len(PAGE_CALLS) + 2
    assert all(problem in line for line in logged), logged


def test_a_properly_signed_answer_is_used(whmcs: Whmcs,
                                          capture: Callable[..., CaptureServer]) -> None:
    answer = b'{"html": "<b>ok</b>", "errors": ["Pay first."]}'
    bridge = capture(status=200, answer=answer, answer_headers=_forger(answer, SECRET))
    whmcs.install(bridge.url)
    assert whmcs.fire("AdminAreaClientSummaryPage", {"userid": 42})["returns"] == ["<b>ok</b>"]
    assert whmcs.fire("TicketOpenValidation", {"clientId": 42, "departmentId": 1})[
        "returns"] == ["Pay first."]
    assert whmcs.logged() == []
