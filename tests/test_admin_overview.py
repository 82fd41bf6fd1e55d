"""The admin overview: every figure it shows (WHMCS API and database, vipgate's database,
inbox depth, dead letters, last full reconcile, settings), the policy warnings read from the
sandbox WHMCS over HTTP (grace_days >= AutoSuspensionDays, VIP group not exempt, suspension
off, a credential lacking an action), the cache of the slow checks, and a WHMCS that is not
configured, not reachable or refusing the credential: always a line, never a 500.
Also ``vipgate check`` printing the permission warnings."""

from __future__ import annotations

import html
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from bridge import overrides
from bridge.admin import overview
from bridge.checks import NEEDED_ACTIONS
from bridge.runtime import runtime
from bridge.sandbox.actions_common import registered_actions
from bridge.sandbox.serve import RunningSandbox
from bridge.sandbox.whmcs import Sandbox, SandboxClock
from bridge.settings import Settings
from bridge.store import Store
from bridge.store.tables import meta
from bridge.web.app import create_app
from tests.admin_helpers import AdminSession
from tests.helpers import Clock
from tests.test_inbox_admin import in_state

API_ID = "vipgate-overview"
API_SECRET = "overview-api-secret-0042"
LIMITED_ID, LIMITED_SECRET = "vipgate-limited", "limited-secret-0042"


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    sandbox = Sandbox(f"sqlite:///{tmp_path}/whmcs.db",
                      clock=SandboxClock(datetime(2026, 11, 21, 9, 0)))
    sandbox.add_api_credential(API_ID, API_SECRET)
    sandbox.add_api_credential(LIMITED_ID, LIMITED_SECRET,
                               [a for a in registered_actions() if a != "UpdateTicket"])
    with sandbox.quiet():
        sandbox.add_group("VIP", susptermexempt=True)  # id 1
        sandbox.add_group("Clientes")  # id 2
        sandbox.add_client("Ana", "Souza", groupid=1)
    yield sandbox
    sandbox.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


Make = Callable[..., AdminSession]


@pytest.fixture
def make(settings: Settings, store: Store, clock: Clock, served: RunningSandbox) -> Make:
    """An admin session on an app whose [whmcs] points at the served sandbox (override any
    [whmcs] or [policy] key)."""
    def build(whmcs: dict[str, Any] | None = None, **policy: Any) -> AdminSession:
        configured = settings.replace(
            whmcs={"url": served.url, "identifier": API_ID, "secret": API_SECRET,
                   **(whmcs or {})},
            policy={"vip_group_id": 1, "default_group_id": 2, "grace_days": 3,
                    "min_spend": "100", **policy},
            bridge={"public_url": "https://bridge.example"})
        return AdminSession(create_app(configured, store=store, clock=clock))
    return build


def page_of(session: AdminSession) -> str:
    return html.unescape(session.text("/admin/"))


def card(page: str, card_id: str) -> str:
    start = page.index(f'id="{card_id}"')
    return page[start:page.index("</section>", start)]


def warnings_of(page: str) -> list[str]:
    """The warnings listed at the top of the page."""
    return re.findall(r'<li class="warning-\w+"><span class="badge badge-warning">\w+</span> '
                      r"(.*?)</li>", page)


# --- without WHMCS -------------------------------------------------------------------------


def test_without_whmcs_every_check_is_a_line_and_the_figures_are_shown(
        app: Flask, store: Store) -> None:
    page = page_of(AdminSession(app))
    assert "not configured: [whmcs] url is empty" in card(page, "whmcs-api")
    assert "not configured ([whmcs] database_url is empty)" in card(page, "whmcs-db")
    database = card(page, "vipgate-db")
    assert 'badge-ok">ok' in database
    assert f"({store.engine.dialect.name}, " in database and f"revision {store.revision()}" \
        in database
    assert "never" in card(page, "last-reconcile")
    settings = card(page, "settings-source")
    assert "from the embedded defaults" in settings and "0 saved from this page" in settings
    assert "[whmcs] url is empty: vipgate cannot reach WHMCS's API" in warnings_of(page)
    assert 'id="permissions"' not in page


def test_inbox_depth_by_state_and_the_dead_letters_link(app: Flask, store: Store) -> None:
    for state, count in (("dead", 2), ("retrying", 1), ("done", 3), ("queued", 1)):
        for _ in range(count):
            in_state(store, state)
    session = AdminSession(app)
    inbox = card(page_of(session), "inbox-depth")
    for state, count in (("queued", 1), ("processing", 0), ("retrying", 1), ("done", 3),
                         ("dead", 2), ("discarded", 0)):
        assert (f'<a href="/admin/inbox?state={state}">{state}</a></th>'
                f'<td class="num">{count}</td>') in inbox, state
    assert "2 dead letters" in inbox and '<a href="/admin/inbox?state=dead">' in inbox


