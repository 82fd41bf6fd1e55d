"""Trust unlock end to end (issue 19 item 5): the sandbox WHMCS and its cron, the bridge, and
the real PHP stub (``whmcs_php_stub/vipgate.php`` run by ``php``), on SQLite and MariaDB.

A client the cron suspended presses the banner's button on the client-area home (a POST the
stub turns into a signed question): its services are Active with Override Auto-Suspend until
the date, the cron spares them the next days, and the day after the date vipgate lifts the
override and the cron suspends them again. A second press in the same episode is refused;
paying ends the episode and lifts the override; a forged or missing token unlocks nothing; with
``[trust] enabled`` off there is no button and a POST does nothing."""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from bridge.sandbox import pages
from bridge.signing import trust_token
from bridge.store.audit import AuditFilter
from tests.helpers import SECRET
from tests.world import World, make_world

pytestmark = pytest.mark.php

TRUST_ON = {"enabled": "on", "days": "3", "max_per_year": "2"}


@pytest.fixture
def trusting(database_url: str, tmp_path: Path) -> Iterator[World]:
    with make_world(database_url, tmp_path, php=True, trust=TRUST_ON) as w:
        yield w


def suspended_client(w: World, name: str, *, language: str = "", amount: str = "89.90",
                     abuse: bool = False) -> tuple[int, int, int]:
    """A client whose service is past due since 26 Oct (today is 2 Nov), for the cron to
    suspend; ``abuse``: with a second service (the next id) staff suspended for abuse."""
    with w.sandbox.quiet():
        client = w.sandbox.add_client(name, "Souza", groupid=w.regular,
                                      datecreated="2020-01-15", language=language)
        service = w.sandbox.add_service(client, "2026-10-26", "Monthly", amount)
        if abuse:
            w.sandbox.add_service(client, "2026-12-26", "Monthly", "10.00",
                                  status="Suspended", suspendreason="Abuse: spam")
        invoice = w.sandbox.add_invoice(client, "2026-10-26",
                                        [("Hosting", service, "Plano", amount)])
    return client, service, invoice


def banner(page: str) -> str:
    return pages.hook_output(page)


def text(markup: str) -> str:
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def form_token(page: str) -> str:
    found = re.search(r'name="vipgate_token" value="([^"]*)"', page)
    assert found, "no unlock button on the page"
    return found.group(1)


def home(w: World, client: int) -> str:
    return pages.render_client_home(w.sandbox, client)


def press(w: World, client: int, token: str | None) -> str:
    """The banner's form posted to clientarea.php (as the browser does), with WHMCS's CSRF
    token; ``token`` None leaves vipgate's field out."""
    form = {"vipgate_action": "trust_unlock", "token": pages.csrf_token(client)}
    if token is not None:
        form["vipgate_token"] = token
    return pages.render_client_home(w.sandbox, client, form)


def service(w: World, service_id: int) -> dict[str, Any]:
    row = w.sandbox.service(service_id)
    assert row is not None
    return row


def cron_day(w: World) -> Any:
    """The next day's cron, and the worker catching up with its events."""
    w.sandbox.clock.advance(days=1)
    summary = w.sandbox.run_cron()
    w.drain()
    return summary


