"""The inbox writer on MariaDB (``make_inbox_engine`` in bridge.store.database, ``write_inbox``
in bridge.store.inbox): one autocommit INSERT per event, committed when enqueue returns, and
still storing the next event after its connection was killed server-side. Also guards the
round trips per event (bench/ingest)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pymysql
import pytest
import sqlalchemy as sa

from bridge.settings import default_settings
from bridge.store import Store
from bridge.store import database as store_database
from bridge.store import inbox as store_inbox
from bridge.store.inbox import INBOX_INSERT_SQL, INSERT_INBOX, NEW_EVENT_COLUMNS, InboxEvent
from bridge.store.tables import inbox
from bridge.web.app import create_app
from tests.helpers import FIXED_NOW, SECRET, envelope, post_signed

pytestmark = pytest.mark.mariadb

STATUS = ("Com_insert", "Com_commit", "Com_rollback", "Com_admin_commands", "Com_select")


def _event(msg_id: str, **vars_: Any) -> InboxEvent:
    return InboxEvent(msg_id, "ClientEdit", 42, {"userid": 42, **vars_},
                      FIXED_NOW - timedelta(seconds=3), FIXED_NOW)


@pytest.fixture
def mstore(mariadb_url: str) -> Iterator[Store]:
    store = Store(mariadb_url)
    store.upgrade()
    yield store
    store.dispose()


@pytest.fixture
def server(mariadb_url: str) -> Iterator[sa.Engine]:
    """A connection of its own to the server, for KILL and for reading what is committed."""
    engine = sa.create_engine(mariadb_url, poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


def _on_inbox_connection(store: Store, sql: str) -> list[Any]:
    """Run ``sql`` on the inbox pool's connection (the only one: these tests are sequential)."""
    assert store.inbox_engine is not None
    assert store.inbox_engine.pool.checkedin() == 1, "expected exactly one pooled connection"
    connection = store.inbox_engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute(sql)
        rows = list(cursor.fetchall())
        cursor.close()
        return rows
    finally:
        connection.close()


def _status(store: Store) -> dict[str, int]:
    rows = _on_inbox_connection(store, "SHOW SESSION STATUS")
    return {name: int(value) for name, value in rows if name in STATUS}


def _connection_id(store: Store) -> int:
    return int(_on_inbox_connection(store, "SELECT CONNECTION_ID()")[0][0])


def _kill(server: sa.Engine, connection_id: int) -> None:
    with server.connect() as conn:
        conn.execute(sa.text(f"KILL {int(connection_id)}"))


def _stored(server: sa.Engine) -> list[str]:
    with server.connect() as conn:
        return list(conn.execute(sa.select(inbox.c.webhook_id).order_by(inbox.c.id)).scalars())


def test_the_insert_names_the_inbox_columns_a_new_event_sets() -> None:
    listed = re.search(r"INSERT INTO inbox \(([^)]*)\)", INBOX_INSERT_SQL)
    assert listed is not None
    columns = [c.strip() for c in listed.group(1).split(",")]
    assert set(columns) <= set(inbox.c.keys())
    required = {c.name for c in inbox.columns
                if not c.nullable and c.server_default is None and c.autoincrement is not True
                and c.name != "id"}
    assert required <= set(columns)
    # seven values come from enqueue; state and attempts are constants in the statement
    assert INBOX_INSERT_SQL.count("%s") == 7
    assert "'queued', 0, %s)" in INBOX_INSERT_SQL
    # ... in the order write_inbox takes them
    assert [c for c in columns if c not in ("state", "attempts")] == list(NEW_EVENT_COLUMNS)


def test_sqlite_keeps_the_sqlalchemy_path(tmp_path) -> None:
    store = Store(f"sqlite:///{tmp_path}/v.db")
    try:
        assert store.inbox_engine is None
        store.upgrade()
        assert store.enqueue(_event("msg_sqlite")) == "queued"
        assert store.enqueue(_event("msg_sqlite")) == "duplicate"
    finally:
        store.dispose()


def test_a_row_is_the_same_as_through_sqlalchemy(mstore: Store, server: sa.Engine) -> None:
    event = _event("msg_fast", language="português 🇧🇷", olddata={"groupid": 1})
    assert mstore.enqueue(event) == "queued"
    with server.begin() as conn:  # the way enqueue stored events before (INSERT_INBOX)
        conn.execute(INSERT_INBOX, {
            "webhook_id": "msg_slow", "hook": event.hook, "client_id": event.client_id,
            "payload": json.dumps(event.vars, separators=(",", ":"), sort_keys=True),
            "occurred_at": event.occurred_at.replace(tzinfo=None),
            "received_at": event.received_at.replace(tzinfo=None), "state": "queued",
            "attempts": 0, "next_attempt_at": event.received_at.replace(tzinfo=None)})
    with server.connect() as conn:
        rows = {r.webhook_id: r._asdict() for r in conn.execute(inbox.select())}
    fast, slow = rows["msg_fast"], rows["msg_slow"]
    for row in (fast, slow):
        del row["id"], row["webhook_id"]
    assert fast == slow
    assert mstore.get_event("msg_fast").vars == {"userid": 42, "language": "português 🇧🇷",
                                                 "olddata": {"groupid": 1}}


