"""How the sandbox WHMCS fires hooks: through the real PHP stub when ``php`` is installed,
else through a Python emulation of the stub that follows the same path.

Both keep their outbox in the sandbox's "WHMCS database" (a SQLite file), in the tables the
stub uses, ``mod_vipgate_spool`` and ``mod_vipgate_state``. One call of ``fire`` stands for
one WHMCS request: the hook runs (an asynchronous one only writes its event into the outbox),
then, at the end of the request, the outbox is delivered in signed batches.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import requests

from bridge.payloads import whitelist
from bridge.sandbox.outbox import (
    BREAKER,
    BREAKER_SECONDS,
    HEARTBEAT_FAILING,
    SPOOL_WARN_ROWS,
    UNREACHABLE_AFTER,
    Outbox,
)
from bridge.signing import SignatureError, signed_headers, verify
from whmcs_php_stub import stub_array, stub_constant, stub_version

log = logging.getLogger(__name__)

PHP_DIR = Path(__file__).with_name("php")
MODULE_HOOKS = ("AfterModuleSuspend", "AfterModuleUnsuspend")
PAGE_HOOKS = ("AdminAreaClientSummaryPage", "AdminAreaViewTicketPage",
              "ClientAreaPageSubmitTicket", "ClientAreaHomepage")
SYNC_HOOKS = ("TicketOpenValidation", *PAGE_HOOKS)  # answered at once, never spooled
ANSWER_TOLERANCE = 300  # seconds: how old a signed synchronous answer may be
RETRYABLE_4XX = (401, 408, 429)
FAIL_CLOSED_MESSAGE = ("Support tickets are temporarily unavailable. Please try again in a few "
                       "minutes.")
STUB_DEFAULTS = stub_array("vipgate_defaults")  # what a _vipgate_config.php leaves out
# the stub's limits and timeouts (url, secret and fail_open are the forwarder's own fields)
NUMERIC_SETTINGS = tuple(k for k, v in STUB_DEFAULTS.items() if type(v) is int)
BATCH_LIMIT = int(stub_constant("VIPGATE_BATCH_LIMIT"))
STUB_VERSION = stub_version()


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


@dataclass
class PhpForwarder:
    """The real stub, run by the real ``php`` with a minimal WHMCS around it."""

    hooks_dir: Path  # WHMCS's includes/hooks, where install-stub wrote vipgate.php
    spool_db: Path
    log_path: Path
    kind: str = "php"

    def fire(self, hook: str, variables: dict[str, Any]) -> list[Any]:
        env = {**os.environ, "VIPGATE_SANDBOX_PDO_DSN": f"sqlite:{self.spool_db}",
               "VIPGATE_SANDBOX_LOG": str(self.log_path)}
        result = subprocess.run(
            ["php", str(PHP_DIR / "fire.php"), str(self.hooks_dir), hook, json.dumps(variables)],
            capture_output=True, text=True, env=env, timeout=180, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"php fire.php {hook} failed: {result.stderr.strip()[:500]}")
        return list(json.loads(result.stdout)["returns"])

    def spooled(self) -> list[str]:
        return Outbox(self.spool_db).waiting_ids()


@dataclass
class Sent:
    """What became of one request to the bridge (the stub's vipgate_post answer)."""

    outcome: str  # ok | retry | permanent
    status: int = 0
    error: str = ""
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Delivery:
    tried: bool = False
    failed: bool = False


@dataclass
class PythonForwarder:
    """What ``whmcs_php_stub/vipgate.php`` does, in Python, for where php is not installed:
    the same whitelist, body and signature; an asynchronous hook only writes its event into
    the outbox and returns; the end of the request (the end of :meth:`fire`) delivers the
    outbox in claimed, signed batches with the stub's limits and answers per event; the
    one-minute breaker in mod_vipgate_state; AfterCronJob's flush and heartbeat; PreCronJob's
    check that the bridge answers before its long wait. The module log goes to Python's logging
    (and to ``module_log``), the System Activity Log to the sandbox's tblactivitylog."""

    url: str  # the bridge's /hooks/whmcs
    secret: str
    spool_db: Path
    fail_open: bool = True
    clock: Callable[[], float] = time.time
    settings: dict[str, int] = field(default_factory=dict)  # as in _vipgate_config.php
    module_log: Path | None = None  # JSON lines as the sandbox's logModuleCall writes them
    kind: str = "python"
    outbox: Outbox = field(init=False)

    def __post_init__(self) -> None:
        unknown = set(self.settings) - set(NUMERIC_SETTINGS)
        if unknown:
            raise ValueError(f"unknown stub settings: {', '.join(sorted(unknown))} (known: "
                             f"{', '.join(NUMERIC_SETTINGS)})")
        self.outbox = Outbox(self.spool_db, self.clock)

    def setting(self, key: str) -> int:
        """One of NUMERIC_SETTINGS: as given, else the stub's default."""
        return int(self.settings.get(key, STUB_DEFAULTS[key]))

    # --- one WHMCS request -----------------------------------------------------------------

    def fire(self, hook: str, variables: dict[str, Any]) -> list[Any]:
        """Run WHMCS's hook as one request: the hook, then the delivery after the response."""
        returns, wrote = self.run_hook(hook, variables)
        if wrote:
            self.deliver_after_response()
        return returns

    def run_hook(self, hook: str, variables: dict[str, Any]) -> tuple[list[Any], bool]:
        """The hook alone: what it returns, and whether it wrote to the outbox (then the
        request delivers after its response: :meth:`deliver_after_response`)."""
        variables = dict(variables)
        session = variables.pop("__session__", None) or {}
        admin = variables.pop("__admin__", None)  # WHMCS's CurrentUser admin, if any
        if hook == "ClientEdit" and isinstance(admin, str) and admin:
            variables["__adminuser__"] = admin[:255]
        if hook not in whitelist():
            return [], False  # the stub registers only the hooks it forwards
        if hook in PAGE_HOOKS:
            return self._page(hook, variables, session), False
        if hook == "TicketOpenValidation":
            error = self._validate(variables)
            return ([error] if error else []), False
        if hook == "AfterCronJob":
            self._after_cron_job()
            return [], False
        return [], self._forward(hook, variables)

    def deliver_after_response(self) -> Delivery:
        """The end of a request that wrote to the outbox (deliver_max_rows, deliver_max_ms),
        unless the breaker is open."""
        try:
            return self.deliver(self.setting("deliver_max_rows"),
                                max(10, self.setting("deliver_max_ms")) / 1000, cron=False)
        except sqlite3.Error as exc:
            self._log("deliver", f"cannot deliver the outbox: {exc}")
            return Delivery()

    def spooled(self) -> list[str]:
        return self.outbox.waiting_ids()

    # --- events --------------------------------------------------------------------------

    @staticmethod
    def pick(hook: str, variables: dict[str, Any]) -> dict[str, Any]:
        keys = whitelist().get(hook, [])
        source = variables
        if hook in MODULE_HOOKS and isinstance(variables.get("params"), dict):
            source = variables["params"]
        picked = {k: source[k] for k in keys
                  if k in source and isinstance(source[k], (str, int, float, bool))}
        if hook == "TicketOpenValidation" and "priority" in picked:
            picked["priority"] = str(picked["priority"]).encode()[:255].decode(errors="ignore")
        if hook == "AfterCronJob" and isinstance(source.get("rejected_recent"), list):
            picked["rejected_recent"] = list(source["rejected_recent"])
        if hook == "ClientEdit" and isinstance(variables.get("__adminuser__"), str):
            picked["adminuser"] = variables["__adminuser__"]
        old = source.get("olddata") if hook == "ClientEdit" else None
        if isinstance(old, dict):
            kept = {k: old[k] for k in ("groupid", "status")
                    if isinstance(old.get(k), (str, int, float, bool))}
            if kept:
                picked["olddata"] = kept
        return picked

    def event(self, hook: str, variables: dict[str, Any]) -> tuple[str, bytes]:
        body = json.dumps({"hook": hook, "vars": self.pick(hook, variables),
                           "occurred_at": datetime.fromtimestamp(self.clock(), UTC).isoformat(
                               timespec="seconds")}, separators=(",", ":")).encode()
        return f"msg_{uuid.uuid4().hex}", body

    def _forward(self, hook: str, variables: dict[str, Any]) -> bool:
        """vipgate_forward: an asynchronous hook into the outbox (True); PreCronJob and the
        heartbeat, or an event the outbox cannot take, sent at once."""
        msg_id, body = self.event(hook, variables)
        at_once = hook in ("PreCronJob", "AfterCronJob")
        kept = ""
        if not at_once:
            try:
                self.outbox.add(msg_id, hook, body.decode())
                return True
            except sqlite3.Error as exc:
                kept = str(exc)
        until = self.outbox.breaker_until()
        timeout_ms = self._timeout_ms(hook)
        result: Sent | None = None
        if hook == "PreCronJob" and self.outbox.breaker_is_open(until):
            timeout_ms = self._timeout_ms("batch")  # tried once, not waited on
        elif hook == "PreCronJob":
            silent = self._silent()  # the long wait only for a bridge that answers
            if silent:
                result = Sent("retry", error="the bridge did not answer before the long wait: "
                                             + silent)
        if result is None:
            result = self._post(msg_id, body, timeout_ms)
        if hook == "AfterCronJob":
            self._note_heartbeat(result.outcome != "retry")
        if result.outcome == "ok":
            self._breaker_close(until)
            if kept:
                self._log(hook, f"the outbox could not be written ({kept}): sent at once")
            return False
        if result.outcome == "permanent":
            self._rejected_activity(hook, msg_id, result.error)
            if hook == "AfterCronJob":  # a heartbeat every cron run: not kept
                self._log(hook, f"bridge rejected the heartbeat: {result.error}")
                return False
            try:
                if kept:
                    raise sqlite3.OperationalError(kept)
                self.outbox.keep(msg_id, hook, body.decode(), result.error, rejected=True)
                self._log(hook, f"bridge rejected the event, kept as rejected, not retried: "
                                f"{result.error}")
            except sqlite3.Error as exc:
                self._log(hook, f"bridge rejected the event ({result.error}) and it could not "
                                f"be kept: {exc}")
            return False
        opened = self._breaker_open(result.error)
        if hook == "AfterCronJob":  # with nothing to reconcile: not worth a spool row
            self._log(hook, f"bridge unreachable, heartbeat not spooled: {result.error}{opened}")
            self._report_backlog(result.error)
            return False
        try:
            if kept:
                raise sqlite3.OperationalError(kept)
            self.outbox.keep(msg_id, hook, body.decode(), result.error)
            self._log(hook, f"bridge unreachable, event spooled: {result.error}{opened}")
        except sqlite3.Error as exc:
            self._log(hook, f"bridge unreachable ({result.error}) and the event could not be "
                            f"spooled, it is lost: {exc}")
            self.outbox.activity("lost", f"a {hook} event ({msg_id}) is lost: the bridge did not "
                                         f"take it ({_short(result.error)}) and it could not be "
                                         f"kept in mod_vipgate_spool ({_short(str(exc))})")
            return False
        self._report_backlog(result.error)
        return False

    # --- delivery ------------------------------------------------------------------------

    def deliver(self, max_rows: int, max_seconds: float, *, cron: bool) -> Delivery:
        """vipgate_deliver: outbox rows oldest first in batches, until none waits, ``max_rows``
        or ``max_seconds``; unless ``cron``, nothing while the breaker is open. A batch the
        bridge does not take stops it, gives the rows back and opens the breaker."""
        until = self.outbox.breaker_until()
        if not cron and self.outbox.breaker_is_open(until):
            return Delivery()
        self.outbox.ensure()
        deadline = time.monotonic() + max_seconds
        left = max(0, max_rows)
        size = min(BATCH_LIMIT, max(1, self.setting("batch_max_events")))
        tried = False
        while left > 0 and time.monotonic() < deadline:
            token, rows = self.outbox.claim(min(size, left))
            if not rows:
                break
            left -= len(rows)
            tried = True
            error = self._send_rows(token, rows, deadline)
            if error:
                opened = self._breaker_open(error)
                self._log("flush" if cron else "deliver",
                          f"bridge not taking events, {len(rows)} kept waiting, delivery "
                          f"stopped: {error}{opened}")
                self._report_backlog(error)
                return Delivery(tried=True, failed=True)
            self._breaker_close(until)
            until = None
        return Delivery(tried=tried)

    def flush(self) -> Delivery:
        """The cron's flush: every waiting row (flush_max_rows, flush_max_seconds), tried even
        while the breaker is open; rejected events older than 30 days are forgotten."""
        if not self.outbox.exists():
            return Delivery()
        self.outbox.ensure()
        self.outbox.forget_old_rejected()
        return self.deliver(self.setting("flush_max_rows"),
                            max(1, self.setting("flush_max_seconds")), cron=True)

    def _after_cron_job(self) -> None:
        """Flush, then the heartbeat with the report of rejected events; no heartbeat when the
        flush found the bridge not taking events."""
        report: dict[str, Any] = {}
        flushed = Delivery()
        try:
            flushed = self.flush()
            report = self.outbox.rejected_report()
        except sqlite3.Error as exc:
            self._log("flush", f"cannot flush the spool: {exc}")
        if flushed.failed:
            self._note_heartbeat(False)
            self._log("AfterCronJob", "the flush found the bridge not taking events: heartbeat "
                                      "not sent")
            return
        self._forward("AfterCronJob", report)

    def _send_rows(self, token: str, rows: list[dict[str, Any]], deadline: float) -> str:
        """One batch of claimed rows: '' when the bridge settled every row, else why not (the
        rows given back, an attempt counted)."""
        events: list[str] = []
        sent: list[dict[str, Any]] = []
        for row in rows:
            body = str(row["body"]).lstrip()
            try:
                decoded = json.loads(body)
            except ValueError:
                decoded = None
            if not isinstance(decoded, dict):
                self._reject(row, "the kept body is not a JSON object")
                continue
            rest = body[1:].lstrip()  # the stored bytes, the event's own id in front
            events.append('{"id":' + json.dumps(str(row["webhook_id"]))
                          + ("" if rest.startswith("}") else ",") + rest)
            sent.append(row)
        if not sent:
            return ""
        batch = ('{"events":[' + ",".join(events) + "]}").encode()
        result = self._post(f"batch_{secrets.token_hex(16)}", batch, self._timeout_ms("batch"),
                            self.url.rstrip("/") + "/batch")
        if result.outcome == "retry":
            self.outbox.release(token, result.error)
            return result.error
        if result.outcome == "permanent":  # no batch endpoint, or the batch refused whole
            return self._send_singly(token, sent, deadline)
        try:
            answer = json.loads(result.body)
        except ValueError:
            answer = None
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list) or len(results) != len(sent):
            error = (f"HTTP {result.status} with an answer that is not one result per event: "
                     f"{result.body[:300].decode(errors='replace')}")
            self.outbox.release(token, error)
            return error
        done: list[int] = []
        unsettled: list[int] = []
        for row, one in zip(sent, results, strict=True):
            one = one if isinstance(one, dict) else {}
            status = one.get("status") if isinstance(one.get("status"), str) else ""
            if one.get("id") is not None and one.get("id") != str(row["webhook_id"]):
                status = ""  # an answer about another event
            if status in ("queued", "duplicate"):
                done.append(int(row["id"]))
            elif status == "rejected":
                why = json.dumps(one["error"], separators=(",", ":")) if "error" in one else "{}"
                self._reject(row, f"rejected in a batch: {why}")
            else:
                unsettled.append(int(row["id"]))
        self.outbox.delete(done)
        if unsettled:
            error = f"HTTP {result.status} without a usable result for {len(unsettled)} event(s)"
            self.outbox.release(token, error, unsettled)
            return error
        return ""

    def _send_singly(self, token: str, rows: list[dict[str, Any]], deadline: float) -> str:
        """The rows one by one to the single endpoint (same ids and bodies, signed afresh)."""
        for row in rows:
            if time.monotonic() >= deadline:
                self.outbox.release(token)  # not tried: no attempt counted
                return ""
            result = self._post(str(row["webhook_id"]), str(row["body"]).encode(),
                                self._timeout_ms("batch"))
            if result.outcome == "ok":
                self.outbox.delete([int(row["id"])])
            elif result.outcome == "permanent":
                self._reject(row, result.error)
            else:
                self.outbox.release(token, result.error, [int(row["id"])])
                self.outbox.release(token)
                return result.error
        return ""

    def _reject(self, row: dict[str, Any], error: str) -> None:
        self.outbox.reject(int(row["id"]), error)
        self._log("deliver", f"bridge rejected the event {row['webhook_id']}, kept as rejected, "
                             f"not retried: {error}")
        self._rejected_activity(str(row["hook"]), str(row["webhook_id"]), error)

    # --- HTTP ----------------------------------------------------------------------------

    def _timeout_ms(self, hook: str) -> int:
        """vipgate_timeout_ms: the total time allowed for one request about ``hook``."""
        if hook == "PreCronJob":
            return max(1000, self.setting("precron_timeout_ms"))
        if hook == "TicketOpenValidation":
            return min(1500, max(100, self.setting("validation_timeout_ms")))
        if hook in SYNC_HOOKS:
            return min(1000, max(100, self.setting("panel_timeout_ms")))
        return min(2000, max(100, self.setting("timeout_ms")))

    def _limits(self, timeout_ms: int) -> tuple[float, float]:
        connect = min(1000, max(100, self.setting("connect_timeout_ms")), timeout_ms)
        return connect / 1000, timeout_ms / 1000

    def _post(self, msg_id: str, body: bytes, timeout_ms: int, url: str | None = None) -> Sent:
        """vipgate_post: one signed POST; ok (2xx), permanent (a 4xx but 401, 408, 429: the
        same again gets the same answer) or retry."""
        headers = signed_headers([self.secret], msg_id, int(self.clock()), body)
        headers.update({"Content-Type": "application/json", "vipgate-stub-version": STUB_VERSION,
                        "User-Agent": f"vipgate-whmcs-stub/{STUB_VERSION}"})
        try:
            response = requests.post(url or self.url, data=body, headers=headers,
                                     timeout=self._limits(timeout_ms), allow_redirects=False)
        except requests.RequestException as exc:
            return Sent("retry", error=f"{type(exc).__name__}: {exc}")
        status = response.status_code
        if 200 <= status < 300:
            return Sent("ok", status, "", response.content, response.headers)
        outcome = "permanent" if 400 <= status < 500 and status not in RETRYABLE_4XX else "retry"
        return Sent(outcome, status, f"HTTP {status}: {response.text[:500]}", response.content,
                    response.headers)

    def _silent(self) -> str:
        """vipgate_bridge_silent: '' when the bridge answers a GET at all in the ordinary
        timeout (any status), else why not."""
        try:
            requests.get(self.url, headers={"User-Agent": f"vipgate-whmcs-stub/{STUB_VERSION}"},
                         timeout=self._limits(self._timeout_ms("probe")), allow_redirects=False)
        except requests.RequestException as exc:
            return f"{type(exc).__name__}: {exc}"
        return ""

    # --- the breaker, the heartbeat, the activity log -----------------------------------

    def _breaker_open(self, error: str) -> str:
        """For BREAKER_SECONDS no request tries the bridge; the words for the log line."""
        try:
            now = int(self.clock())
            was = self.outbox.breaker_until()
            self.outbox.state_set(BREAKER, now + BREAKER_SECONDS)
            if was is not None and was > now:
                return ""
            self.outbox.activity("breaker", f"the bridge at {_shown(self.url)} did not take "
                                            f"events ({_short(error)}): for the next minute no "
                                            "request waits for it; events wait in "
                                            "mod_vipgate_spool, the ticket gate and the panels "
                                            "answer at once as if it had not answered")
            return f"; breaker opened for {BREAKER_SECONDS} s"
        except sqlite3.Error as exc:
            return f"; the breaker could not be opened: {exc}"

    def _breaker_close(self, until: int | None) -> None:
        """A delivery succeeded: close the breaker if it was noted (``until``: what was read)."""
        if until is None:
            return
        try:
            if self.outbox.state_delete(BREAKER) > 0:
                self._log("breaker", "the bridge takes events again: breaker closed")
                self.outbox.activity("breaker_closed", f"the bridge at {_shown(self.url)} takes "
                                                       "events again (breaker closed)")
        except sqlite3.Error as exc:
            self._log("breaker", f"cannot close the breaker: {exc}")

    def _note_heartbeat(self, delivered: bool) -> None:
        """Since when the heartbeat fails (the bridge may be down with nothing spooled)."""
        try:
            if delivered:
                self.outbox.state_delete(HEARTBEAT_FAILING)
            elif self.outbox.state_get(HEARTBEAT_FAILING) is None:
                self.outbox.state_set(HEARTBEAT_FAILING, int(self.clock()))
        except sqlite3.Error as exc:
            self._log("AfterCronJob", f"cannot note the heartbeat: {exc}")

    def _report_backlog(self, error: str) -> None:
        """vipgate_report_backlog: a bridge that has not taken events for five minutes, and a
        spool of a hundred waiting events or more, reach the activity log."""
        now = int(self.clock())
        since = self.outbox.state_get(HEARTBEAT_FAILING)
        waiting, oldest = self.outbox.backlog()
        if oldest is not None:
            since = oldest if since is None else min(since, oldest)
        if since is not None and now - since >= UNREACHABLE_AFTER:
            self.outbox.activity("unreachable", unreachable_text(
                _shown(self.url), (now - since) // 60, waiting, _short(error)))
        if waiting >= SPOOL_WARN_ROWS:
            self.outbox.activity("spool", f"{waiting} events are waiting in mod_vipgate_spool "
                                          f"for the bridge at {_shown(self.url)}; last error: "
                                          f"{_short(error)}")

    def _rejected_activity(self, hook: str, msg_id: str, error: str) -> None:
        self.outbox.activity("rejected", f"the bridge rejected a {hook} event ({msg_id}): "
                                         f"{_short(error)}. It is kept in mod_vipgate_spool, "
                                         "marked rejected, for 30 days and reported to the "
                                         "bridge; see vipgate check.")

    def _log(self, action: str, message: str) -> None:
        """The stub's module log (logModuleCall): Python's logging, and ``module_log``."""
        log.info("stub %s: %s", action, message)
        if self.module_log is not None:
            line = json.dumps({"module": "vipgate", "action": action, "request": _shown(self.url),
                               "response": message, "processed": "", "replace": []})
            with self.module_log.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")

    # --- synchronous questions ------------------------------------------------------------

    def ask(self, hook: str, variables: dict[str, Any], instead: str) -> dict[str, Any] | None:
        """vipgate_ask: the answer, only when the bridge signed it for this request (same id,
        this secret, recent); None (logged, ``instead`` said) without one, at once while the
        breaker is open."""
        msg_id, body = self.event(hook, variables)
        until = self.outbox.breaker_until()
        if self.outbox.breaker_is_open(until):
            problem = "not asked: the breaker is open after a delivery the bridge did not take"
        else:
            result = self._post(msg_id, body, self._timeout_ms(hook))
            problem = self._answer_problem(msg_id, result) if result.outcome == "ok" \
                else result.error
            if result.outcome == "retry":
                problem += self._breaker_open(result.error)
            elif result.outcome == "ok":
                self._breaker_close(until)
            if not problem:
                try:
                    answer = json.loads(result.body)
                except ValueError:
                    answer = None
                if isinstance(answer, dict):
                    return answer
                problem = f"HTTP {result.status} with a body that is not a JSON object"
        self._log(hook, f"no answer from the bridge ({problem}), {instead}")
        if hook == "TicketOpenValidation":
            self.outbox.activity("gate", f"the ticket gate got no usable answer from the bridge "
                                         f"at {_shown(self.url)} ({_short(problem)}): {instead} "
                                         f"without the check (fail_open "
                                         f"{'on' if self.fail_open else 'off'} in "
                                         "_vipgate_config.php)")
        return None

    def _answer_problem(self, msg_id: str, result: Sent) -> str:
        if result.headers.get("webhook-id") != msg_id:
            return "the answer is signed for another request"
        try:
            verify([self.secret], result.headers, result.body, self.clock(), ANSWER_TOLERANCE)
        except SignatureError as exc:
            return f"the answer's signature: {exc}"
        return ""

    def _validate(self, variables: dict[str, Any]) -> str:
        instead = f"ticket {'allowed' if self.fail_open else 'refused'}"
        answer = self.ask("TicketOpenValidation", variables, instead)
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
        instead = "the page is left as it is" if hook == "ClientAreaPageSubmitTicket" \
            else "nothing shown"
        answer = self.ask(hook, asked, instead) or {}
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
            with self.outbox.connect() as conn:
                row = conn.execute("SELECT userid FROM tbltickets WHERE id = ?",
                                   (ticket_id,)).fetchone()
        except sqlite3.Error:
            return 0
        return _whmcs_id(row[0]) if row else 0


def unreachable_text(url: str, minutes: int, waiting: int, error: str) -> str:
    """The activity-log line (vipgate_report_backlog's) about a bridge not taking events."""
    return (f"the bridge at {url} has not taken events for {minutes} minutes ({waiting} waiting "
            "in mod_vipgate_spool, delivered after WHMCS's requests (none for a minute after a "
            f"failure) and flushed by each cron run); last error: {error}")


def _short(text: str) -> str:
    """An error text short enough for the activity log."""
    text = re.sub(r"\s+", " ", text)
    return text[:300] + "..." if len(text) > 300 else text


def _shown(url: str) -> str:
    """A URL as it may be shown: no credentials."""
    return re.sub(r"//[^/@]*@", "//", url)


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
