"""How the sandbox WHMCS fires hooks: through the real PHP stub when ``php`` is installed,
else through a Python emulation of the stub that follows the same path.

Both keep their outbox in the sandbox's "WHMCS database" (a SQLite file), in the tables the
stub uses, ``mod_vipgate_spool`` and ``mod_vipgate_state``. One call of ``fire`` stands for
one WHMCS request: the hook runs (an asynchronous one only writes its event into the outbox),
then, at the end of the request, the outbox is delivered in signed batches.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from markupsafe import escape

from bridge.payloads import whitelist
from bridge.sandbox.outbox import Outbox
from bridge.sandbox.stub_delivery import (
    PAGE_HOOKS,
    Delivery,
    Sent,
    StubDelivery,
    short,
    shown,
    whmcs_id,
)
from bridge.signing import SignatureError, verify

__all__ = ["PAGE_HOOKS", "PHP_DIR", "Forwarder", "PhpForwarder", "PythonForwarder",
           "php_available"]

PHP_DIR = Path(__file__).with_name("php")
MODULE_HOOKS = ("AfterModuleSuspend", "AfterModuleUnsuspend")
ANSWER_TOLERANCE = 300  # seconds: how old a signed synchronous answer may be
TRUST_TIMEOUT_MS = 15000  # the stub's VIPGATE_TRUST_TIMEOUT_MS: the banner's unlock button
FAIL_CLOSED_MESSAGE = ("Support tickets are temporarily unavailable. Please try again in a few "
                       "minutes.")
FAIL_CLOSED_PORTUGUESE = ("A abertura de chamados está temporariamente indisponível. Tente "
                          "novamente em alguns minutos.")
# The stub's own refusal per WHMCS language name (vipgate_unavailable_message); English for
# any other.
FAIL_CLOSED_MESSAGES = {"english": FAIL_CLOSED_MESSAGE, "portuguese-br": FAIL_CLOSED_PORTUGUESE,
                        "portuguese-pt": FAIL_CLOSED_PORTUGUESE}


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
        return Outbox(self.spool_db).waiting_ids()


@dataclass
class PythonForwarder(StubDelivery):
    """What ``whmcs_php_stub/vipgate.php`` does, in Python, for where php is not installed:
    the same whitelist, body and signature; an asynchronous hook only writes its event into
    the outbox and returns; the end of the request (the end of :meth:`fire`) delivers the
    outbox in claimed, signed batches with the stub's limits and answers per event; the
    one-minute breaker in mod_vipgate_state; AfterCronJob's flush and heartbeat; PreCronJob's
    check that the bridge answers before its long wait (the delivery's part is
    :class:`StubDelivery`'s). The module log goes to Python's logging (and to ``module_log``),
    the System Activity Log to the sandbox's tblactivitylog."""

    kind: str = "python"

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
        posted = variables.pop("__post__", None) or {}  # the request's form ($_POST)
        admin = variables.pop("__admin__", None)  # WHMCS's CurrentUser admin, if any
        if hook == "ClientEdit" and isinstance(admin, str) and admin:
            variables["__adminuser__"] = admin[:255]
        if hook not in whitelist():
            return [], False  # the stub registers only the hooks it forwards
        if hook in PAGE_HOOKS:
            return self._page(hook, variables, session, posted), False
        if hook == "TicketOpenValidation":
            error = self._validate(variables, session)
            return ([error] if error else []), False
        if hook == "AfterCronJob":
            self._after_cron_job()
            return [], False
        return [], self._forward(hook, variables)

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
            # 255 bytes, a cut character replaced as json_encode's INVALID_UTF8_SUBSTITUTE does
            picked["priority"] = str(picked["priority"]).encode()[:255].decode(errors="replace")
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
                                         f"take it ({short(result.error)}) and it could not be "
                                         f"kept in mod_vipgate_spool ({short(str(exc))})")
            return False
        self._report_backlog(result.error)
        return False

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


    # --- synchronous questions ------------------------------------------------------------

    def ask(self, hook: str, variables: dict[str, Any], instead: str,
            timeout_ms: int | None = None) -> dict[str, Any] | None:
        """vipgate_ask: the answer, only when the bridge signed it for this request (same id,
        this secret, recent); None (logged, ``instead`` said) without one, at once while the
        breaker is open."""
        msg_id, body = self.event(hook, variables)
        until = self.outbox.breaker_until()
        if self.outbox.breaker_is_open(until):
            problem = "not asked: the breaker is open after a delivery the bridge did not take"
        else:
            result = self._post(msg_id, body, self._timeout_ms(hook) if timeout_ms is None
                                else timeout_ms)
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
                                         f"at {shown(self.url)} ({short(problem)}): {instead} "
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

    def _validate(self, variables: dict[str, Any], session: dict[str, Any]) -> str:
        """vipgate_ticket_open_validation: the question with the client's language added,
        the first error of the answer; without one, allowed or the stub's own refusal in that
        language."""
        language = self._client_language(whmcs_id(variables.get("clientId")), session)
        if language:
            variables = {**variables, "language": language}
        instead = f"ticket {'allowed' if self.fail_open else 'refused'}"
        answer = self.ask("TicketOpenValidation", variables, instead)
        errors = answer.get("errors") if answer is not None else None
        if not isinstance(errors, list):
            return "" if self.fail_open else FAIL_CLOSED_MESSAGES.get(
                language.strip().lower(), FAIL_CLOSED_MESSAGE)
        return next((e for e in errors if isinstance(e, str) and e), "")

    def _client_language(self, client_id: int, session: dict[str, Any]) -> str:
        """vipgate_client_language: the session's Language, else tblclients.language, else
        tblconfiguration Language (WHMCS's database); '' when none is known."""
        chosen = session.get("Language")
        if isinstance(chosen, str) and chosen.strip():
            return chosen.strip()[:64]
        questions = [("SELECT language FROM tblclients WHERE id = ?", (client_id,)),
                     ("SELECT value FROM tblconfiguration WHERE setting = ?", ("Language",))]
        for sql, params in questions if client_id > 0 else questions[1:]:
            try:
                with self.outbox.connect() as conn:
                    row = conn.execute(sql, params).fetchone()
            except sqlite3.Error:
                continue
            if row and isinstance(row[0], str) and row[0].strip():
                return row[0].strip()[:64]
        return ""

    def _page(self, hook: str, variables: dict[str, Any], session: dict[str, Any],
              posted: dict[str, Any] | None = None) -> list[Any]:
        """The stub's page hooks: HTML for the staff and home pages, template variables for
        the submit-ticket page; nothing when the bridge gives no signed answer in time. The
        home page posted with the banner's trust unlock form asks the bridge to unlock
        (vipgate_client_homepage)."""
        asked: dict[str, int | str]
        timeout_ms = None
        if hook == "AdminAreaClientSummaryPage":
            asked = {"userid": whmcs_id(variables.get("userid"))}
        elif hook == "AdminAreaViewTicketPage":
            ticket = whmcs_id(variables.get("ticketid"))
            asked = {"ticketid": ticket, "userid": self._ticket_client(ticket)}
        else:
            asked = {"userid": _client_id(variables, session),
                     "language": _page_language(variables, session)}
            posted = posted or {}
            if hook == "ClientAreaHomepage" and posted.get("vipgate_action") == "trust_unlock":
                token = posted.get("vipgate_token")
                asked.update(vipgate_action="trust_unlock",
                             vipgate_token=token[:100] if isinstance(token, str) else "")
                timeout_ms = TRUST_TIMEOUT_MS
        if not asked.get("userid") and not asked.get("ticketid"):
            return []
        instead = "the page is left as it is" if hook == "ClientAreaPageSubmitTicket" \
            else "nothing shown"
        answer = self.ask(hook, asked, instead, timeout_ms) or {}
        html: str = answer["html"] if isinstance(answer.get("html"), str) else ""
        if hook == "ClientAreaHomepage":
            html = _csrf_field(html, variables)
        if hook != "ClientAreaPageSubmitTicket":
            return [html] if html else []
        allowed = answer.get("departments")
        if not isinstance(allowed, list):
            return []
        ids = [whmcs_id(d) for d in allowed]
        returned: dict[str, Any] = {
            "departments": [d for d in variables.get("departments") or []
                            if isinstance(d, dict) and whmcs_id(d.get("id")) in ids],
            "vipgate_notice": html, "vipgate_blocked": True}
        chosen = whmcs_id(variables.get("deptid"))
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
        return whmcs_id(row[0]) if row else 0


CSRF_MARKER = '<input type="hidden" name="token" value="" data-vipgate-csrf>'


def _csrf_field(html: str, variables: dict[str, Any]) -> str:
    """vipgate_csrf_field: WHMCS's CSRF token (the page's ``token``) into the banner's form,
    or the marked field removed when the page has none."""
    if CSRF_MARKER not in html:
        return html
    token = variables.get("token")
    field = (f'<input type="hidden" name="token" value="{escape(token)}">'
             if isinstance(token, str) and token else "")
    return html.replace(CSRF_MARKER, field)


def _client_id(variables: dict[str, Any], session: dict[str, Any]) -> int:
    details = variables.get("clientsdetails")
    if isinstance(details, dict):
        for key in ("userid", "id"):
            if whmcs_id(details.get(key)):
                return whmcs_id(details.get(key))
    return whmcs_id(session.get("uid"))


def _page_language(variables: dict[str, Any], session: dict[str, Any]) -> str:
    for value in (variables.get("language"), session.get("Language")):
        if isinstance(value, str) and value:
            return value
    return ""
