"""What each panel shows, from what vipgate already knows of the client (pure: no I/O).

The HTML comes from the templates beside this module, rendered with autoescaping on: every
value (invoice numbers, currency symbols, notes, reasons, block messages) is text, never
markup, whoever typed it. The words come from vipgate's gettext catalogs (``bridge.i18n``) in
the panel's language, ``pt_BR`` or ``en``; money and dates are formatted by Babel for it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any

import jinja2
from markupsafe import Markup, escape

from bridge.i18n import N_, Texts
from bridge.model import AuditEntry, CachedStanding, ClientMemory, TicketMemory, WhmcsNames
from bridge.policy.gate import is_blocked, pay_link, render_block_message
from bridge.settings import PanelSettings, TicketSettings

PRIORITY_RANK = {"Low": 0, "Medium": 1, "High": 2}
STANDING_NAMES = {"current": N_("Current"), "overdue": N_("Overdue"),
                  "suspended": N_("Suspended")}
MAX_INVOICES = 5  # listed one by one; the rest are in the count and the total
MAX_CHANGES = 5


@dataclass(frozen=True)
class EpisodeFacts:
    """The client's open (or latest) delinquency episode and its reason tag."""

    id: int
    opened_on: date
    ended_on: date | None  # None: open
    reason: str | None  # bridge.policy.episodes.REASONS; None: not tagged
    reason_note: str | None = None


@dataclass(frozen=True)
class TrustFacts:
    """The trust unlock on the client's banner (``[trust] enabled``): ``unlocked_until``, an
    unlock holding; else ``offer_until``, the date an unlock now would hold to (the button),
    with the form's ``token``; ``notice``, the answer to the form just posted (a refusal)."""

    days: int
    offer_until: date | None = None
    unlocked_until: date | None = None
    token: str = ""
    notice: str | None = None  # a bridge.model.Reason, shown in the client's language


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
    episode: EpisodeFacts | None = None
    trust: TrustFacts | None = None


@dataclass(frozen=True)
class SubmitTicketAnswer:
    """For ClientAreaPageSubmitTicket: ``departments`` None leaves the page as it is; a tuple
    means only these department ids may be offered, with ``html`` explaining why."""

    html: str
    departments: tuple[int, ...] | None


