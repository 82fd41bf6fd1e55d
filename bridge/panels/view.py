"""What each panel shows, from what vipgate already knows of the client (pure: no I/O).

The HTML comes from the templates beside this module, rendered with autoescaping on: every
value (invoice numbers, currency symbols, notes, reasons, block messages) is text, never
markup, whoever typed it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from typing import Any

import jinja2
from markupsafe import Markup, escape

from bridge.model import AuditEntry, CachedStanding, ClientMemory, TicketMemory, WhmcsNames
from bridge.panels.texts import counted, priority_name, text
from bridge.policy.gate import format_money, is_blocked, pay_link, render_block_message
from bridge.settings import PanelSettings, TicketSettings

PRIORITY_RANK = {"Low": 0, "Medium": 1, "High": 2}
MAX_INVOICES = 5  # listed one by one; the rest are in the count and the total
MAX_CHANGES = 5


@dataclass(frozen=True)
class PanelFacts:
    """What vipgate's own tables hold about one client (and one ticket)."""

    client_id: int
    standing: CachedStanding | None
    memory: ClientMemory | None = None
    promise: tuple[date, str] | None = None
    changes: Sequence[AuditEntry] = ()
    ticket: TicketMemory | None = None
    names: WhmcsNames = field(default_factory=WhmcsNames)  # group, department names


@dataclass(frozen=True)
class SubmitTicketAnswer:
    """For ClientAreaPageSubmitTicket: ``departments`` None leaves the page as it is; a tuple
    means only these department ids may be offered, with ``html`` explaining why."""

    html: str
    departments: tuple[int, ...] | None


