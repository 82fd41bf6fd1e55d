"""The PHP stub's delivery, in Python, for its emulation (:mod:`bridge.sandbox.forwarder`):
what ``vipgate.php`` does after a request and in the cron — claimed batches of the outbox to
``POST /hooks/whmcs/batch`` (or one by one to the single endpoint), the answer per event, the
one-minute breaker in mod_vipgate_state, the heartbeat's failing time, the activity-log lines
and the module log — with the stub's limits, timeouts and default settings, read from
``vipgate.php``. Each method names the stub function it follows.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
from bridge.signing import signed_headers
from whmcs_php_stub import stub_array, stub_constant, stub_version

log = logging.getLogger("bridge.sandbox.forwarder")

PAGE_HOOKS = ("AdminAreaClientSummaryPage", "AdminAreaViewTicketPage",
              "ClientAreaPageSubmitTicket", "ClientAreaHomepage")
SYNC_HOOKS = ("TicketOpenValidation", *PAGE_HOOKS)  # answered at once, never spooled
RETRYABLE_4XX = (401, 408, 429)
STUB_DEFAULTS = stub_array("vipgate_defaults")  # what a _vipgate_config.php leaves out
# the stub's limits and timeouts (url, secret and fail_open are the forwarder's own fields)
NUMERIC_SETTINGS = tuple(k for k, v in STUB_DEFAULTS.items() if type(v) is int)
BATCH_LIMIT = int(stub_constant("VIPGATE_BATCH_LIMIT"))
STUB_VERSION = stub_version()


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
    """What one delivery did: whether it tried the bridge, whether a batch was not taken."""

    tried: bool = False
    failed: bool = False


@dataclass
class StubDelivery:
    """The stub's settings (``_vipgate_config.php``: the url, the secret, fail_open and the
    numeric ``settings``, each left out taking the stub's default), its outbox, and how it
    sends what waits there."""

    url: str  # the bridge's /hooks/whmcs
    secret: str
    spool_db: Path
    fail_open: bool = True
    clock: Callable[[], float] = time.time
    settings: dict[str, int] = field(default_factory=dict)  # as in _vipgate_config.php
    module_log: Path | None = None  # JSON lines as the sandbox's logModuleCall writes them
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

    # --- the end of a request, the cron's flush ----------------------------------------------

    def deliver_after_response(self) -> Delivery:
        """The end of a request that wrote to the outbox (deliver_max_rows, deliver_max_ms),
        unless the breaker is open."""
        try:
            return self.deliver(self.setting("deliver_max_rows"),
                                max(10, self.setting("deliver_max_ms")) / 1000, cron=False)
        except sqlite3.Error as exc:
            self._log("deliver", f"cannot deliver the outbox: {exc}")
            return Delivery()

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

    def _with_owners(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """vipgate_with_owners: each invoice event's body names the invoice's client
        (``vars.userid``) from WHMCS's tblinvoices, read in one SELECT when the rows are sent
        (WHMCS's invoice hooks pass only the invoice id). A body that has one, is not an
        invoice event's, or whose invoice is not found goes as it is; all of them when the
        table cannot be read."""
        invoice_hooks = {hook for hook, keys in whitelist().items() if "invoiceid" in keys}
        events: dict[int, dict[str, Any]] = {}
        for n, row in enumerate(rows):
            if row["hook"] not in invoice_hooks:
                continue
            try:
                event = json.loads(str(row["body"]))
            except ValueError:
                continue
            found = event.get("vars") if isinstance(event, dict) else None
            if isinstance(found, dict) and "userid" not in found \
                    and whmcs_id(found.get("invoiceid")) > 0:
                events[n] = event
        if not events:
            return rows
        ids = sorted({whmcs_id(e["vars"]["invoiceid"]) for e in events.values()})
        try:
            with self.outbox.connect() as conn:
                owners = {int(i): whmcs_id(str(u)) for i, u in conn.execute(
                    "SELECT id, userid FROM tblinvoices WHERE id IN ("  # noqa: S608 (placeholders)
                    + ",".join("?" * len(ids)) + ")", ids)}
        except sqlite3.Error:
            return rows  # sent without: the bridge asks WHMCS
        rows = list(rows)
        for n, event in events.items():
            owner = owners.get(whmcs_id(event["vars"]["invoiceid"]), 0)
            if owner > 0:
                event["vars"]["userid"] = owner
                rows[n] = {**rows[n], "body": json.dumps(event, separators=(",", ":"))}
        return rows

    def _send_rows(self, token: str, rows: list[dict[str, Any]], deadline: float) -> str:
        """One batch of claimed rows: '' when the bridge settled every row, else why not (the
        rows given back, an attempt counted)."""
        events: list[str] = []
        sent: list[dict[str, Any]] = []
        for row in self._with_owners(rows):
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
                why = json.dumps(one["error"], separators=(",", ":")) \
                    if one.get("error") is not None else "{}"
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

    # --- the breaker, the heartbeat, the logs --------------------------------------------

    def _breaker_open(self, error: str) -> str:
        """For BREAKER_SECONDS no request tries the bridge; the words for the log line."""
        try:
            now = int(self.clock())
            was = self.outbox.breaker_until()
            self.outbox.state_set(BREAKER, now + BREAKER_SECONDS)
            if was is not None and was > now:
                return ""
            self.outbox.activity("breaker", f"the bridge at {shown(self.url)} did not take "
                                            f"events ({short(error)}): for the next minute no "
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
                self.outbox.activity("breaker_closed", f"the bridge at {shown(self.url)} takes "
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
                shown(self.url), (now - since) // 60, waiting, short(error)))
        if waiting >= SPOOL_WARN_ROWS:
            self.outbox.activity("spool", f"{waiting} events are waiting in mod_vipgate_spool "
                                          f"for the bridge at {shown(self.url)}; last error: "
                                          f"{short(error)}")

    def _rejected_activity(self, hook: str, msg_id: str, error: str) -> None:
        self.outbox.activity("rejected", f"the bridge rejected a {hook} event ({msg_id}): "
                                         f"{short(error)}. It is kept in mod_vipgate_spool, "
                                         "marked rejected, for 30 days and reported to the "
                                         "bridge; see vipgate check.")

    def _log(self, action: str, message: str) -> None:
        """The stub's module log (logModuleCall): Python's logging, and ``module_log``."""
        log.info("stub %s: %s", action, message)
        if self.module_log is not None:
            line = json.dumps({"module": "vipgate", "action": action, "request": shown(self.url),
                               "response": message, "processed": "", "replace": []})
            with self.module_log.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")


def whmcs_id(value: Any) -> int:
    """vipgate_id: a WHMCS id (int or digit string) as int; 0 for anything else."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(0, value)
    return int(value) if isinstance(value, str) and value.isdigit() else 0


def unreachable_text(url: str, minutes: int, waiting: int, error: str) -> str:
    """The activity-log line (vipgate_report_backlog's) about a bridge not taking events."""
    return (f"the bridge at {url} has not taken events for {minutes} minutes ({waiting} waiting "
            "in mod_vipgate_spool, delivered after WHMCS's requests (none for a minute after a "
            f"failure) and flushed by each cron run); last error: {error}")


def short(text: str) -> str:
    """An error text short enough for the activity log."""
    text = re.sub(r"\s+", " ", text)
    return text[:300] + "..." if len(text) > 300 else text


def shown(url: str) -> str:
    """A URL as it may be shown: no credentials."""
    return re.sub(r"//[^/@]*@", "//", url)
