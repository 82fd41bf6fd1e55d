"""The ``inbox`` table: events stored once, the durable work queue over them, and per-client
leases (``client_lease``).

An event is stored by :meth:`InboxStore.enqueue`, a batch of events by
:meth:`InboxStore.enqueue_many` (``POST /hooks/whmcs/batch``: all of them in one transaction),
both through :func:`write_inbox`: the only INSERT into the inbox.

An inbox row moves ``queued -> processing -> done``; a failed attempt goes to ``retrying``
(due again after a jittered step of :data:`RETRY_SCHEDULE`) and, after :data:`MAX_ATTEMPTS`
or a permanent failure, to ``dead`` until an admin requeues it. From the admin page's inbox an
admin may retry a ``dead`` or ``retrying`` row at once (:func:`retry_now`) or give up on a
``queued``, ``retrying`` or ``dead`` one (:func:`discard`: ``discarded``, never claimed).

A claim is a lease: ``locked_by`` names the worker and ``locked_until`` says until when. A row
left in ``processing`` after its lease ran out belongs to a dead worker and is claimed again.
Every change a worker makes to a claimed row is conditional on ``locked_by`` still naming it,
so a worker whose lease was taken over cannot overwrite the new owner's work. Leases are short
and a busy worker renews all of its own at once (:func:`extend_held`); a worker interrupted by
an error gives back everything it still holds (:func:`release_held`).

Claiming is safe with several claimers on both dialects:

* MariaDB (>= 10.6) / MySQL (>= 8.0.1): the oldest candidates are read without locks, then
  locked by primary key with ``SELECT ... FOR UPDATE SKIP LOCKED`` in the claiming
  transaction, so concurrent claimers take disjoint rows without waiting for each other.
* SQLite has no row locks (one writer at a time, and pysqlite runs the candidate SELECT outside
  the write transaction), so the claiming UPDATE repeats the "still claimable" condition and the
  rows are read back by owner: a row someone else took in between is simply not ours.

Worker names must be unique among concurrent claimers (e.g. host:pid:thread); they are how a
worker recognises its rows. Every function takes ``now`` explicitly; datetimes are stored as
naive UTC (MariaDB's DATETIME keeps whole seconds: fractions are truncated on write).
"""

from __future__ import annotations

import functools
import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects.mysql import pymysql as mysql_pymysql
from sqlalchemy.engine import Engine

from bridge.store.database import Database, utc_naive
from bridge.store.tables import client_lease, inbox

log = logging.getLogger("vipgate.store")

# "discarded": an admin gave up on the event (discard); no worker claims it.
INBOX_STATES = ("queued", "processing", "retrying", "done", "dead", "discarded")


Enqueued = Literal["queued", "duplicate"]


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


def inbox_row(row: Any) -> InboxRow:
    return InboxRow(row.id, row.webhook_id, row.hook, row.client_id, json.loads(row.payload),
                    row.occurred_at, row.received_at, row.state, row.attempts,
                    row.next_attempt_at, row.last_error)


# --- storing an event: the inbox's one INSERT ---------------------------------------------

# The values a new event brings, in the order write_inbox takes them; state and attempts are
# constants of the statement.
NEW_EVENT_COLUMNS = ("webhook_id", "hook", "client_id", "payload", "occurred_at",
                     "received_at", "next_attempt_at")
# Built once: rebuilding the statement per event cost ~0.2 ms (bench/ingest profile). SQLite
# executes it through SQLAlchemy; MariaDB/MySQL's inbox writer sends INBOX_INSERT_SQL, the
# same statement compiled for PyMySQL ("format" parameters, NEW_EVENT_COLUMNS' order).
INSERT_INBOX = inbox.insert().values(state=sa.literal_column("'queued'"),
                                     attempts=sa.literal_column("0"))
INBOX_INSERT_SQL = str(INSERT_INBOX.compile(dialect=mysql_pymysql.dialect(paramstyle="format"),
                                            column_keys=list(NEW_EVENT_COLUMNS)))

# A write on a connection of the inbox writer's pool that turns out dead is retried once on a
# new connection, provided the failed attempt failed within INBOX_RETRY_WITHIN_SECONDS (a dead
# connection fails at once; a hung server, which only the 30 s read_timeout ends, is not
# waited for twice). See also bridge.store.database.IDLE_PING_SECONDS.
INBOX_RETRY_WITHIN_SECONDS = 2.0


