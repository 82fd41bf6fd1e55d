"""vipgate inside WHMCS, in a real browser: the sandbox WHMCS's client summary, ticket view,
Open Ticket and client-area home pages (bridge/sandbox/pages.py) of a whole installation
(tests/world.py), where a VIP client who stopped paying left VIP and was suspended by the cron.
Headless Chromium driven by Playwright; screenshots whmcs-*.png go where tests/browser.py says.

Every test runs twice: in English, and in Portuguese (``[bridge] language = pt_BR`` for the
staff panels, the client's WHMCS language ``portuguese-br`` for the client area's, as
docs/LANGUAGES.md says), whose screenshots are whmcs-*-pt_BR.png. The Portuguese run checks
that vipgate's panels hold Portuguese words and none of the English ones, so a page falling
back to English fails; the sandbox's own page around them is WHMCS's, in English.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from bridge.policy.episodes import check_reason
from tests.admin_world import customer
from tests.browser import screenshot, watched_page
from tests.world import World, make_world

pytestmark = pytest.mark.browser
sync_api = pytest.importorskip("playwright.sync_api")


# The client's WHMCS language name, and what each language's panels say and must not say.
WHMCS_LANGUAGE = {"en": "english", "pt_BR": "portuguese-br"}
WORDS = {
    "en": {"standing": "Standing: Suspended", "summary": ["Overdue invoices", "Why this standing",
                                                         "Reason: forgot or lost the boleto"],
           "badge": ["Suspended", "1 invoice"],
           "notice": ["Only the billing department", "Pay invoice"],
           "banner": ["suspended", "See your invoices"]},
    "pt_BR": {"standing": "Situação: Suspenso",
              "summary": ["Faturas vencidas", "Por que esta situação", "Últimas mudanças",
                          "Motivo: esqueceu ou perdeu o boleto"],
              "badge": ["Suspenso", "1 fatura", "prioridade reduzida pelo vipgate (era Alta)"],
              "notice": ["só o departamento financeiro", "Pagar fatura", "faturas vencidas"],
              "banner": ["suspensos", "Ver suas faturas"]},
}
# The ticket's badge: standing, days overdue, the amount in the language's digits, invoices.
BADGE = {"en": r"Suspended · \d+ days · \$89\.90 USD · 1 invoice",
         "pt_BR": r"Suspenso · \d+ dias · \$89,90 USD · 1 fatura"}
# English that the Portuguese panels must not show (each translated in the catalog).
ENGLISH = {"summary": ["Standing", "Overdue invoices", "Why this", "Last changes", "overdue",
                       "Open in vipgate", "days", "Reason", "episode", "tagged"],
           "badge": ["Suspended", "days", "invoice", "priority"],
           "notice": ["Only the billing", "Pay invoice", "overdue"],
           "banner": ["suspended", "See your invoices", "invoice"]}


def in_language(language: str, name: str) -> str:
    """A screenshot's name: the English one as it was, the other language's with its code."""
    return name if language == "en" else f"{name}-{language}"


def check_words(text: str, language: str, part: str) -> None:
    """``text`` (a panel's) holds the language's words for ``part``; a Portuguese one holds
    none of the English."""
    for word in WORDS[language][part]:
        assert word in text, f"{word!r} missing from the {language} {part}: {text!r}"
    if language != "en":
        english = [word for word in ENGLISH[part] if re.search(rf"\b{word}\b", text)]
        assert not english, f"English {english} in the {language} {part}: {text!r}"


@pytest.fixture(scope="module", params=["en", "pt_BR"])
def language(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, language: str) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("whmcs-pages")
    with make_world(f"sqlite:///{tmp}/vipgate.db", tmp, bridge={"language": language}) as w:
        yield w


@pytest.fixture(scope="module")
def suspended(world: World, language: str) -> dict[str, int]:
    """A VIP client 13 days overdue with a ticket open in Suporte; the daily cron (after
    vipgate's PreCronJob reconcile) suspends the service."""
    w = world
    client, service, invoice = customer(w, "Otavio", group=w.vip, due="2026-10-20",
                                        language=WHMCS_LANGUAGE[language])
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


def test_staff_see_the_standing_on_the_client_summary(page: Any, language: str, world: World,
                                                       suspended: dict[str, int]) -> None:
    [episode] = world.store.episodes(suspended["client"])  # staff tagged it on vipgate's page
    if episode.reason is None:
        world.store.tag_reason(suspended["client"], episode.id, check_reason("boleto", ""),
                               "maria", world.engine.now())
    page.goto(f"/admin/clientssummary.php?userid={suspended['client']}")
    panel = page.locator(".vipgate-panel")
    assert panel.is_visible()
    standing = WORDS[language]["standing"]
    assert panel.locator(".vipgate-standing").inner_text().startswith(standing)
    assert panel.get_by_role("link", name=f"#{suspended['invoice']}").is_visible()
    check_words(panel.inner_text(), language, "summary")
    assert page.locator("#client-group").inner_text() == "Clientes"
    screenshot(page, in_language(language, "whmcs-client-summary"))


def test_staff_see_a_badge_on_the_ticket(page: Any, language: str,
                                         suspended: dict[str, int]) -> None:
    page.goto(f"/admin/supporttickets.php?action=view&id={suspended['ticket']}")
    badge = page.locator(".vipgate-badge")
    assert badge.is_visible()
    assert re.search(BADGE[language], badge.inner_text()), badge.inner_text()
    check_words(badge.inner_text(), language, "badge")
    assert page.locator("#ticket-priority").inner_text() == "Low"
    screenshot(page, in_language(language, "whmcs-ticket-badge"))


def test_the_suspended_client_is_offered_only_billing_with_the_reason(
        page: Any, world: World, language: str, suspended: dict[str, int]) -> None:
    page.goto(f"/submitticket.php?uid={suspended['client']}")
    notice = page.locator(".vipgate-notice")
    assert notice.is_visible()
    assert f"#{suspended['invoice']}" in notice.inner_text()
    check_words(notice.inner_text(), language, "notice")
    departments = page.locator("#departments a")
    assert departments.all_inner_texts() == ["Financeiro"]
    screenshot(page, in_language(language, "whmcs-submit-ticket"))
    departments.first.click()
    page.wait_for_url(re.compile(rf"step=2&deptid={world.billing}"))
    assert page.locator("#deptid option").all_inner_texts() == ["Financeiro"]
    assert page.locator(".vipgate-notice").is_visible()


def test_the_client_area_home_shows_the_banner(page: Any, language: str,
                                               suspended: dict[str, int]) -> None:
    page.goto(f"/clientarea.php?uid={suspended['client']}")
    banner = page.locator(".vipgate-banner")
    assert banner.is_visible()
    check_words(banner.inner_text(), language, "banner")
    screenshot(page, in_language(language, "whmcs-client-home"))
