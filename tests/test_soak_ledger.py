"""bench/soak/ledger.py: the soak's accounting complains about every way an event can go
wrong (lost before or after the acknowledgement, stuck, applied twice, left in the spool) and
about slow recovery and growing memory; a clean run has no problem."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

SOAK = Path(__file__).resolve().parents[1] / "bench" / "soak"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("soak_ledger", SOAK / "ledger.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


ledger = _load()
T0 = 1_800_000_000.0


def row(n: int, hook: str = "InvoicePaid", state: str = "done", *, at: float = T0 + 10,
        lag: float = 1.0, attempts: int = 1) -> object:
    return ledger.InboxRow(f"msg_{n}", hook, state, attempts, at, at,
                           at + lag if state in ("done", "dead") else None, None)


def req(n: int, status: int = 202, at: float = T0 + 10, micros: int = 3000) -> object:
    return ledger.Request(at, status, micros, f"msg_{n}", "POST", "/hooks/whmcs")


def clean_run(**changes: object) -> dict[str, object]:
    inputs: dict[str, object] = {
        "fired": {"InvoicePaid": 3, "AfterCronJob": 1},
        "access": [req(1), req(2), req(3), req(4)],
        "module_log": [],
        "inbox": [row(1), row(2), row(3), row(4, "AfterCronJob")],
        "spooled": [],
        "audit": [{"event_id": "msg_1", "action": "group", "client_id": 7, "ticket_id": None,
                   "before": "2", "after": "1"}],
        "faults": [ledger.Fault("whmcs_down", T0 + 5, T0 + 10)],
        "memory": [(T0 + s, "gunicorn worker", 11, 80_000) for s in range(0, 60, 2)],
        "resync_changes": 0,
        "warmup_s": 0.0,
    }
    inputs.update(changes)
    return inputs


def test_a_clean_run_has_no_problem_and_counts_right() -> None:
    result = ledger.account(**clean_run())
    assert result.problems == []
    events = result.figures["events"]
    assert (events["sent"], events["stored"], events["applied"], events["lost"],
            events["duplicate_deliveries"], events["applied_twice"]) == (4, 4, 4, 0, 0, 0)
    assert result.figures["latency_ms"]["ingest_202"]["p50"] == 3.0
    recovery = result.figures["recovery"][0]
    assert recovery["events_in_window"] == 4 and recovery["recovery_s"] == pytest.approx(1.0)


@pytest.mark.parametrize(("changes", "complaint"), [
    ({"inbox": [row(1), row(2), row(4, "AfterCronJob")]},
     "answered 202 but not in the inbox"),
    ({"inbox": [row(1), row(2), row(4, "AfterCronJob")], "access": [req(1), req(2), req(4)]},
     "InvoicePaid: WHMCS fired 3 event(s)"),
    ({"inbox": [row(1), row(2), row(3, state="retrying"), row(4, "AfterCronJob")]},
     "not settled"),
    ({"spooled": ["msg_9"]}, "still in the stub's spool"),
    ({"module_log": [{"action": "InvoicePaid", "request": {"webhook_id": "msg_8"},
                      "response": "bridge unreachable (x) and the event could not be "
                                  "spooled, it is lost: disk full"}]},
     "could neither send nor spool"),
    ({"module_log": [{"action": "InvoicePaid", "request": {"webhook_id": "msg_8"},
                      "response": "bridge rejected the event, not retried: HTTP 400"}]},
     "refused by the bridge"),
    ({"audit": [{"event_id": "msg_1", "action": "group", "client_id": 7, "ticket_id": None,
                 "before": "2", "after": "1"}] * 2}, "applied more than once"),
    ({"resync_changes": 2}, "planned 2 change(s)"),
    ({"resync_changes": None}, "did not give a plan"),
    ({"access": [req(1), req(2), req(3), req(4), req(5, 500, at=T0 + 40)]},
     "5xx outside any fault window"),
    ({"memory": [(T0 + s, "vipgate worker", 12, 80_000 + s * 2_000) for s in range(0, 60, 2)]},
     "memory of vipgate worker 12 grew"),
    ({"memory": [(T0 + s, "gunicorn worker", 11, 80_000) for s in range(0, 60, 2)]
      + [(T0 + s, "gunicorn worker", 13, 55_000 if s < 40 else 90_000)
         for s in range(30, 70, 2)], "warmup_s": 0.0}, "memory of gunicorn worker 13 grew"),
    ({"fired": {"InvoicePaid": 2, "AfterCronJob": 1}}, "vipgate stored 3 event(s), WHMCS fired"),
])
def test_each_way_of_going_wrong_is_a_problem(changes: dict[str, object], complaint: str) -> None:
    problems = ledger.account(**clean_run(**changes)).problems
    assert any(complaint in p for p in problems), problems


def test_redeliveries_are_counted_not_lost_and_a_dropped_heartbeat_is_expected() -> None:
    result = ledger.account(**clean_run(
        fired={"InvoicePaid": 3, "AfterCronJob": 2},
        access=[req(1), req(1, at=T0 + 20), req(2), req(3), req(4)],
        module_log=[{"action": "AfterCronJob", "request": {"webhook_id": "msg_5"},
                     "response": "bridge unreachable, heartbeat not spooled: curl error 7"},
                    {"action": "InvoicePaid", "request": {"webhook_id": "msg_1"},
                     "response": "bridge unreachable, event spooled: HTTP 503"}]))
    assert result.problems == []
    events = result.figures["events"]
    assert events["duplicate_deliveries"] == 1 and events["events_delivered_more_than_once"] == 1
    assert events["heartbeats_not_spooled"] == 1 and events["spooled_by_the_stub"] == 1


def batch(status: int = 200, at: float = T0 + 10, micros: int = 9000) -> object:
    return ledger.Request(at, status, micros, "batch_x", "POST", "/hooks/whmcs/batch")


def test_batches_from_the_outbox_count_and_a_heartbeat_the_flush_skipped_is_expected() -> None:
    """The outbox delivers in batches (one batch id in the access log for many events): the
    events are accounted for by the inbox; a batch's 5xx outside a fault is still a problem;
    an AfterCronJob whose flush found the bridge not taking events sends no heartbeat."""
    result = ledger.account(**clean_run(
        fired={"InvoicePaid": 3, "AfterCronJob": 2}, access=[batch(), batch(at=T0 + 12)],
        module_log=[{"action": "AfterCronJob", "request": "", "response": "the flush found "
                     "the bridge not taking events: heartbeat not sent"}]))
    assert result.problems == []
    events = result.figures["events"]
    assert (events["lost"], events["heartbeats_not_spooled"], events["batches"],
            events["batches_taken"]) == (0, 1, 2, 2)
    assert result.figures["latency_ms"]["batch_200"]["count"] == 2
    assert result.figures["recovery"][0]["ingest_back_s"] == 0
    problems = ledger.account(**clean_run(access=[*clean_run()["access"],
                                                  batch(503, at=T0 + 40)])).problems
    assert any("5xx outside any fault window" in p for p in problems), problems


def test_a_5xx_counts_for_the_fault_running_not_one_just_ended() -> None:
    faults = [ledger.Fault("php_killed", T0, T0 + 1), ledger.Fault("mariadb_restart", T0 + 5,
                                                                   T0 + 8)]
    result = ledger.account(**clean_run(faults=faults, access=[
        *clean_run()["access"], batch(503, at=T0 + 6)]))
    assert result.figures["5xx_by_fault"] == {"mariadb_restart": 1}


def test_a_process_started_late_is_judged_after_its_own_warm_up() -> None:
    late_start = [(T0 + s, "gunicorn worker", 13, 55_000 if s < 40 else 90_000)
                  for s in range(30, 80, 2)]
    memory = [(T0 + s, "gunicorn worker", 11, 80_000) for s in range(0, 80, 2)] + late_start
    result = ledger.account(**clean_run(memory=memory, warmup_s=15.0))
    assert result.problems == []
    assert {m["pid"] for m in result.figures["memory"]} == {11, 13}


def test_recovery_waits_for_the_slowest_event_of_the_fault_window() -> None:
    inbox = [row(1, at=T0 + 6, lag=40), row(2), row(3, at=T0 + 30), row(4, "AfterCronJob")]
    result = ledger.account(**clean_run(inbox=inbox))
    recovery = result.figures["recovery"][0]
    assert recovery["backlog_applied_s"] == pytest.approx(36.0)
    assert recovery["events_in_window"] == 3  # msg_3 came after the fault


def test_access_lines_are_parsed_and_others_skipped() -> None:
    lines = ['[22/Nov/2026:10:00:00 +0000] 202 4711 msg_abc POST /hooks/whmcs',
             '[22/Nov/2026:10:00:01 +0000] 200 120 - GET /healthz', "garbage"]
    parsed = ledger.parse_access(lines)
    assert [(r.status, r.micros, r.webhook_id, r.path) for r in parsed] == [
        (202, 4711, "msg_abc", "/hooks/whmcs"), (200, 120, "-", "/healthz")]
    assert parsed[1].at - parsed[0].at == 1


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 101))
    assert ledger.percentile(values, 50) == 50
    assert ledger.percentile(values, 99) == 99
    assert ledger.percentile([], 50) is None



BATCH_ANSWER = (b"HTTP/1.1 200 OK\r\nServer: gunicorn\r\nConnection: close\r\n"
                b"Content-Type: application/json\r\nContent-Length: 130\r\n\r\n"
                b'{"duplicate":1,"queued":1,"rejected":0,"results":[{"id":"msg_1","index":0,'
                b'"status":"duplicate"},{"id":"msg_5","index":1,"status":"queued"}]}\n')


def test_a_batch_answer_gives_each_event_s_outcome() -> None:
    assert ledger.parse_batch_answer(BATCH_ANSWER) == [("msg_1", "duplicate"),
                                                       ("msg_5", "queued")]
    refused = BATCH_ANSWER.replace(b"200 OK", b"503 SERVICE UNAVAILABLE")
    cut = BATCH_ANSWER[:-40]
    single = b'HTTP/1.1 200 OK\r\n\r\n{"errors":[]}'
    for raw in (refused, cut, single, b""):
        assert ledger.parse_batch_answer(raw) == []


def test_events_sent_again_in_batches_are_counted_and_applied_once() -> None:
    """A php process killed after its batch was stored, before it deleted the rows: the rows
    go again and the bridge answers "duplicate"; the inbox keeps one row, applied once."""
    result = ledger.account(**clean_run(
        fired={"InvoicePaid": 3, "AfterCronJob": 1}, access=[req(4), batch(), batch()],
        batch_results=[("msg_1", "queued"), ("msg_2", "queued"), ("msg_3", "queued"),
                       ("msg_1", "duplicate"), ("msg_2", "duplicate"),
                       ("msg_1", "duplicate")]))
    assert result.problems == []
    events = result.figures["events"]
    assert (events["events_delivered_more_than_once"], events["duplicate_deliveries"],
            events["duplicates_in_batches"], events["applied_twice"]) == (2, 3, 3, 0)
    lost = ledger.account(**clean_run(batch_results=[("msg_9", "queued")])).problems
    assert any("answered 202 but not in the inbox" in p and "msg_9" in p for p in lost), lost


def test_the_soak_proxy_keeps_each_batch_answer_as_it_went_back(tmp_path: Path) -> None:
    import socket
    import threading
    import urllib.request

    sys.path.insert(0, str(SOAK))
    try:
        from procs import BridgeProxy
    finally:
        sys.path.remove(str(SOAK))
    upstream = socket.socket()
    upstream.bind(("127.0.0.1", 0))
    upstream.listen(4)

    def answer_once() -> None:
        conn, _ = upstream.accept()
        conn.recv(65536)
        conn.sendall(BATCH_ANSWER)
        conn.close()

    threading.Thread(target=answer_once, daemon=True).start()
    proxy = BridgeProxy(upstream.getsockname()[1])
    proxy.start()
    try:
        with urllib.request.urlopen(urllib.request.Request(
                f"http://127.0.0.1:{proxy.port}/hooks/whmcs/batch", data=b"{}"),
                timeout=10) as got:
            assert got.status == 200
        deadline = time.monotonic() + 5
        while not proxy.batch_answers and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        proxy.stop()
        upstream.close()
    assert [ledger.parse_batch_answer(raw) for raw in proxy.batch_answers] == [
        [("msg_1", "duplicate"), ("msg_5", "queued")]]


def test_received_to_applied_is_split_by_the_backlog_each_event_joined() -> None:
    """A burst (a breaker's minute delivered at once) waits behind itself: its events joined a
    backlog; an event alone did not."""
    assert ledger.backlog_at_receipt([(0.0, 1.0), (0.5, 2.0), (0.5, 3.0), (5.0, 5.5),
                                      (2.5, None)]) == [0, 1, 2, 1, 1]
    burst = [row(n, at=T0 + 100, lag=n * 0.5) for n in range(1, 21)]  # 20 at once
    alone = [row(100 + n, at=T0 + 200 + n * 10, lag=0.3) for n in range(5)]
    result = ledger.account(**clean_run(inbox=[*burst, *alone], access=[],
                                        fired={"InvoicePaid": 25}))
    split = result.figures["apply_lag_by_backlog_s"]
    assert (split["0-9"]["count"], split["10-99"]["count"], split["100+"]["count"]) == (15, 10, 0)
    assert split["10-99"]["p50"] > split["0-9"]["p50"] and split["10-99"]["max"] == 10.0
    assert split["max_backlog"] == 19
