"""The Settings page (/admin/settings) over a whole installation: WHMCS's groups and
departments offered, a saved change in force at once for the engine and the gate, versioned
and audited, bad values refused next to their field with nothing stored, reset, preview, CSRF,
and a WHMCS that cannot be reached. On SQLite and on MariaDB."""

from __future__ import annotations

import re
import socket
from html.parser import HTMLParser
from typing import Any

import pytest
from markupsafe import escape

from bridge import overrides
from bridge.settings import declared
from bridge.web.app import create_app
from bridge.whmcs import WhmcsClient
from tests.admin_helpers import AdminSession
from tests.world import World

PAGE = "/admin/settings"


class FormReader(HTMLParser):
    """The name/value pairs a browser sends for the settings form, as it was rendered."""

    def __init__(self) -> None:
        super().__init__()
        self.pairs: list[tuple[str, str]] = []
        self._in_form = False
        self._select: str | None = None
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._in_form = "settings-form" in a.get("class", "")
        if not self._in_form:
            return
        if tag == "input" and a.get("type") not in ("submit", "button"):
            self.pairs.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self._select = a["name"]
        elif tag == "option" and self._select and "selected" in a:
            self.pairs.append((self._select, a["value"]))
        elif tag == "textarea":
            self._textarea, self._text = a["name"], []

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea:
            # a browser drops the one newline that follows <textarea>
            self.pairs.append((self._textarea, "".join(self._text).removeprefix("\n")))
            self._textarea = None


def form_as_shown(html: str) -> dict[str, list[str]]:
    reader = FormReader()
    reader.feed(html)
    sent: dict[str, list[str]] = {}
    for name, value in reader.pairs:
        sent.setdefault(name, []).append(value)
    return sent


def block_of(html: str, name: str) -> str:
    """The page's piece for one setting: its label, input, help, errors, mark and preview."""
    for piece in html.split('<div class="field setting')[1:]:
        if f'name="{name}"' in piece:
            return piece
    raise AssertionError(f"no field {name} on the page")


def selected(block: str) -> list[str]:
    return re.findall(r'<option selected value="([^"]*)"', block)


def setting_audit(world: World) -> list[tuple[str, str | None, str | None, tuple[str, ...]]]:
    return [(e.actor, e.before, e.after, e.reasons)
            for e in world.store.audit_log(action="setting")]


# --- the form ----------------------------------------------------------------------------------


def test_every_policy_and_tickets_key_has_a_labelled_field_with_help(admin) -> None:
    html = admin.text(PAGE)
    for section, key in overrides.editable_keys():
        label, help_text = declared(section, key).label, declared(section, key).help
        assert label and help_text, key
        block = block_of(html, f"{section}-{key}")
        assert str(escape(label)) in block and str(escape(help_text)) in block, key
    assert html.index("[policy]") < html.index("[tickets]")


def test_groups_and_departments_are_picked_from_whmcs(world, admin) -> None:
    html = admin.text(PAGE)
    vip = block_of(html, "policy-vip_group_id")
    assert f'<option selected value="{world.vip}">VIP (#{world.vip}) · exempt from suspension' \
           in vip
    assert f"Clientes (#{world.regular})</option>" in vip
    assert '<option value="0">none' in vip
    assert "Exempt from suspension in WHMCS: VIP" in vip
    default = block_of(html, "policy-default_group_id")
    assert selected(default) == [str(world.regular)] and '<option value="0">no group' in default
    departments = block_of(html, "tickets-billing_departments")
    assert "<select" in departments and "multiple" in departments
    assert f'<option value="{world.support}">Suporte (#{world.support})</option>' in departments
    assert selected(departments) == [str(world.billing)]
    assert "could not be read" not in html and "not configured" not in html


def test_sending_the_form_as_shown_changes_nothing(world, admin) -> None:
    answer = admin.post(PAGE, {**form_as_shown(admin.text(PAGE)), "action": "save"})
    assert answer.status_code == 302
    assert "Nothing changed" in admin.text(PAGE)
    assert overrides.version(world.store) == 0 and setting_audit(world) == []


# --- saving -------------------------------------------------------------------------------------


