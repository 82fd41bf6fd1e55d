"""Plain data shared by the pure layers (policy, hooks) and the I/O layers (store, web)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Union

# WHMCS's ticket priorities (its column tbltickets.urgency), lowest first.
TICKET_PRIORITIES = ("Low", "Medium", "High")


@dataclass(frozen=True)
class Money:
    """An amount in the client's WHMCS currency (its prefix and suffix, e.g. ``R$ ``)."""

    amount: Decimal
    prefix: str = ""
    suffix: str = ""


@dataclass(frozen=True)
class GroupRef:
    """A WHMCS client group, shown by its name where vipgate knows it (``WhmcsNames``)."""

    id: int


@dataclass(frozen=True)
class DepartmentRef:
    """A WHMCS support department, shown by its name where vipgate knows it (``WhmcsNames``)."""

    id: int


@dataclass(frozen=True)
class Priority:
    """A ticket priority of WHMCS (``Low``, ``Medium``, ``High``), named in the reader's
    language where it is shown."""

    name: str


# What a reason's placeholders hold: a number or text as it is, a day, a moment (UTC), an
# amount, a group, a support department, a ticket priority, or other reasons (one, or several
# joined with "; ").
ReasonValue = Union[str, int, date, datetime, Money, GroupRef, DepartmentRef, Priority,
                    "Reason", tuple["Reason", ...]]


class Reason(str):
    """One reason of a decision, as data: the English message (``msgid``, with ``%(name)s``
    placeholders; ``plural`` and the count in ``values["num"]`` when it has plural forms) and
    its values, to be shown in the reader's language (``bridge.i18n.Texts.reason``).

    The string itself is the English sentence (with bare group and department ids), so that
    the logs, the audit log and the CLI, which are English, read it as before."""

    msgid: str
    plural: str | None
    values: Mapping[str, ReasonValue]

    def __new__(cls, english: str, msgid: str, values: Mapping[str, ReasonValue],
                plural: str | None = None) -> Reason:
        reason = super().__new__(cls, english)
        reason.msgid, reason.plural, reason.values = msgid, plural, dict(values)
        return reason

    def __reduce__(self) -> tuple[object, ...]:
        return Reason, (str(self), self.msgid, self.values, self.plural)


@dataclass(frozen=True)
class OverdueInvoice:
    invoice_id: int
    number: str  # WHMCS invoicenum, or the id when numbering is off
    balance: Decimal
    due_date: str  # YYYY-MM-DD


@dataclass(frozen=True)
class CachedStanding:
    """The last standing vipgate computed for a client, kept for synchronous answers."""

    client_id: int
    standing: str  # current | overdue | suspended
    overdue_days: int
    overdue_total: Decimal
    invoices: tuple[OverdueInvoice, ...]
    currency_prefix: str
    currency_suffix: str
    language: str | None
    updated_at: datetime
    # What the VIP decision saw (None in rows written before these were kept): the client's
    # standing before a promise to pay counts, the group after the plan, VIP eligibility.
    billing_standing: str | None = None
    group_id: int | None = None
    in_vip: bool | None = None
    eligible: bool | None = None
    # The reasons behind the standing and the VIP decision, as the engine gave them: each a
    # Reason (shown in the reader's language), or plain English text in rows written before
    # the reasons were kept as messages (shown as they are); empty in older rows still.
    standing_reasons: tuple[str, ...] = ()
    vip_reasons: tuple[str, ...] = ()
    # The client's name as WHMCS has it (``client_name``), read with the rest of the client;
    # None in rows written before names were kept (the admin page shows ``#id`` then).
    name: str | None = None


def client_name(first: str, last: str, company: str) -> str:
    """A WHMCS client's name for people: ``Ana Souza (Acme Ltda)``, ``Acme Ltda`` when it has
    no first or last name, "" when it has none at all."""
    name = f"{first.strip()} {last.strip()}".strip()
    company = company.strip()
    if company:
        name = f"{name} ({company})" if name else company
    return name


@dataclass(frozen=True)
class ClientMemory:
    """What vipgate remembers of a client between reconciles.

    ``pinned``/``excluded``/``home_group_id``: see ``bridge.policy.state.Membership``.
    ``last_group_id``: the group vipgate last saw the client in, or set (None = never seen): a
    different group at the next reconcile that vipgate did not set was changed by staff.
    ``held_since``: a staff hold, see ``bridge.policy.state.Membership``.
    ``pending_group_id``: a group vipgate is writing to WHMCS right now; recorded before the
    write so that a crash between the write and its confirmation is still recognised as
    vipgate's own change.
    """

    client_id: int
    pinned: bool = False
    excluded: bool = False
    home_group_id: int | None = None
    last_group_id: int | None = None
    pending_group_id: int | None = None
    known: bool = False  # a row exists
    # Staff put the client into VIP while it owed: kept there until it is paid up (aware UTC).
    held_since: datetime | None = None
    held_by: str | None = None  # the WHMCS admin who made the hold, when WHMCS said


@dataclass(frozen=True)
class TicketMemory:
    """vipgate's record of a ticket whose priority it manages (or that it left a note on).

    ``original_priority``: what the ticket had before vipgate first changed it (restored when
    the client is current again). ``managed_priority``: what vipgate last set; a ticket whose
    priority differs was changed by staff. ``pending_priority``: being written right now.
    ``note_key``: the overdue invoices the staff notes listed (``ids:1,2``), dropped when the
    client is current again; ``pending:<key>`` while a note is being added.
    """

    ticket_id: int
    client_id: int
    original_priority: str | None = None
    managed_priority: str | None = None
    pending_priority: str | None = None
    note_key: str | None = None

    @property
    def empty(self) -> bool:
        return (self.original_priority is None and self.managed_priority is None
                and self.pending_priority is None and self.note_key is None)


@dataclass(frozen=True)
class AuditEntry:
    """One change: made by vipgate in WHMCS, or observed (a staff decision vipgate follows)."""

    at: datetime
    actor: str  # "vipgate", "staff" (seen in WHMCS), or an admin's name
    action: str  # group, ticket_priority, ticket_note, membership, ...
    client_id: int | None
    ticket_id: int | None
    before: str | None
    after: str | None
    reasons: tuple[str, ...]
    event_id: str | None = None
    id: int | None = None


@dataclass(frozen=True)
class WhmcsNames:
    """WHMCS's client group and support department names as vipgate last read them (the
    worker reads them hourly; empty until then), to show names where ids are stored."""

    groups: Mapping[int, str] = field(default_factory=dict)
    departments: Mapping[int, str] = field(default_factory=dict)
    read_at: datetime | None = None  # naive UTC

    def group(self, group_id: int) -> str:
        """``VIP (#1)``, or ``#1`` when the name is not known."""
        name = self.groups.get(group_id)
        return f"{name} (#{group_id})" if name else f"#{group_id}"

    def department(self, department_id: int) -> str:
        """``Financeiro (#2)``, or ``#2`` when the name is not known."""
        name = self.departments.get(department_id)
        return f"{name} (#{department_id})" if name else f"#{department_id}"

    def audit_value(self, action: str, value: str | None) -> str | None:
        """An audit entry's ``before`` or ``after`` for people: the ids of ``group`` and
        ``ticket_department`` entries with their names; anything else as it is."""
        if value is None or not value.isdigit():
            return value
        if action == "group":
            return self.group(int(value))
        if action == "ticket_department":
            return self.department(int(value))
        return value
