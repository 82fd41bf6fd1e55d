"""How the sandbox WHMCS fires hooks: through the real PHP stub when ``php`` is installed,
else through a Python emulation that sends the same signed request and spools the same way.

Both keep their spool in the sandbox's "WHMCS database" (a SQLite file), in the table the stub
uses, ``mod_vipgate_spool``.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import requests

from bridge.payloads import whitelist
from bridge.signing import SignatureError, signed_headers, verify

PHP_DIR = Path(__file__).with_name("php")
MODULE_HOOKS = ("AfterModuleSuspend", "AfterModuleUnsuspend")
PAGE_HOOKS = ("AdminAreaClientSummaryPage", "AdminAreaViewTicketPage",
              "ClientAreaPageSubmitTicket", "ClientAreaHomepage")
PAGE_TIMEOUT = 1.0  # seconds: a page waits this long for vipgate, then shows nothing of it
ANSWER_TOLERANCE = 300  # seconds: how old a signed synchronous answer may be
RETRYABLE_4XX = (401, 408, 429)
FAIL_CLOSED_MESSAGE = ("Support tickets are temporarily unavailable. Please try again in a few "
                       "minutes.")
SPOOL_SCHEMA = """CREATE TABLE IF NOT EXISTS mod_vipgate_spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT, webhook_id VARCHAR(64) NOT NULL UNIQUE,
    hook VARCHAR(64) NOT NULL, body TEXT NOT NULL, created_at DATETIME NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT NULL, rejected_at DATETIME NULL)"""
STUB_VERSION = "0.1.0"  # as vipgate_version() in the stub


class Forwarder(Protocol):
    kind: str

    def fire(self, hook: str, variables: dict[str, Any]) -> list[Any]:
        """Run WHMCS's hook ``hook`` with ``variables``; return what the hook functions return."""

    def spooled(self) -> list[str]:
        """Webhook ids waiting in mod_vipgate_spool, oldest first."""


def php_available() -> bool:
    if shutil.which("php") is None:
        return False
    modules = subprocess.run(["php", "-m"], capture_output=True, text=True, timeout=30).stdout
    return {"curl", "pdo_sqlite"} <= {line.strip() for line in modules.splitlines()}


def _spooled(spool_db: Path) -> list[str]:
    if not spool_db.exists():
        return []
    with sqlite3.connect(spool_db) as conn:
        try:
            return [r[0] for r in conn.execute(
                "SELECT webhook_id FROM mod_vipgate_spool WHERE rejected_at IS NULL ORDER BY id")]
        except sqlite3.OperationalError:  # no table yet: nothing was ever spooled
            return []