def test_saved_values_are_what_the_engine_uses_at_once(world, admin) -> None:
    w = world
    with w.sandbox.quiet():
        ana = w.sandbox.add_client("Ana", "Silva", datecreated="2020-01-15")
        service = w.sandbox.add_service(ana, "2026-10-28", "Monthly", "89.90")
        w.sandbox.add_invoice(ana, "2026-10-28", [("Hosting", service, "Plano", "89.90")])
    before = w.sandbox.open_ticket(ana, w.support, "Site lento", "High").ticket_id
    w.drain()
    assert w.priority(before) == "Low"  # 5 days overdue > grace 3: priority_overdue
    assert w.engine.plan(ana).standing.kind == "overdue"

    form = form_as_shown(admin.text(PAGE))
    form.update({"action": "save", "policy-grace_days": "7",
                 "tickets-priority_overdue": "Medium"})
    answer = admin.post(PAGE, form)
    assert answer.status_code == 302 and answer.headers["Location"].endswith(PAGE)
    page = admin.text(PAGE)
    assert "Saved: [policy] grace_days 3 → 7; [tickets] priority_overdue Low → Medium." in page
    assert w.engine.plan(ana).standing.kind == "current"  # 5 days overdue <= grace 7

    form = form_as_shown(page)
    assert form["policy-grace_days"] == ["7"] and form["tickets-priority_overdue"] == ["Medium"]
    form.update({"action": "save", "policy-grace_days": "3"})  # overdue again
    admin.post(PAGE, form)
    after = w.sandbox.open_ticket(ana, w.support, "Outra dúvida", "High").ticket_id
    w.drain()
    assert w.priority(after) == "Medium"


def test_a_change_is_in_the_history_and_the_audit_log_with_the_admins_name(world, admin) -> None:
    admin.post(PAGE, {"action": "save", "policy-grace_days": "2",
                      "tickets-billing_departments": ["", str(world.billing),
                                                      str(world.support)]})
    changes = overrides.history(world.store)
    ids = ",".join(str(i) for i in sorted((world.billing, world.support)))
    assert [(c.actor, c.section, c.key, c.old, c.new) for c in changes] == [
        ("alice", "tickets", "billing_departments", str(world.billing), ids),
        ("alice", "policy", "grace_days", "3", "2")]
    assert setting_audit(world) == [
        ("alice", "3", "2", ("[policy] grace_days",)),
        ("alice", str(world.billing), ids, ("[tickets] billing_departments",))]
    history = admin.text(PAGE).split('id="history"')[1]
    assert re.search(r"<td>\d{4}-\d\d-\d\d \d\d:\d\d</td><td>alice</td><td><code>\[policy\] "
                     r"grace_days</code></td>\s*<td>3</td><td>2</td>", history)
    assert "Suporte" in history  # departments shown by name


def test_no_department_picked_is_saved_as_none(world, admin) -> None:
    admin.post(PAGE, {"action": "save", "tickets-billing_departments": [""]})
    assert world.engine.settings.tickets.billing_departments == ()
    block = block_of(admin.text(PAGE), "tickets-billing_departments")
    assert selected(block) == [] and "saved on this page" in block


BAD_INPUT = [
    ("policy-grace_days", "three", "expected a whole number from 0 to 365"),
    ("policy-grace_days", "400", "expected a whole number from 0 to 365"),
    ("policy-vip_group_id", "-1", "expected a whole number from 0 to 4294967295"),
    ("policy-min_spend", "89,90", "expected an amount of money like 10 or 89.90, not negative"),
    ("policy-grace_in_business_days", "maybe", "expected on or off"),
    ("tickets-priority_overdue", "Urgent", "expected one of Low, Medium, High, keep"),
    ("tickets-block_when", "always", "expected one of suspended, overdue, never"),
    ("tickets-billing_departments", "financeiro", "expected comma-separated WHMCS ids like 1, 4"),
    ("tickets-block_message_en", "Pay {amount} now", "unknown placeholder {amount}"),
    ("tickets-block_message_pt_br", "Pague {total", "expected { and } only around a placeholder"),
    ("tickets-block_message_en", "   ", "expected a message of 1 to 1000 characters"),
    ("tickets-block_message_en", "Pay {total:d}", "a placeholder cannot be filled"),
]


