"""vipgate inside WHMCS, in a real browser: the sandbox WHMCS's client summary, ticket view and
Open Ticket pages (bridge/sandbox/pages.py) of a whole installation (tests/world.py), where a
VIP client who stopped paying left VIP and was suspended by the cron. Headless Chromium driven
by Playwright; screenshots whmcs-*.png go where tests/browser.py says."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.admin_world import customer
from tests.browser import screenshot, watched_page
from tests.world import World, make_world

pytestmark = pytest.mark.browser
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("whmcs-pages")
    with make_world(f"sqlite:///{tmp}/vipgate.db", tmp) as w:
        yield w


@pytest.fixture(scope="module")
def suspended(world: World) -> dict[str, int]:
    """A VIP client 13 days overdue with a ticket open in Suporte; the daily cron (after
    vipgate's PreCronJob reconcile) suspends the service."""
    w = world
    client, service, invoice = customer(w, "Otavio", group=w.vip, due="2026-10-20")
    opened = w.sandbox.open_ticket(client, w.support, "Site fora do ar", "High")
    assert opened.ticket_id is not None
    w.drain()
    w.sandbox.run_cron()
    w.drain()
    row = w.sandbox.service(service)
    assert row is not None and row["domainstatus"] == "Suspended"
    assert w.group(client) == w.regular
    return {"client": client, "ticket": opened.ticket_id, "invoice": invoice}


@pytest.fixture
def page(browser: Any, world: World, suspended: dict[str, int]) -> Iterator[Any]:
    with watched_page(browser, world.whmcs.url, 1100, 760) as opened:
        yield opened


def test_staff_see_the_standing_on_the_client_summary(page: Any,
                                                       suspended: dict[str, int]) -> None:
    page.goto(f"/admin/clientssummary.php?userid={suspended['client']}")
    panel = page.locator(".vipgate-panel")
    assert panel.is_visible()
    assert panel.locator(".vipgate-standing").inner_text().startswith("Standing: Suspended")
    assert panel.get_by_role("link", name=f"#{suspended['invoice']}").is_visible()
    assert page.locator("#client-group").inner_text() == "Clientes"
    screenshot(page, "whmcs-client-summary")


def test_staff_see_a_badge_on_the_ticket(page: Any, suspended: dict[str, int]) -> None:
    page.goto(f"/admin/supporttickets.php?action=view&id={suspended['ticket']}")
    badge = page.locator(".vipgate-badge")
    assert badge.is_visible()
    assert re.search(r"Suspended · \d+ days · \$89\.90 USD · 1 invoice", badge.inner_text())
    assert page.locator("#ticket-priority").inner_text() == "Low"
    screenshot(page, "whmcs-ticket-badge")


def test_the_suspended_client_is_offered_only_billing_with_the_reason(
        page: Any, world: World, suspended: dict[str, int]) -> None:
    page.goto(f"/submitticket.php?uid={suspended['client']}")
    notice = page.locator(".vipgate-notice")
    assert notice.is_visible()
    assert f"#{suspended['invoice']}" in notice.inner_text()
    departments = page.locator("#departments a")
    assert departments.all_inner_texts() == ["Financeiro"]
    screenshot(page, "whmcs-submit-ticket")
    departments.first.click()
    page.wait_for_url(re.compile(rf"step=2&deptid={world.billing}"))
    assert page.locator("#deptid option").all_inner_texts() == ["Financeiro"]
    assert page.locator(".vipgate-notice").is_visible()


def test_the_client_area_home_shows_the_banner(page: Any, suspended: dict[str, int]) -> None:
    page.goto(f"/clientarea.php?uid={suspended['client']}")
    banner = page.locator(".vipgate-banner")
    assert banner.is_visible()
    assert "suspended" in banner.inner_text()
