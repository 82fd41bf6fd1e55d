"""``POST /hooks/whmcs``: verify the raw bytes, validate, store, answer. No business work here,
except the synchronous answers (the ticket gate and the panels inside WHMCS's pages), which
read only vipgate's own tables and are signed like the request."""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, jsonify, request
from marshmallow import ValidationError

import hooks
from bridge import panels
from bridge.payloads import load_event
from bridge.policy import gate
from bridge.runtime import Runtime, runtime
from bridge.signing import SignatureError, Verified, signed_headers, verify
from bridge.store.inbox import InboxEvent
from bridge.web.errors import error_response

bp = Blueprint("webhook", __name__)
SYNC_RECONCILE_HOOK = "PreCronJob"
log = logging.getLogger("vipgate.webhook")
DATABASE_AWAY = (sa.exc.OperationalError, sa.exc.InterfaceError)
STUB_VERSION_HEADER = "vipgate-stub-version"
HEARTBEAT_HOOK = "AfterCronJob"
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


def _read_verified_json(rt: Runtime) -> tuple[Any, Verified]:
    limit = rt.settings.webhook.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise Rejected(413, "payload_too_large", f"body is larger than {limit} bytes")
    if request.mimetype != "application/json":
        raise Rejected(415, "unsupported_media_type",
                       "Content-Type must be application/json",
                       {"content-type": [request.mimetype or "missing"]})
    body = request.get_data(cache=False)  # werkzeug stops reading past MAX_CONTENT_LENGTH
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
                         settings.tickets, settings.bridge.language, settings.whmcs.url)
    log.info("gate client=%s department=%s blocked=%s reason=%s", question.client_id,
             question.department_id, bool(answer.errors), answer.reason)
    return {"errors": list(answer.errors)}


def _database_away(msg_id: str, exc: sa.exc.DBAPIError, what: str) -> Rejected:
    """The database is away (restarting, unreachable): a 503, and one log line rather than
    a traceback per request."""
    log.warning("event %s: the database does not answer: %s", msg_id,
                exc.orig if exc.orig is not None else exc)
    return Rejected(503, "database_unavailable", f"vipgate's database does not answer; {what}")


def _answer_sync(rt: Runtime, question: hooks.TicketGateQuestion | hooks.PanelQuestion,
                 verified: Verified) -> Response:
    if isinstance(question, hooks.TicketGateQuestion):
        return _signed_answer(rt, verified, _answer_gate(rt, question))
    answer = panels.answer(rt.store, rt.settings, question, today=rt.business_today())
    log.info("panel %s client=%s ticket=%s: %d characters", question.panel,
             question.client_id, question.ticket_id, len(answer["html"]))
    return _signed_answer(rt, verified, answer)


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
        document, verified = _read_verified_json(rt)
        try:
            event = load_event(document)
        except ValidationError as exc:
            fields = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
            code = "unknown_hook" if "hook" in fields else "invalid_payload"
            path, problems = next(iter(fields.items()))
            raise Rejected(400, code, f"invalid field {path}: {problems[0]}", fields) from None
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
        client_id = next(iter(result.clients)) if len(result.clients) == 1 else None
        try:
            outcome = rt.store.enqueue(InboxEvent(msg_id, hook, client_id, event["vars"],
                                                  event["occurred_at"], rt.clock()))
        except DATABASE_AWAY as exc:
            # Nothing was stored; the stub spools the event and sends it again.
            raise _database_away(msg_id, exc, "the event was not stored, send it again "
                                 "later") from None
        log.info("event %s hook=%s client=%s %s", msg_id, hook, client_id, outcome)
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