@pytest.mark.parametrize(("name", "value", "message"), BAD_INPUT,
                         ids=[f"{n}={v!r}" for n, v, _ in BAD_INPUT])
def test_bad_value_is_shown_next_to_its_field_and_nothing_is_stored(
        world, admin, name: str, value: str, message: str) -> None:
    form = form_as_shown(admin.text(PAGE))
    form.update({"action": "save", name: value, "tickets-staff_note": "off"})  # one good change
    answer = admin.post(PAGE, form)
    assert answer.status_code == 400
    html = answer.get_data(as_text=True)
    block = block_of(html, name)
    assert "has-error" in block.split(">", 1)[0]
    assert f'<small class="error" role="alert">{escape(message)}' in block
    if "<textarea" in block or 'type="number"' in block:  # kept as typed
        assert str(escape(value)) in block
    assert selected(block_of(html, "tickets-staff_note")) == ["off"]  # the good one too
    assert html.count('class="error"') == 1
    assert "Nothing was saved" in html
    assert overrides.version(world.store) == 0 and setting_audit(world) == []
    assert world.engine.settings.tickets.staff_note is True


def test_reset_goes_back_to_the_configured_value(world, admin) -> None:
    admin.post(PAGE, {"action": "save", "policy-grace_days": "6"})
    block = block_of(admin.text(PAGE), "policy-grace_days")
    assert "saved on this page" in block and "<code>3</code>" in block
    assert 'name="reset" value="policy-grace_days"' in block
    answer = admin.post(PAGE, {"reset": "policy-grace_days", "policy-grace_days": "9",
                               "tickets-priority_vip": "Low"})  # the rest is not saved
    assert answer.status_code == 302
    assert world.engine.settings.policy.grace_days == 3
    assert world.engine.settings.tickets.priority_vip == "High"
    assert overrides.saved_values(world.store) == {}
    assert [(c.old, c.new) for c in overrides.history(world.store)] == [("6", "3"), ("3", "6")]
    assert "saved on this page" not in block_of(admin.text(PAGE), "policy-grace_days")


def test_reset_of_an_unknown_key_is_refused(world, admin) -> None:
    assert admin.post(PAGE, {"reset": "bridge-database_url"}).status_code == 400
    assert overrides.version(world.store) == 0


@pytest.mark.parametrize("token", [None, "forged"], ids=["missing", "forged"])
def test_post_without_a_valid_csrf_token_is_refused_and_stores_nothing(
        world, admin, token: str | None) -> None:
    data: dict[str, Any] = {"action": "save", "policy-grace_days": "7"}
    if token:
        data["csrf_token"] = token
    answer = admin.client.post(PAGE, data=data)
    assert answer.status_code == 400
    assert overrides.version(world.store) == 0
    assert world.engine.settings.policy.grace_days == 3


def test_preview_shows_the_filled_message_and_saves_nothing(world, admin) -> None:
    typed_en = "Blocked: {invoices}, {total}, {days} days. Pay: {link}"
    typed_pt = "Bloqueado: {invoices} ({total}) há {days} dias. Pague: {link}"
    answer = admin.post(PAGE, {"action": "preview", "tickets-block_message_en": typed_en,
                               "tickets-block_message_pt_br": typed_pt})
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    link = f"{world.settings.whmcs.url}/viewinvoice.php?id=1042"
    assert (f"<blockquote>Blocked: #1042, #1057, $189.80, 12 days. Pay: {link}</blockquote>"
            in block_of(html, "tickets-block_message_en"))
    pt = block_of(html, "tickets-block_message_pt_br")
    shown = escape(f"Bloqueado: #1042, #1057 (R$ 189,80) há 12 dias. Pague: {link}")
    assert f"<blockquote>{shown}</blockquote>" in pt
    assert str(escape(typed_pt)) in pt  # the textarea keeps what was typed
    assert "Preview only: nothing was saved" in html
    assert overrides.version(world.store) == 0
    assert world.engine.settings.tickets.block_message_en.startswith("Your account")


def test_preview_of_a_bad_message_shows_its_error_and_no_preview(world, admin) -> None:
    html = admin.post(PAGE, {"action": "preview",
                             "tickets-block_message_en": "Pay {amount}"}).get_data(as_text=True)
    block = block_of(html, "tickets-block_message_en")
    assert "unknown placeholder {amount}" in block and "No preview: fix the message" in block
    assert overrides.version(world.store) == 0


