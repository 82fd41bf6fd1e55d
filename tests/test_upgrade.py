"""The upgrade path of docs/DEPLOY.md, from an earlier schema: a database at an earlier
Alembic revision, with data in it, is brought to the newest by ``vipgate db upgrade`` (the
command an operator runs), on SQLite and MariaDB; every row and value survives, and the app
works on it (the old admin logs in, the old webhook secret verifies, the old queued event is
claimed, the old standing answers).

Every earlier revision gets rows made up from its reflected columns; the revision before the
newest (the previous release's schema) also gets rows as vipgate's store writes them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bridge import accounts
from bridge.model import AuditEntry, CachedStanding, OverdueInvoice
from bridge.settings import default_settings
from bridge.store import Store
from bridge.store.inbox import InboxEvent, claim
from bridge.web.app import create_app
from tests.admin_helpers import ADMIN, PASSWORD, AdminSession
from tests.helpers import envelope, post_signed

ROOT = Path(__file__).resolve().parent.parent
Snapshot = dict[str, list[tuple[Any, ...]]]


def revisions() -> list[str]:
    """Every migration's revision, oldest first."""
    from alembic.script import ScriptDirectory

    store = Store("sqlite://")
    try:
        scripts = ScriptDirectory.from_config(store._alembic_config())
        return [s.revision for s in reversed(list(scripts.walk_revisions()))]
    finally:
        store.dispose()


REVISIONS = revisions()
EARLIER = REVISIONS[:-1]


def migrate_to(url: str, revision: str) -> None:
    from alembic import command

    store = Store(url)
    try:
        command.upgrade(store._alembic_config(), revision)
        assert store.revision() == revision
    finally:
        store.dispose()


def db_upgrade(url: str, cwd: Path) -> str:
    """``vipgate db upgrade`` as an operator runs it; its output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIPGATE_")}
    answer = subprocess.run([sys.executable, "-m", "bridge", "db", "upgrade"], cwd=cwd,
                            env={**env, "PYTHONPATH": str(ROOT),
                                 "VIPGATE_BRIDGE_DATABASE_URL": url},
                            capture_output=True, text=True, timeout=120, check=False)
    assert answer.returncode == 0, answer.stdout + answer.stderr
    return answer.stdout


def tables(engine: sa.Engine) -> list[sa.Table]:
    metadata = sa.MetaData()
    metadata.reflect(engine)
    return [t for t in metadata.sorted_tables if t.name != "alembic_version"]


def snapshot(engine: sa.Engine, columns: dict[str, list[str]]) -> Snapshot:
    """The rows of ``columns``' tables, those columns only, in primary key order."""
    found: Snapshot = {}
    by_name = {t.name: t for t in tables(engine)}
    with engine.connect() as conn:
        for name, names in columns.items():
            table = by_name[name]
            keys = [c for c in table.primary_key.columns] or [table.c[n] for n in names]
            rows = conn.execute(sa.select(*(table.c[n] for n in names)).order_by(*keys)).all()
            found[name] = [tuple(int(v) if isinstance(v, bool) else v for v in row)
                           for row in rows]
    return found


def made_up(column: sa.Column[Any], n: int) -> Any:
    """A value of the column's type, different for each row ``n``."""
    kind = column.type.python_type
    if kind is bool:
        return n % 2 == 0
    if kind is int:
        return n
    if kind is Decimal:
        return Decimal("12.34") + n
    if kind is datetime:
        return datetime(2026, 11, n, 9, 30, 15)
    if kind is date:
        return date(2026, 11, n)
    length = getattr(column.type, "length", None) or 64
    return json.dumps([f"{column.name} {n}"])[:length]


def fill(engine: sa.Engine) -> dict[str, list[str]]:
    """Two rows in every table of the schema as it is; the columns filled, per table."""
    filled: dict[str, list[str]] = {}
    with engine.begin() as conn:
        for table in tables(engine):
            conn.execute(table.insert(), [{c.name: made_up(c, n) for c in table.columns}
                                          for n in (1, 2)])
            filled[table.name] = [c.name for c in table.columns]
    return filled


@pytest.mark.parametrize("revision", EARLIER)
def test_db_upgrade_from_each_earlier_revision_keeps_every_row(database_url, tmp_path,
                                                               revision) -> None:
    migrate_to(database_url, revision)
    engine = sa.create_engine(database_url)
    try:
        columns = fill(engine)
        before = snapshot(engine, columns)
        assert all(len(rows) == 2 for rows in before.values())
        assert f"database at revision {REVISIONS[-1]}" in db_upgrade(database_url, tmp_path)
        assert snapshot(engine, columns) == before
    finally:
        engine.dispose()