def test_a_suspended_client_unlocks_once_and_is_suspended_again_after_the_date(
        trusting: World) -> None:
    w = trusting
    bruno, hosting, _ = suspended_client(w, "Bruno")
    assert hosting in w.sandbox.run_cron().suspended
    w.drain()
    page = banner(home(w, bruno))
    assert "Unlock my services for 3 days" in page and "2026-11-06" in text(page)
    # WHMCS's CSRF token is in the form (put in by the stub, never sent to the bridge)
    assert f'name="token" value="{pages.csrf_token(bruno)}"' in page
    token = form_token(page)

    answered = banner(press(w, bruno, token))
    assert "Your services are unlocked until 2026-11-05" in text(answered)
    assert "viewinvoice.php?id=" in answered and "<form" not in answered
    unlocked = service(w, hosting)
    assert (unlocked["domainstatus"], unlocked["overideautosuspend"],
            str(unlocked["overidesuspenduntil"])) == ("Active", 1, "2026-11-05")
    # recorded: the episode's action (the data contract), the unlock, the audit row
    [episode] = w.store.episodes(bruno)
    [action] = [a for a in episode.actions if a.kind == "unlocked_by_trust"]
    assert (action.actor, action.detail) == ("client", "2026-11-05")
    [unlock] = w.store.client_unlocks(bruno)
    assert (unlock.state, unlock.service_ids, unlock.until) == (
        "applied", (hosting,), date(2026, 11, 5))
    [audited] = list(w.store.iter_audit(AuditFilter(client_id=bruno, action="trust_unlock")))
    assert audited.actor == "client" and f"#{hosting}" in audited.reasons[0]
    w.drain()  # AfterModuleUnsuspend: the client now reads as overdue

    # a second press in the same episode is refused, and the banner still says until when
    again = text(banner(press(w, bruno, token)))
    assert "already unlocked your services once" in again
    assert "unlocked until 2026-11-05" in again
    assert len(w.store.client_unlocks(bruno)) == 1

    # the cron spares the service through the date
    for _ in range(3):  # 3, 4 and 5 Nov
        summary = cron_day(w)
        assert hosting in summary.spared_override and hosting not in summary.suspended
    assert w.store.client_unlocks(bruno)[0].outcome is None
    # 6 Nov, unpaid: PreCronJob lifts vipgate's override first, then the cron suspends
    summary = cron_day(w)
    assert hosting in summary.suspended
    after = service(w, hosting)
    assert (after["domainstatus"], after["overideautosuspend"]) == ("Suspended", 0)
    [ended] = w.store.client_unlocks(bruno)
    assert ended.outcome == "expired" and ended.cleared_at is not None
    [lifted] = list(w.store.iter_audit(AuditFilter(client_id=bruno,
                                                   action="trust_unlock_end")))
    assert lifted.after == "expired" and f"#{hosting}" in " ".join(lifted.reasons)
    kinds = [a.kind for a in w.store.episodes(bruno)[0].actions]
    assert kinds[kinds.index("unlocked_by_trust") + 1:] == ["suspended"]
    # suspended again in the same episode: no button; a press with a good token of today is
    # refused (the old page's token is stale by now)
    assert "<form" not in banner(home(w, bruno))
    assert "could not be checked" in text(banner(press(w, bruno, token)))
    today = trust_token(SECRET, bruno, date(2026, 11, 6))
    assert "already unlocked" in text(banner(press(w, bruno, today)))
    assert len(w.store.client_unlocks(bruno)) == 1


def test_paying_while_unlocked_ends_the_episode_and_lifts_the_override(trusting: World) -> None:
    w = trusting
    carla, hosting, invoice = suspended_client(w, "Carla", language="portuguese-br")
    w.sandbox.run_cron()
    w.drain()
    page = banner(home(w, carla))
    assert "Desbloquear meus serviços por 3 dias" in page and "06/11/2026" in text(page)
    answered = text(banner(press(w, carla, form_token(page))))
    assert "Seus serviços estão desbloqueados até 05/11/2026" in answered
    w.drain()
    w.sandbox.clock.advance(days=1)
    w.sandbox.add_payment(invoice)
    w.drain()
    [episode] = w.store.episodes(carla)
    assert episode.how == "paid"
    # the regular pass (every minute in the worker) lifts the override
    assert w.worker.settle_trust(force=True) == 1
    [unlock] = w.store.client_unlocks(carla)
    assert unlock.outcome == "paid"
    paid = service(w, hosting)
    assert (paid["domainstatus"], paid["overideautosuspend"]) == ("Active", 0)
    assert banner(home(w, carla)) == ""  # current: no banner


def test_a_forged_or_missing_token_unlocks_nothing(trusting: World) -> None:
    w = trusting
    dani, hosting, _ = suspended_client(w, "Dani")
    w.sandbox.run_cron()
    w.drain()
    other = suspended_client(w, "Eva")[0]
    cases = (None, "forged", trust_token(SECRET, other, date(2026, 11, 2)),
             trust_token(SECRET, dani, date(2026, 10, 30)))
    for token in cases:
        refused = text(banner(press(w, dani, token)))
        assert "could not be checked" in refused
    assert w.store.client_unlocks(dani) == []
    assert service(w, hosting)["domainstatus"] == "Suspended"
    # the right token still works afterwards
    assert "unlocked until" in text(banner(press(w, dani, form_token(banner(home(w, dani))))))


