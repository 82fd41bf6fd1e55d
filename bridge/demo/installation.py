"""The installation behind ``vipgate demo`` and the way it tells what happens.

:func:`install` wires a whole installation on embedded defaults in a throw-away folder: the
sandbox WHMCS (SQLite, served over HTTP), the bridge (SQLite, served over HTTP, with its
engine), the PHP stub installed as the addon module (``install_addon``, then activated and
configured as in Setup > Addon Modules) and run by ``php`` (else its Python emulation) and a
worker that the story drains after each step. :class:`Narrator` prints what vipgate did (from
its audit log) and checks every claim the story makes.
"""

from __future__ import annotations

import html
import logging
import re
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from babel.dates import format_date
from flask import Flask
from werkzeug.serving import BaseWSGIServer

from bridge.engine.names import refresh_names
from bridge.i18n import N_, Texts
from bridge.model import AuditEntry, Reason, WhmcsNames
from bridge.runtime import open_store, runtime, webhook_secrets
from bridge.sandbox import pages
from bridge.sandbox.forwarder import Forwarder, PhpForwarder, PythonForwarder, php_available
from bridge.sandbox.serve import RunningSandbox, start_sandbox
from bridge.sandbox.whmcs import CronSummary, Sandbox, SandboxClock
from bridge.settings import Settings, default_settings
from bridge.store import Store
from bridge.web.app import create_app
from bridge.web.serving import bind_server
from bridge.whmcs import WhmcsClient
from bridge.whmcs.stub_install import install_addon
from bridge.worker import Worker

TIMEZONE = "America/Sao_Paulo"
API_ID = "vipgate-demo"
API_SECRET = "demo-api-secret"  # noqa: S105 (the throw-away sandbox's API credential)
ACTIVE_TICKETS = "All Active Tickets"
# The clients' language in WHMCS, as the demo's: what they read in the client area follows it.
WHMCS_LANGUAGES = {"pt_BR": "portuguese-br", "en": "english"}
# WHMCS's service statuses, as the narration names them.
SERVICE_STATUSES = {status: status for status in (
    N_("Active"), N_("Suspended"), N_("Pending"), N_("Terminated"), N_("Cancelled"))}
STANDINGS = (N_("current"), N_("overdue"), N_("suspended"))  # a client's, as the panels say


def plain(markup: str) -> list[str]:
    """HTML as its lines of text: tags stripped, entities decoded, blank lines dropped."""
    text = re.sub(r"<br\s*/?>|</(?:p|li|div|h\d|tr|option)>", "\n", markup)
    text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


def wall() -> datetime:
    """The service's clock (signatures, inbox): the real one, as the stub signs with it."""
    return datetime.now(UTC)


def brl(amount: Decimal | str | int | float, language: str) -> str:
    """``R$ 1.200,00`` / ``R$ 1,200.00``: the demo's WHMCS currency in ``language``."""
    return Texts(language).money(Decimal(str(amount)), "R$ ", "")


def day_name(day: date, language: str) -> str:
    """``segunda-feira, 02/11/2026`` / ``Monday, 2026-11-02``."""
    return f"{format_date(day, 'EEEE', locale=language)}, {Texts(language).day(day)}"


@dataclass
class Person:
    """One client of the story and what it has in WHMCS."""

    name: str
    id: int
    services: list[int] = field(default_factory=list)
    invoices: list[int] = field(default_factory=list)
    tickets: list[int] = field(default_factory=list)


Bill = tuple[str, str, str | None]  # amount, due date, paid at (None = unpaid)


@dataclass
class BridgeServer:
    """The bridge on loopback in a thread; stoppable and restartable on the same port."""

    app: Flask
    port: int = 0
    server: BaseWSGIServer | None = None
    thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        """Serve; ``OSError`` when the port cannot be bound."""
        self.server = bind_server("127.0.0.1", self.port, self.app)
        self.port = self.server.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                       name="vipgate-demo-bridge")
        self.thread.start()
        return self.url

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            if self.thread is not None:
                self.thread.join(timeout=5)
            self.server = self.thread = None


@dataclass
class Installation:
    """Everything the demo runs; :meth:`close` stops and releases it."""

    workdir: Path
    sandbox: Sandbox
    whmcs: RunningSandbox
    settings: Settings
    store: Store
    bridge: BridgeServer
    forwarder: Forwarder
    worker: Worker
    api: WhmcsClient
    groups: dict[str, int]
    departments: dict[str, int]
    currency: int

    def close(self) -> None:
        self.bridge.stop()
        self.whmcs.stop()
        self.api.close()
        self.store.dispose()
        self.sandbox.dispose()