def write_inbox(db: Database, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert new events' rows (each in NEW_EVENT_COLUMNS' order), all in one transaction,
    committed when this returns: on MariaDB/MySQL on the inbox writer's pool
    (``make_inbox_engine``; one row is one autocommit INSERT, several rows one transaction of
    multi-row INSERTs), elsewhere a transaction on the store's engine. Either every row is
    stored or none is.

    Errors are raised as SQLAlchemy's own (``sa.exc.IntegrityError`` for a duplicate webhook
    id, ``sa.exc.OperationalError`` when the database cannot be reached...) on both paths."""
    if not rows:
        return
    if db.inbox_engine is not None:
        _write_mysql(db.inbox_engine, rows)
        return
    with db.engine.begin() as conn:
        conn.execute(INSERT_INBOX, [dict(zip(NEW_EVENT_COLUMNS, values, strict=True))
                                    for values in rows])


# Several rows go as multi-row INSERTs of at most this many rows each (one statement of a few
# hundred rows stays far below MariaDB's max_allowed_packet, 16 MiB by default, for events of
# up to [webhook] max_body_bytes); PyMySQL's executemany cannot batch INBOX_INSERT_SQL itself
# (its VALUES hold constants besides the placeholders), so the statement is written here.
MULTI_ROW_CHUNK = 100
_INSERT_HEAD, _INSERT_ROW = INBOX_INSERT_SQL.split(" VALUES ", 1)


@functools.lru_cache(maxsize=8)
def _multi_row_sql(count: int) -> str:
    return f"{_INSERT_HEAD} VALUES {', '.join([_INSERT_ROW] * count)}"


def _mysql_statements(rows: Sequence[tuple[Any, ...]]) -> list[tuple[str, tuple[Any, ...]]]:
    if len(rows) == 1:
        return [(INBOX_INSERT_SQL, tuple(rows[0]))]
    statements = []
    for start in range(0, len(rows), MULTI_ROW_CHUNK):
        chunk = rows[start:start + MULTI_ROW_CHUNK]
        statements.append((_multi_row_sql(len(chunk)),
                           tuple(value for values in chunk for value in values)))
    return statements


def _write_mysql(engine: Engine, rows: Sequence[tuple[Any, ...]]) -> None:
    """``rows`` on a connection of ``make_inbox_engine``'s pool (autocommit): one row as one
    autocommit INSERT (INBOX_INSERT_SQL, one round trip), several rows between START
    TRANSACTION and COMMIT.

    A connection found dead is discarded and the write retried once on a new one (see
    INBOX_RETRY_WITHIN_SECONDS); the UNIQUE key keeps that safe when the lost attempt was
    committed after all: the retry then fails as a duplicate. A transaction that failed is
    rolled back before its connection goes back to the pool (the pool does not reset it)."""
    dialect = engine.dialect
    dbapi_error = dialect.loaded_dbapi.Error
    statements = _mysql_statements(rows)
    several = len(statements) > 1 or len(rows) > 1

    def wrapped(exc: Exception, lost: bool = False) -> sa.exc.StatementError:
        return sa.exc.DBAPIError.instance(
            statements[0][0], rows[0], exc, dbapi_error,
            hide_parameters=engine.hide_parameters, connection_invalidated=lost,
            dialect=dialect)

    for attempt in (1, 2):
        try:
            connection = engine.raw_connection()
        except dbapi_error as exc:  # cannot connect
            raise wrapped(exc) from exc
        started = time.monotonic()
        try:
            cursor = connection.cursor()
            if several:
                cursor.execute("START TRANSACTION")
            for sql, values in statements:
                cursor.execute(sql, values)
            if several:
                cursor.execute("COMMIT")
            cursor.close()
        except dbapi_error as exc:
            lost = dialect.is_disconnect(exc, connection.dbapi_connection, None)
            if lost:
                connection.invalidate(exc)
            elif several:
                try:
                    connection.rollback()
                except dbapi_error as again:
                    connection.invalidate(again)
            connection.close()  # back to the pool with no transaction open
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


def _new_row(event: InboxEvent) -> tuple[Any, ...]:
    """An event as write_inbox takes it (NEW_EVENT_COLUMNS' order)."""
    received_at = utc_naive(event.received_at)
    payload = json.dumps(event.vars, separators=(",", ":"), sort_keys=True)
    return (event.webhook_id, event.hook, event.client_id, payload,
            utc_naive(event.occurred_at), received_at, received_at)


# How often enqueue_many looks again at which ids are known after a rival stored one of its
# events between its look and its INSERT.
ENQUEUE_MANY_TRIES = 3
_KNOWN_IDS = sa.select(inbox.c.webhook_id).where(
    inbox.c.webhook_id.in_(sa.bindparam("webhook_ids", expanding=True)))


class InboxStore(Database):
    def enqueue(self, event: InboxEvent) -> Enqueued:
        """Store an event once; a webhook id seen before is a duplicate and changes nothing.
        Returns once the row is committed."""
        try:
            write_inbox(self, [_new_row(event)])
        except sa.exc.IntegrityError:
            if self.get_event(event.webhook_id) is None:
                raise
            return "duplicate"
        return "queued"

    def enqueue_many(self, events: Sequence[InboxEvent]) -> list[Enqueued]:
        """Store several events in ONE transaction (all of them or, on an error, none), in
        their order; per event, ``queued`` or ``duplicate`` (its webhook id is already in the
        inbox, or came earlier in ``events``). Returns once the rows are committed."""
        outcome: list[Enqueued] = ["duplicate"] * len(events)
        first: dict[str, int] = {}  # webhook id -> index of its first event
        for index, event in enumerate(events):
            first.setdefault(event.webhook_id, index)
        known: set[str] = set()
        for attempt in range(1, ENQUEUE_MANY_TRIES + 1):
            if first:
                with self.engine.connect() as conn:
                    known = set(conn.execute(_KNOWN_IDS,
                                             {"webhook_ids": list(first)}).scalars())
            fresh = [index for webhook_id, index in first.items() if webhook_id not in known]
            try:
                write_inbox(self, [_new_row(events[index]) for index in fresh])
            except sa.exc.IntegrityError:
                # A rival stored one of these ids after the look above (nothing of ours was
                # stored): look again; the same ids failing again is another error.
                with self.engine.connect() as conn:
                    now_known = set(conn.execute(_KNOWN_IDS,
                                                 {"webhook_ids": list(first)}).scalars())
                if now_known <= known or attempt == ENQUEUE_MANY_TRIES:
                    raise
                continue
            for index in fresh:
                outcome[index] = "queued"
            return outcome
        raise AssertionError("unreachable")  # pragma: no cover

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


# --- the queue -----------------------------------------------------------------------------

# Standard Webhooks' example schedule (reliability-security.md §1): the first attempt is
# immediate, then these delays between attempts (about 75 h 35 min in all).
RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=14),
    timedelta(hours=20),
    timedelta(hours=24),
)
MAX_ATTEMPTS = 1 + len(RETRY_SCHEDULE)
JITTER = 0.2  # each delay is scaled by a factor in [1 - JITTER, 1 + JITTER)
MAX_ERROR_CHARS = 2000
# How many candidates a MariaDB claimer reads per row it wants: rivals read the same oldest
# candidates, and each locks the first ones nobody else holds.
CANDIDATE_WINDOW = 5
# How often claim() reads fresh candidates after rivals took every one it found.
CLAIM_TRIES = 3

