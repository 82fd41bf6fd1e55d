"""The sandbox's WHMCS pages (bridge/sandbox/pages.py): what each shows, the hook each fires
with exactly WHMCS's variables, hook output inserted raw while the sandbox's own values are
escaped, template variables merged, and 404s for bad or unknown ids.

WHMCS's hook functions are a fake here (canned returns per hook): these are the sandbox's own
page tests; the bridge's answers are tested with the bridge."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from bridge.sandbox import pages
from bridge.sandbox.api import create_sandbox_app
from bridge.sandbox.whmcs import Sandbox, SandboxClock

NOW = datetime(2026, 11, 21, 9, 0)
HOSTILE = "<script>alert(\"x\")</script> O'Brien & Sons"
ESCAPED = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; O&#39;Brien &amp; Sons"


@dataclass
class FakeHooks:
    """WHMCS's hook functions: ``returns[hook]`` is what they return for every call."""

    returns: dict[str, list[Any]] = field(default_factory=dict)

    def __call__(self, hook: str, variables: dict[str, Any]) -> list[Any]:
        return list(self.returns.get(hook, []))


@dataclass
class Site:
    sandbox: Sandbox
    hooks: FakeHooks
    http: FlaskClient
    vip: int
    ana: int  # VIP, language portuguese-br
    bruno: int  # no group, no language (the system default)
    support: int
    billing: int
    hidden: int
    ticket: int
    mask: str


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    hooks = FakeHooks()
    sandbox = Sandbox(f"sqlite:///{tmp_path}/whmcs.db", fire=hooks, clock=SandboxClock(NOW),
                      seed=5)
    with sandbox.quiet():
        vip = sandbox.add_group("VIP", susptermexempt=True)
        ana = sandbox.add_client("Ana", "Souza", groupid=vip, companyname="Souza Ltda",
                                 language="portuguese-br")
        bruno = sandbox.add_client("Bruno", "Lima")
        support = sandbox.add_department("Suporte")
        billing = sandbox.add_department("Financeiro")
        hidden = sandbox.add_department("Interno", hidden=True)
        opened = sandbox.open_ticket(ana, support, "Site fora do ar", "High")
    assert opened.ticket_id is not None and opened.tid is not None
    try:
        yield Site(sandbox, hooks, create_sandbox_app(sandbox).test_client(), vip, ana, bruno,
                   support, billing, hidden, opened.ticket_id, opened.tid)
    finally:
        sandbox.dispose()


def text_of(html: str, element_id: str) -> str:
    """The inner HTML of the element with this id (nested elements of its kind counted)."""
    start = re.search(rf'<(\w+)[^>]*\bid="{element_id}"[^>]*>', html)
    assert start, f"no #{element_id} in the page"
    tag, depth, at = start.group(1), 1, start.end()
    for found in re.finditer(rf"<(/?){tag}\b[^>]*>", html[at:]):
        depth += -1 if found.group(1) else 1
        if depth == 0:
            return html[at:at + found.start()]
    raise AssertionError(f"#{element_id} is never closed")


def fired(site: Site, hook: str) -> list[dict[str, Any]]:
    return [f.vars for f in site.sandbox.hooks(hook)]


# --- admin area ---------------------------------------------------------------------------


def test_client_summary_shows_the_client_and_the_hook_output_raw(site: Site) -> None:
    panel = '<div class="vipgate-panel"><b>suspended</b> &amp; owes</div>'
    site.hooks.returns["AdminAreaClientSummaryPage"] = [panel, "<p>second</p>"]
    html = site.http.get(f"/admin/clientssummary.php?userid={site.ana}").get_data(as_text=True)
    assert "Ana Souza" in text_of(html, "client-name")
    assert "Souza Ltda" in html
    assert text_of(html, "client-status") == "Active"
    assert text_of(html, "client-group") == "VIP"
    assert text_of(html, "hook-output") == panel + "<p>second</p>"
    assert pages.hook_output(html) == panel + "<p>second</p>"
    assert fired(site, "AdminAreaClientSummaryPage") == [{"userid": site.ana}]


def test_client_without_a_group_shows_none(site: Site) -> None:
    html = pages.render_client_summary(site.sandbox, site.bruno)
    assert text_of(html, "client-group") == "None"


