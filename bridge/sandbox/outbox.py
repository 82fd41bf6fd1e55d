"""The PHP stub's tables in the sandbox's "WHMCS database" (a SQLite file), used as the stub
uses them, for its Python emulation (:class:`bridge.sandbox.forwarder.PythonForwarder`):
the outbox ``mod_vipgate_spool`` with its claims, and ``mod_vipgate_state`` (the breaker, the
activity-log claims, since when the heartbeat fails).

The CREATE statements, the names in mod_vipgate_state and the limits are read from
``vipgate.php`` itself; the SQL below is the stub's SQLite branch, statement for statement
(``vipgate_outbox_claim``, ``vipgate_outbox_release``, ``vipgate_state_claim``, ...). Every
statement autocommits, as the stub's PDO does outside a WHMCS transaction.
"""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from whmcs_php_stub import stub_array, stub_constant

SPOOL_TABLE = str(stub_constant("VIPGATE_SPOOL_SQLITE"))
STATE_TABLE = str(stub_constant("VIPGATE_STATE_TABLE"))
SPOOL_COLUMNS = {name: str(kind) for name, kind in stub_array("vipgate_spool_columns").items()}
BREAKER = str(stub_constant("VIPGATE_BREAKER"))
BREAKER_SECONDS = int(stub_constant("VIPGATE_BREAKER_SECONDS"))
CLAIM_SECONDS = int(stub_constant("VIPGATE_CLAIM_SECONDS"))
ACTIVITY_EVERY = int(stub_constant("VIPGATE_ACTIVITY_EVERY"))
REJECTED_KEEP = int(stub_constant("VIPGATE_REJECTED_KEEP"))
REJECTED_LISTED = int(stub_constant("VIPGATE_REJECTED_LISTED"))
UNREACHABLE_AFTER = int(stub_constant("VIPGATE_UNREACHABLE_AFTER"))
SPOOL_WARN_ROWS = int(stub_constant("VIPGATE_SPOOL_WARN_ROWS"))
HEARTBEAT_FAILING = "heartbeat_failing_since"


def sql_time(now: float) -> str:
    """A DATETIME column's value for ``now`` (seconds since 1970), in UTC."""
    return datetime.fromtimestamp(int(now), UTC).strftime("%Y-%m-%d %H:%M:%S")


def _epoch(value: str) -> int:
    """A DATETIME column's value (UTC; fractions of a second allowed) as seconds since 1970."""
    return int(datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp())


