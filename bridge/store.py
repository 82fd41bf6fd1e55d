"""vipgate's own database: the only module that speaks SQL to vipgate's tables.

SQLAlchemy Core over SQLite (embedded default) or MariaDB/MySQL through PyMySQL (production).
The schema is created and changed by Alembic migrations (``bridge/migrations``); the table
objects below describe the newest revision for the queries.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets as pysecrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Engine

from bridge.model import (
    AuditEntry,
    CachedStanding,
    ClientMemory,
    OverdueInvoice,
    TicketMemory,
)

log = logging.getLogger("vipgate.store")

metadata = sa.MetaData()

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
LongText = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")

inbox = sa.Table(
    "inbox", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("webhook_id", sa.String(255), nullable=False),
    sa.Column("hook", sa.String(64), nullable=False),
    sa.Column("client_id", sa.Integer, nullable=True),
    sa.Column("payload", LongText, nullable=False),
    sa.Column("occurred_at", sa.DateTime, nullable=False),
    sa.Column("received_at", sa.DateTime, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.DateTime, nullable=False),
    sa.Column("locked_until", sa.DateTime, nullable=True),
    sa.Column("locked_by", sa.String(64), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("finished_at", sa.DateTime, nullable=True),
    sa.UniqueConstraint("webhook_id", name="uq_inbox_webhook_id"),
    sa.Index("ix_inbox_state_next", "state", "next_attempt_at"),
    sa.Index("ix_inbox_client_id", "client_id"),
)

meta = sa.Table(
    "meta", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

standing = sa.Table(
    "standing", metadata,
    sa.Column("client_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("standing", sa.String(16), nullable=False),
    sa.Column("overdue_days", sa.Integer, nullable=False, server_default="0"),
    sa.Column("overdue_total", sa.Numeric(16, 2), nullable=False, server_default="0"),
    sa.Column("invoices", sa.Text, nullable=False),  # JSON list of overdue invoices
    sa.Column("currency_prefix", sa.String(16), nullable=False, server_default=""),
    sa.Column("currency_suffix", sa.String(16), nullable=False, server_default=""),
    sa.Column("language", sa.String(32), nullable=True),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("billing_standing", sa.String(16), nullable=True),
    sa.Column("group_id", sa.Integer, nullable=True),
    sa.Column("in_vip", sa.Boolean, nullable=True),
    sa.Column("eligible", sa.Boolean, nullable=True),
    sa.Column("standing_reasons", sa.Text, nullable=True),  # JSON list of sentences
    sa.Column("vip_reasons", sa.Text, nullable=True),  # JSON list of sentences
)

membership = sa.Table(
    "membership", metadata,
    sa.Column("client_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("pinned", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("excluded", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("home_group_id", sa.Integer, nullable=True),
    sa.Column("last_group_id", sa.Integer, nullable=True),
    sa.Column("pending_group_id", sa.Integer, nullable=True),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("held_since", sa.DateTime, nullable=True),  # staff hold (migration 0005)
    sa.Column("held_by", sa.String(255), nullable=True),
)

managed_ticket = sa.Table(
    "managed_ticket", metadata,
    sa.Column("ticket_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("client_id", sa.Integer, nullable=False),
    sa.Column("original_priority", sa.String(16), nullable=True),
    sa.Column("managed_priority", sa.String(16), nullable=True),
    sa.Column("pending_priority", sa.String(16), nullable=True),
    sa.Column("note_key", sa.String(255), nullable=True),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Index("ix_managed_ticket_client_id", "client_id"),
)

promise = sa.Table(
    "promise", metadata,
    sa.Column("client_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("until", sa.Date, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

client_lease = sa.Table(
    "client_lease", metadata,
    sa.Column("client_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("locked_by", sa.String(64), nullable=True),
    sa.Column("locked_until", sa.DateTime, nullable=True),
)

audit = sa.Table(
    "audit", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("client_id", sa.Integer, nullable=True),
    sa.Column("ticket_id", sa.Integer, nullable=True),
    sa.Column("before", sa.String(255), nullable=True),
    sa.Column("after", sa.String(255), nullable=True),
    sa.Column("reasons", sa.Text, nullable=False),  # JSON list of sentences
    sa.Column("event_id", sa.String(255), nullable=True),
    sa.Index("ix_audit_client_at", "client_id", "at"),
    sa.Index("ix_audit_at", "at"),
)

# --- the admin page's tables (bridge.accounts, bridge.overrides, bridge.snapshots) --------

admin_user = sa.Table(
    "admin_user", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("last_login_at", sa.DateTime, nullable=True),
)

# Failed logins per account name (known or not, so the answer never tells which names exist).
login_throttle = sa.Table(
    "login_throttle", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("first_failure_at", sa.DateTime, nullable=True),
    sa.Column("locked_until", sa.DateTime, nullable=True),
)

# Settings saved from the admin page: they override the file and the environment.
setting_override = sa.Table(
    "setting_override", metadata,
    sa.Column("section", sa.String(32), primary_key=True),
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("updated_by", sa.String(64), nullable=False),
)

# Every change of a setting from the page (who, when, old -> new); the highest id is the
# settings version every process compares to know when to reload.
setting_change = sa.Table(
    "setting_change", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("section", sa.String(32), nullable=False),
    sa.Column("key", sa.String(64), nullable=False),
    # The values in force before and after, as text (bridge.overrides always writes both)
    sa.Column("old", sa.Text, nullable=True),
    sa.Column("new", sa.Text, nullable=True),
)

# One row per day (WHMCS time zone): the delinquency figures of the dashboard.
daily_snapshot = sa.Table(
    "daily_snapshot", metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("taken_at", sa.DateTime, nullable=False),
    sa.Column("clients", sa.Integer, nullable=False),
    sa.Column("delinquent", sa.Integer, nullable=False),
    sa.Column("overdue", sa.Integer, nullable=False),
    sa.Column("suspended", sa.Integer, nullable=False),
    sa.Column("overdue_total", sa.Numeric(16, 2), nullable=False),
    sa.Column("vip_members", sa.Integer, nullable=False),
    sa.Column("vip_removed", sa.Integer, nullable=False),
    sa.Column("vip_restored", sa.Integer, nullable=False),
    sa.Column("aging", sa.Text, nullable=False),  # JSON {"1-7": n, ...}
    sa.Column("by_due_day", sa.Text, nullable=False),  # JSON {"1": n, ..., "31": n}
)

# Built once: rebuilding the statement per event cost ~0.2 ms (bench/ingest profile).
# SQLite's inbox writes go through it; MariaDB/MySQL's through INBOX_INSERT_SQL below.
INSERT_INBOX = inbox.insert()

# The inbox INSERT as the MariaDB/MySQL writer sends it to PyMySQL ("format" parameters):
# webhook_id, hook, client_id, payload, occurred_at, received_at, next_attempt_at.
# tests/test_store_ingest_perf_guard.py checks it against the ``inbox`` table.
INBOX_INSERT_SQL = (
    "INSERT INTO inbox (webhook_id, hook, client_id, payload, occurred_at, received_at, state, "
    "attempts, next_attempt_at) VALUES (%s, %s, %s, %s, %s, %s, 'queued', 0, %s)")

# A pooled inbox connection idle for longer than this is pinged before it is used (a MariaDB
# restart or a server-side kill while it sat in the pool is found there, and the pool
# reconnects). One used more recently is not pinged: if it turns out dead, the write is
# retried once on a new connection, provided the failed attempt failed within
# INBOX_RETRY_WITHIN_SECONDS (a dead connection fails at once; a hung server, which only the
# 30 s read_timeout ends, is not waited for twice).
IDLE_PING_SECONDS = 5.0
INBOX_RETRY_WITHIN_SECONDS = 2.0
_IDLE_SINCE = "vipgate_idle_since"

# "discarded": an admin gave up on the event (bridge.queue.discard); no worker claims it.
INBOX_STATES = ("queued", "processing", "retrying", "done", "dead", "discarded")


def utc_naive(moment: datetime) -> datetime:
    """Stored datetimes are naive UTC (DATETIME has no zone on MariaDB)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def make_engine(url: str, **pool_overrides: Any) -> Engine:
    """An engine with the pool and timeouts reliability-security.md asks for.

    ``pool_overrides`` replace pool options on MariaDB/MySQL (make_inbox_engine and the
    resync's WHMCS reader use them)."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    options: dict[str, Any] = {
        "pool_pre_ping": True,
        "pool_recycle": 3600,
        "pool_size": 3,
        "max_overflow": 2,
        "pool_timeout": 10,
        "connect_args": {"connect_timeout": 5, "read_timeout": 30, "write_timeout": 30,
                         "charset": "utf8mb4"},
        # No gap locks: concurrent writers of different clients never deadlock on a range.
        # Every read-modify-write here is a conditional UPDATE or a claim with SKIP LOCKED,
        # which need no repeatable read.
        "isolation_level": "READ COMMITTED",
    }
    return sa.create_engine(url, **{**options, **pool_overrides})


def uses_pymysql(engine: Engine) -> bool:
    return engine.dialect.name in ("mysql", "mariadb") and engine.dialect.driver == "pymysql"


def make_inbox_engine(url: str, **pool_overrides: Any) -> Engine:
    """The pool of the inbox writer (MariaDB/MySQL through PyMySQL), apart from the store's.

    Its connections are in autocommit mode, so storing an event is one round trip: an
    autocommit INSERT is a transaction of its own, which MariaDB commits (redo log flushed,
    as for a COMMIT) before it answers. Nothing else runs on these connections, so no
    transaction can be open when one goes back to the pool, and the pool's ROLLBACK on return
    is off. Instead of a ping at every checkout (``pool_pre_ping``), a connection is pinged
    only when it sat idle for more than IDLE_PING_SECONDS; ``write_inbox`` retries once on a
    new connection when a more recent one turns out dead."""
    engine = make_engine(url, **{"isolation_level": "AUTOCOMMIT", "pool_pre_ping": False,
                                 "pool_reset_on_return": None, **pool_overrides})
    dialect = engine.dialect

    @sa.event.listens_for(engine, "checkin")
    def _mark_idle(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is None or time.monotonic() - idle_since <= IDLE_PING_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_connection, None):
                # like pool_pre_ping: drop this connection (and older ones), connect anew
                raise sa.exc.InvalidatePoolError(str(exc)) from exc
            raise

    return engine


def write_inbox(engine: Engine, values: tuple[Any, ...]) -> None:
    """INBOX_INSERT_SQL with ``values`` on a connection of ``make_inbox_engine``'s pool.

    Returns once MariaDB has committed the row. Errors are raised as SQLAlchemy's own
    (``sa.exc.IntegrityError`` for a duplicate webhook id, ``sa.exc.OperationalError`` when
    MariaDB cannot be reached...), as through a SQLAlchemy connection. A connection found dead
    is discarded and the write retried once on a new one (see INBOX_RETRY_WITHIN_SECONDS); the
    UNIQUE key keeps that safe when the lost attempt was committed after all: the retry then
    fails as a duplicate."""
    dialect = engine.dialect
    dbapi_error = dialect.loaded_dbapi.Error

    def wrapped(exc: Exception, lost: bool = False) -> sa.exc.DBAPIError:
        return sa.exc.DBAPIError.instance(
            INBOX_INSERT_SQL, values, exc, dbapi_error, hide_parameters=engine.hide_parameters,
            connection_invalidated=lost, dialect=dialect)

    for attempt in (1, 2):
        try:
            connection = engine.raw_connection()
        except dbapi_error as exc:  # cannot connect
            raise wrapped(exc) from exc
        started = time.monotonic()
        try:
            cursor = connection.cursor()
            cursor.execute(INBOX_INSERT_SQL, values)
            cursor.close()
        except dbapi_error as exc:
            lost = dialect.is_disconnect(exc, connection.dbapi_connection, None)
            if lost:
                connection.invalidate(exc)
            connection.close()  # back to the pool: autocommit left no transaction open
            if (lost and attempt == 1
                    and time.monotonic() - started < INBOX_RETRY_WITHIN_SECONDS):
                log.warning("inbox: connection lost (%s), writing again on a new one", exc)
                continue
            raise wrapped(exc, lost) from exc
        except BaseException:
            # interrupted mid-statement (a worker timeout...): the protocol state is unknown
            connection.invalidate()
            connection.close()
            raise
        connection.close()
        return


STUB_VERSION = "stub_version"  # meta keys: what the PHP stub last told
STUB_REJECTED = "stub_rejected"


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


@dataclass(frozen=True)
class InboxEvent:
    webhook_id: str
    hook: str
    client_id: int | None
    vars: dict[str, Any]
    occurred_at: datetime
    received_at: datetime


@dataclass(frozen=True)
class InboxRow:
    id: int
    webhook_id: str
    hook: str
    client_id: int | None
    vars: dict[str, Any]
    occurred_at: datetime
    received_at: datetime
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None


@dataclass(frozen=True)
class RosterRow:
    """One client of the admin page's VIP roster: vipgate's memory of it and its cached
    standing (None: no reconcile has cached it yet)."""

    client_id: int
    pinned: bool
    excluded: bool
    home_group_id: int | None
    last_group_id: int | None
    standing: CachedStanding | None
    held_since: datetime | None = None  # a staff hold (aware UTC)
    held_by: str | None = None  # the admin who made it, when known


@dataclass(frozen=True)
class PromiseRecord:
    """A promise to pay as staff registered it."""

    client_id: int
    until: date
    note: str
    created_by: str
    created_at: datetime


# The admin page's roster tabs (see Store.roster).
ROSTER_TABS = ("members", "pinned", "excluded", "eligible", "all")


def _roster_filters(vip_group_id: int) -> dict[str, sa.ColumnElement[bool]]:
    """Each roster tab as a condition over membership LEFT JOIN standing.

    A member is a client whose group vipgate last saw (or set) in WHMCS is the VIP group:
    what WHMCS holds, not what the last plan wanted (a resync caches its decisions before
    applying them)."""
    m, s = membership.c, standing.c
    if vip_group_id:
        member: sa.ColumnElement[bool] = m.last_group_id == vip_group_id
        outside = sa.or_(m.last_group_id.is_(None), m.last_group_id != vip_group_id)
    else:  # no VIP group managed: nobody is a member
        member, outside = sa.false(), sa.true()
    return {"members": member, "pinned": m.pinned == sa.true(),
            "excluded": m.excluded == sa.true(),
            "eligible": sa.and_(s.eligible == sa.true(), outside), "all": sa.true()}


@dataclass(frozen=True)
class AuditFilter:
    """What the admin page's audit log is narrowed to; ``since``/``until`` are naive UTC
    (``since`` inclusive, ``until`` exclusive)."""

    client_id: int | None = None
    action: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _audit_where(query: Any, filters: AuditFilter) -> Any:
    """``query`` narrowed by ``filters``: client and time use ix_audit_client_at / ix_audit_at,
    action and actor are checked on the rows those indexes give."""
    c = audit.c
    for column, value in ((c.client_id, filters.client_id), (c.action, filters.action),
                          (c.actor, filters.actor)):
        if value is not None:
            query = query.where(column == value)
    if filters.since is not None:
        query = query.where(c.at >= utc_naive(filters.since))
    if filters.until is not None:
        query = query.where(c.at < utc_naive(filters.until))
    return query


def audit_entry(row: Any) -> AuditEntry:
    return AuditEntry(row.at, row.actor, row.action, row.client_id, row.ticket_id, row.before,
                      row.after, tuple(json.loads(row.reasons)), row.event_id, row.id)


class DatabaseNotReady(Exception):
    """The schema is missing or older than this version of vipgate."""


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        # MariaDB/MySQL: the inbox's writes have a pool of their own (make_inbox_engine)
        self.inbox_engine = make_inbox_engine(url) if uses_pymysql(self.engine) else None

    # --- schema ---------------------------------------------------------------------------

    def _alembic_config(self) -> Any:
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        config.attributes["engine"] = self.engine
        return config

    def upgrade(self) -> str:
        """Bring the schema to the newest revision; returns it."""
        from alembic import command

        command.upgrade(self._alembic_config(), "head")
        return self.revision() or ""

    def revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head(self) -> str:
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(self._alembic_config()).get_current_head()
        assert head is not None
        return head

    def require_current(self) -> None:
        current = self.revision()
        if current != self.head():
            raise DatabaseNotReady(
                f"vipgate's database is at revision {current or 'none'}, this version needs "
                f"{self.head()}: run 'vipgate db upgrade'")

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
        if self.inbox_engine is not None:
            self.inbox_engine.dispose()

    # --- meta ----------------------------------------------------------------------------

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

    def meta_ensure(self, key: str, make: Any) -> str:
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

    def webhook_secret(self) -> str:
        """The generated secret used when ``[webhook] secrets`` is empty (embedded defaults)."""
        return self.meta_ensure("webhook_secret", new_webhook_secret)

    # --- inbox ---------------------------------------------------------------------------

    def enqueue(self, event: InboxEvent) -> Literal["queued", "duplicate"]:
        """Store an event once; a webhook id seen before is a duplicate and changes nothing.
        Returns once the row is committed."""
        received_at = utc_naive(event.received_at)
        payload = json.dumps(event.vars, separators=(",", ":"), sort_keys=True)
        try:
            if self.inbox_engine is not None:
                write_inbox(self.inbox_engine, (
                    event.webhook_id, event.hook, event.client_id, payload,
                    utc_naive(event.occurred_at), received_at, received_at))
            else:
                with self.engine.begin() as conn:
                    conn.execute(INSERT_INBOX, {
                        "webhook_id": event.webhook_id, "hook": event.hook,
                        "client_id": event.client_id, "payload": payload,
                        "occurred_at": utc_naive(event.occurred_at),
                        "received_at": received_at, "state": "queued", "attempts": 0,
                        "next_attempt_at": received_at})
        except sa.exc.IntegrityError:
            if self.get_event(event.webhook_id) is None:
                raise
            return "duplicate"
        return "queued"

    def get_event(self, webhook_id: str) -> InboxRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(inbox.select().where(inbox.c.webhook_id == webhook_id)).first()
        return inbox_row(row) if row is not None else None

    def events(self, limit: int = 1000) -> list[InboxRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(inbox.select().order_by(inbox.c.id).limit(limit)).all()
        return [inbox_row(r) for r in rows]

    def inbox_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(INBOX_STATES, 0)
        with self.engine.connect() as conn:
            for state, count in conn.execute(
                    sa.select(inbox.c.state, sa.func.count()).group_by(inbox.c.state)):
                counts[state] = int(count)
        return counts

    def inbox_fingerprint(self) -> list[tuple[Any, ...]]:
        """Every inbox row as a tuple: tests compare it before and after a rejected request."""
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(inbox.select().order_by(inbox.c.id))]

    # --- standing cache ------------------------------------------------------------------

    def put_standing(self, row: CachedStanding) -> None:
        with self.engine.begin() as conn:
            self._upsert(conn, standing, "client_id", row.client_id, _standing_values(row))

    def get_standing(self, client_id: int) -> CachedStanding | None:
        with self.engine.connect() as conn:
            row = conn.execute(standing.select().where(standing.c.client_id == client_id)).first()
        return None if row is None else _standing(row)

    def roster(self, tab: str, vip_group_id: int, *, client_ids: list[int] | None = None,
               offset: int = 0, limit: int = 50) -> list[RosterRow]:
        """A page of the remembered clients in roster ``tab`` (:data:`ROSTER_TABS`), by id."""
        where = _roster_filters(vip_group_id)[tab]
        query = (sa.select(*membership.c).select_from(membership.outerjoin(
            standing, standing.c.client_id == membership.c.client_id)).where(where)
            .order_by(membership.c.client_id).offset(offset).limit(limit))
        if client_ids is not None:
            query = query.where(membership.c.client_id.in_(client_ids))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            ids = [r.client_id for r in rows]
            cached = {r.client_id: _standing(r) for r in conn.execute(
                standing.select().where(standing.c.client_id.in_(ids)))} if ids else {}
        return [RosterRow(r.client_id, bool(r.pinned), bool(r.excluded), r.home_group_id,
                          r.last_group_id, cached.get(r.client_id),
                          None if r.held_since is None else r.held_since.replace(tzinfo=UTC),
                          r.held_by)
                for r in rows]

    def roster_counts(self, vip_group_id: int, *,
                      client_ids: list[int] | None = None) -> dict[str, int]:
        """How many remembered clients each roster tab holds (one pass over the table)."""
        filters = _roster_filters(vip_group_id)
        query = sa.select(*(sa.func.coalesce(sa.func.sum(sa.case((where, 1), else_=0)), 0)
                            .label(tab) for tab, where in filters.items())).select_from(
            membership.outerjoin(standing, standing.c.client_id == membership.c.client_id))
        if client_ids is not None:
            query = query.where(membership.c.client_id.in_(client_ids))
        with self.engine.connect() as conn:
            row = conn.execute(query).one()
        return {tab: int(row._mapping[tab]) for tab in filters}


    # --- the engine's memory -------------------------------------------------------------

    def _upsert(self, conn: sa.Connection, table: sa.Table, key: str, key_value: int,
                values: dict[str, Any]) -> None:
        """Insert the row, or update it when the key exists, in one statement (an UPDATE that
        finds nothing followed by an INSERT takes gap locks on MariaDB, and two clients'
        rows written at once deadlocked)."""
        row = {key: key_value, **values}
        if conn.dialect.name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            conn.execute(sqlite_insert(table).values(row)
                         .on_conflict_do_update(index_elements=[key], set_=values))
        else:
            conn.execute(mysql.insert(table).values(row).on_duplicate_key_update(**values))

    def get_memory(self, client_id: int) -> ClientMemory:
        with self.engine.connect() as conn:
            row = conn.execute(membership.select().where(
                membership.c.client_id == client_id)).first()
        if row is None:
            return ClientMemory(client_id)
        return _memory(row)

    def memories(self, client_ids: list[int] | None = None) -> dict[int, ClientMemory]:
        """Every remembered client (or those of ``client_ids``)."""
        query = membership.select()
        if client_ids is not None:
            query = query.where(membership.c.client_id.in_(client_ids))
        with self.engine.connect() as conn:
            return {r.client_id: _memory(r) for r in conn.execute(query)}

    def _keyset(self, table: sa.Table, keys: tuple[str, ...], client_ids: list[int] | None,
                page: int, id_range: tuple[int, int] | None = None) -> Iterator[Any]:
        """Rows ordered by ``keys``, read a page at a time (no read held open between pages,
        so writers are not blocked while a long resync streams them)."""
        columns = [table.c[k] for k in keys]
        last: tuple[Any, ...] | None = None
        while True:
            query = table.select().order_by(*columns).limit(page)
            if client_ids is not None:
                query = query.where(table.c.client_id.in_(client_ids))
            if id_range is not None:
                query = query.where(table.c.client_id.between(*id_range))
            if last is not None:
                query = query.where(sa.tuple_(*columns) > sa.tuple_(*last))
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
            yield from rows
            if len(rows) < page:
                return
            last = tuple(getattr(rows[-1], k) for k in keys)

    def iter_memories(self, client_ids: list[int] | None = None, *, page: int = 5000,
                      id_range: tuple[int, int] | None = None) -> Iterator[ClientMemory]:
        """Every remembered client (or those of ``client_ids``, or in ``id_range``), by id."""
        return map(_memory, self._keyset(membership, ("client_id",), client_ids, page,
                                         id_range))

    def iter_ticket_memories(self, client_ids: list[int] | None = None, *, page: int = 5000,
                             id_range: tuple[int, int] | None = None
                             ) -> Iterator[TicketMemory]:
        """Every ticket record, by client id then ticket id."""
        for r in self._keyset(managed_ticket, ("client_id", "ticket_id"), client_ids, page,
                              id_range):
            yield TicketMemory(r.ticket_id, r.client_id, r.original_priority,
                               r.managed_priority, r.pending_priority, r.note_key)

    def iter_standings(self, client_ids: list[int] | None = None, *, page: int = 5000,
                       id_range: tuple[int, int] | None = None) -> Iterator[CachedStanding]:
        """The standing cache, by client id."""
        return map(_standing, self._keyset(standing, ("client_id",), client_ids, page,
                                           id_range))

    def promises(self) -> dict[int, tuple[date, str]]:
        """Every promise to pay (few: staff register them one by one)."""
        with self.engine.connect() as conn:
            return {r.client_id: (r.until, r.note) for r in conn.execute(promise.select())}

    def add_memories(self, memories: list[ClientMemory], now: datetime) -> int:
        """Record clients seen for the first time, in one go; a client another writer
        recorded meanwhile keeps its row. Returns how many were added."""
        if not memories:
            return 0
        ids = [m.client_id for m in memories]
        with self.engine.begin() as conn:
            present = set(conn.execute(sa.select(membership.c.client_id)
                                       .where(membership.c.client_id.in_(ids))).scalars())
            rows = [_memory_values(m, now) | {"client_id": m.client_id}
                    for m in memories if m.client_id not in present]
            if rows:
                conn.execute(membership.insert(), rows)
        return len(rows)

    def put_standings(self, rows: list[CachedStanding], *, older_than: datetime) -> int:
        """Write many cache rows in a few statements; a row another writer refreshed after
        ``older_than`` (it saw newer WHMCS data than this batch) is left alone. Returns how
        many were written."""
        if not rows:
            return 0
        cutoff = utc_naive(older_than)
        c = standing.c
        with self.engine.begin() as conn:
            present = dict(conn.execute(sa.select(c.client_id, c.updated_at).where(
                c.client_id.in_([r.client_id for r in rows]))).all())
            fresh = [{"client_id": r.client_id, **_standing_values(r)}
                     for r in rows if r.client_id not in present]
            stale = [{"cid": r.client_id, **_standing_values(r)} for r in rows
                     if r.client_id in present and present[r.client_id] <= cutoff]
            if fresh:
                conn.execute(standing.insert(), fresh)
            if stale:
                names = [k for k in stale[0] if k != "cid"]
                conn.execute(standing.update()
                             .where(c.client_id == sa.bindparam("cid"), c.updated_at <= cutoff)
                             .values({k: sa.bindparam(k) for k in names}), stale)
        return len(fresh) + len(stale)

    def save_memory(self, memory: ClientMemory, now: datetime) -> None:
        with self.engine.begin() as conn:
            self._upsert(conn, membership, "client_id", memory.client_id,
                         _memory_values(memory, now))

    def ticket_memories(self, client_id: int) -> dict[int, TicketMemory]:
        with self.engine.connect() as conn:
            rows = conn.execute(managed_ticket.select().where(
                managed_ticket.c.client_id == client_id)).all()
        return {r.ticket_id: TicketMemory(r.ticket_id, r.client_id, r.original_priority,
                                          r.managed_priority, r.pending_priority, r.note_key)
                for r in rows}

    def ticket_memory(self, ticket_id: int) -> TicketMemory | None:
        with self.engine.connect() as conn:
            r = conn.execute(managed_ticket.select().where(
                managed_ticket.c.ticket_id == ticket_id)).first()
        return None if r is None else TicketMemory(r.ticket_id, r.client_id, r.original_priority,
                                                   r.managed_priority, r.pending_priority,
                                                   r.note_key)

    def save_ticket_memory(self, memory: TicketMemory, now: datetime) -> None:
        """Store the record, or drop it when it is empty."""
        with self.engine.begin() as conn:
            if memory.empty:
                conn.execute(managed_ticket.delete().where(
                    managed_ticket.c.ticket_id == memory.ticket_id))
                return
            self._upsert(conn, managed_ticket, "ticket_id", memory.ticket_id, {
                "client_id": memory.client_id, "original_priority": memory.original_priority,
                "managed_priority": memory.managed_priority,
                "pending_priority": memory.pending_priority, "note_key": memory.note_key,
                "updated_at": utc_naive(now)})

    def get_promise(self, client_id: int) -> tuple[date, str] | None:
        """A promise to pay registered by staff: (until, note)."""
        with self.engine.connect() as conn:
            row = conn.execute(promise.select().where(promise.c.client_id == client_id)).first()
        return None if row is None else (row.until, row.note)

    def set_promise(self, client_id: int, until: date, note: str, by: str,
                    now: datetime) -> None:
        with self.engine.begin() as conn:
            self._upsert(conn, promise, "client_id", client_id, {
                "until": until, "note": note, "created_by": by, "created_at": utc_naive(now)})

    def promise_records(self) -> list[PromiseRecord]:
        """Every promise to pay with who registered it, latest ``until`` first."""
        with self.engine.connect() as conn:
            rows = conn.execute(promise.select().order_by(promise.c.until.desc(),
                                                          promise.c.client_id)).all()
        return [PromiseRecord(r.client_id, r.until, r.note, r.created_by, r.created_at)
                for r in rows]

    def clear_promise(self, client_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(promise.delete().where(promise.c.client_id == client_id))

    # --- audit ---------------------------------------------------------------------------

    def add_audit(self, entries: list[AuditEntry]) -> None:
        if not entries:
            return
        rows = [{"at": utc_naive(e.at), "actor": e.actor[:64], "action": e.action[:32],
                 "client_id": e.client_id, "ticket_id": e.ticket_id,
                 "before": None if e.before is None else e.before[:255],
                 "after": None if e.after is None else e.after[:255],
                 "reasons": json.dumps(list(e.reasons), ensure_ascii=False),
                 "event_id": e.event_id} for e in entries]
        with self.engine.begin() as conn:
            conn.execute(audit.insert(), rows)

    def audit_page(self, filters: AuditFilter, *, limit: int,
                   offset: int = 0) -> list[AuditEntry]:
        """A page of the rows ``filters`` match, newest first (by ``at``, then id)."""
        query = _audit_where(audit.select(), filters).order_by(
            audit.c.at.desc(), audit.c.id.desc()).limit(limit).offset(offset)
        with self.engine.connect() as conn:
            return [audit_entry(r) for r in conn.execute(query)]

    def audit_count(self, filters: AuditFilter, *, cap: int | None = None) -> int:
        """How many rows ``filters`` match, counting no further than ``cap``."""
        ids = _audit_where(sa.select(audit.c.id), filters)
        if cap is not None:
            ids = ids.limit(cap)
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(ids.subquery()))
                       .scalar() or 0)

    def iter_audit(self, filters: AuditFilter, *, page: int = 1000) -> Iterator[AuditEntry]:
        """Every row ``filters`` match, newest first, a page at a time (keyset on (at, id):
        no read held open between pages; rows added meanwhile are newer and not included)."""
        c = audit.c
        last: tuple[datetime, int] | None = None
        while True:
            query = _audit_where(audit.select(), filters)
            if last is not None:
                query = query.where(sa.or_(c.at < last[0],
                                           sa.and_(c.at == last[0], c.id < last[1])))
            with self.engine.connect() as conn:
                rows = conn.execute(query.order_by(c.at.desc(), c.id.desc()).limit(page)).all()
            yield from map(audit_entry, rows)
            if len(rows) < page:
                return
            last = (rows[-1].at, rows[-1].id)

    def audit_actions(self) -> list[str]:
        """The actions present in the audit log, sorted (no index on ``action``: this reads
        the whole table; the admin page keeps the answer a while)."""
        with self.engine.connect() as conn:
            return sorted(conn.execute(sa.select(audit.c.action).distinct()).scalars())

    def audit_log(self, *, client_id: int | None = None, action: str | None = None,
                  since_id: int = 0, limit: int = 1000) -> list[AuditEntry]:
        """Audit rows, oldest first, after ``since_id``."""
        query = audit.select().where(audit.c.id > since_id)
        if client_id is not None:
            query = query.where(audit.c.client_id == client_id)
        if action is not None:
            query = query.where(audit.c.action == action)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(audit.c.id).limit(limit)).all()
        return [AuditEntry(r.at, r.actor, r.action, r.client_id, r.ticket_id, r.before, r.after,
                           tuple(json.loads(r.reasons)), r.event_id, r.id) for r in rows]

    def recent_audit(self, client_id: int, limit: int = 50) -> list[AuditEntry]:
        """A client's newest audit rows, newest first."""
        query = audit.select().where(audit.c.client_id == client_id).order_by(
            audit.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [AuditEntry(r.at, r.actor, r.action, r.client_id, r.ticket_id, r.before, r.after,
                           tuple(json.loads(r.reasons)), r.event_id, r.id) for r in rows]


def _memory_values(memory: ClientMemory, now: datetime) -> dict[str, Any]:
    return {"pinned": memory.pinned, "excluded": memory.excluded,
            "home_group_id": memory.home_group_id, "last_group_id": memory.last_group_id,
            "pending_group_id": memory.pending_group_id, "updated_at": utc_naive(now),
            "held_since": None if memory.held_since is None else utc_naive(memory.held_since),
            "held_by": memory.held_by}


def _standing_values(row: CachedStanding) -> dict[str, Any]:
    return {
        "standing": row.standing,
        "overdue_days": row.overdue_days,
        "overdue_total": row.overdue_total,
        "invoices": json.dumps([
            {"id": i.invoice_id, "number": i.number, "balance": str(i.balance),
             "due_date": i.due_date} for i in row.invoices]),
        "currency_prefix": row.currency_prefix,
        "currency_suffix": row.currency_suffix,
        "language": row.language,
        "updated_at": utc_naive(row.updated_at),
        "billing_standing": row.billing_standing,
        "group_id": row.group_id,
        "in_vip": row.in_vip,
        "eligible": row.eligible,
        "standing_reasons": json.dumps(list(row.standing_reasons)),
        "vip_reasons": json.dumps(list(row.vip_reasons)),
    }


def _standing(row: Any) -> CachedStanding:
    invoices = tuple(OverdueInvoice(i["id"], i["number"], Decimal(i["balance"]),
                                    i["due_date"]) for i in json.loads(row.invoices))
    return CachedStanding(row.client_id, row.standing, row.overdue_days,
                          Decimal(row.overdue_total), invoices, row.currency_prefix,
                          row.currency_suffix, row.language, row.updated_at,
                          row.billing_standing, row.group_id,
                          None if row.in_vip is None else bool(row.in_vip),
                          None if row.eligible is None else bool(row.eligible),
                          _sentences(row.standing_reasons), _sentences(row.vip_reasons))


def _sentences(text: str | None) -> tuple[str, ...]:
    return tuple(str(s) for s in json.loads(text)) if text else ()


def _memory(row: Any) -> ClientMemory:
    return ClientMemory(row.client_id, bool(row.pinned), bool(row.excluded), row.home_group_id,
                        row.last_group_id, row.pending_group_id, known=True,
                        held_since=None if row.held_since is None
                        else row.held_since.replace(tzinfo=UTC), held_by=row.held_by)


def inbox_row(row: Any) -> InboxRow:
    return InboxRow(row.id, row.webhook_id, row.hook, row.client_id, json.loads(row.payload),
                    row.occurred_at, row.received_at, row.state, row.attempts,
                    row.next_attempt_at, row.last_error)


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(pysecrets.token_bytes(32)).decode()

