"""``Engine.reconcile_client``: read one client from WHMCS, plan (pure), apply only the diffs.

Every write is made crash-safe the same way: the intent is stored first (``pending_*``), then
WHMCS is called, then the result is stored with an audit row. A reconcile that finds a
pending intent asks WHMCS whether it landed (``bridge.engine.plan.settle_*``), so a worker
killed between the call and its bookkeeping neither repeats the change nor mistakes it for a
staff decision. Staff notes are not idempotent in WHMCS: a pending note is looked for among the
ticket's notes before it is added again.

The engine's clock (``now``) is the business clock: it decides "today" in WHMCS's time zone and
stamps the audit log. The inbox uses the service's own clock (``bridge.worker``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from bridge.engine.plan import PENDING, Change, ClientPlan, OpenTicket, plan_client
from bridge.model import AuditEntry, CachedStanding, ClientMemory, TicketMemory
from bridge.policy import episodes
from bridge.policy.gate import ungated_ticket
from bridge.policy.state import ClientState, Invoice, Promise
from bridge.settings import Settings
from bridge.store import Store
from bridge.whmcs import InvoiceDetails, WhmcsClient, WhmcsNotFound
from bridge.whmcs.client import ACTIVE_TICKETS as ACTIVE_TICKETS  # where others import it

log = logging.getLogger("vipgate.engine")

ACTOR = "vipgate"


def read_client(whmcs: WhmcsClient, client_id: int, *, promise: Promise | None = None,
                known: Mapping[int, InvoiceDetails] | None = None
                ) -> tuple[ClientState, tuple[OpenTicket, ...]] | None:
    """One client's state and active tickets (by id) through the API's per-client calls
    (``WhmcsClient.read_client``: reads its stats show are empty are skipped; ``known``: the
    GetInvoice answers just read for the event); None when WHMCS no longer has it."""
    try:
        client, found = whmcs.read_client(client_id, promise=promise, known=known)
    except WhmcsNotFound:
        return None
    tickets = sorted((OpenTicket(t.id, t.deptid, t.priority, t.status) for t in found),
                     key=lambda t: t.id)
    return client, tuple(tickets)


def as_utc(moment: datetime) -> datetime:
    """An aware UTC moment (vipgate's tables hold naive UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class ReconcileError(Exception):
    """Some clients of a full reconcile failed; each failure is listed."""

    def __init__(self, failures: list[tuple[int, str]]) -> None:
        self.failures = failures
        shown = "; ".join(f"client {cid}: {why}" for cid, why in failures[:5])
        more = f" (and {len(failures) - 5} more)" if len(failures) > 5 else ""
        super().__init__(f"{len(failures)} client(s) failed: {shown}{more}")


@dataclass
class ClientResult:
    client_id: int
    plan: ClientPlan | None  # None: the client no longer exists in WHMCS
    applied: list[Change] = field(default_factory=list)


class RateLimiter:
    """At most ``rate`` calls per second across threads (evenly spaced)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = 1.0 / rate
        self.clock, self.sleep = clock, sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            now = self.clock()
            at = max(now, self._next)
            self._next = at + self.interval
        if at > now:
            self.sleep(at - now)


class Engine:
    """Reconciles clients. Thread-safe: each thread gets its own WHMCS client (one
    ``requests.Session`` per thread)."""

    def __init__(self, settings: Settings | Callable[[], Settings], store: Store, *,
                 whmcs: Callable[[], WhmcsClient] | None = None,
                 now: Callable[[], datetime], name: str = "engine",
                 throttle: Callable[[], None] | None = None) -> None:
        # Fixed settings, or a callable giving the ones in force (bridge.overrides.LiveSettings:
        # what the admin page saves takes effect without a restart).
        self._settings = settings
        first = self.settings
        # Called before every write to WHMCS ([resync] rate_per_second); None = no limit.
        self.throttle = throttle
        self.store = store
        self.now = now
        self.name = name
        self.make_whmcs = whmcs or (lambda: WhmcsClient(first.whmcs))
        self._local = threading.local()
        self._zone = ZoneInfo(first.bridge.timezone)

    @property
    def settings(self) -> Settings:
        """The settings in force now."""
        return self._settings if isinstance(self._settings, Settings) else self._settings()

    def whmcs(self) -> WhmcsClient:
        client = getattr(self._local, "whmcs", None)
        if client is None:
            client = self._local.whmcs = self.make_whmcs()
        return client

    def today(self, moment: datetime | None = None) -> date:
        """The calendar day in WHMCS's time zone."""
        return (moment or self.now()).astimezone(self._zone).date()

    # --- subjects ---------------------------------------------------------------------------

    def clients_for(self, clients: Iterable[int], invoices: Iterable[int],
                    tickets: Iterable[int], *,
                    owners: dict[tuple[str, int], int] | None = None,
                    read: dict[int, InvoiceDetails] | None = None) -> list[int]:
        """Client ids behind an event's subjects (invoices and tickets looked up in WHMCS;
        ones that no longer exist, and tickets of guests, have none). ``owners``: the owners
        already looked up, ("invoice" | "ticket", id) → client id (0: a guest's ticket), read
        and filled (a worker's round: AddInvoicePayment and InvoicePaid name one invoice).
        ``read``: filled with the GetInvoice answers of the look-up, for the reconcile that
        follows (``reconcile_client(known=...)``)."""
        found = set(clients)
        known = {} if owners is None else owners
        for kind, ids in (("invoice", invoices), ("ticket", tickets)):
            for subject_id in ids:
                if (kind, subject_id) not in known:
                    try:
                        if kind == "invoice":
                            invoice = self.whmcs().get_invoice(subject_id)
                            userid = invoice.userid
                            if read is not None:
                                read[subject_id] = invoice
                        else:
                            userid = self.whmcs().get_ticket(subject_id).userid
                    except WhmcsNotFound:
                        log.info("%s %s no longer exists", kind, subject_id)
                        continue
                    known[kind, subject_id] = userid
                found.add(known[kind, subject_id])
        return sorted(c for c in found if c > 0)

    # --- one client -------------------------------------------------------------------------

    def plan(self, client_id: int, *, staff: str | None = None,
             known: Mapping[int, InvoiceDetails] | None = None) -> ClientPlan | None:
        """Read the client and plan; None when WHMCS no longer has it. ``staff``: the admin
        an event names as the author of a change (a staff hold records him). ``known``: see
        :meth:`clients_for`."""
        return self._plan(client_id, staff=staff, known=known)[0]

    def _plan(self, client_id: int, *, staff: str | None = None,
              known: Mapping[int, InvoiceDetails] | None = None
              ) -> tuple[ClientPlan | None, ClientMemory, dict[int, TicketMemory]]:
        """:meth:`plan`, and the client's memory and ticket records as they were stored."""
        stored = self.store.get_memory(client_id)
        promise = self.store.get_promise(client_id)
        found = read_client(self.whmcs(), client_id,
                            promise=Promise(*promise) if promise else None, known=known)
        if found is None:
            return None, stored, {}
        client, tickets = found
        now = self.now()
        records = self.store.ticket_memories(client_id)
        return plan_client(client, tickets, stored, records, self.settings.policy,
                           self.settings.tickets, self.settings.bridge.language,
                           self.today(now), now, staff=staff), stored, records

    def reconcile_client(self, client_id: int, *, event_id: str | None = None,
                         opened: Iterable[tuple[int, int]] = (),
                         opened_at: datetime | None = None,
                         staff: str | None = None,
                         known: Mapping[int, InvoiceDetails] | None = None) -> ClientResult:
        """Make WHMCS match policy for one client. The caller holds the client's lease.

        ``opened``: tickets the client just opened (TicketOpen), as (ticket id, department
        opened in), at ``opened_at`` (when WHMCS does not say); each one that got round the
        ticket gate is handled as the gate would have (``bridge.policy.gate.ungated_ticket``)
        before the plan is applied, so the standing cache still shows what the gate saw.
        ``known``: GetInvoice answers read since the event was stored (:meth:`clients_for`)."""
        gate_saw = self.store.get_standing(client_id) if opened else None
        plan, stored, records = self._plan(client_id, staff=staff, known=known)
        if plan is None:
            log.info("client %s no longer exists in WHMCS", client_id)
            self.end_episode_of_gone(client_id)
            return ClientResult(client_id, None)
        for ticket_id, department in sorted(opened):
            self._ungated(plan, ticket_id, department, gate_saw,
                          opened_at or self.now(), event_id)
        return ClientResult(client_id, plan, self.apply(plan, event_id=event_id,
                                                        stored=stored, records=records))

    def _ungated(self, plan: ClientPlan, ticket_id: int, opened_in: int,
                 gate_saw: CachedStanding | None, opened_at: datetime,
                 event_id: str | None) -> None:
        """Move and/or answer a new ticket that got round the gate ([tickets]
        ungated_tickets). Idempotent: a ticket in billing is not moved again and one with a
        staff reply is not answered again, so a repeated event changes nothing."""
        settings = self.settings
        if settings.tickets.ungated_tickets == "keep" or gate_saw is None:
            return
        try:
            ticket = self.whmcs().get_ticket(ticket_id)
        except WhmcsNotFound:
            log.info("ticket %s no longer exists", ticket_id)
            return
        if ticket.userid != plan.client_id:
            return
        # When it was opened: WHMCS's own record (its local time, on the clock the cache's
        # business clock follows), else when the event says it happened.
        if ticket.date is not None:
            opened_at = ticket.date.replace(tzinfo=self._zone)
        action = ungated_ticket(
            replace(gate_saw, updated_at=as_utc(gate_saw.updated_at)), plan.cache,
            as_utc(opened_at), opened_in or ticket.deptid, ticket.deptid,
            ticket.staff_replied, settings.tickets, settings.bridge.language,
            settings.whmcs.url)
        if not action.changes:
            log.info("ticket %s of client %s left where it is: %s", ticket_id,
                     plan.client_id, "; ".join(action.reasons))
            return

        def audit(kind: str, before: str | None, after: str | None) -> None:
            now = self.now()
            done = episodes.change_action(kind, before, after,
                                          settings.policy.vip_group_id, ticket_id, now, ACTOR)
            self.store.record(plan.client_id, [AuditEntry(now, ACTOR, kind, plan.client_id,
                                                          ticket_id, before, after,
                                                          action.reasons, event_id)],
                              episodes.EpisodeStep(actions=(done,) if done else ()), now)

        if action.move_to is not None:
            self._throttle()
            self.whmcs().move_ticket(ticket_id, action.move_to)
            audit("ticket_department", str(ticket.deptid), str(action.move_to))
        if action.reply is not None:
            self._throttle()
            self.whmcs().add_ticket_reply(ticket_id, action.reply, adminusername=ACTOR)
            audit("ticket_reply", None, action.reply)
        log.info("ticket %s of client %s got round the gate: %s", ticket_id, plan.client_id,
                 "; ".join(action.reasons))

    def apply(self, plan: ClientPlan, *, event_id: str | None = None,
              applied: list[Change] | None = None,
              stored: ClientMemory | None = None,
              episode_invoices: Iterable[Invoice] = (),
              records: Mapping[int, TicketMemory] | None = None) -> list[Change]:
        """Apply ``plan``'s changes to WHMCS and record them; returns what was applied. Each
        change is appended to ``applied`` as it lands, so a caller still knows what landed
        when a later change fails. ``stored``: the client's memory as read for the plan; when
        the plan leaves it as it was, it is not written again (one commit less per event;
        nothing reads the row's ``updated_at``). ``records``: the client's ticket records as
        read for the plan (under the client's lease; else they are read here); a ticket's
        record the plan leaves as it was is not written again either.

        The client's delinquency episode moves first (``bridge.policy.episodes.step``: opened,
        paid into, ended), in the transaction of the observations' audit rows; each change
        that is an episode action (left VIP, ticket lowered) is added to it in the
        transaction of its audit row. (Episodes are not audited themselves: the audit log
        holds what was done in WHMCS and by staff.) ``episode_invoices``: invoices of the
        open episode the plan's read left out."""
        store, cid = self.store, plan.client_id
        applied = [] if applied is None else applied
        vip = self.settings.policy.vip_group_id

        def audit(action: str, change: Change | None = None, *, before: str | None = None,
                  after: str | None = None, reasons: tuple[str, ...] = (),
                  actor: str = ACTOR) -> None:
            if change is not None:
                before, after, reasons = change.before, change.after, change.reasons
            now = self.now()
            ticket_id = change.ticket_id if change else None
            done = episodes.change_action(action, before, after, vip, ticket_id, now, actor)
            store.record(cid, [AuditEntry(now, actor, action, cid, ticket_id, before, after,
                                          reasons, event_id)],
                         episodes.EpisodeStep(actions=(done,) if done else ()), now)

        def landed(change: Change) -> None:
            """Record a change WHMCS took: the audit row, and one line in the log."""
            applied.append(change)
            audit(change.kind, change)
            log.info("client %s: %s (%s)%s", cid, change.summary,
                     "; ".join(change.reasons) or "no reason given",
                     f" [event {event_id}]" if event_id else "")

        now = self.now()
        seen = [AuditEntry(now, o.actor, o.action, cid, None, o.before, o.after, o.reasons,
                           event_id) for o in plan.observations]
        step = self.episode_step(plan, now, episode_invoices)
        if seen or step.changed:
            store.record(cid, seen, step, now)
        group = plan.group_change
        if group is not None:
            target = int(group.after or 0)
            store.save_memory(replace(plan.memory, pending_group_id=target), self.now())
            self._throttle()
            self.whmcs().update_client_group(cid, target)
            landed(group)
        if stored is None or not stored.known or plan.memory_after != stored:
            store.save_memory(plan.memory_after, self.now())
        previous = store.ticket_memories(cid) if records is None else records
        for ticket_id, final in plan.tickets.items():
            record = previous.get(ticket_id, TicketMemory(ticket_id, cid))
            changes = [c for c in plan.changes if c.ticket_id == ticket_id]
            for change in changes:
                if change.kind == "ticket_priority":
                    record = self._apply_priority(change, record, final)
                else:
                    record = self._apply_note(change, record)
                landed(change)
            if changes or final != previous.get(ticket_id, TicketMemory(ticket_id, cid)):
                store.save_ticket_memory(final, self.now())
        store.put_standing(plan.cache)
        return applied

    def episode_step(self, plan: ClientPlan, now: datetime,
                     extra: Iterable[Invoice] = ()) -> episodes.EpisodeStep:
        """How the client's delinquency episode moves with ``plan`` (pure, over the open
        episode the store holds)."""
        if plan.client is None:
            return episodes.NO_STEP
        return episodes.step(self.store.open_episode(plan.client_id), plan.client,
                             plan.standing, self.today(now), now, extra_invoices=extra)

    def end_episode_of_gone(self, client_id: int) -> None:
        """The client is no longer in WHMCS: its open episode ends (``client_gone``)."""
        now = self.now()
        step = episodes.step(self.store.open_episode(client_id), None, None,
                             self.today(now), now)
        if step.changed:
            self.store.record(client_id, [], step, now)

    def _throttle(self) -> None:
        if self.throttle is not None:
            self.throttle()

    def _apply_priority(self, change: Change, record: TicketMemory,
                        final: TicketMemory) -> TicketMemory:
        assert change.ticket_id is not None and change.after is not None
        intent = replace(record, original_priority=final.original_priority,
                         pending_priority=change.after)
        self.store.save_ticket_memory(intent, self.now())
        self._throttle()
        self.whmcs().update_ticket_priority(change.ticket_id, change.after)
        done = replace(intent, managed_priority=change.after, pending_priority=None)
        self.store.save_ticket_memory(done, self.now())
        return done

    def _apply_note(self, change: Change, record: TicketMemory) -> TicketMemory:
        assert change.ticket_id is not None and change.text is not None
        key = change.after or ""
        interrupted = (record.note_key or "").startswith(PENDING)
        if interrupted and self._note_present(change.ticket_id, change.text):
            log.info("ticket %s: the staff note from an interrupted run is there",
                     change.ticket_id)
        else:
            self.store.save_ticket_memory(replace(record, note_key=PENDING + key), self.now())
            self._throttle()
            self.whmcs().add_ticket_note(change.ticket_id, change.text)
        done = replace(record, note_key=key)
        self.store.save_ticket_memory(done, self.now())
        return done

    def _note_present(self, ticket_id: int, text: str) -> bool:
        """Whether a note of this episode is on the ticket (same first line, same invoices)."""
        head, *lines = text.splitlines()
        invoices = [line.split(":")[0] for line in lines if line.startswith("- ")]
        for note in self.whmcs().get_ticket(ticket_id).notes:
            message = note.message.replace("\r\n", "\n")
            if message.startswith(head) and all(i in message for i in invoices):
                return True
        return False
