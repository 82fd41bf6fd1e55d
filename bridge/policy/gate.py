"""The TicketOpenValidation gate: may this client open a ticket in this department?

Answered inside the webhook request from the standing cache only, so it stays within
milliseconds. Billing departments are always open; staff (``isAdmin``) are never blocked;
a client vipgate has no standing for is let through (fail open).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

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
    text = f"{amount:,.2f}"
    if language == "pt_BR":
        text = text.replace(",", "_").replace(".", ",").replace("_", ".")
    return f"{prefix}{text}{suffix}".strip()


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
