"""The PHP hook file, run by the real ``php`` binary against a real bridge over HTTP.

Each test installs the stub with ``install_stub`` into a throw-away WHMCS folder and fires
hooks through ``bridge/sandbox/php/fire.php``, which stands in for WHMCS (add_hook,
logModuleCall and a Capsule handing out a PDO to an SQLite file or a MariaDB database).
Without ``php`` on PATH these tests fail; set VIPGATE_TEST_SKIP_PHP=1 to skip them on purpose.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from bridge.model import CachedStanding, OverdueInvoice
from bridge.payloads import whitelist
from bridge.policy import gate
from bridge.sandbox.forwarder import PHP_DIR
from bridge.settings import Settings, default_settings
from bridge.whmcs import stub_install
from bridge.whmcs.stub_install import StubInstallError, install_stub
from hooks.registry import HOOK_SPEC
from tests.conftest import LiveBridge
from tests.helpers import FIXED_NOW, SECRET
from tests.php_helpers import SECRET_KEY_B64, CaptureServer, Whmcs, verified, whmcs_folder
from whmcs_php_stub import PHP_FILES, STUB_PATH, php_source, stub_source

pytestmark = pytest.mark.php

GENERIC_REFUSAL = ("Support tickets are temporarily unavailable. "
                   "Please try again in a few minutes.")
ID_PATTERN = re.compile(r"^msg_[0-9a-f]{32}$")
BATCH_ID_PATTERN = re.compile(r"^batch_[0-9a-f]{32}$")

# (vars WHMCS passes, vars the bridge must store); None = answered, not stored
HOOK_SAMPLES: dict[str, tuple[dict[str, Any], dict[str, Any] | None]] = {
    "InvoiceCreated": ({"source": "autogen", "user": "system", "invoiceid": 1001,
                        "status": "Unpaid"},
                       {"source": "autogen", "user": "system", "invoiceid": 1001,
                        "status": "Unpaid"}),
    "InvoicePaid": ({"invoiceid": 1002,
                     "invoice": {"__object__": {"id": 1002, "total": "89.90"}}},
                    {"invoiceid": 1002}),
    "InvoiceUnpaid": ({"invoiceid": "1003"}, {"invoiceid": 1003}),
    "InvoiceCancelled": ({"invoiceid": 1004}, {"invoiceid": 1004}),
    "InvoiceRefunded": ({"invoiceid": 1005}, {"invoiceid": 1005}),
    "AddInvoicePayment": ({"invoiceid": 1006}, {"invoiceid": 1006}),
    "AfterModuleSuspend": ({"params": {
        "serviceid": 31, "userid": 42, "pid": 3, "serverid": 1, "domain": "cliente.com.br",
        "username": "cliente", "password": "hunter2", "serverusername": "root",
        "serverpassword": "s3rv3r-pa55", "serveraccesshash": "WHM-ACCESS-HASH",
        "clientsdetails": {"email": "ana@example.com", "password": "x"},
        "configoptions": {}, "customfields": {}, "moduletype": "cpanel"}},
        {"serviceid": 31, "userid": 42, "pid": 3}),
    # without "params", the keys are read from the top level
    "AfterModuleUnsuspend": ({"serviceid": 32, "userid": 42, "password": "hunter2"},
                             {"serviceid": 32, "userid": 42}),
    "ClientAdd": ({"client_id": 42, "user_id": 7, "userid": 42, "firstname": "Ana",
                   "email": "ana@example.com", "password": "plain-text", "groupid": 0,
                   "customFields": {"1": "x"}, "notes": None},
                  {"client_id": 42, "user_id": 7, "groupid": 0}),
    "ClientEdit": ({"userid": 42, "firstname": "Ana", "email": "ana@example.com",
                    "groupid": 3, "status": "Active", "language": "portuguese-br",
                    "notes": None, "authdata": "secret-ish",
                    "olddata": {"groupid": 1, "status": "Active", "email": "old@example.com",
                                "password": "old"}},
                   {"userid": 42, "groupid": 3, "status": "Active",
                    "language": "portuguese-br", "olddata": {"groupid": 1, "status": "Active"}}),
    "ClientClose": ({"userid": 42}, {"userid": 42}),
    "TicketOpen": ({"ticketid": 501, "ticketmask": "ABC-123456", "userid": 42, "deptid": 1,
                    "deptname": "Suporte", "subject": "Site fora", "message": "Ajuda",
                    "priority": "Medium"},
                   {"ticketid": 501, "ticketmask": "ABC-123456", "userid": 42, "deptid": 1,
                    "priority": "Medium"}),
    "TicketOpenAdmin": ({"ticketid": 502, "ticketmask": "ABC-654321", "userid": 42,
                         "deptid": 1, "deptname": "Suporte", "subject": "Ligação",
                         "message": "Como combinado", "priority": "Low"},
                        {"ticketid": 502, "ticketmask": "ABC-654321", "userid": 42, "deptid": 1,
                         "priority": "Low"}),
    "TicketUserReply": ({"ticketid": 501, "replyid": 9, "userid": 42, "deptid": 1,
                         "deptname": "Suporte", "subject": "Site fora", "message": "E agora?",
                         "priority": "Medium", "status": "Customer-Reply"},
                        {"ticketid": 501, "replyid": 9, "userid": 42, "deptid": 1,
                         "priority": "Medium", "status": "Customer-Reply"}),
    "TicketPriorityChange": ({"ticketid": 501, "priority": "High"},
                             {"ticketid": 501, "priority": "High"}),
    "TicketOpenValidation": ({"clientId": 42, "contactId": 0, "name": "", "email": "",
                              "isAdmin": False, "departmentId": 1, "subject": "Site fora",
                              "message": "Ajuda", "priority": "Medium", "relatedService": "",
                              "customfields": []}, None),
    "PreCronJob": ({}, {}),
    "AfterCronJob": ({}, {}),
    "DailyCronJob": ({}, {}),
}


@pytest.fixture
def settings(database_url: str) -> Settings:
    """As conftest's, with department 2 as the billing department."""
    return default_settings().replace(bridge={"database_url": database_url},
                                      webhook={"secrets": SECRET},
                                      tickets={"billing_departments": "2"})


