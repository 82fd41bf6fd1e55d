"""The app factory: one Flask app with the webhook, the health endpoints and the admin page
over one :class:`bridge.runtime.Runtime` (gunicorn: ``'bridge.web.app:create_app()'``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from bridge import admin
from bridge.runtime import Runtime, make_runtime, utc_now
from bridge.settings import Settings
from bridge.store import Store
from bridge.web import errors, health, webhook

if TYPE_CHECKING:
    from bridge.whmcs import WhmcsClient


def create_app(settings: Settings | None = None, *, store: Store | None = None,
               clock: Callable[[], datetime] = utc_now,
               business_clock: Callable[[], datetime] | None = None,
               whmcs: Callable[[], WhmcsClient] | None = None) -> Flask:
    """Build the app. Without ``settings`` they are read from the file and environment.

    ``clock`` is the service's (signatures, inbox); ``business_clock`` decides "today" for the
    policy (the demo runs it days ahead); ``whmcs`` makes WHMCS API clients (default: from
    ``[whmcs]``). The app's engine (``runtime().engine``) serves PreCronJob synchronously;
    ``vipgate serve`` also runs a worker over it in a thread, ``vipgate worker`` in its own
    process."""
    runtime: Runtime = make_runtime(settings, store=store, clock=clock,
                                    business_clock=business_clock, whmcs=whmcs)
    app = Flask("bridge")
    app.config.update(MAX_CONTENT_LENGTH=runtime.settings.webhook.max_body_bytes,
                      JSON_SORT_KEYS=False)
    app.extensions["vipgate"] = runtime
    hops = runtime.settings.bridge.proxy_count
    if hops:  # behind a reverse proxy: the client's address and scheme are in its headers
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    app.register_blueprint(webhook.bp)
    app.register_blueprint(health.bp)
    errors.register(app, html_pages={"/admin": admin.admin_error_page})
    # the webhook is signed and /healthz, /metrics take no form: no CSRF token on them
    admin.init_app(app, runtime, csrf_exempt=(webhook.bp, health.bp))
    return app
