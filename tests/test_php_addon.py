"""The stub as a WHMCS addon module (modules/addons/vipgate/), with the real ``php`` and the
sandbox's stand-in for Setup > Addon Modules (``bridge/sandbox/php/addon.php``): activation
creates vipgate's tables, the settings are read from tbladdonmodules, the hooks are silent
while the module is deactivated, a move from the includes/hooks install loses no spooled event
and sends no hook twice, and the module's page shows the bridge and the outbox. On SQLite and
MariaDB where the database matters.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

import bridge
from bridge.settings import Settings, default_settings
from bridge.whmcs import schema as whmcs_schema
from bridge.whmcs import stub_install
from bridge.whmcs.stub_install import ADDON_INSTALL, HOOKS_INSTALL, install_addon
from tests.conftest import LiveBridge
from tests.helpers import SECRET
from tests.php_helpers import CaptureServer, Whmcs, addon_words, verified, whmcs_folder
from whmcs_php_stub import php_source, stub_source

pytestmark = pytest.mark.php

GENERIC_REFUSAL = ("Support tickets are temporarily unavailable. "
                   "Please try again in a few minutes.")
QUESTION = {"clientId": 42, "contactId": 0, "isAdmin": False, "departmentId": 1,
            "priority": "Medium"}


@pytest.fixture
def settings(database_url: str) -> Settings:
    return default_settings().replace(bridge={"database_url": database_url},
                                      webhook={"secrets": SECRET})


def _active(whmcs: Whmcs, url: str, **fields: str) -> None:
    """The addon installed, activated and configured with ``url`` and the test secret."""
    whmcs.install_addon()
    assert whmcs.addon("activate")["response"]["status"] == "success"
    whmcs.addon("configure", {"bridge_url": url, "secret": SECRET, **fields})


def _tables(whmcs: Whmcs) -> set[str]:
    engine = sa.create_engine(whmcs.spool_url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


# --- install ------------------------------------------------------------------------------------


def test_install_addon_writes_the_module_with_the_one_stub(tmp_path: Path, php: str) -> None:
    root = whmcs_folder(tmp_path)
    written, upgraded = install_addon(root)
    assert written == [root / f.path for f in ADDON_INSTALL] and upgraded == []
    folder = root / "modules" / "addons" / "vipgate"
    assert sorted(p.name for p in folder.iterdir()) == ["hooks.php", "lang", "vipgate.php",
                                                        "vipgate_stub.php"]
    assert sorted(p.name for p in (folder / "lang").iterdir()) == ["english.php",
                                                                   "portuguese-br.php"]
    assert (folder / "vipgate_stub.php").read_text() == stub_source()
    assert (folder / "hooks.php").read_text() == php_source("addon/hooks.php")
    assert not (root / "includes" / "hooks").exists()  # nothing of the other install
    for path in written:  # neither runs outside WHMCS
        done = subprocess.run([php, str(path)], capture_output=True, text=True, check=False)
        assert "cannot be accessed directly" in done.stdout


def test_install_addon_brings_an_includes_hooks_install_to_this_version(
        whmcs: Whmcs, closed_url: str) -> None:
    """A stub from before the addon declared vipgate_config(), which the addon module declares
    too: left as it was, WHMCS would stop with a fatal error. Its settings file stays."""
    whmcs.install(closed_url)
    config = (whmcs.hook_dir / "_vipgate_config.php").read_text()
    (whmcs.hook_dir / "vipgate.php").write_text("<?php function vipgate_config() {}\n")
    upgraded = install_addon(whmcs.root)[1]
    assert upgraded == [whmcs.root / f.path for f in HOOKS_INSTALL[1:]]
    assert (whmcs.hook_dir / "vipgate.php").read_text() == php_source("hooks_loader.php")
    assert (whmcs.hook_dir / "_vipgate_config.php").read_text() == config


@pytest.mark.parametrize("install", ["includes/hooks", "addon"])
def test_a_missing_stub_file_never_stops_whmcs(
        whmcs: Whmcs, capture: Callable[..., CaptureServer], install: str) -> None:
    """Requiring a missing file is a fatal error on every WHMCS page: the loaders check."""
    server = capture()
    if install == "addon":
        _active(whmcs, server.url)
        stub = whmcs.addon_dir / "vipgate_stub.php"
    else:
        whmcs.install(server.url)
        stub = whmcs.hook_dir / "_vipgate_stub.php"
    stub.unlink()
    done = whmcs.run("InvoicePaid", {"invoiceid": 7})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["returns"] == []
    assert f"vipgate: {stub} is missing: no hook is forwarded" in done.stderr
    assert server.requests == []


# --- activation and settings --------------------------------------------------------------------


def test_activation_creates_the_tables_as_whmcs_records_it(whmcs_any_db: Whmcs) -> None:
    whmcs = whmcs_any_db
    whmcs.install_addon()
    assert not {"mod_vipgate_spool", "mod_vipgate_state"} & _tables(whmcs)
    answer = whmcs.addon("activate")["response"]
    assert answer["status"] == "success"
    assert "Bridge URL" in answer["description"] and "Webhook secret" in answer["description"]
    assert {"mod_vipgate_spool", "mod_vipgate_state"} <= _tables(whmcs)
    assert whmcs.addon_settings() == {"version": bridge.__version__}
    assert whmcs.whmcs_setting("ActiveAddonModules") == "vipgate"
    assert whmcs.whmcs_setting("AddonModulesHooks") == "vipgate"


def test_the_sandbox_whmcs_database_has_what_the_addon_needs(
        whmcs: Whmcs, capture: Callable[..., CaptureServer]) -> None:
    """The tables as bridge/whmcs/schema.py declares them (the sandbox's WHMCS database)."""
    engine = sa.create_engine(whmcs.spool_url)
    whmcs_schema.metadata.create_all(engine)
    columns = [c["name"] for c in sa.inspect(engine).get_columns("tbladdonmodules")]
    engine.dispose()
    assert columns == ["id", "module", "setting", "value"]  # as in WHMCS 8.4
    server = capture()
    _active(whmcs, server.url)
    assert whmcs.addon_settings()["bridge_url"] == server.url
    whmcs.fire("InvoicePaid", {"invoiceid": 7})
    assert len(server.batches()) == 1


def test_settings_are_read_from_tbladdonmodules(
        whmcs_any_db: Whmcs, capture: Callable[..., CaptureServer], closed_url: str) -> None:
    whmcs = whmcs_any_db
    server = capture()
    _active(whmcs, server.url + "/", fail_open="", __access__=[1, 2])
    stored = whmcs.addon_settings()
    assert stored["bridge_url"] == server.url + "/" and stored["secret"] == SECRET
    assert stored["fail_open"] == "" and stored["access"] == "1,2"
    assert stored["timeout_ms"] == "2000"  # a field left out takes its default
    whmcs.fire("InvoicePaid", {"invoiceid": 7})
    [batch] = server.batches()
    assert batch.path == "/hooks/whmcs/batch"
    [event] = verified(batch)["events"]
    assert event["hook"] == "InvoicePaid" and event["vars"] == {"invoiceid": 7}
    # fail_open unticked in WHMCS's form: a ticket the bridge cannot answer is refused
    whmcs.addon("configure", {"bridge_url": closed_url, "secret": SECRET, "fail_open": ""})
    result = whmcs.fire("TicketOpenValidation", QUESTION)
    assert result["returns"] == [GENERIC_REFUSAL]
    assert any("the addon's settings" in line for line in whmcs.activity()), whmcs.activity()


UNUSABLE_SECRET = "Webhook secret setting is unusable: it is not a whsec_ secret, also not " \
    "once decrypted with WHMCS's DecryptPassword"


@pytest.mark.parametrize(("fields", "encrypted", "words"), [
    ({}, False, "are not filled in"),
    ({"bridge_url": "vipgate.example.com", "secret": SECRET}, False, "are not filled in"),
    ({"bridge_url": "https://vipgate.example.com", "secret": "hunter2"}, False, UNUSABLE_SECRET),
    # stored encrypted, DecryptPassword gives back what was typed: still not a secret
    ({"bridge_url": "https://vipgate.example.com", "secret": "hunter2"}, True, UNUSABLE_SECRET),
    # a value DecryptPassword cannot decrypt
    ({"bridge_url": "https://vipgate.example.com", "secret": "aHVudGVyMg=="}, False,
     UNUSABLE_SECRET),
])
def test_an_active_addon_without_usable_settings_keeps_events_until_they_are_entered(
        whmcs: Whmcs, capture: Callable[..., CaptureServer], fields: dict[str, str],
        encrypted: bool, words: str) -> None:
    server = capture()
    whmcs.encrypt_passwords = encrypted
    whmcs.install_addon()
    whmcs.addon("activate")
    if fields:
        whmcs.addon("configure", fields)
    whmcs.fire("InvoicePaid", {"invoiceid": 7})
    whmcs.fire("AfterCronJob", {})
    assert server.requests == []
    [waiting] = whmcs.spool()
    [line] = [line for line in whmcs.activity() if words in line]
    assert "(events wait in mod_vipgate_spool); enter " in line
    assert line.endswith(" in Setup > Addon Modules > vipgate > Configure")
    logged = " ".join(whmcs.activity()) + (whmcs.log.read_text() if whmcs.log.exists() else "")
    assert "hunter2" not in logged and "aHVudGVyMg" not in logged
    stored = whmcs.addon_settings().get("secret", "")
    assert stored == "" or stored not in logged  # the stored value is never logged either
    whmcs.addon("configure", {"bridge_url": server.url, "secret": SECRET})
    whmcs.fire("AfterCronJob", {})
    assert next(wid for wid, _ in server.delivered()) == waiting["webhook_id"]
    assert whmcs.spool() == []


@pytest.mark.parametrize("encrypted", [False, True], ids=["stored-as-typed", "stored-encrypted"])
def test_the_secret_works_whether_whmcs_stores_it_as_typed_or_encrypted(
        whmcs_any_db: Whmcs, capture: Callable[..., CaptureServer], encrypted: bool) -> None:
    """WHMCS's documentation does not say whether an addon's password field is stored
    encrypted: a stored value that is not a whsec_ secret goes through WHMCS's local API
    DecryptPassword first, in the hooks and on the module's page."""
    whmcs = whmcs_any_db
    whmcs.encrypt_passwords = encrypted
    server = capture()
    _active(whmcs, server.url)
    stored = whmcs.addon_settings()["secret"]
    assert (stored != SECRET and not stored.startswith("whsec_")) if encrypted \
        else stored == SECRET
    whmcs.fire("InvoicePaid", {"invoiceid": 7})
    [batch] = server.batches()
    [event] = verified(batch)["events"]  # signed with the secret itself
    assert event["vars"] == {"invoiceid": 7}
    page = _page(whmcs)
    assert "Settings" not in page and page["Bridge"] == server.url + "/hooks/whmcs"
    assert not [line for line in whmcs.activity() if "secret" in line]


@pytest.mark.parametrize(("stored", "allowed"), [
    ("on", True), ("1", True), ("yes", True), ("TRUE", True),
    ("", False), ("off", False), ("0", False), (None, False),
])
def test_fail_open_is_read_whichever_way_whmcs_stores_a_ticked_box(
        whmcs: Whmcs, closed_url: str, stored: str | None, allowed: bool) -> None:
    """A ticked yesno is 'on' in WHMCS's own settings; for an addon's field that is not
    documented: '1', 'yes' and 'true' count as ticked too, empty or no row as unticked."""
    _active(whmcs, closed_url)
    if stored is None:
        whmcs.query("tbladdonmodules", "DELETE FROM tbladdonmodules WHERE module = 'vipgate' "
                    "AND setting = 'fail_open'")
    else:
        whmcs.query("tbladdonmodules", "UPDATE tbladdonmodules SET value = :v "
                    "WHERE module = 'vipgate' AND setting = 'fail_open'", v=stored)
    result = whmcs.fire("TicketOpenValidation", QUESTION)
    assert result["returns"] == ([] if allowed else [GENERIC_REFUSAL])


def test_a_timeout_that_is_no_number_takes_its_default_and_is_reported(
        whmcs: Whmcs, capture: Callable[..., CaptureServer]) -> None:
    server = capture()
    _active(whmcs, server.url, timeout_ms="2 s")
    whmcs.fire("InvoicePaid", {"invoiceid": 7})
    assert len(server.batches()) == 1
    assert any('timeout_ms must be a whole number of milliseconds, not "2 s" (2000 used)' in line
               for line in whmcs.activity()), whmcs.activity()


# --- deactivation -------------------------------------------------------------------------------


def test_hooks_are_silent_while_deactivated_and_the_data_stays(
        whmcs_any_db: Whmcs, capture: Callable[..., CaptureServer], closed_url: str) -> None:
    whmcs = whmcs_any_db
    _active(whmcs, closed_url)
    whmcs.fire("InvoicePaid", {"invoiceid": 1})  # the bridge is down: it waits
    [waiting] = whmcs.spool()
    answer = whmcs.addon("deactivate")["response"]
    assert answer["status"] == "success"
    assert "1 event(s) waiting" in answer["description"]
    assert "DROP TABLE mod_vipgate_spool" in answer["description"]
    assert whmcs.addon_settings() == {}  # the sandbox deletes them (kept: the test below)
    assert whmcs.whmcs_setting("AddonModulesHooks") == ""
    server = capture()
    whmcs.fire("InvoicePaid", {"invoiceid": 2})
    whmcs.fire("AfterCronJob", {})
    assert [r["webhook_id"] for r in whmcs.spool()] == [waiting["webhook_id"]]  # kept, no new
    assert server.requests == []
    # a hooks.php WHMCS still loads (a stale AddonModulesHooks) finds no settings: silent
    whmcs.query("tblconfiguration", "UPDATE tblconfiguration SET value = 'vipgate' "
                "WHERE setting = 'AddonModulesHooks'")
    whmcs.query("tblactivitylog", "DELETE FROM tblactivitylog")
    whmcs.fire("InvoicePaid", {"invoiceid": 3})
    assert len(whmcs.spool()) == 1 and whmcs.activity() == []
    # activated and configured again: what waited is sent
    whmcs.addon("activate")
    whmcs.addon("configure", {"bridge_url": server.url, "secret": SECRET})
    whmcs.fire("AfterCronJob", {})
    assert [wid for wid, _ in server.delivered()][:1] == [waiting["webhook_id"]]
    assert whmcs.spool() == []


def test_deactivated_hooks_stay_silent_if_whmcs_keeps_the_settings_and_loads_hooks_php(
        whmcs: Whmcs, capture: Callable[..., CaptureServer]) -> None:
    """Whether WHMCS deletes a module's tbladdonmodules rows on deactivation, and whether it
    stops loading its hooks.php, is not documented: vipgate's own record decides."""
    server = capture()
    _active(whmcs, server.url)
    kept = whmcs.addon_settings()
    whmcs.addon("deactivate")
    for setting, value in kept.items():  # a WHMCS that keeps the rows
        whmcs.query("tbladdonmodules", "INSERT INTO tbladdonmodules (module, setting, value) "
                    "VALUES ('vipgate', :s, :v)", s=setting, v=value)
    whmcs.query("tblconfiguration", "UPDATE tblconfiguration SET value = 'vipgate' "
                "WHERE setting = 'AddonModulesHooks'")  # and still loads hooks.php
    whmcs.fire("InvoicePaid", {"invoiceid": 1})
    whmcs.fire("AfterCronJob", {})
    assert server.requests == [] and whmcs.spool() == []
    whmcs.addon("activate")  # activated again: the kept settings are used
    whmcs.fire("InvoicePaid", {"invoiceid": 2})
    assert [e["vars"] for _, e in server.delivered()] == [{"invoiceid": 2}]


def test_deactivation_that_cannot_be_recorded_is_refused(whmcs: Whmcs, closed_url: str) -> None:
    """Without its record the hooks would go on where WHMCS keeps loading them: the module
    answers error, which keeps it active."""
    _active(whmcs, closed_url)
    whmcs.query("mod_vipgate_state", "DROP TABLE mod_vipgate_state")
    whmcs.query("tbladdonmodules", "CREATE VIEW mod_vipgate_state AS SELECT 'x' AS name, 0 AS at")
    answer = whmcs.addon("deactivate")["response"]
    assert answer["status"] == "error"
    assert "could not record its deactivation" in answer["description"]
    assert whmcs.whmcs_setting("ActiveAddonModules") == "vipgate"


def test_an_activated_addon_without_any_row_keeps_its_events(whmcs: Whmcs) -> None:
    """Whether WHMCS writes a row (the version) on activation is not documented: an activated
    module with no row at all is active all the same, its events wait for the settings."""
    whmcs.install_addon()
    whmcs.addon("activate")
    whmcs.query("tbladdonmodules", "DELETE FROM tbladdonmodules")
    whmcs.fire("InvoicePaid", {"invoiceid": 7})
    assert len(whmcs.spool()) == 1
    assert any("are not filled in" in line for line in whmcs.activity()), whmcs.activity()


# --- the move from includes/hooks ---------------------------------------------------------------


def test_moving_from_includes_hooks_loses_no_spooled_event_and_sends_each_hook_once(
        whmcs_any_db: Whmcs, capture: Callable[..., CaptureServer], closed_url: str) -> None:
    whmcs = whmcs_any_db
    whmcs.install(closed_url)  # the includes/hooks install, its bridge unreachable
    for invoice in (1, 2):
        whmcs.fire("InvoicePaid", {"invoiceid": invoice})
    before = [r["webhook_id"] for r in whmcs.spool()]
    assert len(before) == 2
    stub_install.install_addon(whmcs.root)
    answer = whmcs.addon("activate")["response"]
    assert "2 event(s) kept from before" in answer["description"]
    assert "delete includes/hooks/vipgate.php" in answer["description"]
    # activated, settings not entered yet: the includes/hooks settings still forward (once)
    whmcs.fire("InvoicePaid", {"invoiceid": 3})
    assert len(whmcs.spool()) == 3
    server = capture()
    whmcs.addon("configure", {"bridge_url": server.url, "secret": SECRET})
    whmcs.fire("AfterCronJob", {})  # the addon's settings now: the flush empties the outbox
    delivered = [wid for wid, event in server.delivered() if event["hook"] == "InvoicePaid"]
    assert delivered[:2] == before and len(delivered) == len(set(delivered)) == 3
    assert whmcs.spool() == []
    assert any("both installed" in line for line in whmcs.activity()), whmcs.activity()
    assert "delete includes/hooks/vipgate.php" in _page(whmcs)["Also installed"]
    # the old install removed, as the addon says: the addon alone forwards
    for file in HOOKS_INSTALL:
        (whmcs.root / file.path).unlink()
    whmcs.fire("InvoicePaid", {"invoiceid": 4})
    assert [e["vars"] for _, e in server.delivered()][-1] == {"invoiceid": 4}
    assert len(server.delivered()) == 5  # 3 events, the heartbeat, and this one


# --- the module's page --------------------------------------------------------------------------


def _page(whmcs: Whmcs, variables: dict[str, str] | None = None) -> dict[str, str]:
    html = whmcs.addon("output", variables)["output"]
    rows = re.findall(r"<th[^>]*>(.*?)</th><td>(.*?)</td>", html)
    return {label: value for label, value in rows} | {"html": html}


def test_the_page_shows_the_bridge_the_outbox_and_the_versions(
        whmcs_any_db: Whmcs, live_bridge: LiveBridge, closed_url: str) -> None:
    whmcs = whmcs_any_db
    _active(whmcs, closed_url)
    for invoice in (1, 2, 3):
        whmcs.fire("InvoicePaid", {"invoiceid": invoice})
    whmcs.query("mod_vipgate_spool", "UPDATE mod_vipgate_spool SET rejected_at = created_at, "
                "last_error = 'refused' WHERE id = (SELECT MIN(id) FROM mod_vipgate_spool)"
                if "sqlite" in whmcs.spool_url else
                "UPDATE mod_vipgate_spool SET rejected_at = created_at, last_error = 'refused' "
                "ORDER BY id LIMIT 1")
    down = _page(whmcs)
    assert down["Stub version"] == bridge.__version__
    assert down["Bridge answers"].startswith("no: curl error 7")
    assert down["Bridge version"] == "not reported"
    assert down["Events waiting"].startswith("2, the oldest from 20")
    assert down["Events rejected"].startswith("1 (kept 30 days")
    assert "Deliveries" in down  # the breaker the failed deliveries opened
    whmcs.addon("configure", {"bridge_url": live_bridge.url, "secret": SECRET})
    whmcs.query("mod_vipgate_state", "DELETE FROM mod_vipgate_state")
    up = _page(whmcs)
    assert up["Bridge answers"] == "yes (HTTP 200)"
    assert up["Bridge version"] == bridge.__version__
    assert up["Bridge"] == live_bridge.url + "/hooks/whmcs"
    assert up["Events waiting"].startswith("2,") and "Deliveries" not in up
    assert f'href="{live_bridge.url}/admin/"' in up["html"]
    assert "Also installed" not in up


def test_the_page_takes_the_settings_whmcs_passes_in_vars(whmcs: Whmcs, closed_url: str) -> None:
    """WHMCS documents that the output function gets the module's settings in $vars."""
    _active(whmcs, closed_url)
    assert _page(whmcs)["Bridge"] == closed_url + "/hooks/whmcs"
    page = _page(whmcs, {"bridge_url": closed_url + "/passed", "secret": SECRET})
    assert page["Bridge"] == closed_url + "/passed/hooks/whmcs"
    assert "not filled in" in _page(whmcs, {"bridge_url": "", "secret": ""})["Settings"]


def test_the_page_of_an_unconfigured_addon_says_what_to_enter(whmcs: Whmcs) -> None:
    whmcs.install_addon()
    whmcs.addon("activate")
    page = _page(whmcs)
    assert "Bridge URL (http:// or https://) and Webhook secret (whsec_...) are not filled in" \
        in page["Settings"]
    assert page["Settings"].endswith("Setup &gt; Addon Modules &gt; vipgate &gt; Configure")
    assert page["Events waiting"] == "0" and "/admin/" not in page["html"]


def test_the_page_escapes_what_it_shows(whmcs: Whmcs, closed_url: str) -> None:
    _active(whmcs, closed_url.replace("http://", "http://<b>x</b>@"))
    html = _page(whmcs)["html"]
    assert "<b>" not in html and SECRET not in html



def test_every_word_of_the_page_has_its_portuguese_with_the_same_values(php: str) -> None:
    english, portuguese = addon_words(php, "english"), addon_words(php, "portuguese-br")
    assert sorted(portuguese) == sorted(english)
    for key, text in english.items():
        assert portuguese[key] != text, key  # translated
        assert portuguese[key].count("%s") == text.count("%s"), key


def test_the_page_speaks_the_admins_language(whmcs: Whmcs, closed_url: str) -> None:
    """WHMCS passes the module's lang file of the admin's language as $vars['_lang']; the
    words it lacks, or an admin language without a file, are English."""
    _active(whmcs, closed_url)
    whmcs.fire("InvoicePaid", {"invoiceid": 1})
    page = _page(whmcs, {"__admin_language__": "portuguese-br"})
    assert page["Versão do stub"] == bridge.__version__
    assert page["A ponte responde"].startswith("não: curl error 7")
    assert page["Versão da ponte"] == "não informada"
    assert page["Eventos à espera"].startswith("1, o mais antigo de 20")
    assert page["Eventos recusados"].startswith("0 (guardados por 30 dias")
    assert "Abrir a página de administração do vipgate" in page["html"]
    english = ["Stub version", "Bridge answers", "Events waiting", "not reported", "admin page"]
    assert [word for word in english if word in page["html"]] == []
    assert "Bridge answers" in _page(whmcs, {"__admin_language__": "french"})
    partial = _page(whmcs, {"_lang": {"stub_version": "Versão do stub"}})
    assert "Versão do stub" in partial and "Bridge answers" in partial


# --- the command --------------------------------------------------------------------------------


def _vipgate(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("VIPGATE_")}
    environment.update({"VIPGATE_WEBHOOK_SECRETS": SECRET, **env})
    return subprocess.run([sys.executable, "-m", "bridge", *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=60, check=False)


def test_install_stub_addon_prints_what_to_enter_in_whmcs(tmp_path: Path,
                                                          closed_url: str) -> None:
    root = whmcs_folder(tmp_path)
    stub_install.install_stub(root, closed_url, SECRET)  # the install it replaces
    assert _vipgate(tmp_path, "db", "upgrade").returncode == 0
    result = _vipgate(tmp_path, "install-stub", "--addon", str(root),
                      VIPGATE_BRIDGE_PUBLIC_URL="https://vipgate.example.com/",
                      VIPGATE_TICKETS_FAIL_OPEN="false")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line for line in lines if line.startswith("vipgate: wrote")] == [
        f"vipgate: wrote {root / f.path}" for f in ADDON_INSTALL]
    assert "  Bridge URL:                      https://vipgate.example.com" in lines
    assert f"  Webhook secret:                  {SECRET}" in lines
    assert any("Allow tickets without an answer: not ticked" in line for line in lines)
    assert any(f"then delete {root / 'includes/hooks/_vipgate_stub.php'}" in line
               for line in lines), result.stdout
    # and the includes/hooks install, written without --addon, warns of the addon beside it
    result = _vipgate(tmp_path, "install-stub", "--url", closed_url, str(root))
    assert result.returncode == 0, result.stderr
    assert "modules/addons/vipgate is installed too" in result.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--url", "ftp://x"], "must start with http:// or https://"),
    (["--url", "https://x"], "is not a WHMCS folder"),
])
def test_install_stub_addon_refuses_in_one_line(tmp_path: Path, args: list[str],
                                                message: str) -> None:
    (tmp_path / "site").mkdir()
    assert _vipgate(tmp_path, "db", "upgrade").returncode == 0
    result = _vipgate(tmp_path, "install-stub", "--addon", *args, str(tmp_path / "site"))
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "site" / "modules").exists()
