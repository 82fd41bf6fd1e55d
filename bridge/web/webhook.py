"""``POST /hooks/whmcs`` and ``POST /hooks/whmcs/batch``: verify the raw bytes, validate, store,
answer. No business work here, except the synchronous answers (the ticket gate and the panels
inside WHMCS's pages), which read only vipgate's own tables and are signed like the request.

Both endpoints share the reading and verifying (:func:`_read_verified_json`), the validation of
one event (:func:`_validate`), the storing (the inbox's one insert path) and the record of what
the stub reports (:func:`_note_stub`); a batch stores all its valid events in one transaction
and answers an outcome per event."""

from __future__ import annotations

import json
import logging
import re
import time
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, jsonify, request
from marshmallow import ValidationError

import hooks
from bridge import panels
from bridge.i18n import why
from bridge.model import Reason
from bridge.payloads import load_event
from bridge.policy import gate
from bridge.policy.episodes import TICKET_BLOCKED, Action
from bridge.runtime import Runtime, runtime
from bridge.signing import (
    WEBHOOK_ID_FORM,
    SignatureError,
    Verified,
    check_trust_token,
    signed_headers,
    valid_webhook_id,
    verify,
)
from bridge.store.inbox import InboxEvent
from bridge.web.errors import error_response

bp = Blueprint("webhook", __name__)
SYNC_RECONCILE_HOOK = "PreCronJob"
log = logging.getLogger("vipgate.webhook")
DATABASE_AWAY = (sa.exc.OperationalError, sa.exc.InterfaceError)
STUB_VERSION_HEADER = "vipgate-stub-version"
HEARTBEAT_HOOK = "AfterCronJob"
BATCH_MAX_EVENTS = 500
_ignored_logged: set[tuple[str, str]] = set()  # (hook, key) already logged by this process
IGNORED_LOGGED_MAX = 1000


def _note_ignored(rt: Runtime, hook: str, keys: list[str]) -> None:
    """vars keys this bridge does not know (a newer stub): counted, logged once per hook and
    key per process, and otherwise left out; the event itself is taken."""
    for key in keys:
        key = key[:64]
        rt.metrics.ignored_vars.labels(hook=hook, key=key).inc()
        if (hook, key) not in _ignored_logged and len(_ignored_logged) < IGNORED_LOGGED_MAX:
            _ignored_logged.add((hook, key))
            log.warning("hook %s: vars key %r is unknown to this bridge and was left out (a "
                        "stub newer than the bridge? stub version %s); logged once", hook, key,
                        _stub_version() or "not sent")


def _stub_version() -> str:
    """The version the stub names in its request ("" for a stub too old to name one)."""
    return re.sub(r"[^0-9A-Za-z.+_-]", "", request.headers.get(STUB_VERSION_HEADER, ""))[:64]


def _note_stub(rt: Runtime, hook: str, variables: dict[str, Any]) -> None:
    """Record the stub's version (on each heartbeat, and when this process sees it change)
    and, from the heartbeat, its report of the events the bridge refused. A database that
    does not answer costs the record, not the request."""
    version = _stub_version()
    now = rt.clock()
    last = current_app.extensions.setdefault("vipgate.stub_version_recorded", {})
    try:
        if hook == HEARTBEAT_HOOK or last.get("version") != version:
            rt.store.put_stub_version(version, now)
            last["version"] = version
        if hook == HEARTBEAT_HOOK:
            recent = variables.get("rejected_recent") or []
            rt.store.put_stub_rejected(variables.get("rejected_count", len(recent)), recent, now)
    except DATABASE_AWAY as exc:
        log.warning("cannot record what the stub reported: %s",
                    exc.orig if exc.orig is not None else exc)


