"""JSON error bodies: ``{"error": code, "message": sentence, "fields": {...}}``."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException


def error_response(status: int, code: str, message: str,
                   fields: dict[str, Any] | None = None) -> Response:
    response = jsonify({"error": code, "message": message, "fields": fields or {}})
    response.status_code = status
    return response


def register(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response | tuple[str, int]:
        if request.path.startswith("/admin"):
            from bridge.admin import admin_error_page

            return admin_error_page(exc)
        code = (exc.name or "error").lower().replace(" ", "_")
        if exc.code == 413:
            code = "payload_too_large"
        response = error_response(exc.code or 500, code, exc.description or exc.name)
        if exc.code == 405:
            allowed = exc.get_response().headers.get("Allow")
            if allowed:
                response.headers["Allow"] = allowed
        return response
