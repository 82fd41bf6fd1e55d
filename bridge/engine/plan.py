"""The plan for one client: pure, from its WHMCS state and vipgate's memory to the changes.

``plan_client`` does not read or write anything. It

1. settles a write vipgate may have left half-done (``pending_*``: the write landed when WHMCS
   now shows the value vipgate was writing);
2. follows staff: a group vipgate did not set is a staff decision (pin or unpin and exclude),
   and a client seen in VIP the first time vipgate meets it is adopted as pinned;
3. decides standing and VIP membership (``bridge.policy``);
4. plans each open ticket: priority by the matrix (the original recorded before lowering,
   restored on payment, a staff change left alone) and a staff note when an overdue invoice
   the ticket's notes did not list yet appears.

The same plan is what ``vipgate resync --dry-run`` prints and what the engine applies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Literal

from bridge.i18n import why
from bridge.model import CachedStanding, ClientMemory, GroupRef, Priority, Reason, TicketMemory
from bridge.policy import standing as standing_mod
from bridge.policy.standing import STANDING_REASONS
from bridge.policy.state import ClientState, Membership
from bridge.policy.tickets import (
    apply_ticket_action,
    cached_standing,
    desired_priority,
    staff_note,
    ticket_action,
    ticket_standing,
)
from bridge.policy.vip import VipDecision, describe_hold, follow_staff_change, vip_decision
from bridge.settings import PolicySettings, TicketSettings

ChangeKind = Literal["group", "ticket_priority", "ticket_note"]
PENDING = "pending:"


@dataclass(frozen=True)
class OpenTicket:
    """An open ticket of the client, as WHMCS shows it now."""

    id: int
    deptid: int
    priority: str
    status: str = "Open"


@dataclass(frozen=True)
class Change:
    """One write to WHMCS. For ``group`` ``before``/``after`` are group ids (as text); for a
    note ``after`` is the episode key and ``text`` the note."""

    kind: ChangeKind
    client_id: int
    ticket_id: int | None
    before: str | None
    after: str | None
    reasons: tuple[str, ...]
    text: str | None = None

    @property
    def summary(self) -> Reason:
        """``group 1 -> 2``: the change in a few words, English in the logs, shown in the
        reader's language (groups by name, priorities as the panels name them)."""
        if self.kind == "group":
            return why.gettext("group %(before)s -> %(after)s",
                               before=GroupRef(int(self.before or 0)),
                               after=GroupRef(int(self.after or 0)))
        if self.kind == "ticket_priority":
            return why.gettext("ticket #%(ticket)s priority %(before)s -> %(after)s",
                               ticket=self.ticket_id or 0, before=Priority(self.before or ""),
                               after=Priority(self.after or ""))
        return why.gettext("ticket #%(ticket)s staff note", ticket=self.ticket_id or 0)


@dataclass(frozen=True)
class Observation:
    """Something vipgate learnt rather than did (a staff decision, an adoption): audited,
    not written to WHMCS."""

    action: str  # membership
    before: str
    after: str
    reasons: tuple[str, ...]
    actor: str = "staff"


@dataclass(frozen=True)
class ClientPlan:
    client_id: int
    standing: standing_mod.Standing
    decision: VipDecision
    memory: ClientMemory  # after settling and following staff; before applying ``changes``
    changes: tuple[Change, ...]
    observations: tuple[Observation, ...]
    tickets: Mapping[int, TicketMemory]  # records after ``changes`` are applied
    cache: CachedStanding
    reasons: tuple[str, ...] = field(default=())
    # The client as read (the engine's episode step compares its invoices with the open
    # episode's: bridge.policy.episodes.step)
    client: ClientState | None = None

    @property
    def group_change(self) -> Change | None:
        return next((c for c in self.changes if c.kind == "group"), None)

    @property
    def memory_after(self) -> ClientMemory:
        """The memory once the group change (if any) has landed."""
        group = self.decision.target_group_id
        home = self.memory.home_group_id
        if self.decision.record_home_group_id is not None:
            home = self.decision.record_home_group_id
        return replace(self.memory, home_group_id=home, last_group_id=group,
                       pending_group_id=None, known=True)


