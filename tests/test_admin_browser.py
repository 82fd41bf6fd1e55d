"""The admin page in a real browser: headless Chromium driven by Playwright over HTTP.

One installation (sandbox WHMCS + bridge on SQLite, tests/world.py) is shared by the module:
a VIP member who pays, a VIP member who owes, a regular client who pays but is not eligible
by the rules (min_spend 500), a full resync (so the dashboard has a snapshot), and a dead
letter. Each test logs in from a fresh browser context. Screenshots of every page are saved
where tests/browser.py says (docs/screenshots/ with ``make screenshots``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from bridge import accounts
from bridge.resync.runner import Resync
from bridge.resync.source_db import WhmcsDbReader
from bridge.store import inbox as queue
from bridge.store.inbox import InboxEvent
from tests.admin_world import customer, reconcile
from tests.browser import screenshot, watched_page
from tests.world import World, make_world, wall

pytestmark = pytest.mark.browser
sync_api = pytest.importorskip("playwright.sync_api")

ADMIN, PASSWORD = "owner", "a long and secret password"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("browser")
    with make_world(f"sqlite:///{tmp}/vipgate.db", tmp, admin={"secure_cookies": "off"},
                    policy={"min_spend": "500"}) as w:
        yield w


@pytest.fixture(scope="module")
def cast(world: World) -> dict[str, int]:
    w = world
    paying, _, _ = customer(w, "Beatriz", group=w.vip, due="2026-10-20", paid="2026-10-20")
    owing, _, _ = customer(w, "Otavio", group=w.vip, due="2026-10-20")
    regular, _, _ = customer(w, "Renata", group=w.regular, due="2026-10-20",
                             paid="2026-10-20")
    reconcile(w, paying, owing, regular)
    reader = WhmcsDbReader(w.whmcs_database_url)
    try:
        Resync(w.engine, reader).run(dry_run=False)  # takes the day's snapshot
    finally:
        reader.dispose()
    _dead_letter(w, owing)
    accounts.create_user(w.store, ADMIN, PASSWORD, wall())
    return {"paying": paying, "owing": owing, "regular": regular}


def _dead_letter(w: World, client_id: int) -> None:
    """An InvoicePaid event that failed for good while WHMCS was away (its last error kept)."""
    now = wall()
    w.drain()  # the reconciles' own echoes first
    w.store.enqueue(InboxEvent("msg_browser_dead_letter", "InvoicePaid", client_id,
                               {"invoiceid": 1}, now, now))
    [row] = queue.claim(w.store, "browser-test", now, lease=timedelta(minutes=1), limit=1)
    assert row.webhook_id == "msg_browser_dead_letter"
    queue.fail(w.store, row.id, "browser-test", now,
               "WhmcsUnavailable: WHMCS did not answer (connection refused)", permanent=True)


@pytest.fixture
def page(browser: Any, world: World, cast: dict[str, int]) -> Iterator[Any]:
    with watched_page(browser, world.bridge_url, 1280, 860) as opened:
        yield opened


def log_in(page: Any) -> None:
    page.goto("/admin/")
    assert page.url.endswith("/admin/login?next=/admin/")
    page.get_by_label("Account").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/admin/$"))


def test_log_in_with_a_wrong_password_then_the_right_one(page: Any) -> None:
    page.goto("/admin/login")
    screenshot(page, "login")
    page.get_by_label("Account").fill(ADMIN)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_text("Wrong account name or password.").is_visible()
    log_in(page)
    assert page.get_by_text(ADMIN, exact=True).is_visible()
    screenshot(page, "overview")


def test_read_the_dashboard(page: Any, world: World) -> None:
    log_in(page)
    page.locator("nav.nav").get_by_role("link", name="Dashboard").click()
    page.wait_for_url(re.compile(r"/admin/dashboard"))
    charts = page.locator("svg[role=img]")
    assert charts.count() >= 4
    assert charts.first.is_visible()
    assert page.get_by_text("Delinquent clients").first.is_visible()
    screenshot(page, "dashboard")
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("CSV")).first.click()
    assert download.value.suggested_filename.endswith(".csv")


def test_change_a_setting(page: Any, world: World) -> None:
    log_in(page)
    page.locator("nav.nav").get_by_role("link", name="Settings").click()
    page.wait_for_url(re.compile(r"/admin/settings"))
    # The browser checks numbers itself (min/max); a template is checked by the server only.
    page.locator("[name='tickets-block_message_en']").fill("Please pay {nome}")
    page.get_by_role("button", name="Save changes").first.click()
    assert page.get_by_text("unknown placeholder {nome}").is_visible()
    assert world.engine.settings.policy.grace_days == 3
    page.locator("[name='tickets-block_message_en']").fill(
        world.engine.settings.tickets.block_message_en)
    page.locator("[name='policy-grace_days']").fill("2")
    page.get_by_role("button", name="Save changes").first.click()
    assert page.locator(".flash").first.is_visible()
    world.engine._settings.reload()  # type: ignore[union-attr]  (another process's view)
    assert world.engine.settings.policy.grace_days == 2
    screenshot(page, "settings")


def test_pin_a_client(page: Any, world: World, cast: dict[str, int]) -> None:
    log_in(page)
    regular = cast["regular"]
    assert world.group(regular) == world.regular
    page.locator("nav.nav").get_by_role("link", name="VIP roster").click()
    page.get_by_role("link", name=re.compile(r"^All")).first.click()
    row = page.locator("tr", has=page.locator(f"a[href='/admin/clients/{regular}']"))
    row.get_by_role("button", name="Pin").click()
    assert page.locator(".flash").first.is_visible()
    assert world.group(regular) == world.vip  # in WHMCS at once
    screenshot(page, "roster")
    page.goto(f"/admin/clients/{regular}")
    assert page.get_by_text("pinned").first.is_visible()
    screenshot(page, "client")


def test_retry_a_dead_letter(page: Any, world: World) -> None:
    log_in(page)
    page.locator("nav.nav").get_by_role("link", name="Inbox").click()
    page.get_by_role("link", name=re.compile(r"^Dead")).first.click()
    row = page.locator("tr", has_text="msg_browser_dead_letter")
    assert row.get_by_text("WhmcsUnavailable").first.is_visible()
    screenshot(page, "inbox")
    row.get_by_role("button", name=re.compile("Retry")).click()
    assert page.locator(".flash").first.is_visible()
    event = world.store.get_event("msg_browser_dead_letter")
    assert event is not None and event.state == "queued"
    outcomes = world.drain()
    assert any(o.state == "done" for o in outcomes)


def test_the_other_pages_render_for_the_screenshots(page: Any, world: World,
                                                    cast: dict[str, int]) -> None:
    log_in(page)
    for path, name in [("/admin/audit", "audit"), ("/admin/promises", "promises"),
                       (f"/admin/clients/{cast['owing']}", "client-owing")]:
        page.goto(path)
        assert page.locator("h1").first.is_visible()
        screenshot(page, name)


def test_the_pages_fit_a_phone(browser: Any, world: World, cast: dict[str, int]) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844},
                                  base_url=world.bridge_url, is_mobile=True)
    page = context.new_page()
    try:
        log_in(page)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 400, f"the overview is {width}px wide on a 390px phone"
        screenshot(page, "overview-phone")
    finally:
        context.close()


def test_read_the_pages_in_portuguese_after_choosing_the_language(page: Any,
                                                                  world: World) -> None:
    """The language menu on every page: the account reads Portuguese from the next page on
    (money and dates as in Brazil), and can go back to English."""
    log_in(page)
    try:
        page.locator("#page-language").select_option("pt_BR")
        page.get_by_role("button", name="Change language").click()
        assert page.get_by_role("heading", name="Visão geral").is_visible()
        screenshot(page, "overview-pt_BR")
        page.locator("nav.nav").get_by_role("link", name="Painel").click()
        page.wait_for_url(re.compile(r"/admin/dashboard"))
        assert page.get_by_role("heading", name="Painel de inadimplência").is_visible()
        assert page.get_by_text("Clientes inadimplentes").first.is_visible()
        assert page.get_by_text(re.compile(r"Último retrato: \d\d/\d\d/\d{4}")).is_visible()
        screenshot(page, "dashboard-pt_BR")
        page.locator("#page-language").select_option("en")
        page.get_by_role("button", name="Mudar idioma").click()
        page.wait_for_url(re.compile(r"/admin/dashboard"))
        assert page.get_by_role("heading", name="Delinquency dashboard").is_visible()
    finally:
        world.store.set_admin_language(ADMIN, None)  # the module's other tests read English
