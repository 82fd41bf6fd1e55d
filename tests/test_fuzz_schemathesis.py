"""schemathesis against docs/openapi.yaml, in-process (the Flask app over WSGI, no network).

Every request to ``/hooks/whmcs`` must be signed, so a schemathesis auth provider
(:class:`StandardWebhooksSigner`) signs each generated body with ``SECRET``, a fresh
``webhook-id`` and the app's clock; when schemathesis negates the signature headers on purpose
(negative mode) they go out as generated and must be answered 401. Checked for each request:
no 5xx, status, content type, headers and body as the spec says, schema-valid data accepted and
schema-invalid data rejected (schemathesis' default checks), and a 4xx leaves the inbox exactly
as it was. The batch endpoint is fuzzed the same way
(``test_signed_batches``; its per-event outcomes are checked against the inbox). A second test
garbles signed requests on the wire (no or wrong signature, tampered
body, stale or future timestamp, wrong media type, too large, not JSON) for the 401/413/415/400
paths. Bounded and reproducible: fixed example counts, ``derandomize=True``, no example
database. ``FUZZ_SCALE=10`` multiplies the counts for a longer local run.

schemathesis' pytest plugin (``schemathesis.pytest.from_fixture``) does not run under pytest 9
(it writes ``Function._nodeid``, gone in pytest 9), so the cases are drawn with
``APIOperation.as_strategy`` inside ``@given``; the checks are the same.
"""

from __future__ import annotations

import itertools
import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import sqlalchemy as sa
import yaml
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi import checks as oa

from bridge.runtime import Runtime
from bridge.settings import Settings
from bridge.signing import signed_headers, verify
from bridge.store import Store
from bridge.web.app import create_app
from bridge.whmcs.probe import WhmcsProbe
from tests.helpers import OTHER_SECRET, SECRET, Clock

SPEC = Path(__file__).resolve().parents[1] / "docs" / "openapi.yaml"
RAW_SPEC = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
SCALE = int(os.environ.get("FUZZ_SCALE", "1"))
SIGNED_EXAMPLES = 200 * SCALE
GARBLED_EXAMPLES = 120 * SCALE
FUZZ = settings(derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.filter_too_much,
                                       HealthCheck.data_too_large])
# The checks that judge a response on its own (the request was garbled after generation, so
# schemathesis' "valid data accepted / invalid data rejected" checks do not apply).
RESPONSE_CHECKS = [oa.status_code_conformance, oa.content_type_conformance,
                   oa.response_headers_conformance, oa.response_schema_conformance]

_message_ids = itertools.count(1)


def _fresh_id() -> str:
    return f"fuzz_{next(_message_ids)}"


def wire_body(body: Any) -> bytes:
    """The bytes schemathesis' WSGI transport sends for a generated body: bytes as they are,
    ``None`` as ``null``, anything else through werkzeug's test client ``json=`` (``json.dumps``
    with its defaults). Should that ever differ, signed schema-valid requests come back 401 and
    ``test_signed_requests`` fails on it."""
    if isinstance(body, bytes):
        return body
    if body is None:
        return b"null"
    return json.dumps(body).encode()


class StandardWebhooksSigner:
    """schemathesis auth provider: the three Standard Webhooks headers for each case."""

    def get(self, case: schemathesis.Case, ctx: schemathesis.AuthContext) -> Runtime:
        assert ctx.app is not None
        return ctx.app.extensions["vipgate"]

    def set(self, case: schemathesis.Case, rt: Runtime, ctx: schemathesis.AuthContext) -> None:
        if headers_negated(case):
            return  # schemathesis drops or garbles the signature on purpose: sent as generated
        body = wire_body(case.body)
        case.headers = {**(case.headers or {}),
                        **signed_headers([SECRET], _fresh_id(), int(rt.clock().timestamp()),
                                         body)}


def headers_negated(case: schemathesis.Case) -> bool:
    component = case.meta.components.get(ParameterLocation.HEADER) if case.meta else None
    return component is not None and component.mode.is_negative


def body_negated(case: schemathesis.Case) -> bool:
    component = case.meta.components.get(ParameterLocation.BODY) if case.meta else None
    return component is not None and component.mode.is_negative


def load_schema(app: Flask, *, signed: bool = True) -> Any:
    schema = schemathesis.openapi.from_dict(RAW_SPEC)
    schema.app = app
    if signed:
        schema.auth(refresh_interval=None)(StandardWebhooksSigner)
    return schema


@pytest.fixture
def hooks_op(app: Flask) -> Any:
    return load_schema(app)["/hooks/whmcs"]["POST"]


