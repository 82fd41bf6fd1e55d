"""The admin page in a real browser: headless Chromium driven by Playwright over HTTP.

One installation (sandbox WHMCS + bridge on SQLite, tests/world.py) is shared by the module:
a VIP member who pays, a VIP member who owes, a regular client who pays but is not eligible
by the rules (min_spend 500), a full resync (so the dashboard has a snapshot), and a dead
letter (and one more that stays dead). Each test logs in from a fresh browser context.
Screenshots of every page are saved where tests/browser.py says (docs/screenshots/ with
``make screenshots``): NAME.png in English, NAME-pt_BR.png in Portuguese, read after choosing
the language in the account's menu (the login page: a bridge whose ``[bridge] language`` is
pt_BR); each Portuguese page must show Portuguese words and none of a few English ones, so a
page falling back to English fails.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from werkzeug.serving import make_server

from bridge import accounts
from bridge.resync.runner import Resync
from bridge.resync.source_db import WhmcsDbReader
from bridge.store import inbox as queue
from bridge.store.inbox import InboxEvent
from bridge.web.app import create_app
from tests.admin_world import customer, reconcile
from tests.browser import SCREENSHOTS, screenshot, watched_page
from tests.test_recovery import put_episode, unlock
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
    _dead_letter(w, owing, "msg_browser_dead_letter")  # retried by a test
    _dead_letter(w, owing, KEPT_DEAD_LETTER)
    accounts.create_user(w.store, ADMIN, PASSWORD, wall())
    return {"paying": paying, "owing": owing, "regular": regular}


KEPT_DEAD_LETTER = "msg_kept_dead"  # left dead, so the inbox has one in either language


def _dead_letter(w: World, client_id: int, webhook_id: str) -> None:
    """An InvoicePaid event that failed for good while WHMCS was away (its last error kept)."""
    now = wall()
    w.drain()  # the reconciles' own echoes first
    w.store.enqueue(InboxEvent(webhook_id, "InvoicePaid", client_id, {"invoiceid": 1}, now,
                               now))
    [row] = queue.claim(w.store, "browser-test", now, lease=timedelta(minutes=1), limit=1)
    assert row.webhook_id == webhook_id
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


def test_read_the_recovery_section(page: Any, world: World) -> None:
    """The Recovery section with two paid episodes: its tables and chart are shown, fit the
    page, and the recovery CSV downloads."""
    # clients WHMCS does not have, in the world's last 30 days (to 2026-11-02)
    put_episode(world.store, 9001, "2026-10-10", actions=(("left_vip", "2026-10-10T13:00:00"),),
                payments=(("150.00", "2026-10-20"),), paid_up=True)
    put_episode(world.store, 9002, "2026-10-12", payments=(("50.00", "2026-10-14"),),
                paid_up=True)
    log_in(page)
    page.goto("/admin/dashboard")
    assert page.get_by_role("heading", name="Recovery", exact=True).is_visible()
    assert page.locator("#chart-recovery-within").is_visible()
    assert page.locator("#recovery-all").get_by_text("All episodes").is_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1280, f"the dashboard is {width}px wide in a 1280px window"
    page.locator("#recovery-heading").scroll_into_view_if_needed()
    screenshot(page, "dashboard-recovery")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the recovery figures as CSV").click()
    assert download.value.suggested_filename.startswith("vipgate-recovery-")
    with in_portuguese(page, world):
        assert page.get_by_role("heading", name="Recuperação", exact=True).is_visible()
        check_portuguese(page, ["Recuperação", "Dinheiro recuperado por mês",
                                "Dias até o pagamento", "Por primeira ação",
                                "Todos os episódios", "Baixar os números de recuperação em CSV",
                                "O que os números de recuperação significam", "R$ 200,00"],
                         ["Recovery", "Money recovered per month", "Days to pay",
                          "By first action", "All episodes", "Download the recovery figures",
                          "What the recovery figures mean"])
        month = page.locator("#recovery-money").get_by_role("row").nth(1)
        assert month.get_by_role("cell").all_inner_texts() == ["10/2026", "R$", "R$ 200,00",
                                                               "2"]
        page.locator("#recovery-heading").scroll_into_view_if_needed()
        screenshot(page, "dashboard-recovery-pt_BR")


def test_read_the_trust_unlocks(page: Any, world: World) -> None:
    """The Recovery section's trust unlock block with three unlocks of the world's last 30
    days: one paid within the days granted, one paid after being suspended again, one open.
    Its screenshots are the section alone (dashboard-recovery-trust.png, and -pt_BR.png)."""
    put_episode(world.store, 9011, "2026-10-12",
                actions=(("suspended", "2026-10-13T12:00:00"),
                         unlock("2026-10-14T12:00:00", "2026-10-17")),
                payments=(("89.90", "2026-10-16"),), paid_up=True)
    put_episode(world.store, 9012, "2026-10-15",
                actions=(("suspended", "2026-10-16T12:00:00"),
                         unlock("2026-10-17T12:00:00", "2026-10-20"),
                         ("suspended", "2026-10-21T12:00:00")),
                payments=(("120.00", "2026-10-25"),), paid_up=True)
    put_episode(world.store, 9013, "2026-10-25",
                actions=(("suspended", "2026-10-26T12:00:00"),
                         unlock("2026-10-27T12:00:00", "2026-10-30")))
    log_in(page)
    page.goto("/admin/dashboard")
    block = page.locator("#recovery-trust")
    assert page.get_by_role("heading", name="Trust unlock", exact=True).is_visible()
    assert block.get_by_role("cell", name="Unlocks made").is_visible()
    paid = block.get_by_role("row", name=re.compile("Ended in payment"))
    assert paid.get_by_role("cell").all_inner_texts()[1:] == ["2", "66.7%", "R$ 209.90"]
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1280, f"the dashboard is {width}px wide in a 1280px window"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("section.dash-recovery").screenshot(
        path=str(SCREENSHOTS / "dashboard-recovery-trust.png"))
    with in_portuguese(page, world):
        assert page.get_by_role("heading", name="Desbloqueio por confiança",
                                exact=True).is_visible()
        check_portuguese(page, ["Desbloqueio por confiança", "Desbloqueios feitos",
                                "Recuperado desde o desbloqueio"],
                         ["Trust unlock", "Unlocks made", "Ended in payment", "Still open",
                          "Recovered since the unlock"])
        paid = block.get_by_role("row", name=re.compile("Terminaram em pagamento"))
        assert paid.get_by_role("cell").all_inner_texts()[1:] == ["2", "66,7%", "R$ 209,90"]
        page.locator("section.dash-recovery").screenshot(
            path=str(SCREENSHOTS / "dashboard-recovery-trust-pt_BR.png"))


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


def test_tag_an_episode_s_reason(page: Any, world: World, cast: dict[str, int]) -> None:
    log_in(page)
    owing = cast["owing"]
    page.goto(f"/admin/clients/{owing}#episodes")
    form = page.locator("form.reason-form").first
    form.get_by_label("Reason").select_option("other")
    form.get_by_role("button", name="Save reason").click()
    error = page.locator("form.reason-form .has-error .error").first
    assert error.inner_text() == 'Write a note: the reason "other" needs one.'
    assert world.store.episodes(owing)[0].reason is None
    form = page.locator("form.reason-form").first
    form.get_by_label("Reason").select_option("financial")
    form.get_by_label("Note").fill("lost a client of his own")
    form.get_by_role("button", name="Save reason").click()
    assert "saved: financial trouble" in page.locator(".flash").first.inner_text()
    assert page.url.endswith(f"/admin/clients/{owing}#episodes")
    [episode] = world.store.episodes(owing)
    assert (episode.reason, episode.reason_note) == ("financial", "lost a client of his own")
    page.locator("#episodes").scroll_into_view_if_needed()
    screenshot(page, "client-episode-reason")
    with in_portuguese(page, world):
        form = page.locator("form.reason-form").first
        assert form.get_by_label("Motivo").input_value() == "financial"
        check_portuguese(page, ["Episódios de inadimplência", "dificuldade financeira",
                                "Motivo", "Observação", "Trocar o motivo",
                                "status no WHMCS Ativo"],
                         ["Delinquency episodes", "financial trouble", "Reason", "Note",
                          "Change reason", "Active"])
        page.locator("#episodes").scroll_into_view_if_needed()
        screenshot(page, "client-episode-reason-pt_BR")


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


# The Portuguese pages: where, the screenshot's name, Portuguese words the page must show and
# English ones it must not (each translated in the catalog; the frame's "Log out" everywhere).
PORTUGUESE_PAGES = [
    ("/admin/", "overview",
     ["Visão geral", "Última reconciliação completa", "API do WHMCS", "Entrada"],
     ["Overview", "Last full reconcile", "Inbox", "Dashboard"]),
    ("/admin/dashboard", "dashboard",
     ["Painel de inadimplência", "Clientes inadimplentes", "Baixar CSV"],
     ["Delinquency dashboard", "Delinquent clients", "Download CSV"]),
    ("/admin/settings", "settings", ["Configurações", "Salvar mudanças"],
     ["Save changes", "Settings"]),
    ("/admin/roster?tab=all", "roster",
     ["Lista VIP", "Todos os clientes que o vipgate já reconciliou.", "Ações", "Buscar"],
     ["VIP roster", "Every client vipgate has reconciled.", "Actions", "Search"]),
    ("/admin/clients/{regular}", "client",
     ["Cliente #", "Situação", "Decisão de VIP", "Reconciliar agora", "Participação",
      "status no WHMCS Ativo"],
     ["Standing", "VIP decision", "Reconcile now", "Client lookup", "Active"]),
    ("/admin/clients/{owing}", "client-owing",
     ["Cliente #", "em atraso", "vencida há 13 dias > carência 3", "Histórico",
      "status no WHMCS Ativo"],
     ["Standing", "overdue", "grace", "History", "Client lookup", "Active"]),
    ("/admin/inbox?state=dead", "inbox",
     ["Entrada", "Tentar agora", "Descartar", "último erro", "tentativas"],
     ["Retry now", "Discard", "last error", "attempts"]),
    ("/admin/audit", "audit", ["Auditoria", "Filtrar", "Exportar CSV", "motivos"],
     ["Audit log", "Filter", "Export CSV", "reasons"]),
    ("/admin/promises", "promises",
     ["Promessas de pagamento", "Registrar uma promessa", "Salvar promessa"],
     ["Promises to pay", "Register a promise", "Save promise"]),
]


def check_portuguese(page: Any, portuguese: list[str], english: list[str]) -> None:
    """The page shows these Portuguese words and none of these English ones (whole words), nor
    the frame's English."""
    text = page.locator("body").inner_text()
    missing = [word for word in portuguese if word not in text]
    assert not missing, f"{page.url} lacks {missing}:\n{text}"
    shown = [line for word in [*english, "Log out", "Change language"]
             for line in text.splitlines()
             if re.search(rf"(?<!\w){re.escape(word)}(?!\w)", line)]
    assert not shown, f"{page.url} shows English: {shown}"