# --- the previous release's schema, with what vipgate writes --------------------------------

CLIENT = 7
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def written_by_vipgate(tmp_path: Path) -> tuple[Store, str]:
    """A database at the newest revision holding what a running vipgate writes: an admin
    account, the generated webhook secret, a queued event, a client's standing (with an
    overdue invoice), a promise, an audit row."""
    store = Store(f"sqlite:///{tmp_path}/written.db")
    store.upgrade()
    accounts.create_user(store, ADMIN, PASSWORD, NOW)
    secret = store.webhook_secret()
    store.enqueue(InboxEvent("msg_old_event", "InvoicePaid", CLIENT,
                             {"invoiceid": 12, "userid": CLIENT}, NOW, NOW))
    store.put_standing(CachedStanding(
        CLIENT, "overdue", 9, Decimal("89.90"),
        (OverdueInvoice(12, "2026/12", Decimal("89.90"), "2026-11-11"),), "R$ ", "", "pt_BR",
        NOW.replace(tzinfo=None), billing_standing="overdue", group_id=1, in_vip=False,
        eligible=True, standing_reasons=("invoice #12 R$ 89.90 overdue 9 days > grace 3",)))
    store.set_promise(CLIENT, date(2026, 11, 25), "pays on Friday", ADMIN, NOW)
    store.add_audit([AuditEntry(NOW, "vipgate", "group", CLIENT, None, "2", "1",
                                ("left VIP: overdue",))])
    return store, secret


def copy_into(source: sa.Engine, target: sa.Engine) -> dict[str, list[str]]:
    """Copy ``source``'s rows into ``target``'s older schema: the tables and columns it has."""
    copied: dict[str, list[str]] = {}
    have = {t.name: t for t in tables(source)}
    with source.connect() as read, target.begin() as write:
        for table in tables(target):
            names = [c.name for c in table.columns if c.name in have[table.name].c]
            rows = [dict(r._mapping) for r in read.execute(
                sa.select(*(have[table.name].c[n] for n in names)))]
            if rows:
                write.execute(table.insert(), rows)
            copied[table.name] = names
    return copied


def test_db_upgrade_from_the_previous_release_and_the_app_works(database_url,
                                                                tmp_path) -> None:
    previous = REVISIONS[-2]
    written, secret = written_by_vipgate(tmp_path)
    migrate_to(database_url, previous)
    engine = sa.create_engine(database_url)
    try:
        columns = copy_into(written.engine, engine)
        before = snapshot(engine, columns)
        assert before["admin_user"] and before["inbox"] and before["standing"]
        db_upgrade(database_url, tmp_path)
        assert snapshot(engine, columns) == before
    finally:
        engine.dispose()
        written.dispose()
    store = Store(database_url)
    try:
        store.require_current()
        # the standing answers as it did, the promise and the audit are there
        assert store.get_standing(CLIENT) == written_standing(tmp_path)
        assert store.get_promise(CLIENT) == (date(2026, 11, 25), "pays on Friday")
        assert [e.reasons for e in store.audit_log(client_id=CLIENT)] == [
            ("left VIP: overdue",)]
        # the app on it: the generated secret still verifies, the old admin logs in
        settings = default_settings().replace(bridge={"database_url": database_url})
        app = create_app(settings, store=store)
        answer = post_signed(app.test_client(), envelope("ClientAdd", {"client_id": 8}),
                             secret=secret, timestamp=int(datetime.now(UTC).timestamp()))
        assert answer.status_code == 202, answer.get_json()
        admin = AdminSession(app)  # the account exists: it logs in with the old password
        assert "Overview" in admin.text("/admin/")
        assert app.test_client().get("/healthz").get_json()["inbox"]["queued"] == 2
        # the event queued before the upgrade is claimed and carries its vars
        (row, *_) = claim(store, "worker-1", datetime.now(UTC), lease=timedelta(minutes=1))
        assert (row.webhook_id, row.vars) == ("msg_old_event", {"invoiceid": 12,
                                                                "userid": CLIENT})
    finally:
        store.dispose()


def written_standing(tmp_path: Path) -> CachedStanding | None:
    store = Store(f"sqlite:///{tmp_path}/written.db")
    try:
        return store.get_standing(CLIENT)
    finally:
        store.dispose()