def test_the_page_shows_the_message_in_force_with_its_preview(world, admin) -> None:
    block = block_of(admin.text(PAGE), "tickets-block_message_en")
    assert "<blockquote>Your account has overdue invoices (#1042, #1057; total $189.80)" in block


def test_a_form_shown_before_someone_elses_change_does_not_undo_it(world, admin) -> None:
    stale = form_as_shown(admin.text(PAGE))
    other = AdminSession(world.app, name="bob")
    other.post(PAGE, {"action": "save", "tickets-priority_overdue": "Medium"})
    stale.update({"action": "save", "policy-grace_days": "4"})
    admin.post(PAGE, stale)
    assert world.engine.settings.tickets.priority_overdue == "Medium"
    assert world.engine.settings.policy.grace_days == 4
    assert "Kept the newer value someone else saved meanwhile for [tickets] priority_overdue" \
           in admin.text(PAGE)


def test_policy_warnings_are_shown_near_the_top(world, admin) -> None:
    admin.post(PAGE, {"action": "save", "policy-grace_days": "5"})
    html = admin.text(PAGE)
    warning = html.index("grace_days = 5 &gt;= WHMCS&#39;s AutoSuspensionDays 5")
    assert warning < html.index('class="settings-form"')


# --- without WHMCS --------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_whmcs_falls_back_to_number_inputs_with_a_notice(settings, store,
                                                                     clock) -> None:
    unreachable = settings.replace(whmcs={"url": f"http://127.0.0.1:{closed_port()}",
                                          "identifier": "id", "secret": "s",
                                          "timeout_seconds": 2},
                                   policy={"vip_group_id": 4})
    app = create_app(unreachable, store=store, clock=clock,
                     whmcs=lambda: WhmcsClient(unreachable.whmcs, sleep=lambda _: None))
    admin = AdminSession(app)
    html = admin.text(PAGE)
    assert "WHMCS could not be read" in html and "typed as ids" in html
    vip = block_of(html, "policy-vip_group_id")
    assert "<select" not in vip and 'type="number"' in vip and 'value="4"' in vip
    departments = block_of(html, "tickets-billing_departments")
    assert "<select" not in departments and "<input" in departments
    answer = admin.post(PAGE, {**form_as_shown(html), "action": "save",
                               "policy-vip_group_id": "7",
                               "tickets-billing_departments": "5, 3"})
    assert answer.status_code == 302
    with app.app_context():
        from bridge.runtime import runtime

        assert runtime().settings.policy.vip_group_id == 7
        assert runtime().settings.tickets.billing_departments == (3, 5)


def test_whmcs_not_configured_falls_back_with_a_notice(app) -> None:
    html = AdminSession(app).text(PAGE)
    assert "WHMCS is not configured" in html
    assert 'type="number"' in block_of(html, "policy-default_group_id")
    assert "Policy warnings" not in html


def test_the_page_needs_a_login(app) -> None:
    answer = app.test_client().get(PAGE)
    assert answer.status_code == 302 and "/admin/login" in answer.headers["Location"]
    assert AdminSession(app).client.post(PAGE, data={}).status_code == 400  # no CSRF token


def test_the_trust_unlock_is_turned_on_from_the_page(world, admin) -> None:
    """[trust] is a section of the page: on, days and the yearly limit, checked like the file
    (days 1 to 30), in force at once (the client-area banner offers the button)."""
    html = admin.text(PAGE)
    assert "Trust unlock" in html and "[trust]" in html
    form = form_as_shown(html)
    refused = admin.post(PAGE, {**form, "action": "save", "trust-days": "45"})
    assert "expected a whole number from 1 to 30" in refused.get_data(as_text=True)
    assert world.app is not None
    answer = admin.post(PAGE, {**form, "action": "save", "trust-enabled": "on",
                               "trust-days": "5"})
    assert answer.status_code == 302
    assert "[trust] enabled off → on" in admin.text(PAGE)
    with world.app.app_context():
        from bridge.runtime import runtime

        trust = runtime().settings.trust
    assert (trust.enabled, trust.days, trust.max_per_year) == (True, 5, 2)
