"""POST /hooks/whmcs/batch on SQLite and MariaDB: an outcome per event, one transaction, the
batch refused whole (and nothing stored) when it is not a batch, not signed, too large, or the
database is away."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import sqlalchemy as sa

from bridge.signing import signed_headers
from bridge.store import inbox as inbox_module
from tests.helpers import FIXED_NOW, SECRET, envelope, post_signed

NOW = int(FIXED_NOW.timestamp())


def event(msg_id: Any, hook: str = "InvoicePaid", variables: dict[str, Any] | None = None,
          **extra: Any) -> dict[str, Any]:
    body = json.loads(envelope(hook, {"invoiceid": "7"} if variables is None else variables))
    return {"id": msg_id, **body, **extra} if msg_id is not None else {**body, **extra}


def post_batch(client: Any, events: Any, *, body: bytes | None = None, batch_id: str = "batch_1",
               extra_headers: dict[str, str] | None = None) -> Any:
    body = json.dumps({"events": events}).encode() if body is None else body
    headers = signed_headers([SECRET], batch_id, NOW, body)
    headers.update(extra_headers or {})
    return client.post("/hooks/whmcs/batch", data=body, headers=headers,
                       content_type="application/json")


def test_a_batch_stores_each_valid_event_once_in_order(client, store) -> None:
    post_signed(client, envelope("InvoicePaid", {"invoiceid": "1"}), msg_id="seen_before")
    events = [
        event("e1"),
        event("e2", "ClientEdit", {"userid": "12", "groupid": "2"}),
        event("e1"),                                   # again in this batch
        event("seen_before"),                          # already in the inbox
        event("e3", "InvoicePaid", {}),                # invalid vars
        event("e4", "ServerReboot", {}),               # unknown hook
        event(None),                                   # no id
        event("bad id"),                               # malformed id
        event("e5", "TicketOpenValidation", {"departmentId": "1"}),  # synchronous
        event("e6", "AdminAreaClientSummaryPage", {"userid": "3"}),  # synchronous
        "not an object",
        event("e7", "PreCronJob", {}),
        event("e8", extra="key"),                      # unknown top-level key in the event
    ]
    response = post_batch(client, events)
    assert response.status_code == 200, response.json
    answer = response.json
    statuses = [(r["index"], r["id"], r["status"], r.get("error", {}).get("code"))
                for r in answer["results"]]
    assert statuses == [
        (0, "e1", "queued", None), (1, "e2", "queued", None), (2, "e1", "duplicate", None),
        (3, "seen_before", "duplicate", None), (4, "e3", "rejected", "invalid_payload"),
        (5, "e4", "rejected", "unknown_hook"), (6, None, "rejected", "invalid_payload"),
        (7, None, "rejected", "invalid_payload"), (8, "e5", "rejected", "synchronous_hook"),
        (9, "e6", "rejected", "synchronous_hook"), (10, None, "rejected", "invalid_payload"),
        (11, "e7", "queued", None), (12, "e8", "rejected", "invalid_payload")]
    assert (answer["queued"], answer["duplicate"], answer["rejected"]) == (3, 2, 8)
    errors = {r["index"]: r["error"] for r in answer["results"] if "error" in r}
    assert "vars.invoiceid" in errors[4]["fields"] and "vars.invoiceid" in errors[4]["message"]
    assert "id" in errors[6]["fields"] and "id" in errors[7]["fields"]
    assert "POST /hooks/whmcs" in errors[8]["message"] and "hook" in errors[8]["fields"]
    assert "extra" in errors[12]["fields"]
    rows = store.events()
    assert [r.webhook_id for r in rows] == ["seen_before", "e1", "e2", "e7"]
    assert rows[2].client_id == 12 and rows[2].vars == {"userid": 12, "groupid": 2}
    assert all(r.state == "queued" for r in rows)
    # a PreCronJob in a batch is only queued: the worker runs it
    assert "reconciled" not in json.dumps(answer)


def test_sending_the_same_batch_again_stores_nothing_more(client, store) -> None:
    events = [event(f"r{n}") for n in range(5)]
    assert post_batch(client, events).json["queued"] == 5
    before = store.inbox_fingerprint()
    again = post_batch(client, events, batch_id="batch_2").json
    assert (again["queued"], again["duplicate"]) == (0, 5)
    assert store.inbox_fingerprint() == before


def test_500_events_are_one_batch_and_501_are_refused(client, store) -> None:
    events = [event(f"m{n}", "InvoiceCreated", {"invoiceid": n + 1, "user": "system"})
              for n in range(501)]
    response = post_batch(client, events)
    assert response.status_code == 400 and response.json["error"] == "invalid_batch"
    assert "501" in response.json["message"] and "events" in response.json["fields"]
    assert store.events() == []
    response = post_batch(client, events[:500])
    assert response.status_code == 200 and response.json["queued"] == 500
    assert [r.webhook_id for r in store.events(limit=1000)] == [f"m{n}" for n in range(500)]


@pytest.mark.parametrize(("body", "word"), [
    (b'{"events": []}', "events"),
    (b'{}', "events"),
    (b'{"events": {"id": "x"}}', "events"),
    (b'{"events": null}', "events"),
    (b'[]', "object"),
    (b'"events"', "object"),
    (b'{"events": [], "more": 1}', "more"),
])
def test_a_body_that_is_not_a_batch_is_a_400(client, store, body, word) -> None:
    response = post_batch(client, None, body=body)
    assert response.status_code == 400 and response.json["error"] == "invalid_batch"
    assert word in response.json["message"] + json.dumps(response.json["fields"])
    assert store.events() == []


def test_a_batch_may_be_larger_than_one_event_but_not_than_max_batch_bytes(
        settings, store, clock) -> None:
    from bridge.web.app import create_app

    small = settings.replace(webhook={"secrets": SECRET, "max_batch_bytes": 200000})
    client = create_app(small, store=store, clock=clock).test_client()
    # 100 events of ~1 KB: above max_body_bytes (65536), below max_batch_bytes
    events = [event(f"big{n}", "InvoiceCreated", {"invoiceid": n + 1, "user": "x" * 60,
                                                  "source": "s" * 30, "status": "Unpaid",
                                                  "padding": "p" * 900})
              for n in range(100)]
    body = json.dumps({"events": events}).encode()
    assert small.webhook.max_body_bytes < len(body) < 200000
    assert post_batch(client, None, body=body).json["queued"] == 100
    before = store.inbox_fingerprint()
    huge = json.dumps({"events": events * 2}).encode()
    response = post_batch(client, None, body=huge)
    assert response.status_code == 413 and response.json["error"] == "payload_too_large"
    assert "max_batch_bytes" in response.json["message"]
    assert store.inbox_fingerprint() == before
    # the single endpoint keeps its own limit
    single = envelope("InvoicePaid", {"invoiceid": "1", "pad": "x" * 70000})
    assert post_signed(client, single).status_code == 413


def test_a_bad_signature_refuses_the_whole_batch(client, store) -> None:
    body = json.dumps({"events": [event("s1")]}).encode()
    headers = signed_headers([SECRET], "batch_s", NOW, body)
    response = client.post("/hooks/whmcs/batch", data=body + b" ", headers=headers,
                           content_type="application/json")
    assert response.status_code == 401 and response.json["error"] == "invalid_signature"
    response = client.post("/hooks/whmcs/batch", data=body, content_type="application/json")
    assert response.status_code == 401 and response.json["error"] == "missing_signature"
    assert store.events() == []


def test_when_the_database_is_away_nothing_of_the_batch_is_stored(
        client, store, monkeypatch, caplog) -> None:
    def away(*args: object, **kwargs: object) -> None:
        raise sa.exc.OperationalError("INSERT", {}, ConnectionRefusedError(111, "refused"))

    monkeypatch.setattr(store, "enqueue_many", away)
    with caplog.at_level("WARNING", logger="vipgate.webhook"):
        response = post_batch(client, [event("a1"), event("a2")], batch_id="batch_away")
    assert response.status_code == 503 and response.json["error"] == "database_unavailable"
    assert [r.getMessage() for r in caplog.records] == [
        "event batch_away: the database does not answer: [Errno 111] refused"]
    monkeypatch.undo()
    assert store.events() == []


def test_a_batch_is_one_transaction_a_failure_midway_stores_nothing(
        client, store, monkeypatch) -> None:
    """The database fails on the batch's second statement: the first one's rows are rolled
    back with it, the answer is a 503, and the same batch is taken whole afterwards."""
    monkeypatch.setattr(inbox_module, "MULTI_ROW_CHUNK", 2)
    real = inbox_module.INSERT_INBOX
    calls = {"n": 0}

    if store.inbox_engine is None:  # SQLite: the statements go through SQLAlchemy
        original = sa.engine.Connection.execute

        def failing(conn: sa.engine.Connection, statement: Any, *args: Any, **kw: Any) -> Any:
            if statement is real:
                calls["n"] += 1
                original(conn, statement, *args, **kw)
                raise sa.exc.OperationalError("INSERT", {}, Exception("disk I/O error"))
            return original(conn, statement, *args, **kw)

        monkeypatch.setattr(sa.engine.Connection, "execute", failing)
    else:
        original_sql = inbox_module._mysql_statements

        def statements(rows: Any) -> Any:
            good = original_sql(rows)
            calls["n"] += 1
            # the second statement refers to a column that does not exist: error 1054
            return [good[0], ("INSERT INTO inbox (no_such_column) VALUES (1)", ())]

        monkeypatch.setattr(inbox_module, "_mysql_statements", statements)
    events = [event(f"t{n}") for n in range(4)]
    response = post_batch(client, events)
    assert calls["n"] == 1
    assert response.status_code in (500, 503)
    assert store.events() == []
    monkeypatch.undo()
    assert post_batch(client, events).json["queued"] == 4
    assert len(store.events()) == 4


def test_the_heartbeat_in_a_batch_records_the_stubs_report(client, store) -> None:
    recent = [{"webhook_id": "msg_r1", "hook": "InvoicePaid",
               "rejected_at": "2026-11-21T10:00:00+00:00", "reason": "HTTP 400: no"}]
    response = post_batch(client, [event("h0"), event("h1", "AfterCronJob", {
        "rejected_count": 3, "rejected_recent": recent})],
        extra_headers={"vipgate-stub-version": "9.9.9"})
    assert response.json["queued"] == 2
    report = store.stub_report()
    assert (report.version, report.rejected_count, report.rejected) == ("9.9.9", 3,
                                                                        tuple(recent))


def test_metrics_count_each_event_of_a_batch(client, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="vipgate.webhook"):
        post_batch(client, [event("x1"), event("x1"), event("x2", "ServerReboot", {}),
                            event("x3", "PreCronJob", {})])
    post_batch(client, [])
    text = client.get("/metrics").get_data(as_text=True)
    assert 'vipgate_events_received_total{hook="InvoicePaid",outcome="queued"} 1.0' in text
    assert 'vipgate_events_received_total{hook="InvoicePaid",outcome="duplicate"} 1.0' in text
    assert 'vipgate_events_received_total{hook="unknown",outcome="rejected"} 1.0' in text
    assert 'vipgate_events_received_total{hook="PreCronJob",outcome="queued"} 1.0' in text
    assert 'vipgate_batches_received_total{outcome="answered"} 1.0' in text
    assert 'vipgate_batches_received_total{outcome="invalid_batch"} 1.0' in text
    assert "vipgate_batch_ingest_seconds_bucket" in text
    assert "batch batch_1: 4 events, 2 queued, 1 duplicate, 1 rejected" in caplog.text
