"""The TicketOpenValidation gate: may this client open a ticket in this department?

Answered inside the webhook request from the standing cache only, so it stays within
milliseconds. Billing departments are always open; staff (``isAdmin``) are never blocked;
a client vipgate has no standing for is let through (fail open). ``ungated_ticket`` acts as
the gate would have on a client's ticket that never met it (e-mail piping).

The reasons are ``bridge.model.Reason`` messages (English text for the logs and the audit
log, shown in the reader's language with departments by name where vipgate knows them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from bridge import i18n
from bridge.i18n import why
from bridge.model import CachedStanding, DepartmentRef, Reason
from bridge.policy.standing import STANDING_REASONS
from bridge.settings import DEFAULT_BLOCK_MESSAGES, TicketSettings


@dataclass(frozen=True)
class GateAnswer:
    """The errors WHMCS shows the client (none: the ticket may be opened) and why."""

    errors: tuple[str, ...]
    reason: Reason


def language_of(client_language: str | None, default: str) -> str:
    """WHMCS stores a client's language as a name ("portuguese-br", "english")."""
    name = (client_language or "").lower()
    if name.startswith("portuguese"):
        return "pt_BR"
    if name.startswith("english"):
        return "en"
    return default


def client_language(page_language: str | None, client_language: str | None,
                    default: str) -> str:
    """The language a client reads: the page's (the client area's session, as the stub
    sends it), else its WHMCS language, else the default (WHMCS names such as
    ``portuguese-br`` and ``english``; others are passed over)."""
    for name in (page_language, client_language):
        chosen = language_of(name, "")
        if chosen:
            return chosen
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


def _standing(standing: CachedStanding) -> Reason:
    """``standing suspended``: the words the standing's other reasons use."""
    return why.gettext(STANDING_REASONS[standing.standing])


def decide(standing: CachedStanding | None, department_id: int, by_admin: bool,
           settings: TicketSettings, default_language: str, whmcs_url: str,
           page_language: str | None = None) -> GateAnswer:
    """May the client open a ticket in ``department_id``? A refusal is the block message in
    the language the client reads (``client_language``: ``page_language``, the client
    area's, as the stub sends it; else the client's WHMCS language; else
    ``default_language``)."""
    department = DepartmentRef(department_id)
    if by_admin:
        return GateAnswer((), why.gettext("opened by staff"))
    if department_id in settings.billing_departments:
        return GateAnswer((), why.gettext("department %(department)s is a billing department",
                                          department=department))
    if standing is None:
        return GateAnswer((), why.gettext("no standing known for this client"))
    if not is_blocked(standing, settings):
        return GateAnswer((), why.gettext("%(standing)s is not blocked (block_when=%(when)s)",
                                          standing=_standing(standing),
                                          when=settings.block_when))
    language = client_language(page_language, standing.language, default_language)
    message = render_block_message(settings.block_message(language), standing, language,
                                   whmcs_url)
    return GateAnswer((message,), why.ngettext(
        "%(standing)s, overdue %(num)d day, department %(department)s is not a billing "
        "department",
        "%(standing)s, overdue %(num)d days, department %(department)s is not a billing "
        "department", standing.overdue_days, standing=_standing(standing),
        department=department))


@dataclass(frozen=True)
class UngatedAction:
    """What to do with a client's new ticket that may have got round the gate (e-mailed in):
    move it to ``move_to`` (a department id) and/or post ``reply`` (the block message).
    Both None = leave it; ``reasons`` say why either way."""

    move_to: int | None
    reply: str | None
    reasons: tuple[Reason, ...]

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
        return UngatedAction(None, None, (why.gettext("ungated_tickets = keep"),))
    if staff_replied:
        return UngatedAction(None, None, (why.gettext("the ticket already has a staff reply"),))
    if gate_saw is None:
        return UngatedAction(None, None, (why.gettext(
            "no standing known when the ticket was opened: the gate would have let it "
            "through"),))
    if gate_saw.updated_at > opened_at:
        # The moments to the second, as text: they are often within the same minute.
        return UngatedAction(None, None, (why.gettext(
            "the standing was recomputed at %(recomputed)s, after the ticket was opened at "
            "%(opened)s: what the gate saw is unknown",
            recomputed=gate_saw.updated_at.isoformat(), opened=opened_at.isoformat()),))
    then = decide(gate_saw, opened_in, False, settings, default_language, whmcs_url)
    if not then.errors:
        return UngatedAction(None, None, (why.gettext(
            "the gate would have let it through: %(reason)s", reason=then.reason),))
    now = decide(standing_now, opened_in, False, settings, default_language, whmcs_url)
    if not now.errors:
        return UngatedAction(None, None, (why.gettext("no longer blocked: %(reason)s",
                                                      reason=now.reason),))
    reasons = [why.gettext("opened in department %(department)s without passing the gate, "
                           "which would have refused it (%(reason)s)",
                           department=DepartmentRef(opened_in), reason=then.reason)]
    move_to = None
    if mode == "move_and_reply":
        if department_now in settings.billing_departments:
            reasons.append(why.gettext("already in billing department %(department)s",
                                       department=DepartmentRef(department_now)))
        elif settings.billing_departments:
            move_to = settings.billing_departments[0]
            reasons.append(why.gettext("moved to billing department %(department)s",
                                       department=DepartmentRef(move_to)))
        else:
            reasons.append(why.gettext("no billing department is set: not moved"))
    return UngatedAction(move_to, now.errors[0],
                         (*reasons, why.gettext("answered with the block message")))