def _membership(memory: ClientMemory) -> Membership:
    return Membership(memory.pinned, memory.excluded, memory.home_group_id, memory.held_since,
                      memory.held_by)


def settle_group(memory: ClientMemory, group_id: int) -> ClientMemory:
    """Resolve a group write left pending: it landed iff WHMCS shows that group now."""
    if memory.pending_group_id is None:
        return memory
    last = memory.pending_group_id if group_id == memory.pending_group_id \
        else memory.last_group_id
    return replace(memory, last_group_id=last, pending_group_id=None)


def follow_staff(memory: ClientMemory, group_id: int, policy: PolicySettings, *,
                 owing: bool = False, now: datetime | None = None, staff: str | None = None
                 ) -> tuple[ClientMemory, tuple[Observation, ...]]:
    """Follow a group change vipgate did not make; adopt a VIP member seen the first time.

    Staff moving an ``owing`` client into VIP starts a staff hold at ``now``: kept in VIP until
    it is paid up (see :func:`end_hold`). ``staff``: the admin the event names as the author
    of the change, when WHMCS said."""
    vip = policy.vip_group_id
    if memory.last_group_id is None:
        if vip and group_id == vip and not memory.pinned:
            adopted = replace(memory, pinned=True, last_group_id=group_id, known=True)
            return adopted, (Observation(
                "membership", "unknown", "pinned",
                (why.gettext("in VIP group %(group)s when vipgate first saw the client: "
                             "adopted as pinned (the owner chose it)", group=GroupRef(vip)),),
                actor="vipgate"),)
        # (built directly: dataclasses.replace is slow, and a resync meets 1M clients here)
        return ClientMemory(memory.client_id, memory.pinned, memory.excluded,
                            memory.home_group_id, group_id, memory.pending_group_id,
                            known=True), ()
    if memory.last_group_id == group_id:
        return memory, ()
    change = follow_staff_change(memory.last_group_id, group_id, vip, False, policy)
    moved = replace(memory, last_group_id=group_id)
    if change is None:
        return moved, ()
    followed = change.apply(_membership(memory))
    before = _describe(memory)
    held, held_by = followed.held_since, followed.held_by
    reasons: tuple[str, ...] = (why.gettext("%(change)s (by %(staff)s)", change=change.reason,
                                            staff=staff) if staff else change.reason,)
    if followed.pinned and group_id == vip and owing and now is not None:
        held, held_by = now, staff
        reasons += (why.gettext("the client owes: a staff hold, kept in VIP until it is "
                                "paid up"),)
    moved = replace(moved, pinned=followed.pinned, excluded=followed.excluded,
                    home_group_id=followed.home_group_id, held_since=held, held_by=held_by)
    return moved, (Observation("membership", before, _describe(moved), reasons),)


def end_hold(memory: ClientMemory, paid_up: bool
             ) -> tuple[ClientMemory, tuple[Observation, ...]]:
    """A staff hold lasts until the client is paid up; then the normal rules apply."""
    if memory.held_since is None or not paid_up:
        return memory, ()
    ended = replace(memory, held_since=None, held_by=None)
    return ended, (Observation(
        "membership", _describe(memory), _describe(ended),
        (why.gettext("paid up: the %(hold)s ends; the normal rules apply",
                     hold=describe_hold(memory.held_since, memory.held_by)),), actor="vipgate"),)


def _ticket_standing(kind: str, in_vip: bool) -> Reason:
    """``standing overdue``, ``standing current (VIP)``: why a ticket's priority changes."""
    standing = why.gettext(STANDING_REASONS[kind])
    return why.gettext("%(standing)s (VIP)", standing=standing) if in_vip else standing


def _describe(memory: ClientMemory) -> str:
    flags = [name for name, on in (("pinned", memory.pinned), ("excluded", memory.excluded),
                                   ("held", memory.held_since is not None)) if on]
    return "+".join(flags) or "rules"


