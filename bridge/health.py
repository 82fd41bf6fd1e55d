"""``GET /healthz`` (database, inbox, WHMCS reachability) and ``GET /metrics`` (Prometheus).

The database decides the HTTP status: 503 when it is down (the bridge cannot store events).
WHMCS being unreachable only makes ``status`` "degraded" with HTTP 200: the bridge still
accepts and queues events. The WHMCS check (one ``GetClientGroups`` call, short timeout, no
retry) is cached for :data:`WHMCS_CHECK_TTL` per app, so load balancers polling ``/healthz``
do not hammer WHMCS.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bridge.runtime import runtime
from bridge.settings import WhmcsSettings
from bridge.whmcs.client import WhmcsClient
from bridge.whmcs.errors import WhmcsError, clean_message

bp = Blueprint("health", __name__)
log = logging.getLogger("vipgate.health")

WHMCS_CHECK_TTL = timedelta(seconds=30)
WHMCS_CHECK_TIMEOUT_SECONDS = 3.0
WHMCS_CHECK_ACTION = "GetClientGroups"
_PROBE_KEY = "vipgate.whmcs_probe"
_probe_lock = threading.Lock()


def check_whmcs(settings: WhmcsSettings) -> tuple[bool, str]:
    """Call WHMCS's API once with a cheap action; ``(ok, error)`` where ``error`` is a short
    text without credentials (the client's messages never hold a parameter or a body)."""
    quick = dataclasses.replace(
        settings, timeout_seconds=min(settings.timeout_seconds, WHMCS_CHECK_TIMEOUT_SECONDS))
    try:
        with WhmcsClient(quick, attempts=1) as client:
            client.call(WHMCS_CHECK_ACTION)
    except WhmcsError as exc:
        return False, clean_message(exc)
    except Exception as exc:  # healthz must answer whatever the client raises
        log.exception("healthz: WHMCS check failed unexpectedly")
        return False, f"unexpected error ({type(exc).__name__})"
    return True, ""


def _redact(text: str, settings: WhmcsSettings) -> str:
    """``text`` with any credential value in it hidden (should WHMCS or a proxy echo one)."""
    for value in (settings.secret, settings.accesskey):
        if value:
            text = text.replace(value, "<hidden>")
    return text


class WhmcsProbe:
    """The last WHMCS check of one app, re-done when older than ``ttl`` (thread-safe: while
    one request checks, the others wait for its result instead of calling WHMCS too)."""

    def __init__(self, check: Callable[[WhmcsSettings], tuple[bool, str]] = check_whmcs,
                 ttl: timedelta = WHMCS_CHECK_TTL) -> None:
        self._check = check
        self._ttl = ttl
        self._lock = threading.Lock()
        self._last: dict[str, Any] | None = None
        self._checked_at: datetime | None = None

    def status(self, settings: WhmcsSettings, clock: Callable[[], datetime]) -> dict[str, Any]:
        """The ``whmcs`` object of /healthz, from the cache when it is fresh."""
        with self._lock:
            now = clock()
            at = self._checked_at
            if self._last is not None and at is not None and at <= now < at + self._ttl:
                return dict(self._last)
            ok, error = self._check(settings)
            error = _redact(error, settings)
            if not ok:
                log.warning("healthz: WHMCS not reachable: %s", error)
            self._last = {"configured": True, "ok": ok, "error": error,
                          "checked_at": now.isoformat(timespec="seconds")}
            self._checked_at = now
            return dict(self._last)


def whmcs_probe() -> WhmcsProbe:
    """The current app's probe, made on first use."""
    extensions = current_app.extensions
    with _probe_lock:
        probe = extensions.get(_PROBE_KEY)
        if probe is None:
            probe = extensions[_PROBE_KEY] = WhmcsProbe()
        return probe


@bp.get("/healthz")
def healthz() -> Response:
    rt = runtime()
    body: dict[str, object] = {"status": "ok"}
    database_ok = True
    try:
        rt.store.ping()
        body["database"] = {"ok": True, "dialect": rt.store.engine.dialect.name}
        body["inbox"] = rt.store.inbox_counts()
    except sa.exc.SQLAlchemyError as exc:
        log.warning("healthz: database unreachable: %s", type(exc).__name__)
        database_ok = False
        body["status"] = "degraded"
        body["database"] = {"ok": False, "error": type(exc).__name__}
    if rt.settings.whmcs.url:
        whmcs = whmcs_probe().status(rt.settings.whmcs, rt.clock)
        if not whmcs["ok"]:
            body["status"] = "degraded"
        body["whmcs"] = whmcs
    else:
        body["whmcs"] = {"configured": False}
    response = jsonify(body)
    response.status_code = 200 if database_ok else 503
    return response


@bp.get("/metrics")
def metrics() -> Response:
    return Response(generate_latest(runtime().metrics.registry), content_type=CONTENT_TYPE_LATEST)