FailOutcome = Literal["retrying", "dead", "lost"]

# --- statements, built once --------------------------------------------------------------

_now = sa.bindparam("now", type_=sa.DateTime)
_until = sa.bindparam("until", type_=sa.DateTime)
_worker = sa.bindparam("worker", type_=sa.String)
_row_id = sa.bindparam("row_id", type_=sa.BigInteger)
_client_id = sa.bindparam("cid", type_=sa.Integer)
_ids: sa.BindParameter[list[int]] = sa.bindparam("ids", expanding=True)

# Claimable: due for a (re)try, or held by a worker whose lease ran out.
_CLAIMABLE = sa.or_(
    sa.and_(inbox.c.state.in_(("queued", "retrying")), inbox.c.next_attempt_at <= _now),
    sa.and_(inbox.c.state == "processing",
            sa.or_(inbox.c.locked_until.is_(None), inbox.c.locked_until < _now)),
)
_HELD = sa.and_(inbox.c.id == _row_id, inbox.c.locked_by == _worker,
                inbox.c.state == "processing")

# Candidates are found with a plain read, then locked through the primary key only. A locking
# read over _CLAIMABLE is answered from ix_inbox_state_next plus a filesort for ORDER BY id,
# and InnoDB locks every entry it reads before sorting, with next-key locks up to the index's
# supremum: one claimer held every due row, its rivals' SKIP LOCKED found nothing, and every
# webhook INSERT waited for the claim to commit. MariaDB picks that index even for
# "id IN (...) AND <claimable>" on a small table, hence FORCE INDEX on the locking statements.
_PRIMARY = "FORCE INDEX (PRIMARY)"
_CANDIDATES = sa.select(inbox.c.id).where(_CLAIMABLE).order_by(inbox.c.id).limit(
    sa.bindparam("limit"))
