"""Ticket handling by standing: priority, the staff note, and the standing cache for the gate.

Priority follows a matrix (VIP current / current / overdue / suspended → Low, Medium, High or
``keep``). vipgate records a ticket's original priority before changing it and puts it back
when the client is current again. A ticket whose priority is no longer the one vipgate set was
changed by staff, and is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bridge.i18n import Texts, why
from bridge.model import CachedStanding, OverdueInvoice, Priority
from bridge.policy.standing import Standing
from bridge.policy.state import ClientState
from bridge.settings import TicketSettings

KEEP = "keep"


@dataclass(frozen=True)
class TicketAction:
    """What to do with one open ticket. All ``None``/False = nothing to do.

    After applying: the ticket's priority is ``new_priority`` (when set); vipgate's record of
    the ticket is dropped when ``clear_record``, else its original priority becomes
    ``record_original`` (when set) and the priority vipgate manages becomes ``new_priority``.
    """

    new_priority: str | None
    record_original: str | None
    reasons: tuple[str, ...]
    clear_record: bool = False

    @property
    def changes(self) -> bool:
        return (self.new_priority is not None or self.record_original is not None
                or self.clear_record)


def ticket_standing(standing: Standing) -> str:
    """The standing tickets are handled by: an active promise to pay counts as current."""
    return "current" if standing.kind == "current" or standing.promise_active else standing.kind


def desired_priority(kind: str, in_vip: bool, settings: TicketSettings) -> str | None:
    """The matrix; None means ``keep`` (leave the priority as chosen). VIP counts only while
    current."""
    matrix = {"overdue": settings.priority_overdue, "suspended": settings.priority_suspended,
              "current": settings.priority_vip if in_vip else settings.priority_current}
    if kind not in matrix:
        raise ValueError(f"unknown standing {kind!r}")
    return None if matrix[kind] == KEEP else matrix[kind]


def ticket_action(ticket_priority: str, original_priority: str | None,
                  managed_priority: str | None, desired: str | None) -> TicketAction:
    """Move the ticket towards ``desired`` (None = restore the recorded original, if any).

    ``original_priority``/``managed_priority``: vipgate's record of the ticket (the priority it
    had before vipgate changed it, and the one vipgate last set); both None when vipgate never
    touched it. Calling again after applying the result yields no change.
    """
    now = Priority(ticket_priority)
    if managed_priority is not None and ticket_priority != managed_priority:
        staff = {"now": now, "set": Priority(managed_priority)}
        if desired is None:  # the episode is over; forget the ticket
            return TicketAction(None, None, (why.gettext(
                "staff changed the priority to %(now)s after vipgate set %(set)s: left alone, "
                "record dropped", **staff),), clear_record=True)
        return TicketAction(None, None, (why.gettext(
            "staff changed the priority to %(now)s after vipgate set %(set)s: left alone",
            **staff),))
    if desired is None:
        if original_priority is None and managed_priority is None:
            return TicketAction(None, None, (why.gettext("priority %(now)s kept as chosen",
                                                         now=now),))
        if original_priority is None or original_priority == ticket_priority:
            return TicketAction(None, None, (why.gettext("priority %(now)s is the original",
                                                         now=now),), clear_record=True)
        return TicketAction(original_priority, None, (why.gettext(
            "priority %(now)s restored to the original %(original)s", now=now,
            original=Priority(original_priority)),), clear_record=True)
    if ticket_priority == desired:
        return TicketAction(None, None, (why.gettext("priority already %(now)s", now=now),))
    record = ticket_priority if original_priority is None else None
    return TicketAction(desired, record, (why.gettext("priority %(now)s set to %(desired)s",
                                                      now=now, desired=Priority(desired)),))


def apply_ticket_action(action: TicketAction, ticket_priority: str,
                        original_priority: str | None, managed_priority: str | None
                        ) -> tuple[str, str | None, str | None]:
    """The (priority, original, managed) a ticket has after ``action`` is applied."""
    priority = action.new_priority or ticket_priority
    if action.clear_record:
        return priority, None, None
    return (priority, action.record_original or original_priority,
            action.new_priority or managed_priority)


def staff_note(standing: Standing, settings: TicketSettings, language: str) -> str | None:
    """The note for staff on a ticket of an overdue or suspended client (``pt_BR`` or ``en``,
    from the catalogs, written once in that language); None when the client is current for
    tickets or ``staff_note`` is off."""
    kind = ticket_standing(standing)
    if not settings.staff_note or kind == "current":
        return None
    t = Texts("pt_BR" if language == "pt_BR" else "en")
    kinds = {"overdue": t.gettext("overdue"), "suspended": t.gettext("suspended")}
    lines = [t.gettext("vipgate: client has overdue invoices (standing: %(kind)s).",
                       kind=kinds[kind])]
    for item in standing.overdue:
        inv = item.invoice
        days = (t.ngettext("%(num)d business day", "%(num)d business days", item.days)
                if item.business_days else t.ngettext("%(num)d day", "%(num)d days", item.days))
        lines.append(t.gettext("- Invoice #%(number)s: %(amount)s, due %(due)s (%(days)s "
                               "overdue)", number=inv.number, due=t.day(inv.duedate),
                               amount=standing.money(inv.balance, t.language), days=days))
    lines.append(t.gettext("Total overdue: %(total)s",
                           total=standing.money(standing.overdue_total, t.language)))
    return "\n".join(lines)


def cached_standing(client: ClientState, standing: Standing,
                    updated_at: datetime) -> CachedStanding:
    """What the TicketOpenValidation gate reads. Its ``standing`` is the ticket standing, so an
    active promise to pay lets the client open tickets."""
    invoices = tuple(OverdueInvoice(i.invoice.id, i.invoice.number, i.invoice.balance,
                                    i.invoice.duedate.isoformat()) for i in standing.overdue)
    return CachedStanding(client.id, ticket_standing(standing), standing.max_days,
                          standing.overdue_total, invoices, client.currency_prefix,
                          client.currency_suffix, client.language, updated_at,
                          name=client.name)
