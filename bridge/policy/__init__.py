"""Pure decisions: no Flask, no SQL, no HTTP, no clock.

Every function that depends on time takes ``today`` (a calendar day in the WHMCS time zone; the
caller converts). ``state`` holds the inputs, ``standing`` computes current / overdue /
suspended, ``vip`` decides group membership, ``tickets`` ticket priority and notes, ``gate``
answers TicketOpenValidation from the standing cache. Every decision carries its reasons.

``standing.standing`` is not re-exported here: the name would hide the ``standing`` module.
"""

from bridge.policy.standing import OverdueItem, Standing
from bridge.policy.state import ClientState, Invoice, Membership, Promise, Service
from bridge.policy.tickets import (
    TicketAction,
    apply_ticket_action,
    cached_standing,
    desired_priority,
    staff_note,
    ticket_action,
    ticket_standing,
)
from bridge.policy.vip import (
    MembershipChange,
    Verdict,
    VipDecision,
    adopt,
    eligible,
    follow_staff_change,
    vip_decision,
)

__all__ = [
    "ClientState", "Invoice", "Membership", "MembershipChange", "OverdueItem", "Promise",
    "Service", "Standing", "TicketAction", "Verdict", "VipDecision", "adopt",
    "apply_ticket_action", "cached_standing", "desired_priority", "eligible",
    "follow_staff_change", "staff_note", "ticket_action", "ticket_standing",
    "vip_decision",
]