_lock_candidates = sa.select(inbox.c.id).where(inbox.c.id.in_(_ids), _CLAIMABLE).order_by(
    inbox.c.id).limit(sa.bindparam("limit")).with_hint(inbox, _PRIMARY, "mysql").with_hint(
    inbox, _PRIMARY, "mariadb")
_lock_one = sa.select(inbox.c.id).where(inbox.c.id == _row_id, _CLAIMABLE)
# SKIP LOCKED needs MariaDB >= 10.6 / MySQL >= 8.0.1; older servers wait on a plain FOR UPDATE.
_LOCK_CANDIDATES = {
    True: _lock_candidates.with_for_update(skip_locked=True),
    False: _lock_candidates.with_for_update(),
}
_LOCK_ONE = {
    True: _lock_one.with_for_update(skip_locked=True),
    False: _lock_one.with_for_update(),
}

_CLAIM = inbox.update().where(inbox.c.id.in_(_ids), _CLAIMABLE).values(
    state="processing", locked_by=_worker, locked_until=_until, attempts=inbox.c.attempts + 1,
).with_hint(_PRIMARY, dialect_name="mysql").with_hint(_PRIMARY, dialect_name="mariadb")
_CLAIMED = inbox.select().where(
    inbox.c.id.in_(_ids), inbox.c.locked_by == _worker, inbox.c.state == "processing",
).order_by(inbox.c.id)

_COMPLETE = inbox.update().where(_HELD).values(
    state="done", finished_at=_now, locked_by=None, locked_until=None, last_error=None)

_HELD_ATTEMPTS = sa.select(inbox.c.attempts).where(_HELD).with_for_update()
_FAIL = inbox.update().where(_HELD, inbox.c.attempts == sa.bindparam("seen_attempts")).values(
    state=sa.bindparam("new_state"), next_attempt_at=sa.bindparam("next_at"),
    finished_at=sa.bindparam("finished"), last_error=sa.bindparam("error"),
    locked_by=None, locked_until=None)

# Every row a worker holds (the rest of its batch too): what a heartbeat extends and what a
# worker gives back after an error left rows behind.
_ALL_HELD = sa.and_(inbox.c.locked_by == _worker, inbox.c.state == "processing")


def _giving_back(held: Any) -> sa.Update:
    """The rows ``held`` selects go back without their attempt counted, due at ``until``;
    ``error``, when not NULL, replaces the last error (the admin page shows why)."""
    # MySQL/MariaDB evaluate single-table SET assignments left to right, each seeing the values
    # assigned before it; SQLite (and the SQL standard) use the old row throughout. Setting
    # state before attempts makes both read the old attempts.
    return inbox.update().where(held).ordered_values(
        (inbox.c.state, sa.case((inbox.c.attempts <= 1, "queued"), else_="retrying")),
        (inbox.c.attempts, sa.case((inbox.c.attempts > 0, inbox.c.attempts - 1), else_=0)),
        (inbox.c.next_attempt_at, _until),
        (inbox.c.last_error, sa.func.coalesce(sa.bindparam("error", type_=sa.Text),
                                              inbox.c.last_error)),
        (inbox.c.locked_by, None),
        (inbox.c.locked_until, None),
    )