@pytest.fixture
def tally() -> Iterator[Counter[tuple[str, int]]]:
    counts: Counter[tuple[str, int]] = Counter()
    yield counts
    print("\nanswers (kind, status):", dict(sorted(counts.items())))


def test_spec_is_a_valid_openapi_document() -> None:
    schema = schemathesis.openapi.from_dict(RAW_SPEC)
    schema.validate()
    operations = {(op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations()}
    assert operations == {("POST", "/hooks/whmcs"), ("POST", "/hooks/whmcs/batch"),
                          ("GET", "/healthz")}


@settings(FUZZ, max_examples=SIGNED_EXAMPLES)
@given(data=st.data())
def test_signed_requests(hooks_op: Any, store: Store, app: Flask, data: st.DataObject,
                         tally: Counter[tuple[str, int]]) -> None:
    mode = data.draw(st.sampled_from([GenerationMode.POSITIVE, GenerationMode.NEGATIVE]),
                     label="mode")
    case = data.draw(hooks_op.as_strategy(mode), label="case")
    before = store.inbox_fingerprint()
    response = case.call()
    tally[(case.meta.generation.mode.value, response.status_code)] += 1
    # No 5xx; status, content type, headers and body as documented; valid data accepted,
    # invalid data rejected; the extra checks schemathesis runs by default.
    case.validate_response(response)
    if 400 <= response.status_code < 500:
        assert store.inbox_fingerprint() == before, "a rejected request changed the inbox"
    if not headers_negated(case) and not body_negated(case):
        assert response.status_code in (200, 202), "a signed, schema-valid request was refused"
    if response.status_code == 200:  # a synchronous answer: signed like the request
        rt: Runtime = app.extensions["vipgate"]
        headers = {name.lower(): values[0] for name, values in response.headers.items()}
        answer = verify([SECRET], headers, response.content, rt.clock().timestamp(), 300)
        assert answer.msg_id == case.headers["webhook-id"]
    if response.status_code == 202:
        accepted = json.loads(response.content)
        row = store.get_event(accepted["id"])
        assert row is not None and row.hook == case.body["hook"]
        if accepted["status"] == "queued":
            assert len(store.inbox_fingerprint()) == len(before) + 1


@pytest.fixture
def batch_op(app: Flask) -> Any:
    return load_schema(app)["/hooks/whmcs/batch"]["POST"]


@settings(FUZZ, max_examples=SIGNED_EXAMPLES // 2)
@given(data=st.data())
def test_signed_batches(batch_op: Any, store: Store, app: Flask, data: st.DataObject,
                        tally: Counter[tuple[str, int]]) -> None:
    """``POST /hooks/whmcs/batch``: the spec's per-event schema names the keys and leaves each
    event's check to the single endpoint's ``Envelope``, an event failing it being a
    ``rejected`` result in a 200, not a 4xx. So schemathesis' "invalid data rejected" check
    is replaced here by: a 4xx or 503 stores nothing, a 200 stores exactly its ``queued``
    events, each with the hook it was sent with."""
    mode = data.draw(st.sampled_from([GenerationMode.POSITIVE, GenerationMode.NEGATIVE]),
                     label="mode")
    case = data.draw(batch_op.as_strategy(mode), label="case")
    before = store.inbox_fingerprint()
    response = case.call()
    tally[("batch " + case.meta.generation.mode.value, response.status_code)] += 1
    case.validate_response(response, excluded_checks=[oa.negative_data_rejection])
    if response.status_code != 200:
        assert store.inbox_fingerprint() == before, "a refused batch changed the inbox"
    if not headers_negated(case) and not body_negated(case):
        assert response.status_code == 200, "a signed, schema-valid batch was refused"
    if response.status_code == 200:
        answer = json.loads(response.content)
        events = case.body["events"]
        assert [r["index"] for r in answer["results"]] == list(range(len(events)))
        queued = [r for r in answer["results"] if r["status"] == "queued"]
        assert len(store.inbox_fingerprint()) == len(before) + len(queued)
        for result in queued:
            row = store.get_event(result["id"])
            assert row is not None and row.hook == events[result["index"]]["hook"]


GARBLES = ("unsigned", "wrong_secret", "tampered", "stale", "future", "bad_id", "media_type",
           "too_large", "not_json")
EXPECTED = {
    "unsigned": (401, "missing_signature"),
    "wrong_secret": (401, "invalid_signature"),
    "tampered": (401, "invalid_signature"),
    "stale": (401, "stale_timestamp"),
    "future": (401, "stale_timestamp"),
    "bad_id": (401, "invalid_signature"),
    "media_type": (415, "unsupported_media_type"),
    "too_large": (413, "payload_too_large"),
    "not_json": (400, "invalid_json"),
}


def garble(kind: str, body: bytes, now: int, limit: int,
           junk: bytes) -> tuple[bytes, dict[str, str], str]:
    """(body, headers, content type) of one garbled request built from a signed one."""
    content_type = "application/json"
    msg_id = _fresh_id()
    secret, stamp = SECRET, now
    if kind == "too_large":
        body = body + b" " * (limit + 1 - len(body))  # still valid JSON, correctly signed
    elif kind == "not_json":
        body = junk
    elif kind == "wrong_secret":
        secret = OTHER_SECRET
    elif kind == "stale":
        stamp = now - 301
    elif kind == "future":
        stamp = now + 301
    elif kind == "media_type":
        content_type = "text/plain"
    headers = signed_headers([secret], msg_id, stamp, body)
    if kind == "unsigned":
        headers = {}
    elif kind == "tampered":
        body = body + b" "
    elif kind == "bad_id":
        headers["webhook-id"] = "bad id/" + msg_id
    return body, headers, content_type


def _not_json(raw: bytes) -> bool:
    try:
        json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return True
    return False


@settings(FUZZ, max_examples=GARBLED_EXAMPLES)
@given(data=st.data())
def test_garbled_requests(hooks_op: Any, store: Store, app: Flask, data: st.DataObject,
                          tally: Counter[tuple[str, int]]) -> None:
    kind = data.draw(st.sampled_from(GARBLES), label="garble")
    case = data.draw(hooks_op.as_strategy(GenerationMode.POSITIVE), label="case")
    junk = data.draw(st.binary(max_size=64).filter(_not_json), label="junk")
    rt: Runtime = app.extensions["vipgate"]
    body, headers, content_type = garble(kind, wire_body(case.body), int(rt.clock().timestamp()),
                                         rt.settings.webhook.max_body_bytes, junk)
    before = store.inbox_fingerprint()
    response = app.test_client().post("/hooks/whmcs", data=body, headers=headers,
                                      content_type=content_type)
    tally[(kind, response.status_code)] += 1
    case.validate_response(response, checks=RESPONSE_CHECKS)
    assert (response.status_code, response.json["error"]) == EXPECTED[kind]
    assert store.inbox_fingerprint() == before, "a rejected request changed the inbox"


# --- /healthz --------------------------------------------------------------------------------


def test_healthz_conforms(app: Flask) -> None:
    operation = load_schema(app, signed=False)["/healthz"]["GET"]

    @settings(FUZZ, max_examples=5)
    @given(case=operation.as_strategy())
    def check(case: schemathesis.Case) -> None:
        response = case.call_and_validate()
        assert response.status_code == 200

    check()


def _down(*_: Any, **__: Any) -> None:
    raise sa.exc.OperationalError("SELECT 1", {}, Exception("server has gone away"))


@pytest.mark.parametrize("whmcs_ok", [True, False])
def test_healthz_degraded_answers_conform(settings: Settings, store: Store, clock: Clock,
                                          monkeypatch: pytest.MonkeyPatch,
                                          whmcs_ok: bool) -> None:
    """The shapes a healthy test app never shows: WHMCS configured (reachable or not) and the
    database down (503)."""
    app = create_app(settings.replace(whmcs={"url": "https://whmcs.example.invalid"}),
                     store=store, clock=clock)
    app.extensions["vipgate.whmcs_probe"] = WhmcsProbe(
        check=lambda _settings: (whmcs_ok, "" if whmcs_ok else "HTTP 503"))
    operation = load_schema(app, signed=False)["/healthz"]["GET"]
    case = operation.Case()
    response = case.call_and_validate()
    assert response.status_code == 200
    assert json.loads(response.content)["whmcs"]["ok"] is whmcs_ok
    monkeypatch.setattr(store, "ping", _down)
    response = case.call()
    case.validate_response(response, checks=RESPONSE_CHECKS)
    assert response.status_code == 503
    assert json.loads(response.content)["database"] == {"ok": False, "error": "OperationalError"}


def test_signer_matches_what_is_sent() -> None:
    """The signature covers the exact bytes werkzeug's test client sends for ``json=``."""
    from werkzeug.test import EnvironBuilder

    body = {"hook": "InvoicePaid", "vars": {"invoiceid": "ção ☃"}, "occurred_at": "x"}
    sent = EnvironBuilder(json=body).get_request().get_data()
    assert sent == wire_body(body)
