"""vipgate inside WHMCS: the answers to the page hooks the stub asks synchronously.

Every answer is built from vipgate's own tables (the standing cache, membership, promises,
audit, ticket records, the latest delinquency episode), never from the WHMCS API, so it comes
back in milliseconds; the stub gives up after one second and shows nothing. What each panel
shows: ``view``."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from bridge.model import CachedStanding
from bridge.panels.view import (
    EpisodeFacts,
    PanelFacts,
    SubmitTicketAnswer,
    TrustFacts,
    client_summary,
    home_banner,
    submit_ticket,
    ticket_badge,
)
from bridge.policy import trust
from bridge.policy.gate import client_language
from bridge.settings import Settings
from bridge.signing import trust_token
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


def trust_facts(store: Store, settings: Settings, client_id: int,
                standing: CachedStanding | None, today: date, secret: str,
                notice: str | None = None) -> TrustFacts | None:
    """The trust unlock on the client's banner (None when ``[trust] enabled`` is off): an
    unlock holding, else the offer the policy makes without looking at the services (the
    button, with the form's token made with ``secret``, the stub's), and ``notice``."""
    settings_trust = settings.trust
    if not settings_trust.enabled or not client_id:
        return None
    active = store.active_unlock(client_id)
    if active is not None and active.until >= today:
        return TrustFacts(settings_trust.days, unlocked_until=active.until, notice=notice)
    opened = store.open_episode_actions(client_id)
    suspended = standing is not None and (standing.billing_standing
                                          or standing.standing) == "suspended"
    decision = trust.decide(settings_trust, suspended=suspended,
                            episode_id=None if opened is None else opened[0],
                            episode_actions=() if opened is None else opened[1],
                            unlocked_on=store.unlock_days(client_id), services=None,
                            today=today)
    if isinstance(decision, trust.Refusal) or not secret:
        return TrustFacts(settings_trust.days, notice=notice)
    return TrustFacts(settings_trust.days, offer_until=decision.until,
                      token=trust_token(secret, client_id, today), notice=notice)


def answer(store: Store, settings: Settings, question: PanelQuestion, *,
           today: date, secret: str = "", notice: str | None = None) -> dict[str, Any]:
    """The JSON answer for one page hook: ``{"html": ...}``, plus ``departments`` (the ids
    the page may offer, or null for no restriction) for the submit-ticket page. The
    client-area home's banner carries the trust unlock (:func:`trust_facts`: ``secret`` makes
    the form's token, ``notice`` answers the form just posted)."""
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
    if settings.panels.home_banner and facts.standing is not None \
            and facts.standing.standing != "current":  # else no banner: nothing to ask
        facts = replace(facts, trust=trust_facts(store, settings, facts.client_id,
                                                 facts.standing, today, secret, notice))
    return {"html": home_banner(facts, settings.panels, language=language)}
