"""The stub's outbox, with the real ``php``: an asynchronous hook only writes its row (committed,
nothing sent inside it), the request delivers the outbox after its response, claims keep two
processes from sending the same row, a killed process loses nothing, and the breaker keeps
requests from waiting on a bridge that did not take the last delivery. On SQLite and MariaDB.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bridge.sandbox.forwarder import PHP_DIR
from tests.conftest import LiveBridge
from tests.php_helpers import CaptureServer, Whmcs, batch_answer, verified

pytestmark = pytest.mark.php

GENERIC_REFUSAL = ("Support tickets are temporarily unavailable. "
                   "Please try again in a few minutes.")
QUESTION = {"clientId": 42, "contactId": 0, "isAdmin": False, "departmentId": 1,
            "priority": "Medium"}

# Fires one hook as WHMCS would, then, still inside the request (before any shutdown
# function), reads the outbox through a second connection of its own: what it sees was
# committed when the hook returned.
AFTER_HOOK = """<?php
require {bootstrap};
foreach (glob({hook_dir} . '/*.php') as $file) {{
    if (substr(basename($file), 0, 1) !== '_') {{
        require_once $file;
    }}
}}
$started = microtime(true);
vipgate_test_run_hook('InvoicePaid', ['invoiceid' => 7]);
$returned = microtime(true);
$user = getenv('VIPGATE_SANDBOX_PDO_USER');
$password = getenv('VIPGATE_SANDBOX_PDO_PASSWORD');
$other = new PDO(getenv('VIPGATE_SANDBOX_PDO_DSN'), $user === false ? null : $user,
    $password === false ? null : $password, [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
$rows = $other->query('SELECT webhook_id, attempts, claimed_by FROM mod_vipgate_spool')
    ->fetchAll(PDO::FETCH_ASSOC);
echo json_encode(['hook_ms' => ($returned - $started) * 1000, 'returned_at' => $returned,
    'rows' => $rows]), "\\n";
"""


def _after_hook(whmcs: Whmcs, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "after_hook.php"
    script.write_text(AFTER_HOOK.format(bootstrap=json.dumps(str(PHP_DIR / "bootstrap.php")),
                                        hook_dir=json.dumps(str(whmcs.hook_dir))))
    done = subprocess.run([whmcs.php, str(script)], capture_output=True, text=True,
                          env=whmcs.env(**env), timeout=60, check=False)
    assert done.returncode == 0 and done.stderr == "", done.stdout + done.stderr
    return done


def _outbox_row(webhook_id: str, invoice: int) -> dict[str, Any]:
    return {"id": webhook_id, "body": json.dumps(
        {"hook": "InvoicePaid", "vars": {"invoiceid": invoice},
         "occurred_at": "2026-01-01T00:00:00+00:00"}, separators=(",", ":")),
        "at": datetime.now(UTC).replace(tzinfo=None)}


def _fill_outbox(whmcs: Whmcs, server_url: str, count: int) -> list[str]:
    """``count`` waiting rows, written as the stub writes them (the table made by the stub)."""
    whmcs.install(server_url)
    ids = [f"msg_{i:032x}" for i in range(count)]
    _php(whmcs, "vipgate_spool_ensure(vipgate_pdo());")
    rows = [_outbox_row(webhook_id, i) for i, webhook_id in enumerate(ids)]
    engine = sa.create_engine(whmcs.spool_url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO mod_vipgate_spool (webhook_id, hook, body, "
                             "created_at, attempts) VALUES (:id, 'InvoicePaid', :body, :at, 0)"),
                     rows)
    engine.dispose()
    return ids


def _php(whmcs: Whmcs, code: str) -> None:
    script = (f"require {json.dumps(str(PHP_DIR / 'bootstrap.php'))}; "
              f"require {json.dumps(str(whmcs.hook_dir / 'vipgate.php'))}; {code}")
    done = subprocess.run([whmcs.php, "-r", script], capture_output=True, text=True,
                          env=whmcs.env(), check=False)
    assert done.returncode == 0 and done.stderr == "", done.stdout + done.stderr


def _wait(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _breaker(whmcs: Whmcs) -> list[dict[str, Any]]:
    return whmcs.query("mod_vipgate_state", "SELECT at FROM mod_vipgate_state "
                       "WHERE name = 'breaker_open_until'")


# --- the hook writes, the request delivers after its response ---------------------------------


def test_the_hook_commits_its_row_and_sends_nothing_the_request_delivers_after_it(
        whmcs_any_db: Whmcs, capture: Callable[..., CaptureServer], tmp_path: Path) -> None:
    whmcs = whmcs_any_db
    bridge = capture()
    whmcs.install(bridge.url)
    _php(whmcs, "vipgate_spool_ensure(vipgate_pdo());")  # the first hook's CREATE aside
    done = _after_hook(whmcs, tmp_path)
    seen = json.loads(done.stdout)
    # when the hook returned, its row was committed (another connection reads it), unclaimed,
    # never tried
    [row] = seen["rows"]
    assert int(row["attempts"]) == 0 and row["claimed_by"] is None
    assert seen["hook_ms"] < 50
    # the batch came after the script printed that line: at the end of the request
    [batch] = bridge.requests
    assert batch.at > seen["returned_at"]
    assert [e["id"] for e in verified(batch)["events"]] == [row["webhook_id"]]
    assert whmcs.spool() == []
    assert whmcs.logged() == []


def test_delivery_waits_for_fastcgi_finish_request(
        whmcs: Whmcs, capture: Callable[..., CaptureServer]) -> None:
    """Under PHP-FPM the page goes to the browser (fastcgi_finish_request) before anything is
    sent to the bridge."""
    bridge = capture()
    whmcs.install(bridge.url)
    done = whmcs.run("InvoicePaid", {"invoiceid": 7}, VIPGATE_SANDBOX_FINISH_REQUEST="1")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    result, finished = done.stdout.splitlines()
    assert json.loads(result)["returns"] == []
    word, at = finished.split()
    assert word == "finish_request"
    [batch] = bridge.requests
    assert batch.at > float(at)
    assert whmcs.spool() == []


def test_a_request_delivers_at_most_deliver_max_rows_oldest_first(
        whmcs: Whmcs, capture: Callable[..., CaptureServer]) -> None:
    bridge = capture()
    ids = _fill_outbox(whmcs, bridge.url, 7)
    whmcs.set_config("deliver_max_rows", "3")
    whmcs.set_config("batch_max_events", "2")
    whmcs.fire("InvoicePaid", {"invoiceid": 99})
    assert [len(json.loads(r.body)["events"]) for r in bridge.requests] == [2, 1]
    assert [i for i, _ in bridge.delivered()] == ids[:3]
    assert len(whmcs.spool()) == 5  # the request's own event among them: the cron sends it
    whmcs.fire("AfterCronJob", {})
    assert [i for i, _ in bridge.delivered()][:7] == ids
    assert len(bridge.delivered()) == 3 + 5 + 1  # + the heartbeat
    assert whmcs.spool() == []


# --- nothing lost, nothing sent twice -----------------------------------------------------------


def test_a_process_killed_after_the_hook_returned_loses_nothing(
        whmcs_any_db: Whmcs, capture: Callable[..., CaptureServer]) -> None:
    whmcs = whmcs_any_db
    bridge = capture()
    whmcs.install(bridge.url)
    # the page has gone, the delivery has not started: killed there
    process = whmcs.start("InvoicePaid", {"invoiceid": 1}, VIPGATE_SANDBOX_FINISH_REQUEST="1",
                          VIPGATE_SANDBOX_FINISH_SLEEP="30")
    assert process.stdout is not None
    assert json.loads(process.stdout.readline())["returns"] == []
    assert process.stdout.readline().startswith("finish_request ")
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    process.stdout.close()
    assert process.stderr is not None
    process.stderr.close()
    assert bridge.requests == []
    [row] = whmcs.spool()
    assert row["attempts"] == 0
    # the next request delivers it with its own, oldest first
    whmcs.fire("ClientClose", {"userid": 42})
    assert [e["hook"] for _, e in bridge.delivered()] == ["InvoicePaid", "ClientClose"]
    assert bridge.delivered()[0][0] == row["webhook_id"]
    assert whmcs.spool() == []


def test_a_process_killed_while_delivering_leaves_its_claim_to_expire(
        whmcs_any_db: Whmcs, capture: Callable[..., CaptureServer]) -> None:
    whmcs = whmcs_any_db
    hanging = capture(hang=True)
    whmcs.install(hanging.url)
    process = whmcs.start("InvoicePaid", {"invoiceid": 1})
    _wait(lambda: len(hanging.requests) == 1)  # its rows claimed, the batch in flight
    process.kill()
    process.wait(10)
    for stream in (process.stdout, process.stderr):
        assert stream is not None
        stream.close()
    [(killed_id, _)] = hanging.delivered()
    [row] = whmcs.query("mod_vipgate_spool", "SELECT webhook_id, claimed_by, claimed_until "
                        "FROM mod_vipgate_spool")
    assert row["webhook_id"] == killed_id and row["claimed_by"] is not None
    assert int(row["claimed_until"]) > time.time()

    bridge = capture()
    whmcs.install(bridge.url)
    whmcs.fire("ClientClose", {"userid": 42})  # the claim holds: only its own row goes
    assert [e["hook"] for _, e in bridge.delivered()] == ["ClientClose"]
    whmcs.query("mod_vipgate_spool", "UPDATE mod_vipgate_spool SET claimed_until = "
                "claimed_until - 61")  # a minute later: the claim has expired
    whmcs.fire("AfterCronJob", {})
    assert [e["hook"] for _, e in bridge.delivered()] == ["ClientClose", "InvoicePaid",
                                                          "AfterCronJob"]
    assert bridge.delivered()[1][0] == killed_id  # sent once more, same id (the bridge dedups)
    assert whmcs.spool() == []


def test_concurrent_processes_never_send_the_same_row(
        whmcs_any_db: Whmcs, capture: Callable[..., CaptureServer]) -> None:
    whmcs = whmcs_any_db
    bridge = capture(delay=0.01)
    ids = _fill_outbox(whmcs, bridge.url, 300)
    whmcs.set_config("batch_max_events", "7")
    processes = [whmcs.start("AfterCronJob", {}) for _ in range(4)]
    for process in processes:
        _out, err = process.communicate(timeout=120)
        assert process.returncode == 0 and err == "", err
    sent = [i for r in bridge.batches() for i in (e["id"] for e in json.loads(r.body)["events"])]
    assert Counter(sent).most_common(1)[0][1] == 1  # no row sent twice
    assert sorted(sent) == sorted(ids)
    assert len({r.headers["webhook-id"] for r in bridge.batches()}) == len(bridge.batches())
    assert whmcs.spool() == [] and whmcs.spool(rejected=True) == []
    heartbeats = [r for r in bridge.requests if not r.path.endswith("/batch")]
    assert len(heartbeats) == 4


# --- answers per event --------------------------------------------------------------------------


def test_a_batch_answer_per_event_deletes_or_keeps_each_row(
        whmcs_any_db: Whmcs, capture: Callable[..., CaptureServer]) -> None:
    whmcs = whmcs_any_db

    def answer(request: Any) -> bytes:
        return batch_answer(request, lambda e: {1: "rejected", 2: "duplicate"}.get(
            e["vars"]["invoiceid"], "queued"))

    bridge = capture(batch=answer)
    ids = _fill_outbox(whmcs, bridge.url, 4)
    whmcs.module_debug = False
    whmcs.fire("AfterCronJob", {})
    [batch, heartbeat] = bridge.requests
    assert [e["id"] for e in json.loads(batch.body)["events"]] == ids
    assert whmcs.spool() == []
    [rejected] = whmcs.spool(rejected=True)
    assert rejected["webhook_id"] == ids[1] and rejected["attempts"] == 1
    assert "invalid_payload" in rejected["last_error"]
    assert any("rejected a InvoicePaid event (" + ids[1] in line for line in whmcs.activity())
    report = verified(heartbeat)["vars"]
    assert report["rejected_count"] == 1
    assert report["rejected_recent"][0]["webhook_id"] == ids[1]


@pytest.mark.parametrize("answer", [b"not json", b'{"results": []}', b'{"results": "x"}'])
def test_a_batch_answer_that_is_not_one_result_per_event_keeps_every_row(
        whmcs: Whmcs, capture: Callable[..., CaptureServer], answer: bytes) -> None:
    bridge = capture(batch=lambda request: answer)
    ids = _fill_outbox(whmcs, bridge.url, 2)
    whmcs.fire("AfterCronJob", {})
    assert [r["webhook_id"] for r in whmcs.spool()] == ids
    assert all(r["attempts"] == 1 and "not one result per event" in r["last_error"]
               for r in whmcs.spool())
    assert _breaker(whmcs) != []


# --- the breaker --------------------------------------------------------------------------------


def test_breaker_opens_on_a_failed_delivery_and_a_cron_flush_closes_it(
        whmcs_any_db: Whmcs, capture: Callable[..., CaptureServer], closed_url: str) -> None:
    whmcs = whmcs_any_db
    whmcs.install(closed_url, fail_open=False)
    whmcs.fire("InvoicePaid", {"invoiceid": 1})
    [state] = _breaker(whmcs)
    assert 55 <= int(state["at"]) - time.time() <= 61
    assert any("did not take events" in line and "next minute" in line
               for line in whmcs.activity())

    # the bridge now hangs: nobody waits for it while the breaker is open
    hanging = capture(hang=True)
    whmcs.install(hanging.url, fail_open=False)
    gate = whmcs.fire("TicketOpenValidation", QUESTION)
    assert gate["returns"] == [GENERIC_REFUSAL] and gate["elapsed_ms"] < 100
    panel = whmcs.fire("AdminAreaClientSummaryPage", {"userid": 42})
    assert panel["returns"] == [] and panel["elapsed_ms"] < 100
    started = time.monotonic()
    whmcs.fire("InvoicePaid", {"invoiceid": 2})
    assert time.monotonic() - started < 1.5  # the request did not try to deliver
    assert hanging.requests == []
    assert [r["attempts"] for r in whmcs.spool()] == [1, 0]
    assert any("breaker is open" in e["response"] for e in whmcs.logged()
               if e["action"] == "TicketOpenValidation")
    # PreCronJob still tries once, with the ordinary timeout, not its two minutes
    precron = whmcs.fire("PreCronJob", {})
    assert 1900 <= precron["elapsed_ms"] <= 3000
    assert len(hanging.requests) == 1
    assert [r["hook"] for r in whmcs.spool()] == ["InvoicePaid", "InvoicePaid", "PreCronJob"]

    # the bridge is back: the cron's flush tries despite the breaker, succeeds, closes it
    bridge = capture()
    whmcs.install(bridge.url, fail_open=False)
    whmcs.fire("AfterCronJob", {})
    assert [e["hook"] for _, e in bridge.delivered()] == [
        "InvoicePaid", "InvoicePaid", "PreCronJob", "AfterCronJob"]
    assert whmcs.spool() == [] and _breaker(whmcs) == []
    assert [e["response"] for e in whmcs.logged() if e["action"] == "breaker"] == [
        "the bridge takes events again: breaker closed"]
    assert any("takes events again" in line for line in whmcs.activity())
    # and the ticket gate asks the bridge again
    whmcs.fire("TicketOpenValidation", QUESTION)
    assert bridge.requests[-1].path == "/hooks/whmcs"
    assert json.loads(bridge.requests[-1].body)["hook"] == "TicketOpenValidation"


def test_precron_on_a_hung_bridge_costs_the_ordinary_timeout_not_its_long_wait(
        whmcs_any_db: Whmcs, capture: Callable[..., CaptureServer]) -> None:
    whmcs = whmcs_any_db
    hanging = capture(hang=True)
    whmcs.install(hanging.url)
    precron = whmcs.fire("PreCronJob", {})
    assert 1900 <= precron["elapsed_ms"] <= 3000  # not precron_timeout_ms (two minutes)
    assert len(hanging.probes) == 1 and hanging.requests == []
    assert [r["hook"] for r in whmcs.spool()] == ["PreCronJob"]
    assert _breaker(whmcs) != []
    assert any("did not answer before the long wait" in e["response"]
               for e in whmcs.logged() if e["action"] == "PreCronJob")
    # a bridge that answers gets the PreCronJob and is waited on
    bridge = capture()
    whmcs.install(bridge.url)
    whmcs.query("mod_vipgate_state", "DELETE FROM mod_vipgate_state")
    whmcs.fire("PreCronJob", {})
    assert len(bridge.probes) == 1
    assert [e["hook"] for _, e in bridge.delivered()][-1] == "PreCronJob"


def test_breaker_lets_requests_try_again_after_a_minute(
        whmcs: Whmcs, capture: Callable[..., CaptureServer], closed_url: str) -> None:
    whmcs.install(closed_url)
    whmcs.fire("InvoicePaid", {"invoiceid": 1})
    bridge = capture()
    whmcs.install(bridge.url)
    whmcs.fire("InvoicePaid", {"invoiceid": 2})
    assert bridge.requests == []  # open
    whmcs.query("mod_vipgate_state", "UPDATE mod_vipgate_state SET at = at - 61 "
                "WHERE name = 'breaker_open_until'")
    whmcs.fire("InvoicePaid", {"invoiceid": 3})
    assert [e["vars"]["invoiceid"] for _, e in bridge.delivered()] == [1, 2, 3]
    assert whmcs.spool() == [] and _breaker(whmcs) == []


def test_the_outbox_unwritable_sends_the_event_at_once(
        whmcs: Whmcs, capture: Callable[..., CaptureServer]) -> None:
    """The only way left: the event goes straight to the single endpoint (logged)."""
    bridge = capture()
    whmcs.install(bridge.url)
    engine = sa.create_engine(whmcs.spool_url)
    with engine.begin() as conn:  # a table of that name the stub cannot write into
        conn.execute(sa.text("CREATE TABLE mod_vipgate_spool (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    whmcs.fire("InvoicePaid", {"invoiceid": 1})
    single = bridge.requests[-1]
    assert single.path == "/hooks/whmcs" and verified(single)["hook"] == "InvoicePaid"
    assert any("the outbox could not be written" in e["response"] and "sent at once"
               in e["response"] for e in whmcs.logged())


def test_the_real_bridge_takes_a_batch_and_each_event_gets_its_answer(
        whmcs_any_db: Whmcs, live_bridge: LiveBridge) -> None:
    """Against the bridge's own batch endpoint: valid events stored, one whose id the inbox
    has already answered duplicate (deleted), an invalid one rejected (kept, reported)."""
    whmcs = whmcs_any_db
    ids = _fill_outbox(whmcs, live_bridge.url, 3)
    whmcs.query("mod_vipgate_spool", "UPDATE mod_vipgate_spool SET body = :body "
                "WHERE webhook_id = :id", id=ids[2], body=json.dumps(
                    {"hook": "InvoicePaid", "vars": {"invoiceid": "not a number"},
                     "occurred_at": "2026-01-01T00:00:00+00:00"}))
    whmcs.fire("AfterCronJob", {})
    stored = [e.webhook_id for e in live_bridge.store.events() if e.hook == "InvoicePaid"]
    assert stored == ids[:2]
    # the same two once more (a delivery the stub did not see answered): duplicates, deleted
    again = _fill_outbox(whmcs, live_bridge.url, 2)
    assert again == ids[:2]
    whmcs.fire("AfterCronJob", {})
    assert [e.webhook_id for e in live_bridge.store.events() if e.hook == "InvoicePaid"] == (
        ids[:2])
    assert whmcs.spool() == []
    [rejected] = whmcs.spool(rejected=True)
    assert rejected["webhook_id"] == ids[2] and "invalid_payload" in rejected["last_error"]
    assert live_bridge.store.stub_report().rejected_count == 1