def choose_language(page: Any, language: str) -> None:
    """The language menu at the top of every page (its button's name is in the page's
    language)."""
    menu = page.locator("form", has=page.locator("#page-language"))
    menu.locator("#page-language").select_option(language)
    menu.get_by_role("button").click()
    page.wait_for_load_state()


@contextmanager
def in_portuguese(page: Any, world: World) -> Iterator[None]:
    """The page again after choosing Portuguese in its language menu (for a test's NAME-pt_BR
    screenshot of the state it made); the account reads English again afterwards."""
    try:
        choose_language(page, "pt_BR")
        yield
    finally:
        world.store.set_admin_language(ADMIN, None)  # the module's other tests read English


def test_read_every_page_in_portuguese_after_choosing_the_language(
        page: Any, browser: Any, world: World, cast: dict[str, int]) -> None:
    """The language menu on every page: the account reads Portuguese from the next page on
    (money and dates as in Brazil), on a phone too, and can go back to English."""
    log_in(page)
    try:
        choose_language(page, "pt_BR")
        assert page.get_by_role("heading", name="Visão geral").is_visible()
        for path, name, portuguese, english in PORTUGUESE_PAGES:
            page.goto(path.format(**cast))
            assert page.locator("h1").first.is_visible()
            check_portuguese(page, portuguese, english)
            screenshot(page, f"{name}-pt_BR")
            if name == "dashboard":
                # today's figures, counted live (a past day's: "Último retrato: ...")
                heading = re.compile(r"(Hoje|Último retrato): \d\d/\d\d/\d{4}")
                assert page.get_by_text(heading).is_visible()
            if name == "inbox":
                row = page.locator("tr", has_text=KEPT_DEAD_LETTER)
                assert row.get_by_role("button", name="Descartar").is_visible()
        _phone_overview_in_portuguese(browser, world)
        choose_language(page, "en")
        page.wait_for_url(re.compile(r"/admin/promises"))
        assert page.get_by_role("heading", name="Promises to pay").is_visible()
    finally:
        world.store.set_admin_language(ADMIN, None)  # the module's other tests read English