@cache
def _templates(language: str) -> jinja2.Environment:
    """The panels' templates with ``_()`` and ``{% trans %}`` in ``language`` (one
    environment per language, so concurrent answers never share a catalog)."""
    texts = Texts(language)
    env = jinja2.Environment(loader=jinja2.PackageLoader("bridge.panels", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.i18n"])
    env.install_gettext_callables(  # type: ignore[attr-defined]  # by jinja2.ext.i18n
        texts.gettext, texts.ngettext, newstyle=True)
    return env


def _render(name: str, language: str, **context: Any) -> str:
    return _templates(language).get_template(name).render(**context).strip()


def format_date(day: date | datetime | str, language: str) -> str:
    return Texts(language).day(day)


def _money(standing: CachedStanding, amount: Any, language: str) -> str:
    return Texts(language).money(amount, standing.currency_prefix, standing.currency_suffix)


def _invoice_count(language: str, n: int) -> str:
    return Texts(language).ngettext("%(num)d invoice", "%(num)d invoices", n)


def headline(standing: CachedStanding, language: str) -> str:
    """``Overdue · 12 days`` / ``Suspended · 12 days`` / ``Current``: the billing standing
    (what the client owes), not softened by a promise to pay."""
    t = Texts(language)
    kind = standing.billing_standing or standing.standing
    if kind == "current":
        return t.gettext(STANDING_NAMES["current"])
    days = t.ngettext("%(num)d day", "%(num)d days", standing.overdue_days)
    return f"{t.gettext(STANDING_NAMES[kind])} · {days}"


def _vip_line(standing: CachedStanding, memory: ClientMemory | None, language: str) -> str:
    t = Texts(language)
    if standing.in_vip:
        parts = [t.gettext("in the VIP group")]
    elif standing.eligible:
        parts = [t.gettext("out of the VIP group until paid (eligible)")]
    else:
        parts = [t.gettext("not in the VIP group")]
    if memory is not None and memory.pinned:
        parts.append(t.gettext("pinned by staff"))
    if memory is not None and memory.excluded:
        parts.append(t.gettext("excluded by staff"))
    if memory is not None and memory.held_since is not None:
        since = t.day(memory.held_since)
        parts.append(t.gettext("kept in VIP by %(by)s since %(since)s while owing, until paid "
                               "up", by=memory.held_by, since=since)
                     if memory.held_by else
                     t.gettext("kept in VIP by staff since %(since)s while owing, until paid up",
                               since=since))
    return "; ".join(parts)


def _invoices(standing: CachedStanding, language: str, whmcs_url: str,
              relative: bool) -> list[dict[str, str]]:
    base = "" if relative or not whmcs_url else whmcs_url.rstrip("/") + "/"
    return [{"number": f"#{i.number}", "balance": _money(standing, i.balance, language),
             "due": Texts(language).gettext("due %(date)s",
                                            date=format_date(i.due_date, language)),
             "link": f"{base}viewinvoice.php?id={i.invoice_id}"}
            for i in standing.invoices[:MAX_INVOICES]]


def _change_value(t: Texts, action: str, value: str | None, names: WhmcsNames) -> str:
    """An audit entry's value in the reader's language (``Texts.audit_value``)."""
    return t.audit_value(action, value, names) or "-" if value else "-"


def _change_line(entry: AuditEntry, language: str, names: WhmcsNames) -> str:
    t = Texts(language)
    what = t.audit_action(entry.action)
    if entry.ticket_id is not None:
        what += f" #{entry.ticket_id}"
    if entry.action == "ticket_note":
        pass  # before/after are vipgate's bookkeeping keys, not something to read
    elif entry.before is not None or entry.after is not None:
        what += (f": {_change_value(t, entry.action, entry.before, names)} → "
                 f"{_change_value(t, entry.action, entry.after, names)}")
    return f"{format_date(entry.at, language)} {what} ({entry.actor})"


def _episode(episode: EpisodeFacts | None, language: str,
             admin_link: str) -> dict[str, str] | None:
    """The open (or latest) episode's reason, with the link to tag it on vipgate's admin
    page (staff tag it there: the panel is HTML the bridge answers, it takes no input)."""
    if episode is None:
        return None
    t = Texts(language)
    if episode.ended_on is None:
        title = t.gettext("Delinquency episode open since %(day)s",
                          day=t.day(episode.opened_on))
    else:
        title = t.gettext("Last delinquency episode: %(opened)s to %(ended)s",
                          opened=t.day(episode.opened_on), ended=t.day(episode.ended_on))
    return {"title": title,
            "reason": t.episode_reason(episode.reason) if episode.reason else "",
            "note": episode.reason_note or "",
            "untagged": t.gettext("reason not tagged yet"),
            "link": f"{admin_link}#episodes" if admin_link else "",
            "action": t.gettext("Change the reason in vipgate") if episode.reason
            else t.gettext("Tag the reason in vipgate")}


def client_summary(facts: PanelFacts, *, language: str, today: date, whmcs_url: str,
                   admin_link: str) -> str:
    """AdminAreaClientSummaryPage: standing and VIP with their reasons, overdue invoices,
    an active promise to pay, the open (or latest) episode's reason, the last changes, and a
    link to the client in vipgate."""
    standing = facts.standing
    episode = _episode(facts.episode, language, admin_link)
    if standing is None:
        return _render("client_summary.html", language, known=False, admin_link=admin_link,
                       episode=episode)
    t = Texts(language)
    promise = None
    if facts.promise is not None and facts.promise[0] >= today:
        until, note = facts.promise
        promise = {"title": t.gettext("Promise to pay until %(until)s", until=t.day(until)),
                   "note": note}
    kind = standing.billing_standing or standing.standing
    return _render(
        "client_summary.html", language, known=True,
        kind=kind, headline=headline(standing, language),
        vip=_vip_line(standing, facts.memory, language),
        invoices=_invoices(standing, language, whmcs_url, relative=False),
        invoice_count=_invoice_count(language, len(standing.invoices)),
        total=_money(standing, standing.overdue_total, language),
        promise=promise,
        standing_reasons=[t.reason(r, facts.names) for r in standing.standing_reasons],
        vip_reasons=[t.reason(r, facts.names) for r in standing.vip_reasons],
        changes=[_change_line(c, language, facts.names) for c in facts.changes[:MAX_CHANGES]],
        updated=t.gettext("as of %(at)s", at=t.moment(standing.updated_at)),
        admin_link=admin_link, episode=episode)


def _priority_note(ticket: TicketMemory | None, language: str) -> str | None:
    if ticket is None or ticket.managed_priority is None:
        return None
    t = Texts(language)
    was = ticket.original_priority
    if was is None or was == ticket.managed_priority:
        return t.gettext("priority set by vipgate")
    lowered = PRIORITY_RANK.get(ticket.managed_priority, 1) < PRIORITY_RANK.get(was, 1)
    name = t.priority(was)
    if lowered:
        return t.gettext("priority lowered by vipgate (was %(was)s)", was=name)
    return t.gettext("priority raised by vipgate (was %(was)s)", was=name)


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
                  _invoice_count(language, len(standing.invoices))]
    if standing.in_vip:
        parts.append(Texts(language).gettext("VIP"))
    note = _priority_note(facts.ticket, language)
    if note:
        parts.append(note)
    return _render("ticket_badge.html", language, kind=kind, line=" · ".join(parts))


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
    html = _render("submit_notice.html", language, message=_message_html(message, link),
                   invoices=_invoices(standing, language, whmcs_url, relative=True))
    return SubmitTicketAnswer(html, tuple(settings.billing_departments))


def _trust(trust: TrustFacts | None, language: str) -> dict[str, str] | None:
    """The banner's trust unlock part: the unlocked line, the notice, the button."""
    if trust is None:
        return None
    t = Texts(language)
    shown = {"unlocked": "", "notice": "", "button": "", "terms": "", "token": trust.token}
    if trust.notice:
        shown["notice"] = t.reason(trust.notice)
    if trust.unlocked_until is not None:
        shown["unlocked"] = t.gettext(
            "Your services are unlocked until %(day)s. Pay by then to keep them active.",
            day=t.day(trust.unlocked_until))
    elif trust.offer_until is not None and trust.token:
        shown["button"] = t.ngettext("Unlock my services for %(num)d day",
                                     "Unlock my services for %(num)d days", trust.days)
        shown["terms"] = t.gettext(
            "You can do this once for these overdue invoices: if they are still unpaid on "
            "%(day)s, your services are suspended again.",
            day=t.day(trust.offer_until + timedelta(days=1)))
    return shown if any(shown[k] for k in ("unlocked", "notice", "button")) else None


def home_banner(facts: PanelFacts, settings: PanelSettings, *, language: str) -> str:
    """ClientAreaHomepage: what an overdue or suspended client owes, with pay links, and the
    trust unlock (its button, or until when the services are unlocked)."""
    standing = facts.standing
    if not settings.home_banner or standing is None or standing.standing == "current":
        return ""
    t = Texts(language)
    trust = _trust(facts.trust, language)
    kind = standing.standing
    if trust is not None and trust["unlocked"]:
        kind = "overdue"  # unlocked: what the worker will see once WHMCS's events are in
    values = {"count": _invoice_count(language, len(standing.invoices)),
              "total": _money(standing, standing.overdue_total, language)}
    message = (t.gettext("Your services are suspended: %(count)s overdue, %(total)s in all.",
                         **values) if kind == "suspended" else
               t.gettext("You have %(count)s overdue, %(total)s in all.", **values))
    return _render("home_banner.html", language, kind=kind, message=message,
                   invoices=_invoices(standing, language, "", relative=True), trust=trust)
