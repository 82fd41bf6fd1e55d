"""The connection to vipgate's database: engines, the schema's migrations, shared helpers.

SQLAlchemy Core over SQLite (embedded default) or MariaDB/MySQL through PyMySQL (production).
The schema is created and changed by Alembic migrations (``bridge/migrations``).
:class:`Database` is the base of every part of :class:`bridge.store.Store`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Engine

from bridge.i18n import why

# A pooled inbox connection idle for longer than this is pinged before it is used (a MariaDB
# restart or a server-side kill while it sat in the pool is found there, and the pool
# reconnects). One used more recently is not pinged: if it turns out dead, the write is
# retried once on a new connection (bridge.store.inbox.write_inbox).
IDLE_PING_SECONDS = 5.0
_IDLE_SINCE = "vipgate_idle_since"


def utc_naive(moment: datetime) -> datetime:
    """Stored datetimes are naive UTC (DATETIME has no zone on MariaDB)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def make_sql_engine(url: str, **pool_overrides: Any) -> Engine:
    """A SQLAlchemy engine with the pool and timeouts reliability-security.md asks for.

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
    engine = make_sql_engine(url, **{"isolation_level": "AUTOCOMMIT", "pool_pre_ping": False,
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


class DatabaseNotReady(Exception):
    """The schema is missing or older than this version of vipgate."""


def upsert(conn: sa.Connection, table: sa.Table, key: str, key_value: int,
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


class Database:
    """The engines of one database and its schema's state; every part of the store builds
    on it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_sql_engine(url)
        # MariaDB/MySQL: the inbox's writes have a pool of their own (make_inbox_engine)
        self.inbox_engine = make_inbox_engine(url) if uses_pymysql(self.engine) else None

    # --- schema ---------------------------------------------------------------------------

    def _alembic_config(self) -> Any:
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location",
                               str(Path(__file__).parent.parent / "migrations"))
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
            raise DatabaseNotReady(why.gettext(
                "vipgate's database is at revision %(current)s, this version needs %(head)s: "
                "run 'vipgate db upgrade'", current=current, head=self.head()) if current else
                why.gettext("vipgate's database is at revision none, this version needs "
                            "%(head)s: run 'vipgate db upgrade'", head=self.head()))

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
        if self.inbox_engine is not None:
            self.inbox_engine.dispose()

    # --- shared by the parts ------------------------------------------------------------

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
