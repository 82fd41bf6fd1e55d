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
from bridge.i18n import N_
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
        problem = CSRF_PROBLEMS.get(exc.description or "")
        return render_template("admin/error.html", code=400, title=_("Form expired or forged"),
                               message=_("%(problem)s Go back, reload the page and send the "
                                         "form again.", problem=_(problem) if problem else
                                         exc.description)), 400


# Flask-WTF's reasons for refusing a form (English), in the catalogs.
CSRF_PROBLEMS = {text: text for text in (
    N_("The CSRF token is missing."), N_("The CSRF session token is missing."),
    N_("The CSRF token has expired."), N_("The CSRF token is invalid."),
    N_("The CSRF tokens do not match."), N_("The referrer header is missing."),
    N_("The referrer does not match the host."))}

# Each HTTP error's title and what it means for the admin page, in the reader's language
# (Werkzeug's own are English); an abort() that says more gives its own description.
ERROR_PAGES = {
    400: (N_("Bad Request"), N_("The browser sent a request this page cannot understand.")),
    401: (N_("Unauthorized"), N_("Log in to see this page.")),
    403: (N_("Forbidden"), N_("This account may not open this page.")),
    404: (N_("Not Found"), N_("There is no such page. Check the address, or start again from "
                              "the overview.")),
    405: (N_("Method Not Allowed"), N_("This address does not take that kind of request: a "
                                       "button's action is not a page to open.")),
    408: (N_("Request Timeout"), N_("The browser took too long to send the request.")),
    409: (N_("Conflict"), N_("The request conflicts with the current state: reload the page.")),
    413: (N_("Request Entity Too Large"), N_("What was sent is too large.")),
    429: (N_("Too Many Requests"), N_("Too many requests in a short time: wait a moment and "
                                      "try again.")),
    500: (N_("Internal Server Error"), N_("vipgate ran into an error and could not answer. "
                                          "The error is in vipgate's log.")),
    502: (N_("Bad Gateway"), N_("A server vipgate relies on answered wrongly.")),
    503: (N_("Service Unavailable"), N_("vipgate cannot answer right now: try again in a "
                                        "moment.")),
}


def admin_error_page(exc: HTTPException) -> tuple[str, int]:
    """HTML error pages for ``/admin`` (the rest of the service answers JSON), in the
    reader's language: the title and Werkzeug's default description replaced by ours, an
    abort()'s own description (already in the reader's language) as it is."""
    code = exc.code or 500
    title, description = ERROR_PAGES.get(code, (exc.name, exc.description or ""))
    custom = exc.description and exc.description != type(exc).description
    return render_template("admin/error.html", code=code, title=_(title),
                           message=exc.description if custom else _(description)), code
