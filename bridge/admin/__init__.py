"""The admin page under ``/admin``: server-rendered pages, login required everywhere.

``init_app`` sets up what every page relies on: the session cookie (signed with ``[admin]
secret_key``, or one generated once into vipgate's database), CSRF protection on every form
(Flask-WTF; the webhook, which is signed, is exempt), security headers, HTML error pages.
Each page is a module of this package adding its views to :data:`bp`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from flask import Blueprint, Flask, Response, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from bridge.admin.common import bp
from bridge.runtime import Runtime
from bridge.store.meta import new_admin_secret_key

csrf = CSRFProtect()

CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def init_app(app: Flask, rt: Runtime, *, csrf_exempt: Iterable[Blueprint] = ()) -> None:
    """Add the admin page to ``app``; the blueprints of ``csrf_exempt`` take no CSRF token."""
    from bridge.admin import (  # noqa: F401  (each module adds its views to bp)
        audit_page,
        auth,
        clients,
        dashboard,
        inbox,
        language,
        overview,
        promises,
        roster,
        settings_page,
    )

    admin = rt.settings.admin
    app.secret_key = admin.secret_key or rt.store.meta_ensure(
        "admin_secret_key", new_admin_secret_key)
    app.config.update(
        SESSION_COOKIE_NAME="vipgate_session",
        SESSION_COOKIE_SECURE=admin.secure_cookies,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        WTF_CSRF_SSL_STRICT=admin.secure_cookies,
    )
    csrf.init_app(app)
    language.init_babel(app)
    for blueprint in csrf_exempt:
        csrf.exempt(blueprint)
    app.register_blueprint(bp)

    @app.after_request
    def _security_headers(response: Response) -> Response:
        if request.path.startswith("/admin"):
            headers = response.headers
            headers.setdefault("Content-Security-Policy", CSP)
            headers.setdefault("X-Frame-Options", "DENY")
            headers.setdefault("X-Content-Type-Options", "nosniff")
            headers.setdefault("Referrer-Policy", "same-origin")
            headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
            if not request.path.startswith("/admin/static/"):
                headers["Cache-Control"] = "no-store"
            if admin.secure_cookies:
                headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError) -> tuple[str, int]:
        return render_template("admin/error.html", code=400, title=_("Form expired or forged"),
                               message=_("%(problem)s Go back, reload the page and send the "
                                         "form again.", problem=exc.description)), 400


def admin_error_page(exc: HTTPException) -> tuple[str, int]:
    """HTML error pages for ``/admin`` (the rest of the service answers JSON)."""
    return render_template("admin/error.html", code=exc.code, title=exc.name,
                           message=exc.description), exc.code or 500