# --- the PHP file itself ------------------------------------------------------------------------


@pytest.mark.parametrize("path", PHP_FILES, ids=lambda p: p.name)
def test_stub_passes_php_lint(php: str, path: Path) -> None:
    done = subprocess.run([php, "-l", str(path)], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def _tokens(php: str, path: Path) -> list[tuple[str, str]]:
    code = ("echo json_encode(array_map(function ($t) { return is_array($t) ? "
            "[token_name($t[0]), $t[1]] : [$t, $t]; }, "
            "token_get_all(file_get_contents($argv[1]), TOKEN_PARSE)));")
    done = subprocess.run([php, "-r", code, "--", str(path)], capture_output=True, text=True,
                          check=True)
    skip = {"T_WHITESPACE", "T_COMMENT", "T_DOC_COMMENT"}
    return [(kind, text) for kind, text in json.loads(done.stdout) if kind not in skip]


PHP8_ONLY_FUNCTIONS = {"str_contains", "str_starts_with", "str_ends_with", "get_debug_type",
                       "array_is_list", "fdiv", "get_resource_id", "mixed", "never"}


@pytest.mark.parametrize("path", PHP_FILES, ids=lambda p: p.name)
def test_stub_uses_nothing_newer_than_php_7_4(php: str, path: Path) -> None:
    """Only php 8 is installed here, so the 7.4 syntax is checked on the token stream."""
    tokens = _tokens(php, path)
    problems = []
    for i, (kind, text) in enumerate(tokens):
        before = tokens[i - 1][0] if i else ""
        after = [k for k, _ in tokens[i + 1:i + 4]]
        if kind in ("T_MATCH", "T_NULLSAFE_OBJECT_OPERATOR", "T_READONLY", "T_ENUM",
                    "T_ATTRIBUTE", "T_PUBLIC", "T_PROTECTED", "T_PRIVATE"):
            problems.append(f"{text} (token {kind})")
        if kind == "T_STRING" and text.lower() in PHP8_ONLY_FUNCTIONS:
            problems.append(f"{text} (php 8 function or type)")
        if kind == "T_STRING" and before in ("(", ",") and after[:1] == [":"]:
            problems.append(f"named argument {text}:")
        if kind == "|" and after[1:2] == ["T_VARIABLE"]:
            problems.append("union type")
        if kind == "T_THROW" and before in ("T_COALESCE", "T_DOUBLE_ARROW", "=", "?", ":"):
            problems.append("throw as an expression")
        if kind == "T_CATCH":
            closing = next(j for j in range(i, len(tokens)) if tokens[j][0] == ")")
            if tokens[closing - 1][0] != "T_VARIABLE":
                problems.append("catch without a variable")
        if (kind in ("T_FUNCTION", "T_USE") and after[:1] == ["("]) or (
                kind == "T_STRING" and before == "T_FUNCTION"):
            opening = next(j for j in range(i, len(tokens)) if tokens[j][0] == "(")
            closing = next(j for j in range(opening, len(tokens)) if tokens[j][0] == ")")
            if tokens[closing - 1][0] == ",":
                problems.append("trailing comma in a parameter list")
    assert problems == []


def _php_eval(whmcs: Whmcs, code: str) -> Any:
    """Run ``code`` after the WHMCS stand-in and the installed stub are loaded."""
    script = (f"require {json.dumps(str(PHP_DIR / 'bootstrap.php'))}; "
              f"require {json.dumps(str(whmcs.hook_dir / 'vipgate.php'))}; {code}")
    done = subprocess.run([whmcs.php, "-r", script], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0 and done.stderr == "", done.stdout + done.stderr
    return json.loads(done.stdout)


def test_php_whitelist_equals_the_bridge_whitelist(whmcs: Whmcs, closed_url: str) -> None:
    whmcs.install(closed_url)
    answer = _php_eval(whmcs, 'echo json_encode(["whitelist" => vipgate_whitelist(), '
                              '"registered" => array_keys($GLOBALS["vipgate_test_hooks"])]);')
    php_lists = {hook: sorted(keys) for hook, keys in answer["whitelist"].items()}
    assert php_lists == whitelist()
    assert sorted(answer["registered"]) == sorted(HOOK_SPEC)


# --- forwarding to the bridge ------------------------------------------------------------------


def test_bridge_that_never_answers_costs_the_hook_nothing_and_flush_resigns(
        whmcs: Whmcs, capture: Callable[..., CaptureServer]) -> None:
    """The hook only writes its row; the delivery after the response waits the timeout (the
    page has gone), the row waits; the cron sends it again: same id and body, signed afresh."""
    hanging = capture(hang=True)
    whmcs.install(hanging.url)
    started = time.monotonic()
    elapsed = whmcs.fire("InvoicePaid", {"invoiceid": 7})["elapsed_ms"]
    assert elapsed < 100  # inside the hook: one INSERT
    assert 1.9 <= time.monotonic() - started <= 4  # the process: the delivery's 2 s timeout
    [first] = hanging.requests
    [(first_id, first_event)] = hanging.delivered()
    [row] = whmcs.spool()
    assert row["webhook_id"] == first_id
    assert "curl error 28" in row["last_error"]  # operation timed out

    bridge = capture()
    whmcs.install(bridge.url)
    whmcs.fire("AfterCronJob", {})
    again, cron = bridge.requests
    [(again_id, again_event)] = CaptureServer.delivered(bridge)[:1]
    assert verified(again)["events"][0]["hook"] == "InvoicePaid"
    assert again_id == first_id and again_event == first_event
    assert json.loads(row["body"]) == first_event
    # signed afresh: the first attempt took two seconds, so its timestamp is older
    assert int(again.headers["webhook-timestamp"]) >= int(first.headers["webhook-timestamp"]) + 2
    assert again.headers["webhook-id"] != first.headers["webhook-id"]
    assert again.headers["webhook-signature"] != first.headers["webhook-signature"]
    assert verified(cron)["hook"] == "AfterCronJob"
    assert whmcs.spool() == []


def test_spool_and_flush_work_on_sqlite_and_mysql(
        whmcs_any_db: Whmcs, capture: Callable[..., CaptureServer], closed_url: str) -> None:
    whmcs = whmcs_any_db
    whmcs.install(closed_url)
    whmcs.fire("InvoicePaid", {"invoiceid": 1})
    whmcs.fire("ClientEdit", HOOK_SAMPLES["ClientEdit"][0])
    rows = whmcs.spool()
    # the first delivery failed and opened the breaker: the second request did not try
    assert [(r["hook"], r["attempts"]) for r in rows] == [("InvoicePaid", 1), ("ClientEdit", 0)]
    assert json.loads(rows[1]["body"])["vars"] == HOOK_SAMPLES["ClientEdit"][1]
    assert all(ID_PATTERN.match(r["webhook_id"]) for r in rows)
    assert "curl error 7" in rows[0]["last_error"]

    bridge = capture()
    whmcs.install(bridge.url)
    whmcs.fire("AfterCronJob", {})
    batch, heartbeat = bridge.requests  # the cron tries even with the breaker open
    assert [e["id"] for e in verified(batch)["events"]] == [r["webhook_id"] for r in rows]
    assert [event for _, event in bridge.delivered()[:2]] == [json.loads(r["body"])
                                                             for r in rows]
    assert verified(heartbeat)["hook"] == "AfterCronJob"
    assert whmcs.spool() == []
    assert whmcs.query("mod_vipgate_state", "SELECT name FROM mod_vipgate_state "
                       "WHERE name = 'breaker_open_until'") == []  # closed by the success


def test_heartbeat_without_rejected_events_sends_no_vars(
        whmcs: Whmcs, capture: Callable[..., CaptureServer]) -> None:
    """So that a bridge older than the report still takes the heartbeat."""
    bridge = capture()
    whmcs.install(bridge.url)
    whmcs.fire("InvoicePaid", {"invoiceid": 1})
    whmcs.fire("AfterCronJob", {"rejected_count": 5})  # WHMCS's vars are not the report
    assert b'"vars":{}' in bridge.requests[1].body


def test_rejected_events_are_kept_30_days(
        whmcs_any_db: Whmcs, capture: Callable[..., CaptureServer]) -> None:
    whmcs = whmcs_any_db
    whmcs.install(capture(status=422).url)
    whmcs.fire("InvoicePaid", {"invoiceid": 1})
    whmcs.fire("InvoicePaid", {"invoiceid": 2})
    first, second = whmcs.spool(rejected=True)
    whmcs.query("mod_vipgate_spool", "UPDATE mod_vipgate_spool SET rejected_at = :at "
                "WHERE id = :id", at=datetime(2000, 1, 1), id=first["id"])
    whmcs.install(capture().url)
    whmcs.fire("AfterCronJob", {})
    assert [r["id"] for r in whmcs.spool(rejected=True)] == [second["id"]]


def test_rejected_report_reaches_the_bridge_with_the_stub_version(
        whmcs: Whmcs, live_bridge: LiveBridge, capture: Callable[..., CaptureServer]) -> None:
    whmcs.install(capture(status=400, answer=b'{"error": "invalid_payload"}').url)
    whmcs.fire("ClientClose", {"userid": 42})
    [row] = whmcs.spool(rejected=True)
    whmcs.install(live_bridge.url)
    whmcs.fire("AfterCronJob", {})
    report = live_bridge.store.stub_report()
    assert report.version == _stub_version(whmcs) == version("vipgate")
    assert report.rejected_count == 1
    [event] = report.rejected
    assert event["webhook_id"] == row["webhook_id"] and event["hook"] == "ClientClose"
    assert "invalid_payload" in event["reason"]


def _stub_version(whmcs: Whmcs) -> str:
    return _php_eval(whmcs, "echo json_encode(vipgate_version());")


def test_every_request_names_the_stub_version(
        whmcs: Whmcs, capture: Callable[..., CaptureServer]) -> None:
    server = capture()
    whmcs.install(server.url)
    whmcs.fire("InvoicePaid", {"invoiceid": 1})
    whmcs.fire("TicketOpenValidation", HOOK_SAMPLES["TicketOpenValidation"][0])
    assert [r.headers["vipgate-stub-version"] for r in server.requests] == [
        version("vipgate")] * 2
    verified(server.requests[0])  # the signature covers the body alone, as before


# --- TicketOpenValidation -------------------------------------------------------------------


def _suspended(client_id: int) -> CachedStanding:
    return CachedStanding(client_id, "suspended", 10, Decimal("89.90"),
                          (OverdueInvoice(1042, "1042", Decimal("89.90"), "2026-11-01"),),
                          "R$ ", "", "portuguese-br", FIXED_NOW)


def test_ticket_gate_returns_the_bridge_error_outside_billing_departments(
        whmcs: Whmcs, live_bridge: LiveBridge) -> None:
    live_bridge.store.put_standing(_suspended(42))
    whmcs.install(live_bridge.url)
    question = {**HOOK_SAMPLES["TicketOpenValidation"][0], "departmentId": 5}
    settings = live_bridge.app.extensions["vipgate"].settings
    expected = gate.decide(_suspended(42), 5, False, settings.tickets,
                           settings.bridge.language, settings.whmcs.url).errors[0]
    assert "#1042" in expected
    assert whmcs.fire("TicketOpenValidation", question)["returns"] == [expected]

    billing = {**question, "departmentId": 2}
    assert whmcs.fire("TicketOpenValidation", billing)["returns"] == []
    assert whmcs.logged() == [] and whmcs.spool() == []
    assert live_bridge.store.events() == []


@pytest.mark.parametrize("raw", [
    {"priority": "x"}, {"priority": ""}, {}, {"priority": "x" * 5000}, {"priority": ["High"]},
    {"priority": True},
], ids=["any string", "empty", "absent", "very long", "an array", "not a string"])
def test_ticket_gate_refuses_a_blocked_client_whatever_urgency_it_posts(
        whmcs: Whmcs, live_bridge: LiveBridge, raw: dict[str, Any]) -> None:
    """WHMCS hands TicketOpenValidation the raw form field ``urgency``; a 400 from the bridge
    would make the stub fail open and let the blocked client through."""
    live_bridge.store.put_standing(_suspended(42))
    whmcs.install(live_bridge.url)
    question = {k: v for k, v in HOOK_SAMPLES["TicketOpenValidation"][0].items()
                if k != "priority"}
    (refusal,) = whmcs.fire("TicketOpenValidation", {**question, "departmentId": 5,
                                                     **raw})["returns"]
    assert "#1042" in refusal
    assert whmcs.logged() == []


@pytest.mark.parametrize(("fail_open", "returns"), [(True, []), (False, [GENERIC_REFUSAL])])
def test_ticket_gate_when_the_bridge_is_down(whmcs: Whmcs, closed_url: str, fail_open: bool,
                                             returns: list[str]) -> None:
    whmcs.install(closed_url, fail_open=fail_open)
    result = whmcs.fire("TicketOpenValidation", HOOK_SAMPLES["TicketOpenValidation"][0])
    assert result["returns"] == returns
    [entry] = whmcs.logged()
    assert "no answer from the bridge" in entry["response"]
    assert whmcs.spool() == []  # never spooled


def test_ticket_gate_gives_up_after_the_validation_timeout(
        whmcs: Whmcs, capture: Callable[..., CaptureServer]) -> None:
    hanging = capture(hang=True)
    whmcs.install(hanging.url, fail_open=False)
    result = whmcs.fire("TicketOpenValidation", HOOK_SAMPLES["TicketOpenValidation"][0])
    assert result["returns"] == [GENERIC_REFUSAL]
    assert 1400 <= result["elapsed_ms"] <= 1900
    assert whmcs.spool() == []


# --- never throws into WHMCS --------------------------------------------------------------------


def _no_settings(whmcs: Whmcs, url: str) -> None:
    whmcs.install(url)
    (whmcs.hook_dir / "_vipgate_config.php").unlink()


def _settings_not_php(whmcs: Whmcs, url: str) -> None:
    whmcs.install(url)
    (whmcs.hook_dir / "_vipgate_config.php").write_text("<?php return [")


def _settings_not_an_array(whmcs: Whmcs, url: str) -> None:
    whmcs.install(url)
    (whmcs.hook_dir / "_vipgate_config.php").write_text("<?php return 'x';")


def _broken_pdo(whmcs: Whmcs, url: str) -> None:
    whmcs.install(url)
    whmcs.pdo_env = {"VIPGATE_SANDBOX_PDO_DSN": "sqlite:/nonexistent/folder/whmcs.db"}


def _no_database(whmcs: Whmcs, url: str) -> None:
    whmcs.install(url)
    whmcs.pdo_env = {}


def _bad_secret(whmcs: Whmcs, url: str) -> None:
    whmcs.install(url)
    path = whmcs.hook_dir / "_vipgate_config.php"
    path.write_text(path.read_text().replace(SECRET, "whsec_not*base64"))


@pytest.mark.parametrize(("setup", "hook", "logged"), [
    (_no_settings, "InvoicePaid", "settings file is missing"),
    (_no_settings, "TicketOpenValidation", "settings file is missing"),
    (_settings_not_php, "InvoicePaid", "ParseError"),
    (_settings_not_an_array, "AfterCronJob", "settings file must return an array"),
    (_broken_pdo, "InvoicePaid", "could not be spooled, it is lost"),
    (_broken_pdo, "AfterCronJob", "cannot flush the spool"),
    (_no_database, "ClientClose", "could not be spooled, it is lost"),
    (_bad_secret, "InvoicePaid", "not a whsec_ secret"),
    (_bad_secret, "TicketOpenValidation", "not a whsec_ secret"),
])
def test_broken_environment_never_throws_into_whmcs(
        whmcs: Whmcs, closed_url: str, setup: Callable[[Whmcs, str], None], hook: str,
        logged: str) -> None:
    setup(whmcs, closed_url)
    done = whmcs.run(hook, HOOK_SAMPLES[hook][0])
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert json.loads(done.stdout)["returns"] == []  # TicketOpenValidation fails open
    assert any(logged in entry["response"] for entry in whmcs.logged()), whmcs.logged()


@pytest.mark.parametrize(("url", "usable"), [
    ("'http://127.0.0.1:9/hooks/whmcs'", True),
    ("'HTTPS://bridge.example'", True),
    ("'ftp://127.0.0.1:9/'", False),
    ("'http://'", False),
    ("'http:///hooks/whmcs'", False),
    ("'https:// bridge.example'", False),
    ("'bridge.example/hooks/whmcs'", False),
    ("''", False),
    ("42", False),
])
def test_settings_url_must_be_http_with_a_host(whmcs: Whmcs, url: str, usable: bool) -> None:
    """The settings' url is checked without a regular expression (a request's first hook would
    pay its compile): the same URLs as ``^https?://[^/\\s]+`` (any case) are usable."""
    whmcs.install("http://127.0.0.1:9/")
    whmcs.set_config("url", url)
    assert whmcs.fire("InvoicePaid", HOOK_SAMPLES["InvoicePaid"][0])["returns"] == []
    refused = any("settings file must return an array with an http(s) url" in entry["response"]
                  for entry in whmcs.logged())
    assert refused is not usable
    assert len(whmcs.spool()) == 1  # kept either way: delivered once the settings are usable


def test_secret_never_appears_in_the_module_log(
        whmcs: Whmcs, capture: Callable[..., CaptureServer], closed_url: str) -> None:
    whmcs.install(closed_url, fail_open=False)
    for hook in ("InvoicePaid", "TicketOpenValidation", "AfterCronJob", "PreCronJob"):
        whmcs.fire(hook, HOOK_SAMPLES[hook][0])
    for status in (400, 401, 500):
        whmcs.install(capture(status=status).url, fail_open=False)
        whmcs.fire("AfterCronJob", {})
        whmcs.fire("TicketOpenValidation", HOOK_SAMPLES["TicketOpenValidation"][0])
    text = whmcs.log.read_text()
    assert len(whmcs.logged()) >= 10
    assert SECRET not in text and SECRET_KEY_B64 not in text
    assert "hunter2" not in text
    key = base64.b64decode(SECRET_KEY_B64).decode()
    assert key not in text
    assert all(SECRET not in r["body"] for r in whmcs.spool())


# --- install_stub -------------------------------------------------------------------------------


def test_whmcs_loads_every_hook_file_but_those_starting_with_an_underscore(
        whmcs: Whmcs) -> None:
    """WHMCS 8 includes each includes/hooks/*.php except names starting with ``_``: the stub's
    settings file (which holds the secret and is no hook file) is named so; a broken one must
    not break WHMCS."""
    whmcs.install("http://127.0.0.1:9/")
    assert {p.name for p in whmcs.hook_dir.glob("_*.php")} == {"_vipgate_config.php",
                                                                "_vipgate_stub.php"}
    for name, answer in (("other.php", "loaded"), ("_skipped.php", "skipped")):
        (whmcs.hook_dir / name).write_text(
            "<?php add_hook('ClientAreaHomepage', 1, function ($vars) { return '"
            + answer + "'; });\n")
    (whmcs.hook_dir / "_broken.php").write_text("<?php return [")
    assert whmcs.fire("ClientAreaHomepage", {})["returns"] == ["loaded"]


def test_install_stub_writes_the_stub_and_settings_php_can_read(
        tmp_path: Path, php: str) -> None:
    root = whmcs_folder(tmp_path)  # no includes/hooks yet: created
    url = "https://bridge.example.com/vip'gate\\x/"
    stub, config = install_stub(root, url, SECRET, fail_open=False)
    assert stub == root / "includes/hooks/vipgate.php"
    assert config == root / "includes/hooks/_vipgate_config.php"
    assert stub.read_text() == php_source("hooks_loader.php")
    assert stub.with_name("_vipgate_stub.php").read_text() == stub_source() == STUB_PATH.read_text()
    assert config.stat().st_mode & 0o777 == 0o640
    code = "define('WHMCS', 1); echo json_encode(include $argv[1]);"
    done = subprocess.run([php, "-r", code, "--", str(config)], capture_output=True,
                          text=True, check=True)
    assert json.loads(done.stdout) == {
        "url": "https://bridge.example.com/vip'gate\\x/hooks/whmcs", "secret": SECRET,
        "connect_timeout_ms": 1000, "timeout_ms": 2000, "validation_timeout_ms": 1500,
        "precron_timeout_ms": 120000, "panel_timeout_ms": 1000, "fail_open": False,
        "flush_max_rows": 20000, "flush_max_seconds": 20, "deliver_max_rows": 200,
        "deliver_max_ms": 300, "batch_max_events": 500}
    assert sorted(p.name for p in config.parent.iterdir()) == [
        "_vipgate_config.php", "_vipgate_stub.php", "vipgate.php"]
    # without WHMCS, the settings file refuses to run
    done = subprocess.run([php, str(config)], capture_output=True, text=True, check=False)
    assert SECRET not in done.stdout and "cannot be accessed directly" in done.stdout


def _missing(tmp_path: Path) -> Path:
    return tmp_path / "nowhere"


def _not_whmcs(tmp_path: Path) -> Path:
    (tmp_path / "site").mkdir()
    return tmp_path / "site"


def _hooks_is_a_file(tmp_path: Path) -> Path:
    root = whmcs_folder(tmp_path)
    (root / "includes" / "hooks").write_text("")
    return root


SHORT_SECRET = "whsec_" + base64.b64encode(b"too short").decode()


@pytest.mark.parametrize(("folder", "url", "secret", "message"), [
    (_missing, "http://127.0.0.1:8080", SECRET, "does not exist"),
    (_not_whmcs, "http://127.0.0.1:8080", SECRET, "is not a WHMCS folder"),
    (_hooks_is_a_file, "http://127.0.0.1:8080", SECRET, "cannot create"),
    (whmcs_folder, "ftp://127.0.0.1", SECRET, "must start with http:// or https://"),
    (whmcs_folder, "127.0.0.1:8080", SECRET, "must start with http:// or https://"),
    (whmcs_folder, "http://", SECRET, "must start with http:// or https://"),
    (whmcs_folder, "http://127.0.0.1:8080/?x=1", SECRET, "no query"),
    (whmcs_folder, "http://127.0.0.1:8080/a b", SECRET, "spaces"),
    (whmcs_folder, "http://127.0.0.1:8080", "", "webhook secret is not valid"),
    (whmcs_folder, "http://127.0.0.1:8080", SECRET_KEY_B64, "webhook secret is not valid"),
    (whmcs_folder, "http://127.0.0.1:8080", "whsec_not*base64", "webhook secret is not valid"),
    (whmcs_folder, "http://127.0.0.1:8080", SHORT_SECRET, "webhook secret is not valid"),
])
def test_install_stub_refuses(tmp_path: Path, folder: Callable[[Path], Path], url: str,
                              secret: str, message: str) -> None:
    root = folder(tmp_path)
    with pytest.raises(StubInstallError, match=re.escape(message)) as caught:
        install_stub(root, url, secret)
    text = str(caught.value)
    assert "\n" not in text
    assert not secret or secret not in text
    assert not (root / "includes" / "hooks" / "vipgate.php").exists()
    assert not (root / "includes" / "hooks" / "_vipgate_config.php").exists()


def test_install_stub_failing_midway_leaves_no_half_written_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = whmcs_folder(tmp_path)
    stub, config = install_stub(root, "http://old.example", SECRET)
    old_config = config.read_text()
    real_replace = os.replace

    def failing_replace(src: str, dst: str) -> None:
        if str(dst).endswith("vipgate.php"):
            raise PermissionError(13, "Permission denied")
        real_replace(src, dst)

    monkeypatch.setattr(stub_install.os, "replace", failing_replace)
    (root / "includes/hooks/vipgate.php").write_text("<?php // the old stub")
    with pytest.raises(StubInstallError, match=r"cannot write .*vipgate\.php: Permission denied"):
        install_stub(root, "http://new.example", SECRET)
    assert stub.read_text() == "<?php // the old stub"
    assert config.read_text() != old_config and "new.example" in config.read_text()
    assert sorted(p.name for p in stub.parent.iterdir()) == [
        "_vipgate_config.php", "_vipgate_stub.php", "vipgate.php"]


# --- the System Activity Log (what an operator sees on a default WHMCS) ------------------------


def test_default_whmcs_keeps_no_module_log_but_the_activity_log_shows_a_rejection(
        whmcs: Whmcs, capture: Callable[..., CaptureServer]) -> None:
    """WHMCS writes logModuleCall only in Module Debug Mode (off by default): a stub that
    reports only there leaves no trace at all."""
    whmcs.module_debug = False
    whmcs.install(capture(status=400, answer=b'{"error": "invalid_payload"}').url)
    whmcs.fire("InvoicePaid", {"invoiceid": 7})
    assert whmcs.logged() == []
    [line] = whmcs.activity()
    assert line.startswith("vipgate: the bridge rejected a InvoicePaid event")
    assert "invalid_payload" in line and "30 days" in line


def test_module_debug_mode_is_read_from_tblconfiguration(
        whmcs: Whmcs, closed_url: str) -> None:
    whmcs.module_debug = False
    whmcs.install(closed_url)
    whmcs.query("mod_vipgate_spool", "SELECT 1")  # nothing yet
    whmcs.execute("CREATE TABLE tblconfiguration (setting VARCHAR(64) PRIMARY KEY, "
                  "value TEXT NOT NULL)",
                  "INSERT INTO tblconfiguration VALUES ('ModuleDebugMode', 'on')")
    whmcs.fire("InvoicePaid", {"invoiceid": 7})
    assert [e["action"] for e in whmcs.logged()] == ["deliver"]  # after the response


