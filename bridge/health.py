"""``GET /healthz`` (database and inbox) and ``GET /metrics`` (Prometheus text)."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Blueprint, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bridge.runtime import runtime

bp = Blueprint("health", __name__)
log = logging.getLogger("vipgate.health")


@bp.get("/healthz")
def healthz() -> Response:
    rt = runtime()
    body: dict[str, object] = {"status": "ok"}
    try:
        rt.store.ping()
        body["database"] = {"ok": True, "dialect": rt.store.engine.dialect.name}
        body["inbox"] = rt.store.inbox_counts()
    except sa.exc.SQLAlchemyError as exc:
        log.warning("healthz: database unreachable: %s", type(exc).__name__)
        body["status"] = "degraded"
        body["database"] = {"ok": False, "error": type(exc).__name__}
    body["whmcs"] = {"configured": bool(rt.settings.whmcs.url)}
    response = jsonify(body)
    response.status_code = 200 if body["status"] == "ok" else 503
    return response


@bp.get("/metrics")
def metrics() -> Response:
    return Response(generate_latest(runtime().metrics.registry), content_type=CONTENT_TYPE_LATEST)
