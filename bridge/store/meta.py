"""The ``meta`` table: single values under a key (the generated webhook secret, what the PHP
stub last reported, the first run's and the snapshots' bookkeeping)."""

from __future__ import annotations

import base64
import json
import secrets as pysecrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from bridge.model import WhmcsNames
from bridge.store.database import Database, utc_naive
from bridge.store.tables import meta

STUB_VERSION = "stub_version"  # meta keys: what the PHP stub last told
STUB_REJECTED = "stub_rejected"
WHMCS_NAMES = "whmcs_names"  # WHMCS's group and department names, as last read


@dataclass(frozen=True)
class StubReport:
    """The stub's last version (None: never heard from; ``""``: a stub too old to say) and its
    last report of rejected events: how many, the newest few (dicts with ``webhook_id``,
    ``hook``, ``rejected_at``, ``reason``). Times are naive UTC."""

    version: str | None
    seen_at: datetime | None
    rejected_count: int
    rejected: tuple[dict[str, Any], ...]
    reported_at: datetime | None


def _naive_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(pysecrets.token_bytes(32)).decode()


def new_admin_secret_key() -> str:
    """A key to sign the admin page's sessions with (``[admin] secret_key``)."""
    return pysecrets.token_urlsafe(48)


class MetaStore(Database):
    def meta_get(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(meta.c.value).where(meta.c.key == key)).scalar()

    def meta_put(self, key: str, value: str) -> None:
        """Store ``value`` under ``key``, replacing what was there (the last writer wins)."""
        for attempt in range(2):
            try:
                with self.engine.begin() as conn:
                    if not conn.execute(meta.update().where(meta.c.key == key)
                                        .values(value=value)).rowcount:
                        conn.execute(meta.insert().values(key=key, value=value))
                return
            except sa.exc.IntegrityError:  # another process inserted the key meanwhile
                if attempt:
                    raise

    def meta_ensure(self, key: str, make: Callable[[], str]) -> str:
        """The stored value of ``key``, storing ``make()`` first if there is none.

        Several processes may race here; the primary key lets exactly one insert win.
        """
        value = self.meta_get(key)
        if value is not None:
            return value
        try:
            with self.engine.begin() as conn:
                conn.execute(meta.insert().values(key=key, value=make()))
        except sa.exc.IntegrityError:
            pass
        stored = self.meta_get(key)
        assert stored is not None
        return stored

    # --- what the PHP stub reports ------------------------------------------------------

    def put_stub_version(self, version: str, now: datetime) -> None:
        """The version the stub last sent (``""``: one too old to send any), and when."""
        self.meta_put(STUB_VERSION, json.dumps({"version": version,
                                                "seen_at": utc_naive(now).isoformat()}))

    def put_stub_rejected(self, count: int, recent: list[dict[str, Any]], now: datetime) -> None:
        """The heartbeat's report of the events the bridge refused (kept in the stub's spool):
        how many, the newest few; replaces the previous report."""
        self.meta_put(STUB_REJECTED, json.dumps({
            "count": count, "recent": recent, "reported_at": utc_naive(now).isoformat()},
            sort_keys=True))

    def stub_report(self) -> StubReport:
        """What the stub last told: its version and the rejected events (empty if nothing)."""
        version = json.loads(self.meta_get(STUB_VERSION) or "null") or {}
        rejected = json.loads(self.meta_get(STUB_REJECTED) or "null") or {}
        return StubReport(
            version.get("version"), _naive_time(version.get("seen_at")),
            int(rejected.get("count", 0)), tuple(rejected.get("recent", ())),
            _naive_time(rejected.get("reported_at")))

    # --- WHMCS's names ----------------------------------------------------------------------

    def put_whmcs_names(self, groups: Mapping[int, str], departments: Mapping[int, str],
                        now: datetime) -> None:
        """WHMCS's client group and support department names, as just read (replaces the
        previous ones)."""
        self.meta_put(WHMCS_NAMES, json.dumps({
            "groups": {str(k): v for k, v in groups.items()},
            "departments": {str(k): v for k, v in departments.items()},
            "read_at": utc_naive(now).isoformat()}, sort_keys=True))

    def whmcs_names(self) -> WhmcsNames:
        """The names last stored (empty when none was ever read)."""
        stored = json.loads(self.meta_get(WHMCS_NAMES) or "null") or {}
        return WhmcsNames({int(k): v for k, v in stored.get("groups", {}).items()},
                          {int(k): v for k, v in stored.get("departments", {}).items()},
                          _naive_time(stored.get("read_at")))

    def webhook_secret(self) -> str:
        """The generated secret used when ``[webhook] secrets`` is empty (embedded defaults)."""
        return self.meta_ensure("webhook_secret", new_webhook_secret)