@dataclass
class PhpForwarder:
    """The real stub, run by the real ``php`` with a minimal WHMCS around it."""

    hooks_dir: Path  # WHMCS's includes/hooks, where install-stub wrote vipgate.php
    spool_db: Path
    log_path: Path
    kind: str = "php"

    def _php(self, script: str, *args: str) -> dict[str, Any]:
        env = {**os.environ, "VIPGATE_SANDBOX_PDO_DSN": f"sqlite:{self.spool_db}",
               "VIPGATE_SANDBOX_LOG": str(self.log_path)}
        result = subprocess.run(["php", str(PHP_DIR / script), *args], capture_output=True,
                                text=True, env=env, timeout=180, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"php {script} {args[1]} failed: {result.stderr.strip()[:500]}")
        return dict(json.loads(result.stdout))

    def fire(self, hook: str, variables: dict[str, Any]) -> list[Any]:
        return list(self._php("fire.php", str(self.hooks_dir), hook,
                              json.dumps(variables))["returns"])

    def addon(self, action: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
        """What WHMCS's Setup > Addon Modules does with the vipgate addon module installed in
        this WHMCS folder (``php/addon.php``: activate, configure, deactivate, output)."""
        return self._php("addon.php", str(self.hooks_dir.parent.parent), "vipgate", action,
                         json.dumps(fields or {}))

    def spooled(self) -> list[str]:
        return _spooled(self.spool_db)


@dataclass
class PythonForwarder:
    """What ``whmcs_php_stub/vipgate.php`` does, in Python: same whitelist, body, signature,
    timeouts, outcomes and spool. Used where php is not installed."""

    url: str  # the bridge's /hooks/whmcs
    secret: str
    spool_db: Path
    fail_open: bool = True
    clock: Callable[[], float] = time.time
    kind: str = "python"

    def fire(self, hook: str, variables: dict[str, Any]) -> list[Any]:
        variables = dict(variables)
        session = variables.pop("__session__", None) or {}
        admin = variables.pop("__admin__", None)  # WHMCS's CurrentUser admin, if any
        if hook == "ClientEdit" and isinstance(admin, str) and admin:
            variables["__adminuser__"] = admin[:255]
        if hook not in whitelist():
            return []  # the stub registers only the hooks it forwards
        if hook in PAGE_HOOKS:
            return self._page(hook, variables, session)
        if hook == "TicketOpenValidation":
            error = self._validate(variables)
            return [error] if error else []
        if hook == "AfterCronJob":
            self.flush()
        msg_id, body = self.event(hook, variables)
        outcome, error = self._post(msg_id, body, 120.0 if hook == "PreCronJob" else 2.0)
        if outcome != "ok" and hook != "AfterCronJob":  # the heartbeat is not spooled
            self._spool(msg_id, hook, body, error, rejected=outcome == "permanent")
        return []

    def spooled(self) -> list[str]:
        return _spooled(self.spool_db)

    @staticmethod
    def pick(hook: str, variables: dict[str, Any]) -> dict[str, Any]:
        keys = whitelist().get(hook, [])
        source = variables
        if hook in MODULE_HOOKS and isinstance(variables.get("params"), dict):
            source = variables["params"]
        picked = {k: source[k] for k in keys
                  if k in source and isinstance(source[k], (str, int, float, bool))}
        old = source.get("olddata") if hook == "ClientEdit" else None
        if isinstance(old, dict):
            kept = {k: old[k] for k in ("groupid", "status")
                    if isinstance(old.get(k), (str, int, float, bool))}
            if kept:
                picked["olddata"] = kept
        if hook == "ClientEdit" and isinstance(variables.get("__adminuser__"), str):
            picked["adminuser"] = variables["__adminuser__"]
        return picked

    def event(self, hook: str, variables: dict[str, Any]) -> tuple[str, bytes]:
        body = json.dumps({"hook": hook, "vars": self.pick(hook, variables),
                           "occurred_at": datetime.fromtimestamp(self.clock(), UTC).isoformat(
                               timespec="seconds")}, separators=(",", ":")).encode()
        return f"msg_{uuid.uuid4().hex}", body

    def _post(self, msg_id: str, body: bytes, timeout: float) -> tuple[str, str]:
        headers = signed_headers([self.secret], msg_id, int(self.clock()), body)
        headers["Content-Type"] = "application/json"
        headers["vipgate-stub-version"] = STUB_VERSION
        try:
            response = requests.post(self.url, data=body, headers=headers,
                                     timeout=(min(1.0, timeout), timeout), allow_redirects=False)
        except requests.RequestException as exc:
            return "retry", f"{type(exc).__name__}"
        if 200 <= response.status_code < 300:
            return "ok", ""
        error = f"HTTP {response.status_code}: {response.text[:500]}"
        if 400 <= response.status_code < 500 and response.status_code not in RETRYABLE_4XX:
            return "permanent", error
        return "retry", error

    def ask(self, hook: str, variables: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        """A synchronous question: the answer, only when the bridge signed it for this
        request (same id, this secret, recent); else None."""
        msg_id, body = self.event(hook, variables)
        headers = signed_headers([self.secret], msg_id, int(self.clock()), body)
        headers["Content-Type"] = "application/json"
        try:
            response = requests.post(self.url, data=body, headers=headers,
                                     timeout=(min(1.0, timeout), timeout), allow_redirects=False)
            if response.status_code != 200 or response.headers.get("webhook-id") != msg_id:
                return None
            verify([self.secret], response.headers, response.content, self.clock(),
                   ANSWER_TOLERANCE)
            answer = response.json()
        except (requests.RequestException, ValueError, SignatureError):
            return None
        return answer if isinstance(answer, dict) else None

    def _validate(self, variables: dict[str, Any]) -> str:
        answer = self.ask("TicketOpenValidation", variables, 1.5)
        errors = answer.get("errors") if answer is not None else None
        if not isinstance(errors, list):
            return "" if self.fail_open else FAIL_CLOSED_MESSAGE
        return next((e for e in errors if isinstance(e, str) and e), "")

    def _page(self, hook: str, variables: dict[str, Any], session: dict[str, Any]) -> list[Any]:
        """The stub's page hooks: HTML for the staff and home pages, template variables for
        the submit-ticket page; nothing when the bridge gives no signed answer in time."""
        asked: dict[str, int | str]
        if hook == "AdminAreaClientSummaryPage":
            asked = {"userid": _whmcs_id(variables.get("userid"))}
        elif hook == "AdminAreaViewTicketPage":
            ticket = _whmcs_id(variables.get("ticketid"))
            asked = {"ticketid": ticket, "userid": self._ticket_client(ticket)}
        else:
            asked = {"userid": _client_id(variables, session),
                     "language": _page_language(variables, session)}
        if not asked.get("userid") and not asked.get("ticketid"):
            return []
        answer = self.ask(hook, asked, PAGE_TIMEOUT) or {}
        html = answer.get("html") if isinstance(answer.get("html"), str) else ""
        if hook != "ClientAreaPageSubmitTicket":
            return [html] if html else []
        allowed = answer.get("departments")
        if not isinstance(allowed, list):
            return []
        ids = [_whmcs_id(d) for d in allowed]
        returned: dict[str, Any] = {
            "departments": [d for d in variables.get("departments") or []
                            if isinstance(d, dict) and _whmcs_id(d.get("id")) in ids],
            "vipgate_notice": html, "vipgate_blocked": True}
        chosen = _whmcs_id(variables.get("deptid"))
        if chosen and chosen not in ids and ids:
            returned["deptid"] = ids[0]
        return [returned]

    def _ticket_client(self, ticket_id: int) -> int:
        """The ticket's client from WHMCS's tbltickets (the stub reads WHMCS's database)."""
        try:
            with sqlite3.connect(self.spool_db) as conn:
                row = conn.execute("SELECT userid FROM tbltickets WHERE id = ?",
                                   (ticket_id,)).fetchone()
        except sqlite3.Error:
            return 0
        return _whmcs_id(row[0]) if row else 0

    def _spool(self, msg_id: str, hook: str, body: bytes, error: str, *,
               rejected: bool = False) -> None:
        """Keep an event to send again, or (``rejected``) one the bridge refused."""
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        with sqlite3.connect(self.spool_db) as conn:
            conn.execute(SPOOL_SCHEMA)
            conn.execute("INSERT INTO mod_vipgate_spool (webhook_id, hook, body, created_at, "
                         "attempts, last_error, rejected_at) VALUES (?, ?, ?, ?, 1, ?, ?)",
                         (msg_id, hook, body.decode(), now, error[:1000],
                          now if rejected else None))

    def flush(self, max_rows: int = 500) -> None:
        """Re-send spooled events oldest first: same id and body, a fresh signature."""
        if not self.spooled():
            return
        with sqlite3.connect(self.spool_db) as conn:
            rows = conn.execute("SELECT id, webhook_id, body FROM mod_vipgate_spool WHERE "
                                "rejected_at IS NULL ORDER BY id LIMIT ?", (max_rows,)).fetchall()
            for row_id, msg_id, body in rows:
                outcome, error = self._post(msg_id, body.encode(), 2.0)
                if outcome == "retry":
                    conn.execute("UPDATE mod_vipgate_spool SET attempts = attempts + 1, "
                                 "last_error = ? WHERE id = ?", (error[:1000], row_id))
                    break
                if outcome == "permanent":  # kept, marked rejected, never sent again
                    conn.execute("UPDATE mod_vipgate_spool SET attempts = attempts + 1, "
                                 "last_error = ?, rejected_at = ? WHERE id = ?", (
                                     error[:1000], datetime.now(UTC).strftime(
                                         "%Y-%m-%d %H:%M:%S"), row_id))
                    continue
                conn.execute("DELETE FROM mod_vipgate_spool WHERE id = ?", (row_id,))


def _whmcs_id(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(0, value)
    return int(value) if isinstance(value, str) and value.isdigit() else 0


def _client_id(variables: dict[str, Any], session: dict[str, Any]) -> int:
    details = variables.get("clientsdetails")
    if isinstance(details, dict):
        for key in ("userid", "id"):
            if _whmcs_id(details.get(key)):
                return _whmcs_id(details.get(key))
    return _whmcs_id(session.get("uid"))


def _page_language(variables: dict[str, Any], session: dict[str, Any]) -> str:
    for value in (variables.get("language"), session.get("Language")):
        if isinstance(value, str) and value:
            return value
    return ""
