"""The WHMCS/PHP side in Portuguese and English (issue 18 item 3): the ticket gate refuses in the
language the client reads the client area in (the stub sends it: WHMCS passes none to
TicketOpenValidation), the stub's own refusal when the bridge does not answer, the addon
module's settings form and its Activate / Deactivate messages in the admin's WHMCS language,
and the field names `vipgate install-stub --addon` tells the operator to fill in. Run by the real
``php`` (and, where the stub's Python emulation has the same path, by it too)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bridge.sandbox.forwarder import PHP_DIR
from bridge.settings import DEFAULT_BLOCK_MESSAGES
from tests.helpers import SECRET
from tests.php_helpers import CaptureServer, Whmcs, addon_words, verified, whmcs_folder
from tests.test_engine import vip_client
from tests.world import World, make_world

ENGLISH_REFUSAL = ("Support tickets are temporarily unavailable. "
                   "Please try again in a few minutes.")
PORTUGUESE_REFUSAL = ("A abertura de chamados está temporariamente indisponível. "
                      "Tente novamente em alguns minutos.")
QUESTION = {"clientId": 42, "contactId": 0, "name": "", "email": "", "isAdmin": False,
            "departmentId": 1, "subject": "Ajuda", "message": "Oi", "priority": "Medium",
            "relatedService": "", "customfields": []}
ENGLISH_BLOCK = DEFAULT_BLOCK_MESSAGES["en"].split(" (")[0]  # "Your account has overdue invoices"
PORTUGUESE_BLOCK = DEFAULT_BLOCK_MESSAGES["pt_BR"].split(" (")[0]


def _whmcs_tables(site: Whmcs, client_language: str | None, default: str | None) -> None:
    """WHMCS's tblclients (client 42) and tblconfiguration (its Language), as far as given."""
    engine = sa.create_engine(site.spool_url)
    try:
        with engine.begin() as conn:
            if client_language is not None:
                conn.execute(sa.text("CREATE TABLE tblclients (id INTEGER PRIMARY KEY, "
                                     "language TEXT)"))
                conn.execute(sa.text("INSERT INTO tblclients (id, language) VALUES (42, :l)"),
                             {"l": client_language})
            if default is not None:
                conn.execute(sa.text("CREATE TABLE tblconfiguration (setting VARCHAR(64) "
                                     "PRIMARY KEY, value TEXT)"))
                conn.execute(sa.text("INSERT INTO tblconfiguration (setting, value) "
                                     "VALUES ('Language', :l)"), {"l": default})
    finally:
        engine.dispose()


# --- the ticket gate: the question carries the client's language ------------------------------


@pytest.mark.parametrize(("session", "client_language", "default", "sent"), [
    ({"uid": 42, "Language": "portuguese-br"}, "english", "english", "portuguese-br"),
    ({"uid": 42, "Language": "English"}, "portuguese-br", None, "English"),
    ({"uid": 42}, "portuguese-br", "english", "portuguese-br"),
    ({"uid": 42, "Language": ""}, "", "portuguese-br", "portuguese-br"),
    ({}, None, "portuguese-br", "portuguese-br"),  # no tblclients to read: WHMCS's default
    ({}, None, None, None),  # nothing known: no language sent (the bridge's default)
], ids=["the session's", "the session's, as written", "the client's", "WHMCS's default",
        "default without tblclients", "none"])
def test_the_gate_question_carries_the_language_the_client_reads(
        site_any_db: Whmcs, capture: Callable[..., CaptureServer], session: dict[str, Any],
        client_language: str | None, default: str | None, sent: str | None) -> None:
    site = site_any_db
    _whmcs_tables(site, client_language, default)
    server = capture()
    site.install(server.url)
    site.fire("TicketOpenValidation", {**QUESTION, "__session__": session})
    [request] = server.requests
    question = verified(request)
    assert question["hook"] == "TicketOpenValidation"
    assert question["vars"].get("language") == sent
    assert {k: v for k, v in question["vars"].items() if k != "language"} == {
        "clientId": 42, "contactId": 0, "isAdmin": False, "departmentId": 1,
        "priority": "Medium"}


# --- the stub's own refusal: the bridge does not answer, fail_open off ------------------------


@pytest.mark.parametrize(("session", "client_language", "refusal"), [
    ({"uid": 42, "Language": "portuguese-br"}, None, PORTUGUESE_REFUSAL),
    ({"uid": 42, "Language": "Portuguese-PT"}, None, PORTUGUESE_REFUSAL),
    ({"uid": 42}, "portuguese-br", PORTUGUESE_REFUSAL),
    ({"uid": 42, "Language": "english"}, "portuguese-br", ENGLISH_REFUSAL),
    ({"uid": 42, "Language": "french"}, None, ENGLISH_REFUSAL),
    ({}, None, ENGLISH_REFUSAL),
], ids=["portuguese-br", "portuguese-pt", "the client's", "english", "another", "unknown"])
def test_the_stubs_own_refusal_is_in_the_clients_language(
        site: Whmcs, closed_url: str, session: dict[str, Any], client_language: str | None,
        refusal: str) -> None:
    _whmcs_tables(site, client_language, None)
    site.install(closed_url, fail_open=False)
    result = site.fire("TicketOpenValidation", {**QUESTION, "__session__": session})
    assert result["returns"] == [refusal]
    site.install(closed_url, fail_open=True)  # fail open: nothing to say
    assert site.fire("TicketOpenValidation", {**QUESTION, "__session__": session})[
        "returns"] == []