_DEFER = _giving_back(_HELD)
_GIVE_BACK = _giving_back(_ALL_HELD)
_EXTEND = inbox.update().where(_HELD).values(locked_until=_until)
_EXTEND_ALL = inbox.update().where(_ALL_HELD).values(locked_until=_until)
_REQUEUE_DEAD = inbox.update().where(inbox.c.id == _row_id, inbox.c.state == "dead").values(
    state="queued", attempts=0, next_attempt_at=_now, finished_at=None, locked_by=None,
    locked_until=None)
# The admin's actions: conditional on the state the admin saw, so a row a worker claimed (or
# finished, or failed again) meanwhile is left alone and the admin is told.
RETRYABLE = ("dead", "retrying")
DISCARDABLE = ("queued", "retrying", "dead")
_seen = sa.bindparam("seen", type_=sa.String)
_RETRY_NOW = inbox.update().where(
    inbox.c.id == _row_id, inbox.c.state == _seen, inbox.c.state.in_(RETRYABLE)).values(
    state="queued", attempts=0, next_attempt_at=_now, finished_at=None, locked_by=None,
    locked_until=None)
_DISCARD = inbox.update().where(
    inbox.c.id == _row_id, inbox.c.state == _seen, inbox.c.state.in_(DISCARDABLE)).values(
    state="discarded", finished_at=_now, locked_by=None, locked_until=None,
    last_error=sa.func.substr(
        sa.bindparam("note", type_=sa.String) + sa.case(
            (inbox.c.last_error.is_(None), ""),
            else_=sa.literal("\nlast error: ", sa.String) + inbox.c.last_error),
        1, MAX_ERROR_CHARS))
_DEAD_LETTERS = inbox.select().where(inbox.c.state == "dead").order_by(inbox.c.id).limit(
    sa.bindparam("limit"))
_DUE_COUNT = sa.select(sa.func.count()).select_from(inbox).where(_CLAIMABLE)

_TAKE_CLIENT = client_lease.update().where(
    client_lease.c.client_id == _client_id,
    sa.or_(client_lease.c.locked_until.is_(None), client_lease.c.locked_until < _now,
           client_lease.c.locked_by == _worker),
).values(locked_by=_worker, locked_until=_until)
_INSERT_CLIENT = client_lease.insert().values(client_id=_client_id, locked_by=_worker,
                                              locked_until=_until)
_EXTEND_CLIENT = client_lease.update().where(
    client_lease.c.client_id == _client_id, client_lease.c.locked_by == _worker,
).values(locked_until=_until)
_RELEASE_CLIENT = client_lease.update().where(
    client_lease.c.client_id == _client_id, client_lease.c.locked_by == _worker,
).values(locked_by=None, locked_until=None)
# client_lease has no index on locked_by: these two read the whole table. They run only when
# a worker's step outlasts a third of its lease (heartbeat) or after an error (give back).
_EXTEND_CLIENTS = client_lease.update().where(client_lease.c.locked_by == _worker).values(
    locked_until=_until)
_RELEASE_CLIENTS = client_lease.update().where(client_lease.c.locked_by == _worker).values(
    locked_by=None, locked_until=None)


def _row_locks(dialect: Any) -> bool:
    return dialect.name in ("mysql", "mariadb")


def _skip_locked(dialect: Any) -> bool:
    """Whether the MariaDB/MySQL server understands SKIP LOCKED."""
    version = tuple(dialect.server_version_info or ())
    return version >= ((10, 6) if getattr(dialect, "is_mariadb", False) else (8, 0, 1))


# --- claiming ----------------------------------------------------------------------------


