"""JSON error bodies: ``{"error": code, "message": sentence, "fields": {...}}``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, Response, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

HtmlPage = Callable[[HTTPException], ResponseReturnValue]


def error_response(status: int, code: str, message: str,
                   fields: dict[str, Any] | None = None) -> Response:
    response = jsonify({"error": code, "message": message, "fields": fields or {}})
    response.status_code = status
    return response


def register(app: Flask, html_pages: Mapping[str, HtmlPage] | None = None) -> None:
    """Answer HTTP errors as JSON, except under the path prefixes of ``html_pages`` (the
    admin page's ``/admin``), which answer with their own HTML page."""
    pages = dict(html_pages or {})

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> ResponseReturnValue:
        for prefix, page in pages.items():
            if request.path.startswith(prefix):
                return page(exc)
        code = (exc.name or "error").lower().replace(" ", "_")
        if exc.code == 413:
            code = "payload_too_large"
        response = error_response(exc.code or 500, code, exc.description or exc.name)
        if exc.code == 405:
            allowed = exc.get_response().headers.get("Allow")
            if allowed:
                response.headers["Allow"] = allowed
        return response
