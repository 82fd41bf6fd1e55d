"""vipgate's bridge: the Flask service WHMCS forwards hook events to."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from flask import Flask

from bridge.runtime import Runtime, make_runtime
from bridge.settings import Settings
from bridge.store import Store


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: Settings | None = None, *, store: Store | None = None,
               clock: Callable[[], datetime] = utc_now) -> Flask:
    """Build the app. Without ``settings`` they are read from the file and environment."""
    from bridge import errors, health, webhook

    runtime: Runtime = make_runtime(settings, store=store, clock=clock)
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=runtime.settings.webhook.max_body_bytes,
                      JSON_SORT_KEYS=False)
    app.extensions["vipgate"] = runtime
    app.register_blueprint(webhook.bp)
    app.register_blueprint(health.bp)
    errors.register(app)
    return app