@cache
def _templates() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("bridge.panels", "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True)


def _render(name: str, **context: Any) -> str:
    return _templates().get_template(name).render(**context).strip()


def format_date(day: date | datetime | str, language: str) -> str:
    value = date.fromisoformat(day[:10]) if isinstance(day, str) else day
    if isinstance(value, datetime):
        value = value.date()
    return value.strftime("%d/%m/%Y" if language == "pt_BR" else "%Y-%m-%d")


def _money(standing: CachedStanding, amount: Any, language: str) -> str:
    return format_money(amount, standing.currency_prefix, standing.currency_suffix, language)


def headline(standing: CachedStanding, language: str) -> str:
    """``Overdue · 12 days`` / ``Suspended · 12 days`` / ``Current``: the billing standing
    (what the client owes), not softened by a promise to pay."""
    kind = standing.billing_standing or standing.standing
    if kind == "current":
        return text(language, "current")
    return f"{text(language, kind)} · {counted(language, 'days', standing.overdue_days)}"


def _vip_line(standing: CachedStanding, memory: ClientMemory | None, language: str) -> str:
    if standing.in_vip:
        parts = [text(language, "vip_in")]
    elif standing.eligible:
        parts = [text(language, "vip_out_eligible")]
    else:
        parts = [text(language, "vip_out")]
    if memory is not None and memory.pinned:
        parts.append(text(language, "pinned"))
    if memory is not None and memory.excluded:
        parts.append(text(language, "excluded"))
    if memory is not None and memory.held_since is not None:
        since = format_date(memory.held_since, language)
        parts.append(text(language, "held_by", by=memory.held_by, since=since)
                     if memory.held_by else text(language, "held", since=since))
    return "; ".join(parts)


def _invoices(standing: CachedStanding, language: str, whmcs_url: str,
              relative: bool) -> list[dict[str, str]]:
    base = "" if relative or not whmcs_url else whmcs_url.rstrip("/") + "/"
    return [{"number": f"#{i.number}", "balance": _money(standing, i.balance, language),
             "due": text(language, "due", date=format_date(i.due_date, language)),
             "link": f"{base}viewinvoice.php?id={i.invoice_id}"}
            for i in standing.invoices[:MAX_INVOICES]]


def _change_line(entry: AuditEntry, language: str, names: WhmcsNames) -> str:
    what = entry.action.replace("_", " ")
    if entry.ticket_id is not None:
        what += f" #{entry.ticket_id}"
    if entry.action == "ticket_note":
        pass  # before/after are vipgate's bookkeeping keys, not something to read
    elif entry.before is not None or entry.after is not None:
        what += (f": {names.audit_value(entry.action, entry.before) or '-'} → "
                 f"{names.audit_value(entry.action, entry.after) or '-'}")
    return f"{format_date(entry.at, language)} {what} ({entry.actor})"


def client_summary(facts: PanelFacts, *, language: str, today: date, whmcs_url: str,
                   admin_link: str) -> str:
    """AdminAreaClientSummaryPage: standing and VIP with their reasons, overdue invoices,
    an active promise to pay, the last changes, and a link to the client in vipgate."""
    standing = facts.standing
    if standing is None:
        return _render("client_summary.html", t=lambda k, **v: text(language, k, **v),
                       known=False, admin_link=admin_link)
    promise = None
    if facts.promise is not None and facts.promise[0] >= today:
        until, note = facts.promise
        promise = {"title": text(language, "promise", until=format_date(until, language)),
                   "note": note}
    kind = standing.billing_standing or standing.standing
    return _render(
        "client_summary.html", t=lambda k, **v: text(language, k, **v), known=True,
        kind=kind, headline=headline(standing, language),
        vip=_vip_line(standing, facts.memory, language),
        invoices=_invoices(standing, language, whmcs_url, relative=False),
        invoice_count=counted(language, "invoices", len(standing.invoices)),
        total=_money(standing, standing.overdue_total, language),
        promise=promise, standing_reasons=standing.standing_reasons,
        vip_reasons=standing.vip_reasons,
        changes=[_change_line(c, language, facts.names) for c in facts.changes[:MAX_CHANGES]],
        updated=text(language, "updated", at=f"{format_date(standing.updated_at, language)} "
                                              f"{standing.updated_at:%H:%M}"),
        admin_link=admin_link)


def _priority_note(ticket: TicketMemory | None, language: str) -> str | None:
    if ticket is None or ticket.managed_priority is None:
        return None
    was = ticket.original_priority
    if was is None or was == ticket.managed_priority:
        return text(language, "priority_set")
    lowered = PRIORITY_RANK.get(ticket.managed_priority, 1) < PRIORITY_RANK.get(was, 1)
    return text(language, "priority_lowered" if lowered else "priority_raised",
                was=priority_name(language, was))


def ticket_badge(facts: PanelFacts, *, language: str) -> str:
    """AdminAreaViewTicketPage: one line, e.g. ``Overdue · 12 days · R$ 189,80 · 2 invoices
    · priority lowered by vipgate (was High)``."""
    standing = facts.standing
    if standing is None:
        return ""
    kind = standing.billing_standing or standing.standing
    parts = [headline(standing, language)]
    if kind != "current":
        parts += [_money(standing, standing.overdue_total, language),
                  counted(language, "invoices", len(standing.invoices))]
    if standing.in_vip:
        parts.append(text(language, "vip"))
    note = _priority_note(facts.ticket, language)
    if note:
        parts.append(note)
    return _render("ticket_badge.html", kind=kind, line=" · ".join(parts))


def _message_html(message: str, link: str) -> Markup:
    """The block message as text, its pay link made clickable."""
    escaped = escape(message)
    if not link:
        return escaped
    # Markup's methods escape their plain-text arguments; the anchor is built by format.
    return escaped.replace(escape(link), Markup('<a href="{0}">{0}</a>').format(link))


def submit_ticket(facts: PanelFacts, settings: TicketSettings, *, language: str,
                  whmcs_url: str) -> SubmitTicketAnswer:
    """ClientAreaPageSubmitTicket: a client the gate would block sees only the billing
    departments, with the reason and pay links, before typing a ticket."""
    standing = facts.standing
    if standing is None or not is_blocked(standing, settings):
        return SubmitTicketAnswer("", None)
    link = pay_link(standing, whmcs_url)
    message = render_block_message(settings.block_message(language), standing, language,
                                   whmcs_url)
    html = _render("submit_notice.html", t=lambda k, **v: text(language, k, **v),
                   message=_message_html(message, link),
                   invoices=_invoices(standing, language, whmcs_url, relative=True))
    return SubmitTicketAnswer(html, tuple(settings.billing_departments))


def home_banner(facts: PanelFacts, settings: PanelSettings, *, language: str) -> str:
    """ClientAreaHomepage: what an overdue or suspended client owes, with pay links."""
    standing = facts.standing
    if not settings.home_banner or standing is None or standing.standing == "current":
        return ""
    count = counted(language, "invoices", len(standing.invoices))
    total = _money(standing, standing.overdue_total, language)
    key = "banner_suspended" if standing.standing == "suspended" else "banner_overdue"
    return _render("home_banner.html", t=lambda k, **v: text(language, k, **v),
                   kind=standing.standing, message=text(language, key, count=count, total=total),
                   invoices=_invoices(standing, language, "", relative=True))