def stub_problem(use_php: bool | None, language: str = "en") -> str:
    """Why the hooks cannot go through the real PHP stub when asked to ('' when they can)."""
    if use_php and not php_available():
        return Texts(language).gettext(
            "--stub php needs php with the curl and pdo_sqlite extensions (Debian: apt-get "
            "install php-cli php-curl php-sqlite3); --stub python runs the Python emulation")
    return ""


def make_workdir() -> Path:
    """A new throw-away folder for one demo run (``vipgate-demo-*`` in the temporary
    directory); the caller removes it."""
    return Path(tempfile.mkdtemp(prefix="vipgate-demo-"))


def install(start: datetime, workdir: Path, *, port: int = 0, use_php: bool | None = None,
            language: str = "pt_BR") -> Installation:
    """A whole installation in the throw-away folder ``workdir``; the sandbox clock fixed at
    ``start`` (WHMCS local time). ``use_php`` None: the real stub when ``php`` is installed.
    ``language`` is ``[bridge] language`` (the staff's panels, the notes)."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    holder: dict[str, Forwarder] = {}
    sandbox = Sandbox(f"sqlite:///{workdir}/whmcs.db", clock=SandboxClock(start, timezone=TIMEZONE),
                      seed=2026, fire=lambda hook, variables: holder["f"].fire(hook, variables)
                      if "f" in holder else [])
    sandbox.add_api_credential(API_ID, API_SECRET, description="vipgate")
    with sandbox.quiet():
        groups = {"VIP": sandbox.add_group("VIP", susptermexempt=True),
                  "Clientes": sandbox.add_group("Clientes"),
                  "Revendas": sandbox.add_group("Revendas")}
        departments = {"Suporte": sandbox.add_department("Suporte"),
                       "Financeiro": sandbox.add_department("Financeiro")}
        currency = sandbox.add_currency("BRL", "R$ ", "", default=True)
    served = start_sandbox(sandbox)
    settings = default_settings().replace(
        bridge={"database_url": f"sqlite:///{workdir}/vipgate.db", "timezone": TIMEZONE,
                "language": language},
        whmcs={"url": served.url, "identifier": API_ID, "secret": API_SECRET,
               "timeout_seconds": 10},
        policy={"vip_group_id": groups["VIP"], "default_group_id": groups["Clientes"],
                "grace_days": 3, "min_tenure_months": 18, "min_spend": "1000"},
        tickets={"billing_departments": str(departments["Financeiro"]),
                 "priority_vip": "keep"},
        admin={"secure_cookies": "off"})  # the demo serves plain HTTP on loopback
    store = open_store(settings)
    secret = webhook_secrets(settings, store)[0]  # generated once, kept in vipgate's database
    app = create_app(settings, store=store, clock=wall,
                     business_clock=lambda: sandbox.clock.aware)
    bridge = BridgeServer(app, port)
    bridge.start()
    (workdir / "whmcs" / "includes" / "hooks").mkdir(parents=True)
    spool_db = workdir / "whmcs.db"  # the stub spools into WHMCS's own database
    if php_available() if use_php is None else use_php:
        install_addon(workdir / "whmcs")
        php = PhpForwarder(workdir / "whmcs" / "includes" / "hooks", spool_db,
                           workdir / "module-log.jsonl")
        php.addon("activate")
        php.addon("configure", {"bridge_url": bridge.url, "secret": secret,
                                "fail_open": "on" if settings.tickets.fail_open else ""})
        holder["f"] = php
    else:
        holder["f"] = PythonForwarder(f"{bridge.url}/hooks/whmcs", secret, spool_db)
    with app.app_context():
        engine = runtime().engine
    assert engine is not None
    refresh_names(store, engine.whmcs(), wall())  # as a running worker does: names, not ids
    return Installation(workdir, sandbox, served, settings, store, bridge, holder["f"],
                        Worker(engine, clock=wall, name="demo-worker"),
                        WhmcsClient(settings.whmcs), groups, departments, currency)


def add_person(site: Installation, n: Narrator, first: str, last: str, group: str, since: str,
               role: str, bills: list[Bill], next_due: str | None = None) -> Person:
    """Seed a client (no hooks fire inside ``sandbox.quiet()``): one monthly service per
    unpaid bill, paid bills on the first service; prints one line about it."""
    s = site.sandbox
    t = n.t
    cid = s.add_client(first, last, groupid=site.groups[group], datecreated=f"{since}-03-10",
                       currency=site.currency, language=WHMCS_LANGUAGES[t.language])
    person = Person(f"{first} {last}", cid)
    n.names[cid] = first
    owed = []
    domain = f"{first}{last}".lower().replace("á", "a") + ".com.br"
    for amount, due, paid in bills:
        if paid is None or not person.services:
            person.services.append(s.add_service(
                cid, next_due or due, "Monthly", amount,
                domain=("loja." if person.services else "") + domain))
        issued = date.fromisoformat(due) - timedelta(days=14)
        person.invoices.append(s.add_invoice(
            cid, due, [("Hosting", person.services[-1], f"Hospedagem {domain}", amount)],
            date=issued, status="Paid" if paid else "Unpaid", datepaid=paid))
        owed.append(t.gettext("invoice #%(id)s %(amount)s paid %(day)s", id=person.invoices[-1],
                              amount=n.money(amount), day=t.day(paid)) if paid else
                    t.gettext("invoice #%(id)s %(amount)s due %(day)s", id=person.invoices[-1],
                              amount=n.money(amount), day=t.day(due)))
    n.say(f"  {person.name:<13} {group:<9} " + t.gettext(
        "since %(year)s, %(role)s: %(bills)s", year=since, role=t.gettext(role),
        bills="; ".join(owed)))
    return person


@dataclass
class Narrator:
    """Prints the story in one language (``t``): what vipgate did (its audit log, the
    engine's reasons in that language, groups by their WHMCS names), the cron, and checked
    claims."""

    site: Installation
    out: Callable[[str], None]
    t: Texts = field(default_factory=lambda: Texts("en"))
    names: dict[int, str] = field(default_factory=dict)  # client id → first name
    failed: list[str] = field(default_factory=list)
    passed: int = 0
    seen_audit: int = 0
    left_vip: set[int] = field(default_factory=set)

    # --- lookups ----------------------------------------------------------------------------

    def money(self, amount: Decimal | str | int | float) -> str:
        return brl(amount, self.t.language)

    def group_name(self, group_id: int | str | None) -> str:
        wanted = int(group_id or 0)
        return next((n for n, g in self.site.groups.items() if g == wanted),
                    self.t.gettext("group %(id)s", id=wanted))

    def group_of(self, client_id: int) -> str:
        row = self.site.sandbox.client(client_id)
        return self.group_name(row["groupid"] if row else 0)

    def priority(self, ticket_id: int) -> str:
        row = self.site.sandbox.ticket(ticket_id)
        return str(row["urgency"]) if row else "?"

    def priority_name(self, priority: str, t: Texts | None = None) -> str:
        """WHMCS's priority as the panels name it (``Baixa`` / ``Low``)."""
        return (t or self.t).pgettext("ticket priority", priority)

    def service_status(self, service_id: int) -> str:
        row = self.site.sandbox.service(service_id)
        return str(row["domainstatus"]) if row else "?"

    def status_name(self, status: str) -> str:
        return self.t.gettext(SERVICE_STATUSES[status]) if status in SERVICE_STATUSES \
            else status

    def standing(self, client_id: int) -> str:
        cached = self.site.store.get_standing(client_id)
        if cached is None:
            return self.t.gettext("unknown")
        word = self.t.gettext(cached.standing)
        if not cached.overdue_total:
            return word
        return f"{word} ({self.money(cached.overdue_total)})"

    def open_tickets(self, client_id: int) -> list[tuple[int, str, str]]:
        """(id, department, priority) of the client's active tickets, from WHMCS's API."""
        return sorted((t.id, self._dept(t.deptid), t.priority) for t in
                      self.site.api.iter_tickets(clientid=client_id, status=ACTIVE_TICKETS))

    def _dept(self, dept_id: int) -> str:
        return next((n for n, d in self.site.departments.items() if d == dept_id), str(dept_id))

    def note(self, ticket_id: int) -> str:
        """The newest staff note on the ticket, from GetTicket."""
        notes = self.site.api.get_ticket(ticket_id).notes
        return notes[-1].message.replace("\r\n", "\n") if notes else ""

    def whmcs_names(self) -> WhmcsNames:
        return self.site.store.whmcs_names()

    def reasons(self, reasons: Iterable[str], t: Texts | None = None) -> str:
        """The engine's reasons in the narration's language (or ``t``'s), groups by name."""
        names = self.whmcs_names()
        return "; ".join((t or self.t).reason(r, names) for r in reasons)

    def quoting(self, texts: Iterable[str]) -> Texts:
        """The language of a line that quotes ``texts``: the narration's when each is a message
        it can translate (a ``Reason``), else English, the language of a text stored as a
        sentence (one language per line)."""
        return self.t if all(isinstance(text, Reason) for text in texts) else Texts("en")

    # --- printing ---------------------------------------------------------------------------

    def say(self, text: str = "") -> None:
        self.out(text)

    def check(self, ok: bool, claim: str, found: object = None) -> bool:
        """Print a checked claim: ✓, or ✗ with what was found instead."""
        if ok:
            self.passed += 1
            self.out(f"    ✓ {claim}")
        else:
            self.failed.append(claim)
            self.out(f"    ✗ {claim}" + (" " + self.t.gettext("(found: %(found)s)", found=found)
                                        if found is not None else ""))
        return ok

    def group_is(self, client_id: int, group: str, claim: str) -> None:
        found = self.group_of(client_id)
        self.check(found == group, claim, found)

    def priorities_are(self, tickets: list[int], wanted: list[str], claim: str) -> None:
        found = [self.priority(t) for t in tickets]
        self.check(found == wanted, claim, found)

    def show_note(self, ticket: int, *must_contain: str) -> None:
        """Print the newest staff note on ``ticket`` and check what it must list."""
        _ = self.t.gettext
        text = self.note(ticket)
        self.out("    " + _("staff note on ticket #%(id)s (GetTicket → notes):", id=ticket))
        for line in text.splitlines():
            self.out(f"      | {line}")
        self.check(bool(text) and all(m in text for m in must_contain),
                   _("the note lists %(items)s", items=", ".join(must_contain)),
                   text or _("no note"))

    def left_vip_in(self, client_id: int, hook: str) -> bool:
        """Whether the client's last group change was made while handling ``hook``."""
        moves = self.site.store.audit_log(client_id=client_id, action="group")
        event = moves[-1].event_id if moves else None
        row = self.site.store.get_event(event) if event else None
        return row is not None and row.hook == hook

    def settle(self) -> None:
        """Let the worker drain the inbox, then tell what vipgate did (new audit rows)."""
        for outcome in self.site.worker.drain():
            if outcome.state not in ("done", "deferred"):
                self.check(False, self.t.gettext(
                    "inbox event %(id)s (%(hook)s) processed", id=outcome.row_id,
                    hook=outcome.hook), f"{outcome.state}: {outcome.error}")
        self.report(self.site.store.audit_log(since_id=self.seen_audit))

    def report(self, entries: Iterable[AuditEntry]) -> None:
        hook_shown = None
        for entry in entries:
            self.seen_audit = max(self.seen_audit, entry.id or 0)
            hook = self._hook(entry.event_id)
            if hook != hook_shown:
                self.out("  " + (self.t.gettext("vipgate, on %(hook)s:", hook=hook) if hook
                                 else self.t.gettext("vipgate, on a direct reconcile:")))
                hook_shown = hook
            self.out(f"    {self.describe(entry)}")

    def _hook(self, event_id: str | None) -> str:
        row = self.site.store.get_event(event_id) if event_id else None
        return row.hook if row else ""

    def describe(self, entry: AuditEntry) -> str:
        """One audit row as a sentence (the engine's reasons quoted, in the narration's
        language)."""
        t = self.quoting(entry.reasons)
        _ = t.gettext
        who = self.names.get(entry.client_id or 0) or _("client %(id)s", id=entry.client_id)
        why = self.reasons(entry.reasons, t)
        if entry.action == "membership" and entry.actor == "vipgate":
            return f"{who}: \"{why}\""
        if entry.action == "membership":
            return _("%(who)s: staff decision followed — \"%(why)s\"", who=who, why=why)
        if entry.action == "group":
            standing = next((r for r in entry.reasons if r.startswith("standing ")), None)
            shown = self.reasons([standing], t) if standing is not None else why
            if entry.after == str(self.site.groups["VIP"]):
                back = entry.client_id in self.left_vip
                return (_("%(who)s: back in VIP (from %(group)s) — %(why)s", who=who,
                          group=self.group_name(entry.before), why=shown) if back else
                        _("%(who)s: moved into VIP (from %(group)s) — %(why)s", who=who,
                          group=self.group_name(entry.before), why=shown))
            self.left_vip.add(entry.client_id or 0)
            return _("%(who)s: left VIP for %(group)s — \"%(why)s\"", who=who,
                     group=self.group_name(entry.after), why=shown)
        if entry.action == "ticket_priority":
            return _("%(who)s: ticket #%(id)s priority %(before)s → %(after)s (%(why)s)",
                     who=who, id=entry.ticket_id,
                     before=self.priority_name(entry.before or "", t),
                     after=self.priority_name(entry.after or "", t), why=why)
        if entry.action == "ticket_note":
            return _("%(who)s: ticket #%(id)s staff note added (%(why)s)", who=who,
                     id=entry.ticket_id, why=why)
        return f"{who}: {entry.action} {entry.before} → {entry.after} ({why})"

    def cron(self, summary: CronSummary, expect_suspended: dict[int, str]) -> None:
        """Tell (and check) what the day's cron did."""
        _ = self.t.gettext
        for invoice_id in summary.invoices_created:
            row = self.site.sandbox.invoice(invoice_id) or {}
            self.out("  " + _("cron: generated invoice #%(id)s for %(who)s (%(amount)s, due "
                              "%(day)s)", id=invoice_id,
                              who=self.names.get(int(row.get("userid", 0)), "?"),
                              amount=self.money(row.get("total", 0)),
                              day=self.t.day(row["duedate"]) if row.get("duedate") else "?"))
        if summary.suspended:
            shown = ", ".join(_("service #%(id)s (%(who)s)", id=s,
                                who=expect_suspended.get(s, "?")) for s in summary.suspended)
            days = self.site.sandbox.setting("AutoSuspensionDays")
            self.out("  " + _("cron: suspended %(services)s: due %(days)s days ago or more "
                              "(AutoSuspensionDays %(days)s)", services=shown, days=days))
        else:
            self.out("  " + _("cron: nothing to suspend"))
        wanted = ", ".join(f"#{s}" for s in sorted(expect_suspended)) or _("nothing")
        self.check(sorted(summary.suspended) == sorted(expect_suspended)
                   and not summary.spared_exempt_group,
                   _("the cron suspended %(services)s; no overdue client was left in the "
                     "exempt VIP group", services=wanted),
                   (summary.suspended, summary.spared_exempt_group))

    def show_whmcs_pages(self, person: Person, ticket_id: int, invoice: int,
                         amount: str) -> None:
        """Print (and check) what WHMCS's pages show of vipgate for a delinquent client: the
        badge staff see on a ticket, the first lines of the client summary panel, and the
        departments and notice the client sees on Open Ticket (the sandbox's pages)."""
        _ = self.t.gettext
        s, first = self.site.sandbox, person.name.split()[0]
        badge = " ".join(plain(pages.hook_output(pages.render_ticket_view(s, ticket_id))))
        self.out("    " + _("staff open ticket #%(id)s in WHMCS and read:", id=ticket_id))
        self.out(f"      | {badge}")
        summary = plain(pages.hook_output(pages.render_client_summary(s, person.id)))
        self.out("    " + _("…and on %(who)s's client summary:", who=first))
        for line in summary[:6]:
            self.out(f"      | {line}")
        self.check(amount in badge and all(w in " ".join(summary) for w in
                                           (f"#{invoice}", amount)),
                   _("staff see %(who)s's standing on the ticket (%(amount)s) and on the "
                     "client summary (invoice #%(invoice)s)", who=first, amount=amount,
                     invoice=invoice), (badge, summary[:6]))
        offered = pages.submit_ticket_vars(s, person.id)
        names = [str(d.get("name")) for d in offered["departments"]]
        notice = plain(str(offered.get("vipgate_notice") or ""))
        self.out("    " + _("%(who)s opens Open Ticket in the client area: offered "
                            "%(departments)s, and told:", who=first,
                            departments=", ".join(names) or _("nothing")))
        for line in notice:
            self.out(f"      | {line}")
        self.check(names == ["Financeiro"] and all(w in " ".join(notice) for w in
                                                    (f"#{invoice}", amount)),
                   _("%(who)s is offered only Financeiro and told why: invoice #%(invoice)s, "
                     "%(amount)s", who=first, invoice=invoice, amount=amount),
                   (names, notice))

    def open_ticket(self, client_id: int, dept: str, subject: str,
                    priority: str) -> tuple[int | None, str | None]:
        """The client submits the Open Ticket form; returns (ticket id, error shown)."""
        result = self.site.sandbox.open_ticket(client_id, self.site.departments[dept], subject,
                                               priority)
        return result.ticket_id, result.error