class Rejected(Exception):
    def __init__(self, status: int, code: str, message: str,
                 fields: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _read_verified_json(rt: Runtime, limit: int, setting: str) -> tuple[Any, Verified]:
    """The body, size-checked against ``limit`` (the ``[webhook]`` key ``setting``), of the
    right media type, signed, parsed as JSON; or Rejected."""
    request.max_content_length = limit  # werkzeug stops reading past it
    if request.content_length is not None and request.content_length > limit:
        raise Rejected(413, "payload_too_large",
                       f"body is larger than {limit} bytes ([webhook] {setting})")
    if request.mimetype != "application/json":
        raise Rejected(415, "unsupported_media_type",
                       "Content-Type must be application/json",
                       {"content-type": [request.mimetype or "missing"]})
    body = request.get_data(cache=False)
    try:
        verified = verify(rt.secrets, request.headers, body, rt.clock().timestamp(),
                          rt.settings.webhook.tolerance_seconds)
    except SignatureError as exc:
        raise Rejected(401, exc.code, exc.message) from None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejected(400, "invalid_json", f"body is not valid UTF-8 (byte {exc.start})") \
            from None
    try:
        return json.loads(text, parse_constant=_reject_constant), verified
    except RecursionError:
        raise Rejected(400, "invalid_json", "body is nested too deeply") from None
    except ValueError as exc:
        raise Rejected(400, "invalid_json", f"body is not valid JSON: {exc}") from None


def _validate(document: Any) -> dict[str, Any]:
    """One event's body (the single endpoint's whole body, a batch's event without its id),
    validated and coerced by bridge.payloads.load_event; or Rejected (400) naming the field."""
    try:
        return load_event(document)
    except ValidationError as exc:
        fields = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        code = "unknown_hook" if "hook" in fields else "invalid_payload"
        path, problems = next(iter(fields.items()))
        raise Rejected(400, code, f"invalid field {path}: {problems[0]}", fields) from None


def _inbox_row(rt: Runtime, msg_id: str, event: dict[str, Any],
               subjects: hooks.Subjects) -> InboxEvent:
    """The inbox row of a validated event; its client when the event names exactly one."""
    client_id = next(iter(subjects.clients)) if len(subjects.clients) == 1 else None
    return InboxEvent(msg_id, event["hook"], client_id, event["vars"], event["occurred_at"],
                      rt.clock())


def _signed_answer(rt: Runtime, verified: Verified, answer: dict[str, Any]) -> Response:
    """A synchronous answer, signed like the request (same webhook id, the secret that
    verified it, a fresh timestamp): the stub puts what it gets into WHMCS's pages and its
    ticket gate, so it uses only answers that verify."""
    body = json.dumps(answer, separators=(",", ":")).encode()
    headers = signed_headers([verified.secret], verified.msg_id, int(rt.clock().timestamp()),
                             body)
    return Response(body, status=200, mimetype="application/json", headers=headers)


def _answer_gate(rt: Runtime, question: hooks.TicketGateQuestion) -> dict[str, Any]:
    cached = rt.store.get_standing(question.client_id) if question.client_id else None
    settings = rt.settings
    answer = gate.decide(cached, question.department_id, question.by_admin,
                         settings.tickets, settings.bridge.language, settings.whmcs.url,
                         page_language=question.language)
    log.info("gate client=%s department=%s language=%r blocked=%s reason=%s",
             question.client_id, question.department_id, question.language,
             bool(answer.errors), answer.reason)
    return {"errors": list(answer.errors)}


def _note_blocked(rt: Runtime, question: hooks.TicketGateQuestion, now: datetime) -> None:
    """A blocked ticket is an action of the client's open episode: one INSERT ... SELECT,
    run once the answer is sent (the gate answers from the cache alone, and a write may wait
    on another writer). Its failure is logged: the client was blocked all the same."""
    try:
        rt.store.add_episode_action(question.client_id, Action(
            TICKET_BLOCKED, now, "vipgate", None,
            f"department {question.department_id}"))
    except sa.exc.DBAPIError as exc:
        log.warning("gate client=%s: the blocked ticket was not added to its episode: %s",
                    question.client_id, exc.orig if exc.orig is not None else exc)


def _database_away(msg_id: str, exc: sa.exc.DBAPIError, what: str) -> Rejected:
    """The database is away (restarting, unreachable): a 503, and one log line rather than
    a traceback per request."""
    log.warning("event %s: the database does not answer: %s", msg_id,
                exc.orig if exc.orig is not None else exc)
    return Rejected(503, "database_unavailable", f"vipgate's database does not answer; {what}")


def _answer_sync(rt: Runtime, question: hooks.TicketGateQuestion | hooks.PanelQuestion,
                 verified: Verified) -> Response:
    if isinstance(question, hooks.TicketGateQuestion):
        gate_answer = _answer_gate(rt, question)
        response = _signed_answer(rt, verified, gate_answer)
        if gate_answer["errors"] and question.client_id:
            now = rt.engine.now() if rt.engine is not None else rt.clock()
            response.call_on_close(lambda: _note_blocked(rt, question, now))
        return response
    notice = None
    if question.panel == "home_banner" and question.action == TRUST_UNLOCK:
        notice = _trust_unlock(rt, question)
    answer = panels.answer(rt.store, rt.settings, question, today=rt.business_today(),
                           secret=verified.secret, notice=notice)
    log.info("panel %s client=%s ticket=%s: %d characters", question.panel,
             question.client_id, question.ticket_id, len(answer["html"]))
    return _signed_answer(rt, verified, answer)


TRUST_UNLOCK = "trust_unlock"


def _trust_unlock(rt: Runtime, question: hooks.PanelQuestion) -> Reason | None:
    """The client posted the banner's unlock form (the stub names the client from its
    session): the form's token must be this client's for today, by the shared secret; then
    the engine unlocks (``bridge.engine.trust``). Returns what the banner tells the client
    besides (None: nothing, e.g. the unlock landed and the banner says until when, or
    ``[trust] enabled`` is off and the form does nothing)."""
    from bridge.engine import trust as trust_engine

    if not rt.settings.trust.enabled or not question.client_id:
        log.info("trust unlock client=%s: ignored, [trust] enabled is off", question.client_id)
        return None
    if not check_trust_token(rt.secrets, question.client_id, question.token,
                             rt.business_today()):
        log.warning("trust unlock client=%s: refused, the form's token is missing or wrong",
                    question.client_id)
        return why.gettext("This request could not be checked: reload the page and try "
                           "again.")
    if rt.engine is None:
        return trust_engine.could_not_unlock()
    result = trust_engine.unlock(rt.engine, question.client_id)
    log.info("trust unlock client=%s: %s", question.client_id,
             f"unlocked until {result.until}" if result.done else f"refused: {result.refusal}")
    return result.refusal


def _reconcile_now(rt: Runtime, msg_id: str) -> dict[str, Any]:
    """PreCronJob: the event is stored first (nothing is lost if this request dies), then
    processed here, bounded by ``precron_wait_seconds``, so that VIP removals land before the
    cron's suspension step. What is left when time runs out goes back to the worker, and so
    does the event when WHMCS is unavailable (due at once, its attempt not counted: the
    background worker probes WHMCS and waits out the outage; this request never sleeps). The
    worker's heartbeat keeps the event's and the clients' leases while this runs."""
    from bridge.store import inbox as queue
    from bridge.worker import Worker, monotonic_deadline, worker_name

    assert rt.engine is not None
    worker = Worker(rt.engine, clock=rt.clock, name=worker_name("precron"),
                    pause_on_outage=False)
    row = rt.store.get_event(msg_id)
    claimed = row and queue.claim_row(rt.store, row.id, worker.name, rt.clock(),
                                      lease=worker.lease)
    if not claimed:
        return {"state": "queued"}
    outcome = worker.process(claimed, deadline=monotonic_deadline(
        rt.settings.bridge.precron_wait_seconds))
    log.info("PreCronJob %s reconciled here: %s, %s client(s), %s change(s)", msg_id,
             outcome.state, outcome.clients, outcome.changes)
    return {"state": outcome.state, "clients": outcome.clients, "changes": outcome.changes}


@bp.post("/hooks/whmcs")
def receive() -> Response:
    rt = runtime()
    started = time.perf_counter()
    hook, outcome = "unknown", "rejected"
    try:
        document, verified = _read_verified_json(rt, rt.settings.webhook.max_body_bytes,
                                                 "max_body_bytes")
        event = _validate(document)
        hook = event["hook"]
        if event["ignored"]:
            _note_ignored(rt, hook, event["ignored"])
        result = hooks.registry.dispatch(hook, event["vars"])
        if isinstance(result, (hooks.TicketGateQuestion, hooks.PanelQuestion)):
            outcome = "answered"
            _note_stub(rt, hook, event["vars"])
            try:
                return _answer_sync(rt, result, verified)
            except DATABASE_AWAY as exc:
                # No answer: the page shows nothing of vipgate, the gate fails open (or
                # closed, as [tickets] fail_open says).
                raise _database_away(request.headers["webhook-id"], exc,
                                     "no answer for now") from None
        msg_id = request.headers["webhook-id"]
        row = _inbox_row(rt, msg_id, event, result)
        try:
            outcome = rt.store.enqueue(row)
        except DATABASE_AWAY as exc:
            # Nothing was stored; the stub spools the event and sends it again.
            raise _database_away(msg_id, exc, "the event was not stored, send it again "
                                 "later") from None
        log.info("event %s hook=%s client=%s %s", msg_id, hook, row.client_id, outcome)
        if outcome == "queued":
            _note_stub(rt, hook, event["vars"])
        answer: dict[str, Any] = {"id": msg_id, "status": outcome}
        if hook == SYNC_RECONCILE_HOOK and outcome == "queued" and rt.engine is not None:
            answer["reconciled"] = _reconcile_now(rt, msg_id)
        response = jsonify(answer)
        response.status_code = 202
        return response
    except Rejected as exc:
        log.info("event %s rejected %s: %s", request.headers.get("webhook-id", "-")[:255],
                 exc.code, exc.message)
        return error_response(exc.status, exc.code, exc.message, exc.fields)
    finally:
        rt.metrics.events.labels(hook=hook, outcome=outcome).inc()
        rt.metrics.latency.observe(time.perf_counter() - started)


# --- POST /hooks/whmcs/batch ---------------------------------------------------------------


def _batch_events(document: Any) -> list[Any]:
    """The batch body's ``events`` (1 to BATCH_MAX_EVENTS of anything: each event is judged on
    its own); or Rejected (400 ``invalid_batch``) naming what is wrong."""
    if not isinstance(document, dict):
        raise Rejected(400, "invalid_batch", "invalid field _schema: the body must be a JSON "
                       "object with the key events", {"_schema": ["Body must be a JSON object."]})
    unknown = sorted(key for key in document if key != "events")
    if unknown:
        raise Rejected(400, "invalid_batch", f"invalid field {unknown[0]}: unknown field",
                       {key: ["Unknown field."] for key in unknown})
    events = document.get("events")
    if not isinstance(events, list):
        problem = "missing" if events is None else "must be a list of events"
        raise Rejected(400, "invalid_batch", f"invalid field events: {problem}",
                       {"events": [f"Events {problem}."]})
    if not 1 <= len(events) <= BATCH_MAX_EVENTS:
        raise Rejected(400, "invalid_batch", f"invalid field events: {len(events)} events; "
                       f"a batch holds 1 to {BATCH_MAX_EVENTS}",
                       {"events": [f"Length must be between 1 and {BATCH_MAX_EVENTS}."]})
    return events


def _batch_event(rt: Runtime, item: Any) -> tuple[str, dict[str, Any], InboxEvent]:
    """One event of a batch: (its id, the validated event, the row to store); or Rejected
    (400, with the code the single endpoint would answer it) naming the field."""
    if not isinstance(item, dict):
        raise Rejected(400, "invalid_payload", "invalid field _schema: an event must be a JSON "
                       "object", {"_schema": ["Event must be a JSON object."]})
    item = dict(item)
    msg_id = item.pop("id", None)
    if not isinstance(msg_id, str) or not valid_webhook_id(msg_id):
        problem = "missing" if msg_id is None else f"must be {WEBHOOK_ID_FORM}"
        raise Rejected(400, "invalid_payload", f"invalid field id: {problem}",
                       {"id": [f"Id {problem}."]})
    event = _validate(item)
    hook = event["hook"]
    if hooks.HOOK_SPEC[hook].sync:
        raise Rejected(400, "synchronous_hook", f"invalid field hook: {hook} is answered at "
                       "once and cannot be batched; send it to POST /hooks/whmcs",
                       {"hook": ["Synchronous hook: send it alone."]})
    result = hooks.registry.dispatch(hook, event["vars"])
    assert isinstance(result, hooks.Subjects)
    return msg_id, event, _inbox_row(rt, msg_id, event, result)


@bp.post("/hooks/whmcs/batch")
def receive_batch() -> Response:
    """Many events in one signed POST: each checked as the single endpoint checks one, every
    valid one stored in one transaction, an outcome per event (see docs/openapi.yaml)."""
    rt = runtime()
    started = time.perf_counter()
    batch_id = request.headers.get("webhook-id", "-")[:255]
    counted: list[tuple[str, str]] = []  # (hook, outcome) per event, for the metrics
    try:
        document, _verified = _read_verified_json(rt, rt.settings.webhook.max_batch_bytes,
                                                  "max_batch_bytes")
        items = _batch_events(document)
        results: list[dict[str, Any]] = []
        valid: list[tuple[int, dict[str, Any], InboxEvent]] = []
        for index, item in enumerate(items):
            try:
                msg_id, event, row = _batch_event(rt, item)
            except Rejected as exc:
                given = item.get("id") if isinstance(item, dict) else None
                results.append({"index": index, "id": given if isinstance(given, str) and
                                valid_webhook_id(given) else None, "status": "rejected",
                                "error": {"code": exc.code, "message": exc.message,
                                          "fields": exc.fields or {}}})
                hook = item.get("hook") if isinstance(item, dict) else None
                counted.append((hook if hook in hooks.HOOK_SPEC else "unknown", "rejected"))
                log.info("batch %s event %d (%s) rejected %s: %s", batch_id, index,
                         results[-1]["id"], exc.code, exc.message)
                continue
            if event["ignored"]:
                _note_ignored(rt, event["hook"], event["ignored"])
            results.append({"index": index, "id": msg_id, "status": "queued"})
            valid.append((len(results) - 1, event, row))
        try:
            stored = rt.store.enqueue_many([row for _, _, row in valid]) if valid else []
        except DATABASE_AWAY as exc:
            # Nothing of the batch was stored; the stub keeps every event and sends it again.
            counted.extend((row.hook, "rejected") for _, _, row in valid)
            raise _database_away(batch_id, exc, "no event of the batch was stored, send them "
                                 "again later") from None
        for (position, event, row), outcome in zip(valid, stored, strict=True):
            results[position]["status"] = outcome
            counted.append((row.hook, outcome))
            if outcome == "queued":
                _note_stub(rt, row.hook, event["vars"])
        totals = {status: sum(1 for r in results if r["status"] == status)
                  for status in ("queued", "duplicate", "rejected")}
        log.info("batch %s: %d events, %d queued, %d duplicate, %d rejected", batch_id,
                 len(results), totals["queued"], totals["duplicate"], totals["rejected"])
        rt.metrics.batches.labels(outcome="answered").inc()
        return jsonify({"results": results, **totals})
    except Rejected as exc:
        log.info("batch %s rejected %s: %s", batch_id, exc.code, exc.message)
        rt.metrics.batches.labels(outcome=exc.code).inc()
        return error_response(exc.status, exc.code, exc.message, exc.fields)
    finally:
        for hook, what in counted:
            rt.metrics.events.labels(hook=hook, outcome=what).inc()
        rt.metrics.batch_latency.observe(time.perf_counter() - started)