# --- the whole path: the sandbox's client area, the real stub, the bridge ----------------------


@pytest.fixture(params=[pytest.param(True, marks=pytest.mark.php, id="php"),
                        pytest.param(False, id="python")])
def world(request: pytest.FixtureRequest, database_url: str,
          tmp_path: Path) -> Iterator[World]:
    with make_world(database_url, tmp_path, php=request.param) as w:
        yield w


def _blocked(w: World, name: str, language: str) -> int:
    """A suspended client (the gate blocks it) whose WHMCS language is ``language``."""
    client, _, _ = vip_client(w, name, due="2026-10-26")
    with w.sandbox.quiet():
        w.sandbox.update_client(client, language=language)
    return client


def test_a_blocked_ticket_is_refused_in_the_language_of_the_client_area(world: World) -> None:
    """The bridge's [bridge] language is English here. The client area runs the hook in the
    client's session: its language is the client's WHMCS language unless the client picked
    another in the client area's menu."""
    w = world
    ana = _blocked(w, "Ana", "portuguese-br")
    bruno = _blocked(w, "Bruno", "english")
    w.sandbox.run_cron()
    w.drain()
    for client in (ana, bruno):
        assert w.store.get_standing(client).standing == "suspended"  # type: ignore[union-attr]

    def refusal(client: int, language: str | None = None) -> str:
        result = w.sandbox.submit_ticket_form(client, w.support, "Site fora do ar",
                                              urgency="High", language=language)
        assert result.ticket_id is None
        [error] = result.errors
        return error

    assert refusal(ana).startswith(PORTUGUESE_BLOCK)
    assert refusal(bruno).startswith(ENGLISH_BLOCK)
    # the language picked in the client area, over the client's WHMCS one
    assert refusal(ana, "english").startswith(ENGLISH_BLOCK)
    assert refusal(bruno, "portuguese-br").startswith(PORTUGUESE_BLOCK)
    # the bridge still lets both open a ticket in billing
    opened = w.sandbox.submit_ticket_form(ana, w.billing, "Boleto", urgency="Low")
    assert opened.ticket_id is not None and not opened.errors


# --- the addon module in the admin's language --------------------------------------------------


def _active_addon(whmcs: Whmcs, language: str) -> dict[str, Any]:
    whmcs.install_addon()
    return dict(whmcs.addon("activate", {"__admin_language__": language})["response"])


@pytest.mark.php
@pytest.mark.parametrize(("language", "active", "inactive"), [
    ("portuguese-br", "O vipgate está ativo. Agora abra Configure, preencha a URL da ponte e o "
     "Segredo do webhook", "O vipgate está desativado: os hooks dele não encaminham mais nada."),
    ("portuguese-pt", "O vipgate está ativo.", "O vipgate está desativado:"),
    ("english", "vipgate is active. Now open Configure, enter the Bridge URL and the Webhook "
     "secret", "vipgate is deactivated: its hooks no longer forward anything."),
    ("french", "vipgate is active.", "vipgate is deactivated:"),
])
def test_activate_and_deactivate_speak_the_admins_language(
        whmcs_any_db: Whmcs, language: str, active: str, inactive: str) -> None:
    """WHMCS passes MODULE_activate() and MODULE_deactivate() no language: the module reads the
    admin's (tbladmins.language of the session's admin)."""
    whmcs = whmcs_any_db
    answer = _active_addon(whmcs, language)
    assert answer["status"] == "success" and answer["description"].startswith(active)
    whmcs.fire("InvoicePaid", {"invoiceid": 7})  # waits: no settings yet
    answer = whmcs.addon("deactivate", {"__admin_language__": language})["response"]
    assert answer["status"] == "success" and answer["description"].startswith(inactive)
    waiting = ("1 evento(s) à espera, 0 recusado(s)" if language.startswith("portuguese")
               else "1 event(s) waiting, 0 rejected")
    assert waiting in answer["description"]
    again = whmcs.addon("activate", {"__admin_language__": language})["response"]
    assert ("1 evento(s) guardado(s) de antes aguardam" if language.startswith("portuguese")
            else "1 event(s) kept from before wait") in again["description"]


@pytest.mark.php
def test_a_failed_activation_says_why_in_the_admins_language(whmcs: Whmcs) -> None:
    whmcs.install_addon()
    # a table of that name the stub cannot use: its columns are not the outbox's
    whmcs.execute("CREATE TABLE mod_vipgate_state (unrelated TEXT)")
    answer = whmcs.addon("activate", {"__admin_language__": "portuguese-br"})["response"]
    assert answer["status"] == "error"
    assert answer["description"].startswith(
        "o vipgate não conseguiu criar as tabelas dele (mod_vipgate_spool, mod_vipgate_state)")