def _phone_overview_in_portuguese(browser: Any, world: World) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844},
                                  base_url=world.bridge_url, is_mobile=True)
    phone = context.new_page()
    try:
        log_in(phone)  # the login page follows [bridge] language (en); the account pt_BR
        check_portuguese(phone, PORTUGUESE_PAGES[0][2], PORTUGUESE_PAGES[0][3])
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 400, f"the Portuguese overview is {width}px wide on a 390px phone"
        screenshot(phone, "overview-phone-pt_BR")
    finally:
        context.close()


@pytest.fixture(scope="module")
def portuguese_bridge(world: World) -> Iterator[str]:
    """A second bridge over the same database whose ``[bridge] language`` is pt_BR (as a
    Brazilian installation's, the default): the language of its login page, and of an account
    that chose none."""
    settings = world.settings.replace(bridge={"language": "pt_BR"})
    app = create_app(settings, store=world.store, clock=wall,
                     business_clock=lambda: world.sandbox.clock.aware)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def test_the_login_page_follows_the_bridge_language(browser: Any, cast: dict[str, int],
                                                    portuguese_bridge: str) -> None:
    with watched_page(browser, portuguese_bridge, 1280, 860) as page:
        page.goto("/admin/")
        assert page.url.endswith("/admin/login?next=/admin/")
        check_portuguese(page, ["Entrar no vipgate", "Conta", "Senha"],
                         ["Log in to vipgate", "Account", "Password", "Log in"])
        screenshot(page, "login-pt_BR")
        page.get_by_label("Conta").fill(ADMIN)
        page.get_by_label("Senha").fill("not the password")
        page.get_by_role("button", name="Entrar").click()
        assert page.get_by_text("Conta ou senha incorreta.").is_visible()
        page.get_by_label("Conta").fill(ADMIN)
        page.get_by_label("Senha").fill(PASSWORD)
        page.get_by_role("button", name="Entrar").click()
        page.wait_for_url(re.compile(r"/admin/$"))
        # no language chosen for the account: the bridge's
        check_portuguese(page, PORTUGUESE_PAGES[0][2], PORTUGUESE_PAGES[0][3])
