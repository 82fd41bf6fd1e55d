"""``GET /healthz`` (database, inbox, WHMCS reachability, this bridge's version) and
``GET /metrics`` (Prometheus).

The database decides the HTTP status: 503 when it is down (the bridge cannot store events).
WHMCS being unreachable only makes ``status`` "degraded" with HTTP 200: the bridge still
accepts and queues events. The WHMCS check (one ``GetClientGroups`` call, short timeout, no
retry, :mod:`bridge.whmcs.probe`) is cached for ``WHMCS_CHECK_TTL`` per app, so load balancers
polling ``/healthz`` do not hammer WHMCS.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Blueprint, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bridge import __version__
from bridge.runtime import runtime, whmcs_probe

bp = Blueprint("health", __name__)
log = logging.getLogger("vipgate.health")


@bp.get("/healthz")
def healthz() -> Response:
    rt = runtime()
    # The version: the addon module's page inside WHMCS shows it beside the stub's.
    body: dict[str, object] = {"status": "ok", "version": __version__}
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
