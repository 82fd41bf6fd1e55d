"""POST /hooks/whmcs on SQLite and MariaDB: accepted events, duplicates, and bad input."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from bridge.model import CachedStanding, OverdueInvoice
from bridge.signing import sign
from hooks.registry import HOOK_SPEC
from tests.helpers import FIXED_NOW, OTHER_SECRET, SECRET, envelope, post_signed

NOW = int(FIXED_NOW.timestamp())

SAMPLE_VARS: dict[str, dict[str, Any]] = {
    "InvoiceCreated": {"invoiceid": "1042", "source": "autogen", "user": "system",
                       "status": "Unpaid"},
    "InvoicePaid": {"invoiceid": "1042"},
    "InvoiceUnpaid": {"invoiceid": 1042},
    "InvoiceCancelled": {"invoiceid": "1042"},
    "InvoiceRefunded": {"invoiceid": "1042"},
    "AddInvoicePayment": {"invoiceid": "1042"},
    "AfterModuleSuspend": {"serviceid": "77", "userid": "12", "pid": "3"},
    "AfterModuleUnsuspend": {"serviceid": "77", "userid": "12"},
    "ClientAdd": {"client_id": "12", "user_id": "30", "groupid": "0"},
    "ClientEdit": {"userid": "12", "groupid": "2", "status": "Active", "language": "",
                   "olddata": {"groupid": "1", "status": "Active"}},
    "ClientClose": {"userid": "12"},
    "TicketOpen": {"ticketid": "501", "ticketmask": "ABC-123456", "userid": "12",
                   "deptid": "1", "priority": "Medium"},
    "TicketOpenAdmin": {"ticketid": "502", "ticketmask": "ABC-654321", "userid": "12",
                        "deptid": "1", "priority": "Low"},
    "TicketUserReply": {"ticketid": "501", "replyid": "9", "userid": "12", "deptid": "1",
                        "priority": "High", "status": "Customer-Reply"},
    "TicketPriorityChange": {"ticketid": "501", "priority": "Low"},
    "PreCronJob": {},
    "AfterCronJob": {},
    "DailyCronJob": {},
}


def test_sample_vars_cover_every_async_hook() -> None:
    async_hooks = {name for name, spec in HOOK_SPEC.items() if not spec.sync}
    assert set(SAMPLE_VARS) == async_hooks


@pytest.mark.parametrize("hook", sorted(SAMPLE_VARS))
def test_each_forwarded_hook_is_stored_once_with_coerced_vars(client, store, hook) -> None:
    response = post_signed(client, envelope(hook, SAMPLE_VARS[hook]), msg_id=f"msg_{hook}")
    assert response.status_code == 202
    assert response.json == {"id": f"msg_{hook}", "status": "queued"}
    row = store.get_event(f"msg_{hook}")
    assert row is not None and row.hook == hook and row.state == "queued"
    assert all(not isinstance(v, str) or not v.isdigit() for v in row.vars.values()), row.vars


def test_client_events_record_their_client(client, store) -> None:
    post_signed(client, envelope("ClientEdit", SAMPLE_VARS["ClientEdit"]), msg_id="msg_c1")
    post_signed(client, envelope("InvoicePaid", {"invoiceid": "5"}), msg_id="msg_i1")
    assert store.get_event("msg_c1").client_id == 12
    assert store.get_event("msg_i1").client_id is None  # resolved later, from WHMCS


def test_replayed_id_is_a_duplicate_and_stores_nothing_twice(client, store) -> None:
    body = envelope("InvoicePaid", {"invoiceid": "7"})
    first = post_signed(client, body, msg_id="msg_same")
    before = store.inbox_fingerprint()
    again = post_signed(client, body, msg_id="msg_same", timestamp=NOW + 60)  # a re-signed retry
    assert (first.status_code, first.json["status"]) == (202, "queued")
    assert (again.status_code, again.json) == (202, {"id": "msg_same", "status": "duplicate"})
    assert store.inbox_fingerprint() == before


def test_rotated_secrets_both_verify(settings, store, clock) -> None:
    from bridge.web.app import create_app

    app = create_app(settings.replace(webhook={"secrets": f"{OTHER_SECRET},{SECRET}"}),
                     store=store, clock=clock)
    client = app.test_client()
    for n, secret in enumerate((OTHER_SECRET, SECRET)):
        response = post_signed(client, envelope("ClientClose", {"userid": "3"}), secret=secret,
                               msg_id=f"msg_rot{n}")
        assert response.status_code == 202


def test_removed_secret_is_rejected(settings, store, clock) -> None:
    from bridge.web.app import create_app

    app = create_app(settings.replace(webhook={"secrets": OTHER_SECRET}), store=store,
                     clock=clock)
    response = post_signed(app.test_client(), envelope("ClientClose", {"userid": "3"}))
    assert (response.status_code, response.json["error"]) == (401, "invalid_signature")


# --- bad input: (name, request builder, status, error code, word the message must name) -------


@dataclass
class Bad:
    body: bytes = field(default_factory=lambda: envelope("InvoicePaid", {"invoiceid": "1"}))
    headers: dict[str, str] | None = None  # None = correctly signed
    mutate: Callable[[dict[str, str]], None] | None = None
    content_type: str | None = "application/json"


def _signed_headers(body: bytes, secret: str = SECRET, msg_id: str = "msg_bad",
                    timestamp: int = NOW) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, msg_id, timestamp, body)}


def _drop(name: str) -> Callable[[dict[str, str]], None]:
    return lambda h: h.pop(name)


def _set(name: str, value: str) -> Callable[[dict[str, str]], None]:
    return lambda h: h.__setitem__(name, value)


def _deep(depth: int) -> bytes:
    return (b'{"hook":"InvoicePaid","vars":{"invoiceid":' + b"[" * depth + b"]" * depth
            + b'},"occurred_at":"2026-11-21T11:59:00+00:00"}')


def _raw(text: str) -> bytes:
    return text.encode()


BAD_INPUT = [
    ("no signature headers", Bad(headers={}), 401, "missing_signature", "webhook-id"),
    ("no webhook-id", Bad(mutate=_drop("webhook-id")), 401, "missing_signature", "webhook-id"),
    ("no webhook-timestamp", Bad(mutate=_drop("webhook-timestamp")), 401, "missing_signature",
     "webhook-timestamp"),
    ("no webhook-signature", Bad(mutate=_drop("webhook-signature")), 401, "missing_signature",
     "webhook-signature"),
    ("forged signature", Bad(mutate=_set("webhook-signature",
                                         "v1," + base64.b64encode(b"x" * 32).decode())),
     401, "invalid_signature", "does not match"),
    ("wrong secret", Bad(headers=_signed_headers(envelope("InvoicePaid", {"invoiceid": "1"}),
                                                 secret=OTHER_SECRET)),
     401, "invalid_signature", "does not match"),
    ("body changed after signing", Bad(headers=_signed_headers(
        envelope("InvoicePaid", {"invoiceid": "2"}))), 401, "invalid_signature", "does not match"),
    ("stale timestamp", Bad(headers=_signed_headers(envelope("InvoicePaid", {"invoiceid": "1"}),
                                                    timestamp=NOW - 301)),
     401, "stale_timestamp", "old"),
    ("future timestamp", Bad(headers=_signed_headers(envelope("InvoicePaid", {"invoiceid": "1"}),
                                                     timestamp=NOW + 301)),
     401, "stale_timestamp", "future"),
    ("timestamp not a number", Bad(mutate=_set("webhook-timestamp", "soon")), 401,
     "invalid_signature", "webhook-timestamp"),
    ("only unknown signature versions", Bad(mutate=_set("webhook-signature", "v1a,abc v2,def")),
     401, "invalid_signature", "no v1"),
    ("signature not base64", Bad(mutate=_set("webhook-signature", "v1,%%%")), 401,
     "invalid_signature", "no v1"),
    ("webhook-id with a full stop", Bad(mutate=_set("webhook-id", "msg.1")), 401,
     "invalid_signature", "webhook-id"),
    ("webhook-id too long", Bad(mutate=_set("webhook-id", "m" * 256)), 401,
     "invalid_signature", "webhook-id"),
    ("not JSON", Bad(body=b"hook=InvoicePaid"), 400, "invalid_json", "JSON"),
    ("empty body", Bad(body=b""), 400, "invalid_json", "JSON"),
    ("text/plain", Bad(content_type="text/plain"), 415, "unsupported_media_type",
     "application/json"),
    ("form encoded", Bad(content_type="application/x-www-form-urlencoded"), 415,
     "unsupported_media_type", "application/json"),
    ("no content type", Bad(content_type=None), 415, "unsupported_media_type",
     "application/json"),
    ("too large", Bad(body=envelope("InvoicePaid", {"invoiceid": "1" * 70000})), 413,
     "payload_too_large", "larger than"),
    ("invalid UTF-8", Bad(body=b'{"hook":"InvoicePaid","vars":{"invoiceid":"\xff\xfe"},'
                              b'"occurred_at":"2026-11-21T11:59:00+00:00"}'),
     400, "invalid_json", "UTF-8"),
    ("NaN constant", Bad(body=_raw('{"hook":"InvoicePaid","vars":{"invoiceid":NaN},'
                                   '"occurred_at":"2026-11-21T11:59:00+00:00"}')),
     400, "invalid_json", "NaN"),
    ("deep nesting", Bad(body=_deep(20000)), 400, "invalid_json", "nested"),
    ("moderate nesting in a field", Bad(body=_deep(50)), 400, "invalid_payload",
     "vars.invoiceid"),
    ("body is a list", Bad(body=b"[1,2]"), 400, "invalid_payload", "JSON object"),
    ("unknown hook", Bad(body=envelope("ServerReboot", {})), 400, "unknown_hook", "hook"),
    ("hook not a string", Bad(body=_raw('{"hook":5,"vars":{},'
                                        '"occurred_at":"2026-11-21T11:59:00+00:00"}')),
     400, "unknown_hook", "hook"),
    ("vars missing", Bad(body=_raw('{"hook":"PreCronJob",'
                                   '"occurred_at":"2026-11-21T11:59:00+00:00"}')),
     400, "invalid_payload", "vars"),
    ("occurred_at missing", Bad(body=_raw('{"hook":"PreCronJob","vars":{}}')), 400,
     "invalid_payload", "occurred_at"),
    ("occurred_at without zone", Bad(body=envelope("PreCronJob", {}, "2026-11-21T11:59:00")),
     400, "invalid_payload", "occurred_at"),
    ("extra top-level key", Bad(body=_raw('{"hook":"PreCronJob","vars":{},"x":1,'
                                          '"occurred_at":"2026-11-21T11:59:00+00:00"}')),
     400, "invalid_payload", "x"),
    ("required field missing", Bad(body=envelope("InvoicePaid", {})), 400, "invalid_payload",
     "vars.invoiceid"),
    ("id not a number", Bad(body=envelope("InvoicePaid", {"invoiceid": "abc"})), 400,
     "invalid_payload", "vars.invoiceid"),
    ("id negative", Bad(body=envelope("InvoicePaid", {"invoiceid": -4})), 400,
     "invalid_payload", "vars.invoiceid"),
    ("id huge", Bad(body=envelope("InvoicePaid", {"invoiceid": 10**30})), 400,
     "invalid_payload", "vars.invoiceid"),
    ("id too many digits for Python", Bad(body=_raw(
        '{"hook":"InvoicePaid","vars":{"invoiceid":' + "9" * 5000
        + '},"occurred_at":"2026-11-21T11:59:00+00:00"}')), 400, "invalid_json", "JSON"),
    ("id a fraction", Bad(body=envelope("InvoicePaid", {"invoiceid": 1.5})), 400,
     "invalid_payload", "vars.invoiceid"),
    ("id a boolean", Bad(body=envelope("InvoicePaid", {"invoiceid": True})), 400,
     "invalid_payload", "vars.invoiceid"),
    ("priority not a WHMCS priority", Bad(body=envelope("TicketPriorityChange", {
        "ticketid": "1", "priority": "Urgent"})), 400, "invalid_payload", "vars.priority"),
    ("client status unknown", Bad(body=envelope("ClientEdit", {"userid": "1",
                                                               "status": "Gone"})),
     400, "invalid_payload", "vars.status"),
    ("heartbeat count negative", Bad(body=envelope("AfterCronJob", {"rejected_count": -1})),
     400, "invalid_payload", "vars.rejected_count"),
    ("heartbeat count a string", Bad(body=envelope("AfterCronJob", {"rejected_count": "3"})),
     400, "invalid_payload", "vars.rejected_count"),
    ("heartbeat count a fraction", Bad(body=envelope("AfterCronJob", {"rejected_count": 3.5})),
     400, "invalid_payload", "vars.rejected_count"),
    ("heartbeat rejected event without its id", Bad(body=envelope("AfterCronJob", {
        "rejected_recent": [{"hook": "InvoicePaid", "rejected_at": "x"}]})), 400,
     "invalid_payload", "vars.rejected_recent"),
    ("isAdmin not a boolean", Bad(body=envelope("TicketOpenValidation", {
        "departmentId": "1", "isAdmin": "maybe"})), 400, "invalid_payload", "vars.isAdmin"),
    ("raw priority not a string", Bad(body=envelope("TicketOpenValidation", {
        "departmentId": "1", "priority": 3})), 400, "invalid_payload", "vars.priority"),
    ("raw priority a list", Bad(body=envelope("TicketOpenValidation", {
        "departmentId": "1", "priority": ["High"]})), 400, "invalid_payload", "vars.priority"),
    ("raw priority absurdly long", Bad(body=envelope("TicketOpenValidation", {
        "departmentId": "1", "priority": "x" * 256})), 400, "invalid_payload",
     "vars.priority"),
]


def _post_bad(client, path: str, case: Bad) -> Any:
    """POST ``case`` to ``path``: its body, signed unless it brings its own headers."""
    headers = dict(_signed_headers(case.body) if case.headers is None else case.headers)
    if case.mutate:
        case.mutate(headers)
    kwargs: dict[str, Any] = {"data": case.body, "headers": headers}
    if case.content_type:
        kwargs["content_type"] = case.content_type
    return client.post(path, **kwargs)


@pytest.mark.parametrize(("case", "status", "code", "word"),
                         [pytest.param(b, s, c, w, id=name) for name, b, s, c, w in BAD_INPUT])
def test_bad_input_is_rejected_with_a_clear_error_and_changes_nothing(
        client, store, case: Bad, status: int, code: str, word: str) -> None:
    assert len(BAD_INPUT) >= 25
    post_signed(client, envelope("InvoicePaid", {"invoiceid": "1"}), msg_id="msg_existing")
    before = store.inbox_fingerprint()
    response = _post_bad(client, "/hooks/whmcs", case)
    assert response.status_code == status, response.json
    assert response.is_json
    assert response.json["error"] == code
    assert word in response.json["message"] + json.dumps(response.json["fields"])
    assert store.inbox_fingerprint() == before


def test_get_on_the_hook_endpoint_is_a_json_405(client) -> None:
    response = client.get("/hooks/whmcs")
    assert response.status_code == 405 and response.json["error"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


# --- the synchronous TicketOpenValidation gate ---------------------------------------------


def _suspended(client_id: int) -> CachedStanding:
    return CachedStanding(client_id, "suspended", 12, Decimal("189.80"),
                          (OverdueInvoice(1042, "1042", Decimal("89.90"), "2026-11-09"),
                           OverdueInvoice(1043, "1043", Decimal("99.90"), "2026-11-09")),
                          "R$ ", "", "portuguese-br", FIXED_NOW)


@pytest.fixture
def gate_client(settings, store, clock):
    from bridge.web.app import create_app

    tuned = settings.replace(tickets={"billing_departments": "2"},
                             whmcs={"url": "https://billing.example.com"})
    return create_app(tuned, store=store, clock=clock).test_client()


def test_suspended_client_is_told_why_outside_billing(gate_client, store) -> None:
    store.put_standing(_suspended(12))
    before = store.inbox_fingerprint()
    response = post_signed(gate_client, envelope("TicketOpenValidation", {
        "clientId": "12", "departmentId": "1", "isAdmin": False, "priority": "High"}))
    assert response.status_code == 200
    (message,) = response.json["errors"]
    assert "#1042, #1043" in message and "R$ 189,80" in message
    assert "https://billing.example.com/viewinvoice.php?id=1042" in message
    assert store.inbox_fingerprint() == before  # a question, not an event to store


@pytest.mark.parametrize("raw", [
    {"priority": "x"}, {"priority": ""}, {}, {"priority": "urgent!"}, {"priority": "x" * 255},
    {"priority": "Médio"},
], ids=["any string", "empty", "absent", "punctuation", "longest taken", "not ascii"])
def test_the_gate_refuses_whatever_raw_priority_the_client_area_sends(
        gate_client, store, raw) -> None:
    """The client area hands TicketOpenValidation the raw form field ``urgency``: a blocked
    client posting ``urgency=x`` must be refused, not answered 400 (the stub fails open)."""
    store.put_standing(_suspended(12))
    response = post_signed(gate_client, envelope("TicketOpenValidation", {
        "clientId": "12", "departmentId": "1", "isAdmin": False, **raw}))
    assert response.status_code == 200
    (message,) = response.json["errors"]
    assert "#1042, #1043" in message


@pytest.mark.parametrize(("variables", "why"), [
    ({"clientId": "12", "departmentId": "2"}, "billing department"),
    ({"clientId": "12", "departmentId": "1", "isAdmin": "1"}, "staff"),
    ({"clientId": "13", "departmentId": "1"}, "no standing known"),
    ({"departmentId": "1"}, "guest"),
])
def test_gate_allows(gate_client, store, variables, why) -> None:
    store.put_standing(_suspended(12))
    response = post_signed(gate_client, envelope("TicketOpenValidation", variables))
    assert (response.status_code, response.json) == (200, {"errors": []}), why


# --- health and metrics --------------------------------------------------------------------


def test_healthz_reports_database_and_inbox(client) -> None:
    post_signed(client, envelope("PreCronJob"), msg_id="msg_h1")
    body = client.get("/healthz").json
    assert body["status"] == "ok" and body["database"]["ok"] is True
    assert body["inbox"]["queued"] == 1


def test_healthz_is_503_when_the_database_is_gone(client, store, monkeypatch) -> None:
    import sqlalchemy as sa

    def broken() -> None:
        raise sa.exc.OperationalError("SELECT 1", {}, Exception("gone"))

    monkeypatch.setattr(store, "ping", broken)
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json["database"]["ok"] is False


def test_an_event_the_database_cannot_take_is_a_503_in_one_log_line(
        client, store, monkeypatch, caplog) -> None:
    import sqlalchemy as sa

    def away(event: object) -> None:
        raise sa.exc.OperationalError("INSERT", {}, ConnectionRefusedError(111, "refused"))

    monkeypatch.setattr(store, "enqueue", away)
    with caplog.at_level("WARNING", logger="vipgate.webhook"):
        response = post_signed(client, envelope("InvoicePaid", {"invoiceid": 7}),
                               msg_id="msg_db_away")
    assert response.status_code == 503
    assert response.json["error"] == "database_unavailable" and response.json["fields"] == {}
    assert [r.getMessage() for r in caplog.records] == [
        "event msg_db_away: the database does not answer: [Errno 111] refused"]
    assert all(r.exc_info is None for r in caplog.records)
    monkeypatch.undo()
    assert store.get_event("msg_db_away") is None  # the stub sends it again later


def test_a_synchronous_question_the_database_cannot_answer_is_a_503(
        gate_client, store, monkeypatch) -> None:
    import sqlalchemy as sa

    def away(*args: object, **kwargs: object) -> None:
        raise sa.exc.OperationalError("SELECT", {}, ConnectionRefusedError(111, "refused"))

    monkeypatch.setattr(store, "get_standing", away)
    response = post_signed(gate_client, envelope("TicketOpenValidation", {
        "clientId": "12", "departmentId": "1"}), msg_id="msg_gate_away")
    assert response.status_code == 503 and response.json["error"] == "database_unavailable"
    assert "webhook-signature" not in response.headers  # not an answer: the stub fails open


def test_metrics_count_events_by_hook_and_outcome(client) -> None:
    post_signed(client, envelope("PreCronJob"), msg_id="msg_m1")
    post_signed(client, envelope("PreCronJob"), msg_id="msg_m1")
    client.post("/hooks/whmcs", data=b"{}", content_type="application/json")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'vipgate_events_received_total{hook="PreCronJob",outcome="queued"} 1.0' in text
    assert 'vipgate_events_received_total{hook="PreCronJob",outcome="duplicate"} 1.0' in text
    assert 'vipgate_events_received_total{hook="unknown",outcome="rejected"} 1.0' in text
    assert "vipgate_ingest_seconds_bucket" in text
    assert SECRET not in text


@pytest.mark.parametrize(("hook", "variables", "stored", "ignored"), [
    ("AfterModuleSuspend", {"serviceid": "1", "userid": "2", "password": "hunter2"},
     {"serviceid": 1, "userid": 2}, ["password"]),
    ("ClientEdit", {"userid": "1", "olddata": {"groupid": "2", "email": "x"}, "brand_new": 1},
     {"userid": 1, "olddata": {"groupid": 2}}, ["olddata.email", "brand_new"]),
])
def test_unknown_vars_keys_are_left_out_counted_and_logged_once(
        client, store, caplog, hook, variables, stored, ignored) -> None:
    """A stub newer than the bridge may send keys the bridge does not know: the event is
    taken, without them."""
    from bridge.web import webhook

    webhook._ignored_logged.clear()
    with caplog.at_level(logging.WARNING, logger="vipgate.webhook"):
        for n in range(2):
            response = post_signed(client, envelope(hook, variables), msg_id=f"msg_new{n}")
            assert response.status_code == 202, response.json
    assert [e.vars for e in store.events()] == [stored, stored]
    text = client.get("/metrics").get_data(as_text=True)
    for key in ignored:
        assert f'vipgate_ignored_vars_total{{hook="{hook}",key="{key}"}} 2.0' in text
        assert len([r for r in caplog.records if repr(key) in r.getMessage()]) == 1
    assert "hunter2" not in caplog.text


def test_stub_version_and_heartbeat_report_are_recorded(client, store) -> None:
    assert store.stub_report().version is None  # never heard from
    post_signed(client, envelope("InvoicePaid", {"invoiceid": "1"}))
    assert store.stub_report().version == ""  # a stub too old to say
    recent = [{"webhook_id": "msg_r1", "hook": "InvoicePaid",
               "rejected_at": "2026-11-21T10:00:00+00:00", "reason": "HTTP 400: no"}]
    post_signed(client, envelope("AfterCronJob", {"rejected_count": 3,
                                                  "rejected_recent": recent}),
                extra_headers={"vipgate-stub-version": "9.9.9"})
    report = store.stub_report()
    assert (report.version, report.rejected_count, report.rejected) == ("9.9.9", 3,
                                                                        tuple(recent))
    assert report.seen_at == report.reported_at == FIXED_NOW.replace(tzinfo=None)
    post_signed(client, envelope("AfterCronJob", {}),
                extra_headers={"vipgate-stub-version": "9.9.9"})
    assert (store.stub_report().rejected_count, store.stub_report().rejected) == (0, ())
    # 364.0 is the JSON integer 364 (schemathesis sends it so): accepted as 364
    post_signed(client, envelope("AfterCronJob", {"rejected_count": 364.0}))
    assert store.stub_report().rejected_count == 364


@pytest.mark.parametrize("user", ["system", 3, "3"])
def test_invoice_created_by_system_or_by_an_admin_is_accepted(client, store, user) -> None:
    response = post_signed(client, envelope("InvoiceCreated", {"invoiceid": "9", "user": user}),
                           msg_id="msg_created")
    assert response.status_code == 202
    assert store.get_event("msg_created").vars["user"] == str(user)


# --- the same bad input on POST /hooks/whmcs/batch -------------------------------------------


def _batch(*events: dict[str, Any]) -> bytes:
    return json.dumps({"events": list(events)}).encode()


_ONE = {"id": "msg_b1", **json.loads(envelope("InvoicePaid", {"invoiceid": "1"}))}
BATCH = _batch(_ONE)
BATCH_BAD_INPUT = [
    ("no signature headers", Bad(body=BATCH, headers={}), 401, "missing_signature",
     "webhook-id"),
    ("no webhook-signature", Bad(body=BATCH, mutate=_drop("webhook-signature")), 401,
     "missing_signature", "webhook-signature"),
    ("wrong secret", Bad(body=BATCH, headers=_signed_headers(BATCH, secret=OTHER_SECRET)),
     401, "invalid_signature", "does not match"),
    ("body changed after signing", Bad(body=BATCH, headers=_signed_headers(_batch(
        {**_ONE, "id": "msg_b2"}))), 401, "invalid_signature", "does not match"),
    ("stale timestamp", Bad(body=BATCH, headers=_signed_headers(BATCH, timestamp=NOW - 301)),
     401, "stale_timestamp", "old"),
    ("batch id with a full stop", Bad(body=BATCH, mutate=_set("webhook-id", "batch.1")), 401,
     "invalid_signature", "webhook-id"),
    ("text/plain", Bad(body=BATCH, content_type="text/plain"), 415, "unsupported_media_type",
     "application/json"),
    ("too large", Bad(body=_batch(*[{**_ONE, "id": f"m{n}", "pad": "x" * 9000}
                                    for n in range(500)])),
     413, "payload_too_large", "max_batch_bytes"),
    ("not JSON", Bad(body=b"events=1"), 400, "invalid_json", "JSON"),
    ("deep nesting", Bad(body=b'{"events":' + b"[" * 20000 + b"]" * 20000 + b"}"), 400,
     "invalid_json", "nested"),
    ("a list", Bad(body=b"[]"), 400, "invalid_batch", "object"),
    ("no events", Bad(body=b"{}"), 400, "invalid_batch", "events"),
    ("events not a list", Bad(body=b'{"events":{"0":{}}}'), 400, "invalid_batch", "events"),
    ("no event", Bad(body=_batch()), 400, "invalid_batch", "events"),
    ("501 events", Bad(body=_batch(*[{**_ONE, "id": f"m{n}"} for n in range(501)])), 400,
     "invalid_batch", "501"),
    ("unknown top-level key", Bad(body=b'{"events":[],"since":1}'), 400, "invalid_batch",
     "since"),
]


@pytest.mark.parametrize(("case", "status", "code", "word"),
                         [pytest.param(b, s, c, w, id=name)
                          for name, b, s, c, w in BATCH_BAD_INPUT])
def test_a_bad_batch_is_refused_whole_with_a_clear_error_and_changes_nothing(
        client, store, case: Bad, status: int, code: str, word: str) -> None:
    post_signed(client, envelope("InvoicePaid", {"invoiceid": "1"}), msg_id="msg_existing")
    before = store.inbox_fingerprint()
    response = _post_bad(client, "/hooks/whmcs/batch", case)
    assert response.status_code == status, response.json
    assert response.json["error"] == code
    assert word in response.json["message"] + json.dumps(response.json["fields"])
    assert store.inbox_fingerprint() == before


def _as_batched_event(body: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(body)
    except ValueError:
        return None
    return {"id": "msg_in_batch", **document} if isinstance(document, dict) else None


# The single endpoint's 400s on one event's body (not the body's JSON): in a batch, that event
# is rejected with the same code and field, the batch's other events are stored.
PER_EVENT_BAD_INPUT = [(name, case, code, word) for name, case, status, code, word in BAD_INPUT
                       if status == 400 and code in ("invalid_payload", "unknown_hook")
                       and _as_batched_event(case.body) is not None]


@pytest.mark.parametrize(("case", "code", "word"),
                         [pytest.param(b, c, w, id=name)
                          for name, b, c, w in PER_EVENT_BAD_INPUT])
def test_a_bad_event_in_a_batch_is_rejected_with_the_single_endpoints_reason(
        client, store, case: Bad, code: str, word: str) -> None:
    assert len(PER_EVENT_BAD_INPUT) >= 20
    bad = _as_batched_event(case.body)
    body = _batch(_ONE, bad or {})
    response = client.post("/hooks/whmcs/batch", data=body, headers=_signed_headers(body),
                           content_type="application/json")
    assert response.status_code == 200, response.json
    good, rejected = response.json["results"]
    assert good["status"] == "queued" and rejected["status"] == "rejected"
    assert rejected["error"]["code"] == code
    assert word in rejected["error"]["message"] + json.dumps(rejected["error"]["fields"])
    assert [e.webhook_id for e in store.events()] == ["msg_b1"]
