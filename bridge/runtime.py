"""What a running vipgate holds: settings, store, clock, metrics and the webhook secrets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from flask import current_app

from bridge.metrics import Metrics, make_metrics
from bridge.settings import Settings, load_settings
from bridge.store import Store


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    store: Store
    clock: Callable[[], datetime]
    metrics: Metrics
    secrets: tuple[str, ...]  # the first signs, all verify


def open_store(settings: Settings) -> Store:
    """The store, with its schema ready: migrated automatically on SQLite (the embedded
    default), checked on MariaDB/MySQL where 'vipgate db upgrade' is an explicit step."""
    store = Store(settings.bridge.database_url)
    if store.engine.dialect.name == "sqlite":
        store.upgrade()
    else:
        store.require_current()
    return store


def webhook_secrets(settings: Settings, store: Store) -> tuple[str, ...]:
    return settings.webhook.secrets or (store.webhook_secret(),)


def make_runtime(settings: Settings | None, *, store: Store | None,
                 clock: Callable[[], datetime]) -> Runtime:
    settings = settings if settings is not None else load_settings()
    store = store if store is not None else open_store(settings)
    return Runtime(settings, store, clock, make_metrics(), webhook_secrets(settings, store))


def runtime() -> Runtime:
    return current_app.extensions["vipgate"]