def _config(whmcs: Whmcs, language: str) -> dict[str, Any]:
    """vipgate_config() as WHMCS calls it, for an admin whose WHMCS language is ``language``."""
    whmcs.install_addon()
    whmcs.addon("activate", {"__admin_language__": language})  # the admin's row in tbladmins
    script = (f"require {json.dumps(str(PHP_DIR / 'bootstrap.php'))}; "
              "$_SESSION = ['adminid' => 1]; "
              f"require {json.dumps(str(whmcs.addon_dir / 'vipgate.php'))}; "
              "echo json_encode(vipgate_config(), JSON_UNESCAPED_UNICODE);")
    done = subprocess.run([whmcs.php, "-r", script], capture_output=True, text=True,
                          env=whmcs.env(), timeout=60, check=False)
    assert done.returncode == 0 and done.stderr == "", done.stdout + done.stderr
    return dict(json.loads(done.stdout))



@pytest.mark.php
@pytest.mark.parametrize("language", ["portuguese-br", "english"])
def test_the_settings_form_is_in_the_admins_language(whmcs: Whmcs, language: str) -> None:
    config = _config(whmcs, language)
    words = addon_words(whmcs.php, language)
    fields = config["fields"]
    assert list(fields) == ["bridge_url", "secret", "fail_open", "connect_timeout_ms",
                            "timeout_ms", "validation_timeout_ms", "panel_timeout_ms",
                            "precron_timeout_ms"]  # the stored settings' keys never change
    for key, field in fields.items():
        assert field["FriendlyName"] == words[f"field_{key}"], key
        assert field["Description"] == words[f"field_{key}_help"], key
    assert config["description"] == words["module_description"]
    if language == "portuguese-br":
        assert fields["bridge_url"]["FriendlyName"] == "URL da ponte"
        assert fields["fail_open"]["FriendlyName"] == "Permitir chamados sem resposta"


@pytest.mark.php
def test_the_page_says_what_is_wrong_with_the_settings_in_the_admins_language(
        whmcs: Whmcs) -> None:
    whmcs.install_addon()
    whmcs.addon("activate")
    pt = whmcs.addon("output", {"__admin_language__": "portuguese-br"})["output"]
    assert "a URL da ponte (http:// ou https://) e o Segredo do webhook (whsec_...) não estão " \
           "preenchidos" in pt
    assert "not filled in" not in pt
    whmcs.addon("configure", {"bridge_url": "https://vipgate.example.com", "secret": "whsec_x"})
    pt = whmcs.addon("output", {"__admin_language__": "portuguese-br"})["output"]
    assert "o Segredo do webhook do addon não pode ser usado" in pt
    en = whmcs.addon("output", {"__admin_language__": "english"})["output"]
    assert "the addon's Webhook secret setting is unusable" in html_text(en)
    # the System Activity Log keeps English whatever the admin reads
    whmcs.fire("InvoicePaid", {"invoiceid": 7})
    assert any("Webhook secret setting is unusable" in line for line in whmcs.activity())


def html_text(markup: str) -> str:
    return markup.replace("&#039;", "'").replace("&gt;", ">")


# --- install-stub --addon: the field names as the addon's form shows them ----------------------


def _install_addon_output(tmp_path: Path, language: str) -> list[str]:
    root = whmcs_folder(tmp_path)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("VIPGATE_")}
    environment.update({"VIPGATE_WEBHOOK_SECRETS": SECRET, "VIPGATE_LANGUAGE": language,
                        "VIPGATE_BRIDGE_PUBLIC_URL": "https://vipgate.example.com"})

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bridge", *args], cwd=tmp_path,
                              env=environment, capture_output=True, text=True, timeout=60,
                              check=False)

    assert run("db", "upgrade").returncode == 0
    result = run("install-stub", "--addon", str(root))
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


@pytest.mark.php
@pytest.mark.parametrize(("cli", "lang_file"), [("pt_BR", "portuguese-br"), ("en", "english")])
def test_install_stub_addon_names_the_fields_as_the_form_does(
        tmp_path: Path, php: str, cli: str, lang_file: str) -> None:
    words = addon_words(php, lang_file)
    lines = _install_addon_output(tmp_path, cli)
    for key, value in (("bridge_url", "https://vipgate.example.com"), ("secret", SECRET)):
        [line] = [line for line in lines if line.endswith(value)]
        assert line.strip().startswith(words[f"field_{key}"] + ":"), line
    assert any(line.strip().startswith(words["field_fail_open"] + ":") for line in lines)
    note = [line for line in lines if "Bridge URL, Webhook secret, Allow tickets" in line]
    if cli == "pt_BR":  # the English names too: the admin area may be in English
        assert note == ["(Numa área administrativa do WHMCS em inglês: Bridge URL, Webhook "
                        "secret, Allow tickets without an answer.)"]
    else:
        assert note == []