def test_services_staff_suspended_or_overrode_are_left_alone(trusting: World) -> None:
    """A service staff suspended for abuse stays suspended when the client unlocks; one on
    which staff set Override Auto-Suspend themselves is not unlocked either, and its override
    stays as staff left it."""
    w = trusting
    hugo, hugo_hosting, _ = suspended_client(w, "Hugo", abuse=True)
    fabio, hosting, _ = suspended_client(w, "Fabio")
    w.sandbox.run_cron()
    w.drain()
    assert "unlocked until" in text(banner(press(w, hugo, form_token(banner(home(w, hugo))))))
    assert service(w, hugo_hosting)["domainstatus"] == "Active"
    assert service(w, hugo_hosting + 1)["domainstatus"] == "Suspended"  # abuse: staff's
    assert w.store.client_unlocks(hugo)[0].service_ids == (hugo_hosting,)
    w.sandbox.update_service(hosting, overideautosuspend=True, overidesuspenduntil="2026-12-31")
    refused = text(banner(press(w, fabio, form_token(banner(home(w, fabio))))))
    assert "None of your services can be unlocked here" in refused
    assert w.store.client_unlocks(fabio) == []
    kept = service(w, hosting)
    assert (kept["domainstatus"], kept["overideautosuspend"],
            str(kept["overidesuspenduntil"])) == ("Suspended", 1, "2026-12-31")


def test_trust_off_shows_no_button_and_a_post_does_nothing(database_url: str,
                                                            tmp_path: Path) -> None:
    with make_world(database_url, tmp_path, php=True) as w:
        gil, hosting, _ = suspended_client(w, "Gil")
        w.sandbox.run_cron()
        w.drain()
        page = banner(home(w, gil))
        assert "Your services are suspended" in text(page) and "<form" not in page
        posted = banner(press(w, gil, trust_token(SECRET, gil, date(2026, 11, 2))))
        assert posted == page
        assert w.store.client_unlocks(gil) == []
        assert service(w, hosting)["domainstatus"] == "Suspended"


def test_whmcs_refusing_the_unsuspend_records_no_unlock_and_lifts_the_override(
        trusting: World) -> None:
    """WHMCS does not unsuspend (its API answers an error page): the client is told to try
    later, the override just set is lifted again, the unlock is recorded as failed (it does
    not count) and a later press works."""
    w = trusting
    ivo, hosting, _ = suspended_client(w, "Ivo")
    w.sandbox.run_cron()
    w.drain()
    token = form_token(banner(home(w, ivo)))
    w.sandbox.faults.push("http_error", times=100, action="ModuleUnsuspend")
    refused = text(banner(press(w, ivo, token)))
    w.sandbox.faults.clear()
    assert "could not be unlocked now" in refused
    kept = service(w, hosting)
    assert (kept["domainstatus"], kept["overideautosuspend"]) == ("Suspended", 0)
    [failed] = w.store.client_unlocks(ivo)
    assert (failed.state, failed.outcome) == ("failed", "failed")
    assert "unlocked_by_trust" not in [a.kind for a in w.store.episodes(ivo)[0].actions]
    assert w.store.unlock_days(ivo) == []
    assert "unlocked until 2026-11-05" in text(banner(press(w, ivo, token)))
    assert service(w, hosting)["domainstatus"] == "Active"


def test_an_override_staff_changed_meanwhile_is_left_as_staff_left_it(trusting: World) -> None:
    w = trusting
    juca, hosting, _ = suspended_client(w, "Juca")
    w.sandbox.run_cron()
    w.drain()
    assert "unlocked until" in text(banner(press(w, juca, form_token(banner(home(w, juca))))))
    w.sandbox.update_service(hosting, overideautosuspend=True, overidesuspenduntil="2026-11-20")
    w.sandbox.clock.advance(days=4)  # 6 Nov: the unlock's date has passed
    assert w.worker.settle_trust(force=True) == 1
    kept = service(w, hosting)
    assert (kept["overideautosuspend"], str(kept["overidesuspenduntil"])) == (1, "2026-11-20")
    [ended] = w.store.client_unlocks(juca)
    assert ended.outcome == "expired"
    [audited] = list(w.store.iter_audit(AuditFilter(client_id=juca, action="trust_unlock_end")))
    assert "no longer the one vipgate set" in " ".join(audited.reasons)