@pytest.mark.parametrize(("value", "expected"), [
    ({"at": "2026-11-21T09:00:00+00:00", "clients": 1200, "applied": 15, "failed": 2,
      "complete": False}, ["2026-11-21 09:00", "incomplete",
                           "1,200 clients, 15 applied, 2 failed"]),
    ({"at": "2026-11-20T23:59:00", "clients": 3, "applied": 0, "failed": 0,
      "complete": True}, ["2026-11-20 23:59", 'badge-ok">complete',
                          "3 clients, 0 applied, 0 failed"]),
    ("not json", ["unreadable (meta last_full_reconcile = 'not json')"]),
    ({"clients": 3}, ["unreadable"]),
])
def test_the_last_full_reconcile_comes_from_its_meta_row(
        app: Flask, store: Store, value: Any, expected: list[str]) -> None:
    with store.engine.begin() as conn:
        conn.execute(meta.insert().values(key="last_full_reconcile", value=value if isinstance(
            value, str) else json.dumps(value)))
    last = card(page_of(AdminSession(app)), "last-reconcile")
    for part in expected:
        assert part in last
    assert "never" not in last


def test_a_first_full_reconcile_waits_on_the_page_until_an_admin_confirms_it(
        app: Flask, store: Store) -> None:
    from bridge import first_run

    session = AdminSession(app)
    assert 'id="first-run"' not in page_of(session)  # nothing planned yet
    summary = {"clients": 120, "changes": {"group": 4, "vip_in": 1, "vip_out": 3,
                                           "ticket_priority": 2, "ticket_note": 1}}
    first_run.record_plan(store, summary, datetime(2026, 11, 21, 9, 0))
    waiting = card(page_of(session), "first-run")
    assert ("120 clients: 4 group changes (1 into VIP, 3 out of VIP), 2 ticket priority, "
            "1 staff note") in waiting
    assert "1 into VIP</span> The VIP group is exempt from suspension" in waiting
    assert session.post("/admin/first-run/confirm", data={"csrf_token": ""}).status_code == 400
    assert first_run.waiting_plan(store) is not None
    done = session.post("/admin/first-run/confirm", follow_redirects=True)
    assert done.status_code == 200
    page = html.unescape(done.get_data(as_text=True))
    assert 'id="first-run"' not in page and "Confirmed: the next WHMCS cron run" in page
    assert f"first run confirmed by {session.name}" in card(page, "last-reconcile")
    entry = store.audit_log(action="first_reconcile_confirmed")[0]
    assert entry.actor == session.name and "4 group changes" in entry.reasons[0]


def test_settings_saved_from_the_page_are_counted(app: Flask, store: Store,
                                                  settings: Settings, clock: Clock) -> None:
    changes, errors = overrides.save(store, settings, {("policy", "grace_days"): "2",
                                                       ("tickets", "staff_note"): "off"},
                                     actor="alice", now=clock())
    assert errors == {} and len(changes) == 2
    assert "2 saved from this page" in card(page_of(AdminSession(app)), "settings-source")


# --- WHMCS's settings and the credential -----------------------------------------------


def test_a_healthy_whmcs_gives_no_policy_warning_and_every_action_allowed(
        make: Make, sandbox: Sandbox) -> None:
    fired = len(sandbox.fired)
    page = page_of(make())
    assert "reachable (http://127.0.0.1:" in card(page, "whmcs-api")
    assert warnings_of(page) == []
    assert f"{len(NEEDED_ACTIONS)} of {len(NEEDED_ACTIONS)} actions allowed" in page
    assert len(sandbox.fired) == fired  # probing changed nothing in WHMCS