def test_an_event_is_one_autocommit_insert_and_nothing_else(mstore: Store) -> None:
    mstore.enqueue(_event("msg_first"))  # opens the pool's connection
    before = _status(mstore)
    for n in range(20):
        assert mstore.enqueue(_event(f"msg_{n}")) == "queued"
    after = _status(mstore)
    delta = {k: after[k] - before[k] for k in STATUS}
    # no COMMIT, no ROLLBACK on return to the pool, no ping: 20 INSERTs (the SHOW between
    # the two snapshots is not counted in these)
    assert delta == {"Com_insert": 20, "Com_commit": 0, "Com_rollback": 0,
                     "Com_admin_commands": 0, "Com_select": 0}
    assert _on_inbox_connection(mstore, "SELECT @@autocommit, @@in_transaction") == [(1, 0)]


def test_a_duplicate_leaves_no_transaction_open(mstore: Store, server: sa.Engine) -> None:
    assert mstore.enqueue(_event("msg_dup")) == "queued"
    assert mstore.enqueue(_event("msg_dup")) == "duplicate"
    assert _on_inbox_connection(mstore, "SELECT @@autocommit, @@in_transaction") == [(1, 0)]
    # the duplicate-key check locks nothing beyond its statement: another writer goes on
    with server.connect() as conn:
        conn.execute(sa.text("SET SESSION innodb_lock_wait_timeout = 1"))
        conn.execute(sa.text("UPDATE inbox SET attempts = 1 WHERE webhook_id = 'msg_dup'"))
        conn.commit()
    assert _stored(server) == ["msg_dup"]


def test_the_row_is_committed_when_enqueue_returns(mstore: Store, server: sa.Engine) -> None:
    assert mstore.enqueue(_event("msg_durable")) == "queued"
    # another connection, opened afterwards, sees it: it is committed
    assert _stored(server) == ["msg_durable"]


def test_every_202_is_a_committed_row(mariadb_url: str, mstore: Store,
                                      server: sa.Engine) -> None:
    settings = default_settings().replace(bridge={"database_url": mariadb_url},
                                          webhook={"secrets": SECRET})
    client = create_app(settings, store=mstore, clock=lambda: FIXED_NOW).test_client()
    answers = [post_signed(client, envelope("InvoicePaid", {"invoiceid": n}), msg_id=f"msg_w{n}")
               for n in range(5)]
    assert [(r.status_code, r.json["status"]) for r in answers] == [(202, "queued")] * 5
    assert _stored(server) == [f"msg_w{n}" for n in range(5)]


def test_the_next_event_is_stored_after_a_server_side_kill(
        mstore: Store, server: sa.Engine, caplog: pytest.LogCaptureFixture) -> None:
    assert mstore.enqueue(_event("msg_before")) == "queued"
    killed = _connection_id(mstore)
    _kill(server, killed)
    caplog.set_level(logging.WARNING, logger="vipgate.store")
    # used a moment ago, so not pinged: the INSERT finds the connection dead, and is retried
    assert mstore.enqueue(_event("msg_after")) == "queued"
    assert "connection lost" in caplog.text
    assert _stored(server) == ["msg_before", "msg_after"]
    assert _connection_id(mstore) != killed


def test_a_connection_idle_for_a_while_is_pinged_first(
        mstore: Store, server: sa.Engine, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setattr(store_database, "IDLE_PING_SECONDS", 0.2)
    mstore.enqueue(_event("msg_one"))
    before = _status(mstore)
    mstore.enqueue(_event("msg_two"))  # checked out again at once: no ping
    after = _status(mstore)
    assert after["Com_admin_commands"] == before["Com_admin_commands"]
    time.sleep(0.3)
    mstore.enqueue(_event("msg_three"))  # idle for longer: pinged
    assert _status(mstore)["Com_admin_commands"] == after["Com_admin_commands"] + 1

    killed = _connection_id(mstore)
    _kill(server, killed)
    time.sleep(0.3)
    caplog.set_level(logging.WARNING, logger="vipgate.store")
    assert mstore.enqueue(_event("msg_four")) == "queued"
    assert "connection lost" not in caplog.text  # the ping found it, the pool reconnected
    assert _stored(server) == ["msg_one", "msg_two", "msg_three", "msg_four"]
    assert _connection_id(mstore) != killed


def test_a_slow_failure_is_not_retried(mstore: Store, server: sa.Engine,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_inbox, "INBOX_RETRY_WITHIN_SECONDS", 0.0)
    mstore.enqueue(_event("msg_one"))
    _kill(server, _connection_id(mstore))
    with pytest.raises(sa.exc.OperationalError) as caught:
        mstore.enqueue(_event("msg_lost"))
    assert caught.value.connection_invalidated
    assert mstore.enqueue(_event("msg_lost")) == "queued"  # the sender's retry is stored
    assert _stored(server) == ["msg_one", "msg_lost"]


def test_an_unreachable_server_raises_sqlalchemy_errors(mariadb_server: str) -> None:
    store = Store(mariadb_server.replace("root@", "root:wrong@") + "/test")
    try:
        with pytest.raises(sa.exc.OperationalError):
            store.enqueue(_event("msg_nowhere"))
    finally:
        store.dispose()


def test_an_interrupted_write_does_not_go_back_to_the_pool(
        mstore: Store, server: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    mstore.enqueue(_event("msg_one"))
    first = _connection_id(mstore)

    def interrupted(self: Any, *args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(pymysql.cursors.Cursor, "execute", interrupted)
        with pytest.raises(KeyboardInterrupt):
            mstore.enqueue(_event("msg_cut"))
    assert mstore.enqueue(_event("msg_two")) == "queued"
    assert _connection_id(mstore) != first
    assert _stored(server) == ["msg_one", "msg_two"]