def settle_ticket(memory: TicketMemory, priority: str) -> TicketMemory:
    """Resolve a priority write left pending."""
    if memory.pending_priority is None:
        return memory
    if priority == memory.pending_priority:
        return replace(memory, managed_priority=priority, pending_priority=None)
    return replace(memory, pending_priority=None,
                   original_priority=memory.original_priority
                   if memory.managed_priority is not None else None)


def noted_ids(key: str | None) -> frozenset[int]:
    """The overdue invoices a ticket's notes already listed (``ids:1,2``; a ``pending:``
    key counts as not yet noted)."""
    if not key or not key.startswith("ids:"):
        return frozenset()
    return frozenset(int(i) for i in key[4:].split(",") if i.isdigit())


def note_key(invoice_ids: Iterable[int]) -> str:
    return "ids:" + ",".join(str(i) for i in sorted(invoice_ids))


def plan_client(client: ClientState, tickets: Sequence[OpenTicket], memory: ClientMemory,
                ticket_memories: Mapping[int, TicketMemory], policy: PolicySettings,
                ticket_settings: TicketSettings, language: str, today: date,
                now: datetime, *, staff: str | None = None) -> ClientPlan:
    """Everything vipgate wants for ``client`` at ``today`` (WHMCS time zone); ``staff``: the
    admin an event names as the author of a change it reports."""
    memory = settle_group(memory, client.group_id)
    current = standing_mod.standing(client, policy, today)
    memory, observations = follow_staff(memory, client.group_id, policy,
                                        owing=current.kind != "current", now=now, staff=staff)
    memory, hold_ended = end_hold(memory, current.kind == "current")
    observations += hold_ended
    decision = vip_decision(client, _membership(memory), current, policy, today)
    changes: list[Change] = []
    if decision.target_group_id != client.group_id:
        changes.append(Change("group", client.id, None, str(client.group_id),
                              str(decision.target_group_id), decision.reasons))
    kind = ticket_standing(current)
    desired = desired_priority(kind, decision.in_vip, ticket_settings)
    note = staff_note(current, ticket_settings, language) if tickets else None
    overdue_ids = frozenset(i.invoice.id for i in current.overdue)
    records: dict[int, TicketMemory] = {}
    for ticket in tickets:
        record = settle_ticket(ticket_memories.get(ticket.id, TicketMemory(ticket.id, client.id)),
                               ticket.priority)
        action = ticket_action(ticket.priority, record.original_priority,
                               record.managed_priority, desired)
        _, original, managed = apply_ticket_action(action, ticket.priority,
                                                   record.original_priority,
                                                   record.managed_priority)
        if action.new_priority is not None:
            changes.append(Change("ticket_priority", client.id, ticket.id, ticket.priority,
                                  action.new_priority,
                                  (_ticket_standing(kind, decision.in_vip),
                                   *action.reasons)))
        # One note per episode: again only when an invoice the notes did not list is overdue
        # (a suspension or a partial payment adds nothing new for staff).
        noted = noted_ids(record.note_key)
        note_after = record.note_key
        if note is None:
            note_after = None
        elif not overdue_ids <= noted:
            key = note_key(noted | overdue_ids)
            changes.append(Change("ticket_note", client.id, ticket.id, None, key,
                                  (why.gettext("%(standing)s: staff note with the overdue "
                                               "invoices",
                                               standing=why.gettext(STANDING_REASONS[kind])),),
                                  note))
            note_after = key
        records[ticket.id] = TicketMemory(ticket.id, client.id, original, managed, None,
                                          note_after)
    # Records of tickets not open now are kept as they are: a reopened ticket still gets
    # its original priority back.
    return ClientPlan(client.id, current, decision, memory, tuple(changes),
                      observations, records,
                      replace(cached_standing(client, current, now),
                              billing_standing=current.kind,
                              group_id=decision.target_group_id, in_vip=decision.in_vip,
                              eligible=decision.eligible,
                              standing_reasons=current.reasons,
                              vip_reasons=decision.reasons),
                      current.reasons, client)
