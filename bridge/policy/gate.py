"""The TicketOpenValidation gate: may this client open a ticket in this department?

Answered inside the webhook request from the standing cache only, so it stays within
milliseconds. Billing departments are always open; staff (``isAdmin``) are never blocked;
a client vipgate has no standing for is let through (fail open). ``ungated_ticket`` acts as
the gate would have on a client's ticket that never met it (e-mail piping).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from bridge import i18n
from bridge.model import CachedStanding
from bridge.settings import DEFAULT_BLOCK_MESSAGES, TicketSettings


@dataclass(frozen=True)
class GateAnswer:
    errors: tuple[str, ...]
    reason: str


def language_of(client_language: str | None, default: str) -> str:
    """WHMCS stores a client's language as a name ("portuguese-br", "english")."""
    name = (client_language or "").lower()
    if name.startswith("portuguese"):
        return "pt_BR"
    if name.startswith("english"):
        return "en"
    return default


def format_money(amount: Decimal, prefix: str, suffix: str, language: str) -> str:
    """``R$ 1.234,56`` (pt_BR) / ``R$ 1,234.56`` (en): Babel's digits for the locale."""
    return i18n.format_money(amount, prefix, suffix, language)


def is_blocked(standing: CachedStanding, settings: TicketSettings) -> bool:
    if settings.block_when == "never" or standing.standing == "current":
        return False
    late_enough = standing.overdue_days >= settings.block_after_days
    if settings.block_when == "overdue":
        return late_enough
    # block_when == "suspended": suspended clients always; overdue ones only past the
    # optional block_after_days
    if standing.standing == "suspended":
        return True
    return settings.block_after_days > 0 and late_enough


def pay_link(standing: CachedStanding, whmcs_url: str) -> str:
    """Where the client pays: its oldest overdue invoice, else its client area."""
    first = standing.invoices[0].invoice_id if standing.invoices else None
    base = whmcs_url.rstrip("/")
    if not base:
        return "clientarea.php?action=invoices"
    return f"{base}/viewinvoice.php?id={first}" if first else f"{base}/clientarea.php"


def render_block_message(template: str, standing: CachedStanding, language: str,
                         whmcs_url: str) -> str:
    """The block message a client reads: ``template`` filled with the client's overdue
    invoices, total (in its currency and the message's language), days and pay link. A
    template that cannot be filled (a format spec the values do not take) gives the default
    message of that language rather than no answer."""
    values = {"invoices": ", ".join(f"#{i.number}" for i in standing.invoices) or "-",
              "total": format_money(standing.overdue_total, standing.currency_prefix,
                                    standing.currency_suffix, language),
              "days": standing.overdue_days, "link": pay_link(standing, whmcs_url)}
    try:
        return template.format(**values)
    except (ValueError, TypeError, IndexError, KeyError, AttributeError):
        return DEFAULT_BLOCK_MESSAGES["pt_BR" if language == "pt_BR" else "en"].format(**values)


def decide(standing: CachedStanding | None, department_id: int, by_admin: bool,
           settings: TicketSettings, default_language: str, whmcs_url: str) -> GateAnswer:
    if by_admin:
        return GateAnswer((), "opened by staff")
    if department_id in settings.billing_departments:
        return GateAnswer((), f"department {department_id} is a billing department")
    if standing is None:
        return GateAnswer((), "no standing known for this client")
    if not is_blocked(standing, settings):
        return GateAnswer((), f"standing {standing.standing} is not blocked "
                              f"(block_when={settings.block_when})")
    language = language_of(standing.language, default_language)
    message = render_block_message(settings.block_message(language), standing, language,
                                   whmcs_url)
    return GateAnswer((message,), f"standing {standing.standing}, overdue "
                                  f"{standing.overdue_days} days, department {department_id} "
                                  "is not a billing department")


@dataclass(frozen=True)
class UngatedAction:
    """What to do with a client's new ticket that may have got round the gate (e-mailed in):
    move it to ``move_to`` (a department id) and/or post ``reply`` (the block message).
    Both None = leave it; ``reasons`` say why either way."""

    move_to: int | None
    reply: str | None
    reasons: tuple[str, ...]

    @property
    def changes(self) -> bool:
        return self.move_to is not None or self.reply is not None


def ungated_ticket(gate_saw: CachedStanding | None, standing_now: CachedStanding | None,
                   opened_at: datetime, opened_in: int, department_now: int,
                   staff_replied: bool, settings: TicketSettings, default_language: str,
                   whmcs_url: str) -> UngatedAction:
    """Act on a client's new ticket as the gate would have.

    ``gate_saw`` is the standing the gate reads (vipgate's cache) as it was before this
    ticket's event was handled: the gate, asked when the ticket was opened (``opened_at``) in
    department ``opened_in``, would have read exactly that row when it was written before
    then. If that row refuses the ticket, the ticket cannot have passed the gate (it came by
    e-mail, through the API, or while the stub failed open) and, while ``standing_now``
    still blocks, it is moved to the first billing department and/or answered with the
    block message in the client's language. A row written after the ticket was opened says
    nothing of what the gate saw: the ticket is left alone, as are tickets a staff member
    (or vipgate, earlier) already answered, so the action happens once.
    """
    mode = settings.ungated_tickets
    if mode == "keep":
        return UngatedAction(None, None, ("ungated_tickets = keep",))
    if staff_replied:
        return UngatedAction(None, None, ("the ticket already has a staff reply",))
    if gate_saw is None:
        return UngatedAction(None, None, ("no standing known when the ticket was opened: the "
                                          "gate would have let it through",))
    if gate_saw.updated_at > opened_at:
        return UngatedAction(None, None, (
            f"the standing was recomputed at {gate_saw.updated_at.isoformat()}, after the "
            f"ticket was opened at {opened_at.isoformat()}: what the gate saw is unknown",))
    then = decide(gate_saw, opened_in, False, settings, default_language, whmcs_url)
    if not then.errors:
        return UngatedAction(None, None, (f"the gate would have let it through: {then.reason}",))
    now = decide(standing_now, opened_in, False, settings, default_language, whmcs_url)
    if not now.errors:
        return UngatedAction(None, None, (f"no longer blocked: {now.reason}",))
    reasons = [f"opened in department {opened_in} without passing the gate, which would "
               f"have refused it ({then.reason})"]
    move_to = None
    if mode == "move_and_reply":
        if department_now in settings.billing_departments:
            reasons.append(f"already in billing department {department_now}")
        elif settings.billing_departments:
            move_to = settings.billing_departments[0]
            reasons.append(f"moved to billing department {move_to}")
        else:
            reasons.append("no billing department is set: not moved")
    return UngatedAction(move_to, now.errors[0], (*reasons, "answered with the block message"))