def test_ticket_view_shows_the_ticket_and_the_badge_raw(site: Site) -> None:
    badge = '<span class="vipgate-badge">overdue</span>'
    site.hooks.returns["AdminAreaViewTicketPage"] = [badge]
    response = site.http.get(f"/admin/supporttickets.php?action=view&id={site.ticket}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert text_of(html, "ticket-mask") == f"#{site.mask}"
    assert text_of(html, "ticket-subject") == "Site fora do ar"
    assert text_of(html, "ticket-priority") == "High"
    assert "Suporte" in html and "Open" in html
    assert "Ana Souza" in text_of(html, "ticket-client")
    assert text_of(html, "hook-output") == badge
    assert fired(site, "AdminAreaViewTicketPage") == [{"ticketid": site.ticket}]


def test_pages_without_a_vipgate_answer_show_no_panel(site: Site) -> None:
    """Until the bridge answers (or when it is down) the hooks return nothing."""
    for html in (pages.render_client_summary(site.sandbox, site.ana),
                 pages.render_ticket_view(site.sandbox, site.ticket),
                 pages.render_client_home(site.sandbox, site.ana)):
        assert text_of(html, "hook-output") == ""
    html = pages.render_submit_ticket(site.sandbox, site.ana)
    assert text_of(html, "vipgate-notice") == ""
    assert re.findall(r">(\w+)</a>", text_of(html, "departments")) == ["Suporte", "Financeiro"]


# --- client area --------------------------------------------------------------------------


@pytest.mark.parametrize(("who", "system_default", "language"), [
    ("ana", None, "portuguese-br"),
    ("bruno", None, "english"),
    ("bruno", "portuguese-br", "portuguese-br"),
])
def test_client_home_runs_in_the_clients_session(site: Site, who: str,
                                                 system_default: str | None,
                                                 language: str) -> None:
    if system_default:
        site.sandbox.configure(Language=system_default)
    uid = getattr(site, who)
    site.hooks.returns["ClientAreaHomepage"] = ['<div class="alert">Pague</div>']
    html = site.http.get(f"/clientarea.php?uid={uid}").get_data(as_text=True)
    assert text_of(html, "hook-output") == '<div class="alert">Pague</div>'
    assert f"submitticket.php?uid={uid}" in html
    assert fired(site, "ClientAreaHomepage") == [
        {"__session__": {"uid": uid, "Language": language}, "token": pages.csrf_token(uid)}]


def test_client_home_post_runs_the_hook_with_the_form(site: Site) -> None:
    """POST /clientarea.php: the form is the hook's $_POST (``__post__``); the client is the
    one the session (the cookie of the last page) names; a wrong CSRF token is refused before
    any hook runs."""
    uid = site.ana
    site.hooks.returns["ClientAreaHomepage"] = ['<div class="alert">ok</div>']
    site.http.get(f"/clientarea.php?uid={uid}")
    form = {"vipgate_action": "trust_unlock", "vipgate_token": "abc",
            "token": pages.csrf_token(uid)}
    answer = site.http.post("/clientarea.php", data=form)
    assert answer.status_code == 200
    assert text_of(answer.get_data(as_text=True), "hook-output") == '<div class="alert">ok</div>'
    assert fired(site, "ClientAreaHomepage")[-1]["__post__"] == form
    before = len(fired(site, "ClientAreaHomepage"))
    refused = site.http.post(f"/clientarea.php?uid={uid}", data={**form, "token": "forged"})
    assert refused.status_code == 404
    assert "Invalid CSRF Protection Token" in refused.get_data(as_text=True)
    assert len(fired(site, "ClientAreaHomepage")) == before


def expected_submit_vars(site: Site, step: int) -> dict[str, Any]:
    return {
        "companyname": "Sandbox WHMCS", "systemurl": "http://localhost/", "charset": "utf-8",
        "pagetitle": "Open Ticket", "filename": "submitticket", "template": "twenty-one",
        "language": "portuguese-br", "loggedin": True,
        "clientsdetails": {"userid": site.ana, "id": site.ana, "firstname": "Ana",
                           "lastname": "Souza", "email": "ana.souza@example.com",
                           "language": "portuguese-br"},
        "step": step,
        **({"deptid": site.billing} if step == 2 else {}),
        "departments": [{"id": site.support, "name": "Suporte", "description": "Suporte"},
                        {"id": site.billing, "name": "Financeiro",
                         "description": "Financeiro"}],
    }


@pytest.mark.parametrize("step", [1, 2])
def test_submit_ticket_fires_with_whmcs_template_variables(site: Site, step: int) -> None:
    deptid = site.billing if step == 2 else None
    variables = pages.submit_ticket_vars(site.sandbox, site.ana, step, deptid)
    expected = expected_submit_vars(site, step)
    assert variables == expected  # nothing returned: the page's own variables
    assert fired(site, "ClientAreaPageSubmitTicket") == [
        {**expected, "__session__": {"uid": site.ana, "Language": "portuguese-br"}}]


def test_returned_template_variables_merge_in_order(site: Site) -> None:
    billing_only = [{"id": site.billing, "name": "Financeiro", "description": "Boletos"}]
    site.hooks.returns["ClientAreaPageSubmitTicket"] = [
        {"departments": billing_only, "vipgate_notice": "<p>first</p>"},
        {"vipgate_notice": '<div class="vipgate-notice">Fatura <b>#12</b></div>'},
        "not a dict: ignored"]
    variables = pages.submit_ticket_vars(site.sandbox, site.ana)
    assert variables["departments"] == billing_only
    assert variables["vipgate_notice"] == '<div class="vipgate-notice">Fatura <b>#12</b></div>'
    assert variables["companyname"] == "Sandbox WHMCS"
    html = site.http.get(f"/submitticket.php?uid={site.ana}").get_data(as_text=True)
    assert text_of(html, "vipgate-notice") == variables["vipgate_notice"]
    assert html.index('id="vipgate-notice"') < html.index('id="departments"')
    assert re.findall(r">(\w+)</a>", text_of(html, "departments")) == ["Financeiro"]
    assert f"step=2&amp;deptid={site.billing}" in html
    assert "Boletos" in html


def test_step_two_offers_the_filtered_departments_in_a_select(site: Site) -> None:
    site.hooks.returns["ClientAreaPageSubmitTicket"] = [{
        "departments": [{"id": str(site.billing), "name": "Financeiro", "description": ""}],
        "vipgate_notice": "<strong>Só o financeiro</strong>"}]
    response = site.http.get(f"/submitticket.php?uid={site.ana}&step=2&deptid={site.billing}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    options = re.findall(r'<option value="(\d+)"( selected)?>\s*(\w+)</option>', html)
    assert options == [(str(site.billing), " selected", "Financeiro")]
    assert text_of(html, "vipgate-notice") == "<strong>Só o financeiro</strong>"
    assert 'name="subject"' in html and 'name="message"' in html
    assert response.request.url_root in fired(site, "ClientAreaPageSubmitTicket")[0][
        "systemurl"]


def test_the_hidden_department_is_never_offered(site: Site) -> None:
    offered = [d["id"] for d in pages.submit_ticket_vars(site.sandbox, site.ana)["departments"]]
    assert site.hidden not in offered
    with pytest.raises(pages.PageNotFound, match=f"Department ID Not Found: {site.hidden}"):
        pages.submit_ticket_vars(site.sandbox, site.ana, 2, site.hidden)


def test_posting_the_form_opens_the_ticket(site: Site) -> None:
    response = site.http.post(f"/submitticket.php?uid={site.ana}", data={
        "deptid": site.billing, "subject": "Segunda via", "message": "Boleto, por favor",
        "urgency": "Low"})
    html = response.get_data(as_text=True)
    [opened] = fired(site, "TicketOpen")
    assert opened["deptid"] == site.billing and opened["subject"] == "Segunda via"
    ticket = site.sandbox.ticket(opened["ticketid"])
    assert ticket is not None and ticket["urgency"] == "Low"
    assert f"Ticket #{ticket['tid']} opened." in html


def test_a_refused_ticket_shows_the_validation_error_and_keeps_the_form(site: Site) -> None:
    site.hooks.returns["TicketOpenValidation"] = ["Fatura #12 vencida & <não paga>"]
    html = site.http.post(f"/submitticket.php?uid={site.ana}", data={
        "deptid": site.support, "subject": "Ajuda", "message": "Site lento",
        "urgency": "High"}).get_data(as_text=True)
    assert "Fatura #12 vencida &amp; &lt;não paga&gt;" in text_of(html, "errors")
    assert 'value="Ajuda"' in html and "Site lento" in html
    assert fired(site, "TicketOpen") == []
    assert fired(site, "TicketOpenValidation")[-1]["departmentId"] == site.support


@pytest.mark.parametrize(("form", "validated", "stored"), [
    ({"urgency": "x"}, {"priority": "x"}, "Medium"),
    ({"urgency": ""}, {"priority": ""}, "Medium"),
    ({}, {}, "Medium"),  # a theme without the field: the key is left out
    ({"urgency": "low"}, {"priority": "low"}, "Medium"),
    ({"urgency": "High"}, {"priority": "High"}, "High"),
])
def test_the_form_hands_validation_the_raw_urgency_and_stores_medium_for_any_other(
        site: Site, form: dict[str, str], validated: dict[str, str], stored: str) -> None:
    """WHMCS's client area passes the posted ``urgency`` to TicketOpenValidation as it came
    (code written from the hook docs would send a normalised priority)."""
    site.http.post(f"/submitticket.php?uid={site.ana}", data={
        "deptid": site.support, "subject": "Ajuda", "message": "Site lento", **form})
    [validation] = fired(site, "TicketOpenValidation")[-1:]
    assert {k: v for k, v in validation.items() if k == "priority"} == validated
    [opened] = fired(site, "TicketOpen")[-1:]
    assert opened["priority"] == stored
    ticket = site.sandbox.ticket(opened["ticketid"])
    assert ticket is not None and ticket["urgency"] == stored


# --- escaping and errors ------------------------------------------------------------------


def test_hostile_names_subjects_and_departments_are_escaped(site: Site) -> None:
    s = site.sandbox
    with s.quiet():
        group = s.add_group(HOSTILE)
        client = s.add_client(HOSTILE, HOSTILE, groupid=group, companyname=HOSTILE)
        dept = s.add_department(HOSTILE)
        ticket = s.open_ticket(client, dept, HOSTILE, message=HOSTILE).ticket_id
    got = {
        "summary": site.http.get(f"/admin/clientssummary.php?userid={client}"),
        "ticket": site.http.get(f"/admin/supporttickets.php?action=view&id={ticket}"),
        "home": site.http.get(f"/clientarea.php?uid={client}"),
        "step1": site.http.get(f"/submitticket.php?uid={client}"),
        "step2": site.http.get(f"/submitticket.php?uid={client}&step=2&deptid={dept}"),
    }
    for name, response in got.items():
        html = response.get_data(as_text=True)
        assert response.status_code == 200, name
        assert "<script>" not in html, name
        assert ESCAPED in html, name


@pytest.mark.parametrize(("path", "problem"), [
    ("/admin/clientssummary.php", "Invalid client id: None"),
    ("/admin/clientssummary.php?userid=abc", "Invalid client id: &#39;abc&#39;"),
    ("/admin/clientssummary.php?userid=-1", "Invalid client id: &#39;-1&#39;"),
    ("/admin/clientssummary.php?userid=999", "Client ID Not Found: 999"),
    ("/admin/supporttickets.php?action=view&id=x", "Invalid ticket id: &#39;x&#39;"),
    ("/admin/supporttickets.php?action=view&id=999", "Ticket ID Not Found: 999"),
    ("/admin/supporttickets.php?action=list", "Unknown action: only action=view"),
    ("/clientarea.php", "Invalid client id: None"),
    ("/clientarea.php?uid=999", "Client ID Not Found: 999"),
    ("/submitticket.php?uid=999", "Client ID Not Found: 999"),
    ("/submitticket.php?uid=<b>", "Invalid client id: &#39;&lt;b&gt;&#39;"),
    ("/submitticket.php?uid={ana}&step=3", "Invalid step: &#39;3&#39; (1 or 2)"),
    ("/submitticket.php?uid={ana}&step=2", "Invalid department id: None"),
    ("/submitticket.php?uid={ana}&step=2&deptid=999", "Department ID Not Found: 999"),
])
def test_bad_or_unknown_ids_answer_404_naming_the_problem(site: Site, path: str,
                                                          problem: str) -> None:
    response = site.http.get(path.format(ana=site.ana))
    assert response.status_code == 404
    assert problem in text_of(response.get_data(as_text=True), "not-found")
    assert site.sandbox.hooks("AdminAreaClientSummaryPage") == []
    assert site.sandbox.hooks("ClientAreaPageSubmitTicket") == []


def test_posting_to_an_unknown_department_answers_404(site: Site) -> None:
    response = site.http.post(f"/submitticket.php?uid={site.ana}", data={
        "deptid": site.hidden, "subject": "x", "message": "y"})
    assert response.status_code == 404
    assert fired(site, "TicketOpenValidation") == []


def test_the_index_lists_the_pages(site: Site) -> None:
    text = site.http.get("/").get_data(as_text=True)
    assert "/admin/clientssummary.php" in text and "/submitticket.php" in text
