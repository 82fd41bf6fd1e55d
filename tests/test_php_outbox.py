"""The stub's outbox, what only the real ``php`` can show: the delivery waits for
fastcgi_finish_request, claims keep two processes from sending the same row, a process killed
after its hook or while delivering loses nothing. On SQLite and MariaDB.

The outbox's path itself (the hook only writes, the request delivers after it, answers per
event, the breaker, the cron) is tested against the php stub and its Python emulation alike
in tests/test_stub_outbox.py.
"""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from collections.abc import Callable

import pytest

from tests.php_helpers import CaptureServer, Whmcs, fill_outbox

pytestmark = pytest.mark.php

def _wait(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# --- the hook writes, the request delivers after its response ---------------------------------


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
    ids = fill_outbox(whmcs, bridge.url, 300)
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


# --- the breaker --------------------------------------------------------------------------------