@pytest.mark.parametrize(("whmcs_settings", "policy", "whmcs", "warning"), [
    ({"AutoSuspensionDays": 3}, {}, {},
     "[policy] grace_days = 3 >= WHMCS's AutoSuspensionDays 3: a client leaves VIP only "
     "after the cron would have suspended it"),
    ({}, {"grace_days": 7}, {}, "[policy] grace_days = 7 >= WHMCS's AutoSuspensionDays 5"),
    ({}, {"vip_group_id": 2, "default_group_id": 1}, {},
     "VIP group 2 (Clientes) is not exempt from suspension in WHMCS"),
    ({}, {"vip_group_id": 9}, {}, "[policy] vip_group_id = 9: WHMCS has no such client group"),
    ({"AutoSuspension": False}, {}, {},
     "WHMCS's automatic suspension (AutoSuspension) is off"),
    ({}, {}, {"identifier": LIMITED_ID, "secret": LIMITED_SECRET},
     "the WHMCS API credential lacks permission for UpdateTicket (write): vipgate cannot "
     "set ticket priorities"),
])
def test_policy_warnings_read_from_whmcs(make: Make, sandbox: Sandbox,
                                         whmcs_settings: dict[str, Any],
                                         policy: dict[str, Any], whmcs: dict[str, Any],
                                         warning: str) -> None:
    if whmcs_settings:
        sandbox.configure(**whmcs_settings)
    found = warnings_of(page_of(make(whmcs, **policy)))
    assert len(found) == 1 and found[0].startswith(warning), found


def test_the_permissions_table_names_the_missing_action(make: Make) -> None:
    page = page_of(make({"identifier": LIMITED_ID, "secret": LIMITED_SECRET}))
    table = card(page, "permissions")
    assert f"{len(NEEDED_ACTIONS) - 1} of {len(NEEDED_ACTIONS)} actions allowed" in table
    row = table[table.index("<code>UpdateTicket</code>"):]
    assert row.index("write") < row.index('badge-bad">missing') < row.index("</tr>")
    assert table.count('badge-ok">allowed') == len(NEEDED_ACTIONS) - 1


def test_whmcs_answers_are_kept_a_minute_and_judged_against_the_policy_in_force(
        make: Make, sandbox: Sandbox, store: Store, settings: Settings,
        clock: Clock) -> None:
    session = make()
    assert warnings_of(page_of(session)) == []
    calls = len(sandbox.api_log)
    assert calls >= len(NEEDED_ACTIONS)
    overrides.save(store, settings, {("policy", "grace_days"): "5"}, actor="alice",
                   now=clock())
    with session.app.app_context():
        runtime().live.reload()
    clock.advance(seconds=59)
    found = warnings_of(page_of(session))
    assert len(found) == 1 and "grace_days = 5 >= WHMCS's AutoSuspensionDays 5" in found[0]
    # only the reachability check was repeated (/healthz's, kept 30 s): not the facts
    assert [c["action"] for c in list(sandbox.api_log)[calls:]] == ["GetClientGroups"]
    sandbox.configure(AutoSuspensionDays=9)
    clock.advance(seconds=2)
    assert warnings_of(page_of(session)) == []
    assert len(sandbox.api_log) >= calls + 1 + len(NEEDED_ACTIONS)


