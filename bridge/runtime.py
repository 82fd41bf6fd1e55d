"""What a running vipgate holds: settings, store, clock, metrics and the webhook secrets.

The settings are live (``bridge.overrides.LiveSettings``): the file's, with what was saved
from the admin page over them, reloaded when the page saves a change. The web app
(:mod:`bridge.web.app`) holds one :class:`Runtime`; the admin page reads it, the CLI and the
demo open the store and make the reconcile engine with the functions here."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from flask import current_app

from bridge.metrics import Metrics, make_metrics
from bridge.overrides import LiveSettings
from bridge.settings import Settings, load_settings
from bridge.store import Store
from bridge.whmcs.probe import WhmcsProbe

if TYPE_CHECKING:
    from bridge.engine.reconcile import Engine
    from bridge.whmcs import WhmcsClient


_PROBE_KEY = "vipgate.whmcs_probe"
_probe_lock = threading.Lock()


def utc_now() -> datetime:
    """The service clock's default: now, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Runtime:
    live: LiveSettings
    store: Store
    clock: Callable[[], datetime]
    metrics: Metrics
    secrets: tuple[str, ...]  # the first signs, all verify
    engine: Engine | None = None  # None when WHMCS's API is not configured

    @property
    def settings(self) -> Settings:
        """The settings in force now."""
        return self.live()

    def business_today(self) -> date:
        """Today in WHMCS's time zone, by the business clock (the engine's, which the demo
        runs ahead; the service clock when no engine is configured)."""
        if self.engine is not None:
            return self.engine.today()
        return self.clock().astimezone(ZoneInfo(self.settings.bridge.timezone)).date()


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


def make_reconcile_engine(settings: Settings, store: Store, *, now: Callable[[], datetime],
                whmcs: Callable[[], WhmcsClient] | None = None,
                live: LiveSettings | None = None) -> Engine | None:
    """The engine, following the settings in force (``live``, made over ``settings`` when
    not given); None when ``[whmcs] url`` is empty and no client factory is given (nothing
    can be reconciled then)."""
    from bridge.engine.reconcile import Engine, RateLimiter

    if whmcs is None and not settings.whmcs.url:
        return None
    return Engine(live or LiveSettings(settings, store), store, whmcs=whmcs, now=now,
                  throttle=RateLimiter(settings.resync.rate_per_second))


def make_runtime(settings: Settings | None, *, store: Store | None,
                 clock: Callable[[], datetime],
                 business_clock: Callable[[], datetime] | None = None,
                 whmcs: Callable[[], WhmcsClient] | None = None) -> Runtime:
    settings = settings if settings is not None else load_settings()
    store = store if store is not None else open_store(settings)
    live = LiveSettings(settings, store)
    engine = make_reconcile_engine(settings, store, now=business_clock or clock, whmcs=whmcs,
                                   live=live)
    return Runtime(live, store, clock, make_metrics(), webhook_secrets(settings, store),
                   engine)


def runtime() -> Runtime:
    return current_app.extensions["vipgate"]


def whmcs_probe() -> WhmcsProbe:
    """The current app's WHMCS probe (``/healthz`` and the admin overview), made on first use."""
    extensions = current_app.extensions
    with _probe_lock:
        probe = extensions.get(_PROBE_KEY)
        if probe is None:
            probe = extensions[_PROBE_KEY] = WhmcsProbe()
        return probe