@dataclass
class Outbox:
    """mod_vipgate_spool and mod_vipgate_state in the SQLite file ``path``."""

    path: Path
    clock: Callable[[], float] = time.time

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            yield conn
        finally:
            conn.close()

    def works(self, sql: str) -> bool:
        """Whether a query runs (the table, or the column, is there)."""
        try:
            with self.connect() as conn:
                conn.execute(sql)
        except sqlite3.Error:
            return False
        return True

    # --- the outbox ------------------------------------------------------------------------

    def exists(self) -> bool:
        """Whether the outbox table is there (no file: no table, and no file made)."""
        return self.path.exists() and self.works(
            "SELECT COUNT(*) FROM mod_vipgate_spool WHERE 1 = 0")

    def ensure(self) -> None:
        """Create the table, or give one made by an older stub the columns it lacks."""
        columns = ", ".join(SPOOL_COLUMNS)  # the stub's names, read from vipgate.php
        if self.works(f"SELECT {columns} FROM mod_vipgate_spool WHERE 1 = 0"):  # noqa: S608
            return
        with self.connect() as conn:
            if not self.exists():
                conn.execute(SPOOL_TABLE)
                return
            for column, kind in SPOOL_COLUMNS.items():
                if not self.works(f"SELECT {column} FROM mod_vipgate_spool "  # noqa: S608
                                  "WHERE 1 = 0"):
                    conn.execute(f"ALTER TABLE mod_vipgate_spool ADD COLUMN {column} {kind}")

    def add(self, webhook_id: str, hook: str, body: str) -> None:
        """An event waiting to be sent (attempts 0), committed when this returns."""
        sql = ("INSERT INTO mod_vipgate_spool (webhook_id, hook, body, created_at, attempts) "
               "VALUES (?, ?, ?, ?, 0)")
        row = (webhook_id, hook, body, sql_time(self.clock()))
        try:
            with self.connect() as conn:
                conn.execute(sql, row)
        except sqlite3.Error:
            self.ensure()
            with self.connect() as conn:
                conn.execute(sql, row)

    def keep(self, webhook_id: str, hook: str, body: str, error: str, *,
             rejected: bool = False) -> None:
        """An event sent at once and not taken: waiting (attempts 1), or refused for good."""
        sql = ("INSERT INTO mod_vipgate_spool (webhook_id, hook, body, created_at, attempts, "
               "last_error, rejected_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
        now = sql_time(self.clock())
        row = (webhook_id, hook, body, now, 1, error[:1000], now if rejected else None)
        try:
            with self.connect() as conn:
                conn.execute(sql, row)
        except sqlite3.Error:
            if self.works("SELECT rejected_at FROM mod_vipgate_spool WHERE 1 = 0"):
                raise
            self.ensure()
            with self.connect() as conn:
                conn.execute(sql, row)

    def claim(self, limit: int) -> tuple[str, list[dict[str, Any]]]:
        """Claim up to ``limit`` of the oldest waiting rows whose claim is empty or expired."""
        token = secrets.token_hex(16)
        now = int(self.clock())
        with self.connect() as conn:
            claimed = conn.execute(
                "UPDATE mod_vipgate_spool SET claimed_by = ?, claimed_until = ? WHERE id IN "
                "(SELECT id FROM mod_vipgate_spool WHERE rejected_at IS NULL AND "
                "(claimed_until IS NULL OR claimed_until < ?) ORDER BY id LIMIT ?)",
                (token, now + CLAIM_SECONDS, now, limit)).rowcount
            if claimed == 0:
                return token, []
            conn.row_factory = sqlite3.Row
            rows = conn.execute("SELECT id, webhook_id, hook, body FROM mod_vipgate_spool "
                                "WHERE claimed_by = ? ORDER BY id", (token,)).fetchall()
        return token, [dict(row) for row in rows]

    def release(self, token: str, error: str | None = None,
                ids: list[int] | None = None) -> None:
        """Give claimed rows back, waiting again; ``error`` (when given) counts an attempt."""
        if ids is not None and not ids:
            return
        sql = "UPDATE mod_vipgate_spool SET claimed_by = NULL, claimed_until = NULL"
        params: list[Any] = []
        if error is not None:
            sql += ", attempts = attempts + 1, last_error = ?"
            params.append(error[:1000])
        sql += " WHERE claimed_by = ?"
        params.append(token)
        if ids is not None:
            sql += f" AND id IN ({', '.join('?' * len(ids))})"
            params.extend(ids)
        with self.connect() as conn:
            conn.execute(sql, params)

    def reject(self, row_id: int, error: str) -> None:
        """Keep a claimed row as rejected by the bridge (30 days, never sent again)."""
        with self.connect() as conn:
            conn.execute("UPDATE mod_vipgate_spool SET attempts = attempts + 1, last_error = ?, "
                         "rejected_at = ?, claimed_by = NULL, claimed_until = NULL WHERE id = ?",
                         (error[:1000], sql_time(self.clock()), row_id))

    def delete(self, ids: list[int]) -> None:
        if ids:
            with self.connect() as conn:
                conn.execute("DELETE FROM mod_vipgate_spool WHERE id IN "  # noqa: S608
                             f"({', '.join('?' * len(ids))})", ids)

    def forget_old_rejected(self) -> None:
        with self.connect() as conn:
            conn.execute("DELETE FROM mod_vipgate_spool WHERE rejected_at IS NOT NULL AND "
                         "rejected_at < ?", (sql_time(self.clock() - REJECTED_KEEP),))

    def waiting_ids(self) -> list[str]:
        """Webhook ids waiting to be sent, oldest first ([] without a table)."""
        if not self.exists():
            return []
        with self.connect() as conn:
            return [r[0] for r in conn.execute(
                "SELECT webhook_id FROM mod_vipgate_spool WHERE rejected_at IS NULL ORDER BY id")]

    def backlog(self) -> tuple[int, int | None]:
        """How many events wait, and since when the oldest (seconds since 1970)."""
        if not self.exists():
            return 0, None
        self.ensure()
        with self.connect() as conn:
            count, oldest = conn.execute("SELECT COUNT(*), MIN(created_at) FROM mod_vipgate_spool "
                                         "WHERE rejected_at IS NULL").fetchone()
        return int(count), None if oldest is None else _epoch(oldest)

    def rejected_report(self) -> dict[str, Any]:
        """What the heartbeat tells the bridge about rejected events ({} when none)."""
        if not self.exists():
            return {}
        self.ensure()
        with self.connect() as conn:
            count = conn.execute("SELECT COUNT(*) FROM mod_vipgate_spool "
                                 "WHERE rejected_at IS NOT NULL").fetchone()[0]
            if not count:
                return {}
            rows = conn.execute(
                "SELECT webhook_id, hook, rejected_at, last_error FROM mod_vipgate_spool WHERE "
                "rejected_at IS NOT NULL ORDER BY rejected_at DESC, id DESC LIMIT ?",
                (REJECTED_LISTED,)).fetchall()
        return {"rejected_count": int(count), "rejected_recent": [
            {"webhook_id": str(webhook_id), "hook": str(hook),
             "rejected_at": datetime.fromtimestamp(_epoch(at), UTC).isoformat(),
             "reason": str(error or "")[:500]}
            for webhook_id, hook, at, error in rows]}

    # --- mod_vipgate_state -----------------------------------------------------------------

    def state_get(self, name: str) -> int | None:
        try:
            with self.connect() as conn:
                row = conn.execute("SELECT at FROM mod_vipgate_state WHERE name = ?",
                                   (name,)).fetchone()
        except sqlite3.Error:
            return None
        return None if row is None else int(row[0])

    def state_set(self, name: str, at: int) -> None:
        with self.connect() as conn:
            conn.execute(STATE_TABLE)
            if conn.execute("UPDATE mod_vipgate_state SET at = ? WHERE name = ?",
                            (at, name)).rowcount == 0:
                conn.execute("INSERT OR REPLACE INTO mod_vipgate_state (name, at) VALUES (?, ?)",
                             (name, at))

    def state_claim(self, name: str, now: int, every: int) -> bool:
        """The right to act on ``name`` now, if nobody took it in the last ``every`` seconds."""
        with self.connect() as conn:
            conn.execute(STATE_TABLE)
            if conn.execute("UPDATE mod_vipgate_state SET at = ? WHERE name = ? AND at <= ?",
                            (now, name, now - every)).rowcount:
                return True
            try:
                conn.execute("INSERT INTO mod_vipgate_state (name, at) VALUES (?, ?)",
                             (name, now))
            except sqlite3.IntegrityError:
                return False
        return True

    def state_delete(self, name: str) -> int:
        try:
            with self.connect() as conn:
                return conn.execute("DELETE FROM mod_vipgate_state WHERE name = ?",
                                    (name,)).rowcount
        except sqlite3.OperationalError:  # no table: nothing was noted
            return 0

    def breaker_until(self) -> int | None:
        """Until when the breaker is open (a past time: a success has not closed it yet)."""
        return self.state_get(BREAKER)

    def breaker_is_open(self, until: int | None) -> bool:
        return until is not None and until > self.clock()

    def activity(self, kind: str, message: str) -> None:
        """A line in WHMCS's System Activity Log, at most once per ``kind`` every ten minutes
        (the sandbox's tblactivitylog; nothing when the database has none)."""
        now = int(self.clock())
        if not self.works("SELECT COUNT(*) FROM tblactivitylog WHERE 1 = 0") \
                or not self.state_claim(f"activity:{kind}", now, ACTIVITY_EVERY):
            return
        with self.connect() as conn:
            conn.execute("INSERT INTO tblactivitylog (date, description, user, userid, user_id, "
                         "admin_id, ipaddr) VALUES (?, ?, 'System', 0, 0, 0, '')",
                         (sql_time(now), f"vipgate: {message}"))