def _claim_once(conn: sa.Connection, worker: str, now: datetime, until: datetime,
                limit: int, row_id: int | None) -> list[InboxRow] | None:
    """The claimed rows; None when there were candidates but rivals took them all."""
    locks = _row_locks(conn.dialect)
    if row_id is not None:
        ids = [row_id]
    else:
        window = limit * CANDIDATE_WINDOW if locks else limit
        ids = list(conn.execute(_CANDIDATES, {"now": now, "limit": window}).scalars())
        # End the read before claiming: with innodb_snapshot_isolation (on by default since
        # MariaDB 11.6.2) locking a row that changed after the transaction's first plain read
        # fails with error 1020 instead of reading the current row.
        conn.rollback()
        if not ids:
            return []
    with conn.begin():
        if locks:
            skip = _skip_locked(conn.dialect)
            if row_id is not None:
                found = conn.execute(_LOCK_ONE[skip], {"now": now, "row_id": row_id})
            else:
                found = conn.execute(_LOCK_CANDIDATES[skip],
                                     {"ids": ids, "now": now, "limit": limit})
            ids = list(found.scalars())
            if not ids:
                return None
        # Conditional: on SQLite another claimer may have taken a candidate since the SELECT
        # (on MariaDB the rows are locked, and the condition holds anyway).
        taken = conn.execute(_CLAIM, {"ids": ids, "now": now, "worker": worker,
                                      "until": until}).rowcount
        if not taken:
            return None
        rows = conn.execute(_CLAIMED, {"ids": ids, "worker": worker}).all()
    return [inbox_row(r) for r in rows]


def claim(store: Database, worker: str, now: datetime, *, lease: timedelta,
          limit: int = 10) -> list[InboxRow]:
    """Claim up to ``limit`` claimable rows, oldest id first, for ``worker`` until now+lease.

    Claimable rows are queued/retrying ones whose ``next_attempt_at <= now`` and processing
    ones whose lease expired. Each claim counts an attempt. Returns the rows as claimed; an
    empty list means nothing was claimable (or rivals kept taking the candidates)."""
    if limit <= 0:
        return []
    now = utc_naive(now)
    with store.engine.connect() as conn:
        for _ in range(CLAIM_TRIES):
            rows = _claim_once(conn, worker, now, now + lease, limit, None)
            if rows is not None:
                return rows
    return []


def claim_row(store: Database, row_id: int, worker: str, now: datetime, *,
              lease: timedelta) -> InboxRow | None:
    """Claim one specific row if it is claimable (see :func:`claim`); None otherwise."""
    now = utc_naive(now)
    with store.engine.connect() as conn:
        rows = _claim_once(conn, worker, now, now + lease, 1, row_id)
    return rows[0] if rows else None


# --- outcomes of a claimed row -----------------------------------------------------------


def complete(store: Database, row_id: int, worker: str, now: datetime) -> bool:
    """Mark a row this worker holds as done; False if the worker no longer holds it."""
    with store.engine.begin() as conn:
        done = conn.execute(_COMPLETE, {"row_id": row_id, "worker": worker,
                                        "now": utc_naive(now)}).rowcount
    return done == 1


def retry_delay(attempts: int, rng: Callable[[], float] = random.random) -> timedelta:
    """The jittered wait after failed attempt number ``attempts`` (1-based, < MAX_ATTEMPTS)."""
    step = RETRY_SCHEDULE[min(max(attempts, 1), len(RETRY_SCHEDULE)) - 1]
    factor = 1 - JITTER + 2 * JITTER * min(max(rng(), 0.0), 1.0)
    return step * factor


def fail(store: Database, row_id: int, worker: str, now: datetime, error: str, *,
         rng: Callable[[], float] = random.random, permanent: bool = False) -> FailOutcome:
    """Record a failed attempt on a row this worker holds.

    The row becomes ``dead`` when ``permanent`` or after :data:`MAX_ATTEMPTS` attempts, else
    ``retrying`` after a jittered :data:`RETRY_SCHEDULE` step. Returns the new state, or
    ``"lost"`` when the worker no longer holds the row (nothing is written then)."""
    now = utc_naive(now)
    held = {"row_id": row_id, "worker": worker}
    with store.engine.begin() as conn:
        attempts = conn.execute(_HELD_ATTEMPTS, held).scalar()
        if attempts is None:
            return "lost"
        dead = permanent or attempts >= MAX_ATTEMPTS
        new_state: FailOutcome = "dead" if dead else "retrying"
        written = conn.execute(_FAIL, {
            **held,
            "seen_attempts": attempts,
            "new_state": new_state,
            "next_at": now if dead else now + retry_delay(attempts, rng),
            "finished": now if dead else None,
            "error": error[:MAX_ERROR_CHARS],
        }).rowcount
    return new_state if written == 1 else "lost"


