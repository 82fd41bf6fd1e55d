"""vipgate's own page inside WHMCS (Addons > vipgate), in a real browser: the addon module
installed, activated and configured in a WHMCS folder, its output function run by the real
``php`` (``bridge/sandbox/php/addon.php``) for an admin whose WHMCS language is English or
Portuguese (the module's ``lang/`` file WHMCS passes as ``$vars['_lang']``), framed by the
sandbox's admin area (:func:`bridge.sandbox.pages.render_addon_page`) and shown in headless
Chromium. Screenshots whmcs-addon-page.png and whmcs-addon-page-pt_BR.png go where
tests/browser.py says; the Portuguese page must show Portuguese words and none of the English.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import bridge
from bridge.sandbox.pages import render_addon_page
from tests.browser import screenshot, watched_page
from tests.conftest import LiveBridge
from tests.helpers import SECRET
from tests.php_helpers import Whmcs

pytestmark = [pytest.mark.browser, pytest.mark.php]
sync_api = pytest.importorskip("playwright.sync_api")

# The admin's WHMCS language, the page's words in it, and the English a Portuguese page must
# not show.
LANGUAGES = {
    "en": ("english", ["Stub version", "Bridge answers", "yes (HTTP 200)", "Events waiting",
                       "Open vipgate's admin page"]),
    "pt_BR": ("portuguese-br", ["Versão do stub", "A ponte responde", "sim (HTTP 200)",
                                "Eventos à espera", "Eventos recusados",
                                "Abrir a página de administração do vipgate"]),
}
ENGLISH = ["Stub version", "Bridge", "answers", "Events", "waiting", "rejected", "kept",
           "admin page"]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/vipgate.db"


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_the_addon_page_in_whmcs_in_the_admins_language(
        browser: Any, whmcs: Whmcs, live_bridge: LiveBridge, language: str) -> None:
    whmcs.install_addon()
    assert whmcs.addon("activate")["response"]["status"] == "success"
    whmcs.addon("configure", {"bridge_url": live_bridge.url, "secret": SECRET})
    whmcs.fire("InvoicePaid", {"invoiceid": 7})  # delivered to the bridge at once
    admin_language, words = LANGUAGES[language]
    output = whmcs.addon("output", {"__admin_language__": admin_language})["output"]
    with watched_page(browser, live_bridge.url, 1100, 560) as page:
        page.set_content(render_addon_page("vipgate", output))
        table = page.locator("#vipgate-status")
        assert table.is_visible()
        text = page.locator("#addon-output").inner_text()
        assert [word for word in words if word not in text] == []
        assert bridge.__version__ in text
        link = page.locator("#addon-output a")
        assert link.get_attribute("href") == f"{live_bridge.url}/admin/"
        if language != "en":
            shown = [word for word in ENGLISH if re.search(rf"\b{word}\b", text)]
            assert shown == [], f"English on the {language} page: {shown}\n{text}"
        screenshot(page, "whmcs-addon-page" if language == "en"
                   else f"whmcs-addon-page-{language}")
