"""vipgate inside WHMCS: the answers to the page hooks the stub asks synchronously.

Every answer is built from vipgate's own tables (the standing cache, membership, promises,
audit, ticket records, the latest delinquency episode), never from the WHMCS API, so it comes
back in milliseconds; the stub gives up after one second and shows nothing. What each panel
shows: ``view``."""

from __future__ import annotations

from datetime import date
from typing import Any

from bridge.panels.view import (
    EpisodeFacts,
    PanelFacts,
    SubmitTicketAnswer,
    client_summary,
    home_banner,
    submit_ticket,
    ticket_badge,
)
from bridge.policy.gate import client_language
from bridge.settings import Settings
from bridge.store import Store
from hooks.registry import PanelQuestion

__all__ = ["PanelFacts", "SubmitTicketAnswer", "answer", "client_language", "facts_for"]


def facts_for(store: Store, question: PanelQuestion) -> PanelFacts:
    """What the store knows for the question; a ticket's client is taken from vipgate's
    ticket record when the stub could not name it."""
    ticket = store.ticket_memory(question.ticket_id) if question.ticket_id else None
    client_id = question.client_id or (ticket.client_id if ticket is not None else 0)
    if not client_id:
        return PanelFacts(0, None, ticket=ticket)
    standing = store.get_standing(client_id)
    if question.panel != "client_summary":
        return PanelFacts(client_id, standing, ticket=ticket)
    latest = store.latest_episode(client_id)
    episode = None if latest is None else EpisodeFacts(
        latest.id, latest.opened_on, latest.ended_on, latest.reason, latest.reason_note)
    return PanelFacts(client_id, standing, store.get_memory(client_id),
                      store.get_promise(client_id), store.recent_audit(client_id, limit=5),
                      ticket, store.whmcs_names(), episode)


def admin_link(settings: Settings, client_id: int) -> str:
    base = settings.panels.admin_url or settings.bridge.public_url
    return f"{base.rstrip('/')}/admin/clients/{client_id}" if base else ""


def answer(store: Store, settings: Settings, question: PanelQuestion, *,
           today: date) -> dict[str, Any]:
    """The JSON answer for one page hook: ``{"html": ...}``, plus ``departments`` (the ids
    the page may offer, or null for no restriction) for the submit-ticket page."""
    if question.panel in ("submit_ticket", "home_banner") and not question.client_id:
        empty: dict[str, Any] = {"html": ""}
        if question.panel == "submit_ticket":
            empty["departments"] = None
        return empty
    facts = facts_for(store, question)
    staff_language = settings.bridge.language
    if question.panel == "client_summary":
        return {"html": client_summary(facts, language=staff_language, today=today,
                                       whmcs_url=settings.whmcs.url,
                                       admin_link=admin_link(settings, question.client_id))}
    if question.panel == "ticket_badge":
        return {"html": ticket_badge(facts, language=staff_language)}
    cached = facts.standing.language if facts.standing is not None else None
    language = client_language(question.language, cached, staff_language)
    if question.panel == "submit_ticket":
        result = submit_ticket(facts, settings.tickets, language=language,
                               whmcs_url=settings.whmcs.url)
        return {"html": result.html, "departments": None if result.departments is None
                else list(result.departments)}
    return {"html": home_banner(facts, settings.panels, language=language)}