def defer(store: Database, row_id: int, worker: str, now: datetime, delay: timedelta, *,
          error: str | None = None) -> bool:
    """Give a held row back without counting the attempt (e.g. its client is busy elsewhere,
    or WHMCS is down).

    The row is due again at now+delay, as ``queued`` if it had no other attempt, else as
    ``retrying``. ``error``, when given, becomes its last error (else the last one is kept).
    False if the worker no longer holds it."""
    with store.engine.begin() as conn:
        done = conn.execute(_DEFER, {
            "row_id": row_id, "worker": worker, "until": utc_naive(now) + delay,
            "error": None if error is None else error[:MAX_ERROR_CHARS]}).rowcount
    return done == 1


def extend(store: Database, row_id: int, worker: str, now: datetime, lease: timedelta) -> bool:
    """Heartbeat: push the row's lease to now+lease. False if the worker no longer holds it."""
    with store.engine.begin() as conn:
        done = conn.execute(_EXTEND, {"row_id": row_id, "worker": worker,
                                      "until": utc_naive(now) + lease}).rowcount
    return done == 1


def extend_held(store: Database, worker: str, now: datetime, *,
                lease: timedelta) -> tuple[int, int]:
    """Heartbeat of a whole worker: push to now+lease the lease of every row it holds in
    ``processing`` (the batch waiting its turn too) and of every client lease it holds.
    Returns (rows, clients) extended; rows and leases taken over by others are left alone."""
    params = {"worker": worker, "until": utc_naive(now) + lease}
    with store.engine.begin() as conn:
        rows = conn.execute(_EXTEND_ALL, params).rowcount
        clients = conn.execute(_EXTEND_CLIENTS, params).rowcount
    return rows, clients


def release_held(store: Database, worker: str, now: datetime, *,
                 delay: timedelta = timedelta(0)) -> int:
    """Give back everything ``worker`` holds: every row still ``processing`` under its name as
    :func:`defer` would (attempt not counted, due at now+delay, last error kept) and its client
    leases. For a worker that holds nothing by design at that point (the top of its loop) but
    was interrupted by an error, and for the rest of a batch it will not work on. Returns how
    many rows went back."""
    with store.engine.begin() as conn:
        rows = conn.execute(_GIVE_BACK, {"worker": worker, "until": utc_naive(now) + delay,
                                         "error": None}).rowcount
        conn.execute(_RELEASE_CLIENTS, {"worker": worker})
    return rows


# --- dead letters and counts -------------------------------------------------------------


def requeue_dead(store: Database, row_id: int, now: datetime) -> bool:
    """Put a dead row back in the queue with no attempts (last_error kept); False if not dead."""
    with store.engine.begin() as conn:
        done = conn.execute(_REQUEUE_DEAD, {"row_id": row_id, "now": utc_naive(now)}).rowcount
    return done == 1


def retry_now(store: Database, row_id: int, now: datetime, *, seen_state: str) -> bool:
    """An admin's "retry now": a ``dead`` or ``retrying`` row is queued, due at ``now``, with
    no attempts (a fresh schedule: the admin looked at it) and its last error kept until the
    next attempt. Only while the row is still in ``seen_state``: False when it is not (a
    worker claimed it, or it was done, retried or discarded meanwhile)."""
    if seen_state not in RETRYABLE:
        return False
    with store.engine.begin() as conn:
        done = conn.execute(_RETRY_NOW, {"row_id": row_id, "seen": seen_state,
                                         "now": utc_naive(now)}).rowcount
    return done == 1


def discard(store: Database, row_id: int, now: datetime, *, seen_state: str, note: str) -> bool:
    """An admin gives up on a ``queued``, ``retrying`` or ``dead`` row: it becomes
    ``discarded`` (kept, never claimed; its webhook id stays known, so a redelivery is still a
    duplicate). ``note`` (who and why) goes before the last error. Only while the row is still
    in ``seen_state``; False otherwise."""
    if seen_state not in DISCARDABLE:
        return False
    with store.engine.begin() as conn:
        done = conn.execute(_DISCARD, {"row_id": row_id, "seen": seen_state,
                                       "now": utc_naive(now), "note": note}).rowcount
    return done == 1


