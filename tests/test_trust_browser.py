"""The trust unlock in a real browser (issue 19 item 5): the sandbox WHMCS's client-area home
of a client the cron suspended, through the real PHP stub; the banner's button posts the form
to clientarea.php, and the page comes back with the services unlocked. Headless Chromium
driven by Playwright; screenshots whmcs-client-home-unlock(-pt_BR).png (the banner with its
button) go where tests/browser.py says.

Runs in English and in Portuguese (the client's WHMCS language ``portuguese-br``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.admin_world import customer
from tests.browser import screenshot, watched_page
from tests.world import World, make_world

pytestmark = [pytest.mark.browser, pytest.mark.php]
sync_api = pytest.importorskip("playwright.sync_api")

WHMCS_LANGUAGE = {"en": "english", "pt_BR": "portuguese-br"}
WORDS = {
    "en": {"button": "Unlock my services for 3 days", "terms": "suspended again",
           "unlocked": "Your services are unlocked until 2026-11-05",
           "again": "already unlocked"},
    "pt_BR": {"button": "Desbloquear meus serviços por 3 dias", "terms": "suspensos de novo",
              "unlocked": "Seus serviços estão desbloqueados até 05/11/2026",
              "again": "já desbloqueou"},
}


@pytest.fixture(params=["en", "pt_BR"])
def language(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with make_world(f"sqlite:///{tmp_path}/vipgate.db", tmp_path, php=True,
                    trust={"enabled": "on", "days": "3"}) as w:
        yield w


def test_a_suspended_client_unlocks_from_the_banner(browser: Any, world: World,
                                                    language: str) -> None:
    w = world
    client, service, _ = customer(w, "Otavio", group=w.regular, due="2026-10-20",
                                  language=WHMCS_LANGUAGE[language])
    w.sandbox.run_cron()
    w.drain()
    assert w.sandbox.service(service)["domainstatus"] == "Suspended"  # type: ignore[index]
    words = WORDS[language]
    with watched_page(browser, w.whmcs.url, 1100, 760) as page:
        page.goto(f"/clientarea.php?uid={client}")
        banner = page.locator(".vipgate-banner")
        button = banner.get_by_role("button", name=words["button"])
        assert button.is_visible()
        assert words["terms"] in banner.locator(".vipgate-trust-terms").inner_text()
        screenshot(page, "whmcs-client-home-unlock" if language == "en"
                   else f"whmcs-client-home-unlock-{language}")
        button.click()
        page.wait_for_load_state()
        assert re.search(r"/clientarea\.php$", page.url), page.url
        unlocked = page.locator(".vipgate-trust-unlocked")
        assert unlocked.inner_text().startswith(words["unlocked"])
        assert page.locator(".vipgate-banner form").count() == 0
        assert w.sandbox.service(service)["domainstatus"] == "Active"  # type: ignore[index]
        page.reload()  # the browser posts the form again: refused, nothing more happens
        assert words["again"] in page.locator(".vipgate-trust-notice").inner_text()
    assert len(w.store.client_unlocks(client)) == 1