def test_when_whmcs_answers_slowly_the_rest_is_marked_not_checked(
        make: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(overview, "FACTS_BUDGET_SECONDS", 0.0)
    page = page_of(make())
    assert "WHMCS answered slowly:" in page and "not checked this time" in page
    assert 'badge">not checked' in card(page, "permissions")
    assert warnings_of(page) == []  # the settings it did read are fine


# --- degraded WHMCS ---------------------------------------------------------------------


@pytest.mark.parametrize(("whmcs", "reason"), [
    ({"url": "http://127.0.0.1:{port}"}, "not usable (http://127.0.0.1:"),
    ({"secret": "wrong"}, "Invalid or missing credentials"),
])
def test_a_whmcs_that_cannot_be_used_is_a_line_not_an_error(
        make: Make, whmcs: dict[str, str], reason: str) -> None:
    whmcs = {k: v.format(port=free_port()) for k, v in whmcs.items()}
    page = page_of(make(whmcs))
    api = card(page, "whmcs-api")
    assert 'badge-bad">down' in api and reason in api
    assert "WHMCS's API cannot be used: its settings could not be checked" in page
    assert 'id="permissions"' not in page


def test_the_whmcs_database_is_checked_when_configured(make: Make, sandbox: Sandbox,
                                                       tmp_path: Path) -> None:
    good = card(page_of(make({"database_url": sandbox.engine.url.render_as_string(
        hide_password=False)})), "whmcs-db")
    assert 'badge-ok">ok' in good and "1 client, read-only session" in good
    port = free_port()
    bad = card(page_of(make({"database_url": f"mysql+pymysql://root:pw@127.0.0.1:{port}/"
                                             "whmcs"})), "whmcs-db")
    assert 'badge-bad">down' in bad
    assert f"database error at mysql+pymysql://root:***@127.0.0.1:{port}/whmcs" in bad
    assert ":pw@" not in bad


# --- the same warnings from vipgate check -----------------------------------------------


def test_vipgate_check_prints_the_permission_warnings(served: RunningSandbox,
                                                      tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path}/vipgate.db"
    store = Store(database_url)
    store.upgrade()
    store.dispose()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("VIPGATE_")},
           "VIPGATE_BRIDGE_DATABASE_URL": database_url,
           "VIPGATE_WHMCS_URL": served.url, "VIPGATE_WHMCS_IDENTIFIER": LIMITED_ID,
           "VIPGATE_WHMCS_SECRET": LIMITED_SECRET, "VIPGATE_POLICY_VIP_GROUP_ID": "1"}
    done = subprocess.run([sys.executable, "-m", "bridge", "check"], env=env,
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "whmcs: ok" in done.stdout
    assert ("warning: the WHMCS API credential lacks permission for UpdateTicket (write): "
            "vipgate cannot set ticket priorities") in done.stdout
    assert done.stdout.count("lacks permission") == 1


# --- what the PHP stub reports: its version, the events the bridge refused -------------------

REJECTED = [{"webhook_id": "msg_r2", "hook": "ClientEdit",
             "rejected_at": "2026-11-21T10:05:00+00:00",
             "reason": "HTTP 400: invalid field vars.status"},
            {"webhook_id": "msg_r1", "hook": "InvoicePaid",
             "rejected_at": "2026-11-21T10:00:00+00:00", "reason": "HTTP 413: too large"}]


def test_stub_not_heard_from_is_said_without_a_warning(app: Flask) -> None:
    page = page_of(AdminSession(app))
    assert "not heard from yet" in card(page, "stub")
    assert not [w for w in warnings_of(page) if "PHP stub" in w]


@pytest.mark.parametrize(("sent", "shown", "warned"), [
    ("same", "same", None),
    ("0.0.9", "mismatch", "sends version 0.0.9, this bridge is"),
    ("", "mismatch", "sends no version (older than this bridge)"),
])
def test_stub_version_mismatch_on_the_overview(app: Flask, store: Store, clock: Clock,
                                               sent: str, shown: str, warned: str | None) -> None:
    store.put_stub_version(overview.bridge_version() if sent == "same" else sent, clock())
    page = page_of(AdminSession(app))
    assert f'badge-warning">{shown}' in card(page, "stub") or (
        shown == "same" and 'badge-ok">same' in card(page, "stub"))
    found = [w for w in warnings_of(page) if "PHP stub" in w]
    assert len(found) == (1 if warned else 0)
    assert not warned or warned in found[0]


def test_rejected_events_are_listed_on_the_overview(app: Flask, store: Store,
                                                    clock: Clock) -> None:
    store.put_stub_version(overview.bridge_version(), clock())
    store.put_stub_rejected(7, REJECTED, clock())
    page = page_of(AdminSession(app))
    stub = card(page, "stub")
    assert "7 rejected" in stub
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td><code>(.*?)</code></td>"
                      r"<td>(.*?)</td></tr>", stub)
    assert rows == [(e["rejected_at"], e["hook"], e["webhook_id"], e["reason"])
                    for e in REJECTED]
    [warning] = [w for w in warnings_of(page) if "refused" in w]
    assert warning.startswith("the bridge refused 7 event(s)")
    assert "msg_r2: HTTP 400: invalid field vars.status" in warning


def test_vipgate_check_prints_the_stub_version_and_rejected_events(
        store: Store, clock: Clock, database_url: str, tmp_path: Path) -> None:
    store.put_stub_version("0.0.9", clock())
    store.put_stub_rejected(2, REJECTED, clock())
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("VIPGATE_")},
           "VIPGATE_BRIDGE_DATABASE_URL": database_url}
    done = subprocess.run([sys.executable, "-m", "bridge", "check"], env=env,
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert f"stub: version 0.0.9, last seen {clock():%Y-%m-%d %H:%M} UTC (bridge " in out
    assert ("  rejected: 2026-11-21T10:05:00+00:00 ClientEdit msg_r2: HTTP 400: invalid field "
            "vars.status") in out
    assert "  rejected: 2026-11-21T10:00:00+00:00 InvoicePaid msg_r1: HTTP 413" in out
    assert "warning: the PHP stub in WHMCS sends version 0.0.9, this bridge is" in out
    assert "warning: the bridge refused 2 event(s)" in out