def dead_letters(store: Database, limit: int = 100) -> list[InboxRow]:
    """Dead rows, oldest id first."""
    with store.engine.connect() as conn:
        rows = conn.execute(_DEAD_LETTERS, {"limit": limit}).all()
    return [inbox_row(r) for r in rows]


@dataclass(frozen=True)
class Listed:
    """An inbox row as the admin page lists it: the row, who holds it, when it ended."""

    row: InboxRow
    locked_by: str | None
    locked_until: datetime | None
    finished_at: datetime | None


# How each state is listed: what is due next first; dead and finished rows newest first.
# Queued, retrying and dead read ix_inbox_state_next; done reads the primary key backwards
# (recent rows are mostly done), so a long history costs nothing.
_LIST_ORDER: dict[str, tuple[Any, ...]] = {
    "queued": (inbox.c.next_attempt_at, inbox.c.id),
    "retrying": (inbox.c.next_attempt_at, inbox.c.id),
    "processing": (inbox.c.id,),
    "dead": (inbox.c.next_attempt_at.desc(), inbox.c.id.desc()),
    "done": (inbox.c.id.desc(),),
    "discarded": (inbox.c.id.desc(),),
}


def _listed(row: Any) -> Listed:
    return Listed(inbox_row(row), row.locked_by, row.locked_until, row.finished_at)


def list_state(store: Database, state: str, *, limit: int, offset: int = 0) -> list[Listed]:
    """A page of the rows in ``state`` (one of ``_LIST_ORDER``), in that state's order."""
    query = inbox.select().where(inbox.c.state == state).order_by(
        *_LIST_ORDER[state]).limit(limit).offset(offset)
    with store.engine.connect() as conn:
        return [_listed(r) for r in conn.execute(query)]


def get_row(store: Database, row_id: int) -> Listed | None:
    with store.engine.connect() as conn:
        row = conn.execute(inbox.select().where(inbox.c.id == row_id)).first()
    return None if row is None else _listed(row)


def due_count(store: Database, now: datetime) -> int:
    """How many rows :func:`claim` could take at ``now``."""
    with store.engine.connect() as conn:
        return int(conn.execute(_DUE_COUNT, {"now": utc_naive(now)}).scalar() or 0)


# --- per-client leases -------------------------------------------------------------------


def acquire_client(store: Database, client_id: int, worker: str, now: datetime, *,
                   lease: timedelta) -> bool:
    """Take (or renew) the lease on one client for ``worker`` until now+lease.

    Free means: no lease row, or no holder, or an expired lease, or ``worker`` already holds it
    (re-entrant, not counted: one :func:`release_client` frees it). False when busy."""
    now = utc_naive(now)
    params = {"cid": client_id, "worker": worker, "now": now, "until": now + lease}
    # Each statement is its own transaction, and there is no SELECT ... FOR UPDATE first: on
    # InnoDB a locking read of a missing key takes a gap lock, and two racers that then both
    # INSERT deadlock (error 1213). The conditional UPDATE already locks and checks the current
    # row; of two INSERTs of the same client one simply fails.
    with store.engine.connect() as conn:
        with conn.begin():
            if conn.execute(_TAKE_CLIENT, params).rowcount == 1:
                return True
        try:
            with conn.begin():
                conn.execute(_INSERT_CLIENT, params)
            return True
        except sa.exc.IntegrityError:
            pass
        # Someone inserted the row meanwhile; it may already be released again.
        with conn.begin():
            return conn.execute(_TAKE_CLIENT, params).rowcount == 1


def extend_client(store: Database, client_id: int, worker: str, now: datetime, *,
                  lease: timedelta) -> bool:
    """Push the client lease ``worker`` holds to now+lease; False if it does not hold it."""
    with store.engine.begin() as conn:
        done = conn.execute(_EXTEND_CLIENT, {"cid": client_id, "worker": worker,
                                             "until": utc_naive(now) + lease}).rowcount
    return done == 1


def release_client(store: Database, client_id: int, worker: str) -> None:
    """Give up the client lease if ``worker`` holds it (a no-op otherwise)."""
    with store.engine.begin() as conn:
        conn.execute(_RELEASE_CLIENT, {"cid": client_id, "worker": worker})
