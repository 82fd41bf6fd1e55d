"""Is WHMCS's API reachable? One cheap call (``GetClientGroups``, short timeout, no retry),
cached for :data:`WHMCS_CHECK_TTL` so that ``/healthz`` polled by load balancers and the admin
overview do not hammer WHMCS. The running service keeps one :class:`WhmcsProbe` per app
(:func:`bridge.runtime.whmcs_probe`)."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from bridge.settings import WhmcsSettings
from bridge.whmcs.client import WhmcsClient
from bridge.whmcs.errors import WhmcsError, clean_message

log = logging.getLogger("vipgate.health")

WHMCS_CHECK_TTL = timedelta(seconds=30)
WHMCS_CHECK_TIMEOUT_SECONDS = 3.0
WHMCS_CHECK_ACTION = "GetClientGroups"


def check_whmcs(settings: WhmcsSettings) -> tuple[bool, str]:
    """Call WHMCS's API once with a cheap action; ``(ok, error)`` where ``error`` is a short
    text without credentials (the client's messages never hold a parameter or a body)."""
    quick = dataclasses.replace(
        settings, timeout_seconds=min(settings.timeout_seconds, WHMCS_CHECK_TIMEOUT_SECONDS))
    try:
        with WhmcsClient(quick, attempts=1) as client:
            client.call(WHMCS_CHECK_ACTION)
    except WhmcsError as exc:
        return False, clean_message(exc)
    except Exception as exc:  # healthz must answer whatever the client raises
        log.exception("healthz: WHMCS check failed unexpectedly")
        return False, f"unexpected error ({type(exc).__name__})"
    return True, ""


def _redact(text: str, settings: WhmcsSettings) -> str:
    """``text`` with any credential value in it hidden (should WHMCS or a proxy echo one)."""
    for value in (settings.secret, settings.accesskey):
        if value:
            text = text.replace(value, "<hidden>")
    return text


class WhmcsProbe:
    """The last WHMCS check of one app, re-done when older than ``ttl`` (thread-safe: while
    one request checks, the others wait for its result instead of calling WHMCS too)."""

    def __init__(self, check: Callable[[WhmcsSettings], tuple[bool, str]] = check_whmcs,
                 ttl: timedelta = WHMCS_CHECK_TTL) -> None:
        self._check = check
        self._ttl = ttl
        self._lock = threading.Lock()
        self._last: dict[str, Any] | None = None
        self._checked_at: datetime | None = None

    def status(self, settings: WhmcsSettings, clock: Callable[[], datetime]) -> dict[str, Any]:
        """The ``whmcs`` object of /healthz, from the cache when it is fresh."""
        with self._lock:
            now = clock()
            at = self._checked_at
            if self._last is not None and at is not None and at <= now < at + self._ttl:
                return dict(self._last)
            ok, error = self._check(settings)
            error = _redact(error, settings)
            if not ok:
                log.warning("healthz: WHMCS not reachable: %s", error)
            self._last = {"configured": True, "ok": ok, "error": error,
                          "checked_at": now.isoformat(timespec="seconds")}
            self._checked_at = now
            return dict(self._last)