def test_an_unlock_interrupted_after_whmcs_took_it_is_settled_as_applied(
        trusting: World) -> None:
    """The bridge died between WHMCS's calls and the record: the pending unlock is settled
    by what WHMCS shows (its override and the service Active) once it is stale."""
    w = trusting
    kiko, hosting, _ = suspended_client(w, "Kiko")
    w.sandbox.run_cron()
    w.drain()
    opened = w.store.open_episode(kiko)
    assert opened is not None
    until = date(2026, 11, 5)
    pending = w.store.begin_unlock(kiko, opened.id, until, (hosting,), w.engine.now(),
                                   w.engine.today())
    assert pending is not None
    w.sandbox.update_service(hosting, overideautosuspend=True, overidesuspenduntil="2026-11-05")
    w.sandbox.unsuspend_service(hosting)
    assert w.worker.settle_trust(force=True) == 0  # not stale yet: it may still be running
    w.sandbox.clock.advance(minutes=11)
    assert w.worker.settle_trust(force=True) == 1
    [unlock] = w.store.client_unlocks(kiko)
    assert (unlock.state, unlock.service_ids) == ("applied", (hosting,))
    [action] = [a for a in w.store.episodes(kiko)[0].actions if a.kind == "unlocked_by_trust"]
    assert action.detail == "2026-11-05"


def test_the_stubs_python_emulation_unlocks_the_same_way(database_url: str,
                                                         tmp_path: Path) -> None:
    """The sandbox's Python stand-in for the stub (``PythonForwarder``) posts the form as the
    PHP stub does; a page without WHMCS's CSRF token gets the form without that field."""
    with make_world(database_url, tmp_path, trust=TRUST_ON) as w:
        assert w.forwarder.kind == "python"
        lia, hosting, _ = suspended_client(w, "Lia")
        w.sandbox.run_cron()
        w.drain()
        page = banner(home(w, lia))
        assert f'name="token" value="{pages.csrf_token(lia)}"' in page
        [tokenless] = w.sandbox.run_hook("ClientAreaHomepage", {
            "__session__": {"uid": lia, "Language": "english"}})
        assert 'name="vipgate_token"' in tokenless
        assert 'name="token"' not in tokenless and "data-vipgate-csrf" not in tokenless
        assert "unlocked until 2026-11-05" in text(banner(press(w, lia, form_token(page))))
        assert service(w, hosting)["domainstatus"] == "Active"


def test_the_php_stub_leaves_out_the_csrf_field_without_whmcs_token(trusting: World) -> None:
    w = trusting
    mia, _, _ = suspended_client(w, "Mia")
    w.sandbox.run_cron()
    w.drain()
    [tokenless] = w.sandbox.run_hook("ClientAreaHomepage", {
        "__session__": {"uid": mia, "Language": "english"}})
    assert 'name="vipgate_token"' in tokenless
    assert 'name="token"' not in tokenless and "data-vipgate-csrf" not in tokenless
    # the form is the only way in: a GET never unlocks, whatever its query says
    [plain] = w.sandbox.run_hook("ClientAreaHomepage", {
        "__session__": {"uid": mia, "Language": "english"},
        "vipgate_action": "trust_unlock", "vipgate_token": form_token(tokenless)})
    assert "unlocked until" not in text(plain)
    assert w.store.client_unlocks(mia) == []


def test_a_partly_applied_unlock_records_the_services_unsuspended(trusting: World) -> None:
    """One service WHMCS cannot unsuspend (its product has no module: ModuleUnsuspend answers
    an error): the others are unlocked and recorded, that one keeps no override, and the
    audit row names it."""
    w = trusting
    nina, hosting, _ = suspended_client(w, "Nina")
    with w.sandbox.quiet():
        manual = w.sandbox.add_product("Manual Hosting", servertype="")
        stuck = w.sandbox.add_service(nina, "2026-10-26", "Monthly", "20.00",
                                      status="Suspended", product=manual)
    w.sandbox.run_cron()
    w.drain()
    answered = text(banner(press(w, nina, form_token(banner(home(w, nina))))))
    assert "unlocked until 2026-11-05" in answered
    assert service(w, hosting)["domainstatus"] == "Active"
    left = service(w, stuck)
    assert (left["domainstatus"], left["overideautosuspend"]) == ("Suspended", 0)
    [unlock] = w.store.client_unlocks(nina)
    assert (unlock.state, unlock.service_ids) == ("applied", (hosting,))
    [audited] = list(w.store.iter_audit(AuditFilter(client_id=nina, action="trust_unlock")))
    assert f"#{hosting}" in audited.reasons[0] and f"#{stuck}" in audited.reasons[1]
