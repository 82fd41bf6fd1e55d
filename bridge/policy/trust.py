"""Trust unlock (issue 19 item 5): may a suspended client unlock its services itself? (pure)

Off by default (``[trust] enabled``). When on, a client whose services WHMCS suspended for
non-payment may, once per delinquency episode and at most ``[trust] max_per_year`` times in
any 365 days, unlock them for ``[trust] days`` days from the client-area banner: vipgate sets
each service's Override Auto-Suspend until the date and unsuspends it; unpaid by then, vipgate
lifts the override and WHMCS's cron suspends it again.

Only services WHMCS suspended for non-payment are unlocked: status Suspended with an empty
suspend reason (WHMCS 8's cron, whmcs-reference §6) or "Overdue on Payment". A service staff
suspended with a reason of their own (abuse) stays suspended, and so does one on which staff
set Override Auto-Suspend themselves (their decision is respected: DESIGN principle 8).

:func:`decide` gives an :class:`Offer` or a :class:`Refusal` whose ``reason`` is a message
shown in the client's language. The banner asks without the services (``services`` None: it
answers from vipgate's own tables, no WHMCS call); the unlock asks again with the services
WHMCS shows at that moment. Nothing here reads or writes; ``today`` (WHMCS's day) is passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from bridge.i18n import why
from bridge.model import Reason
from bridge.policy.episodes import UNLOCKED_BY_TRUST, Action
from bridge.settings import TrustSettings

# What WHMCS writes as the reason of an overdue suspension (its documentation's; WHMCS 8's
# cron leaves the reason empty).
OVERDUE_REASON = "Overdue on Payment"
YEAR = timedelta(days=365)
AUDIT_ACTION = "trust_unlock"  # the audit row's action (bridge.i18n.AUDIT_ACTIONS)
ACTOR = "client"  # the episode action's and the audit row's actor

# Why an unlock is refused (Refusal.code).
OFF = "off"
NOT_SUSPENDED = "not_suspended"
ALREADY_UNLOCKED = "already_unlocked"
YEARLY_LIMIT = "yearly_limit"
NOTHING_TO_UNLOCK = "nothing_to_unlock"


@dataclass(frozen=True)
class ServiceView:
    """One service of the client as WHMCS shows it (GetClientsProducts)."""

    id: int
    status: str
    suspendreason: str
    override: bool  # overideautosuspend
    override_until: date | None  # overidesuspenduntil


@dataclass(frozen=True)
class Offer:
    """The client may unlock: ``service_ids`` (empty when the services were not read) stay
    unlocked until ``until`` (inclusive; WHMCS's cron may suspend them the day after)."""

    until: date
    service_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Refusal:
    code: str  # OFF, NOT_SUSPENDED, ALREADY_UNLOCKED, YEARLY_LIMIT, NOTHING_TO_UNLOCK
    reason: Reason
    frees_on: date | None = None  # YEARLY_LIMIT: the first day another unlock is allowed


def already_unlocked() -> Reason:
    return why.gettext("You have already unlocked your services once for these overdue "
                       "invoices; pay them to have your services back.")


def unlockable(service: ServiceView) -> bool:
    """Suspended by WHMCS for non-payment, and no override staff set."""
    return (service.status == "Suspended"
            and service.suspendreason.strip() in ("", OVERDUE_REASON)
            and not service.override)


def counted(unlocked_on: Iterable[date], today: date) -> list[date]:
    """The days of the unlocks that count against the yearly limit on ``today``: those of the
    last 365 days (``today - 364`` to ``today``), oldest first."""
    return sorted(day for day in unlocked_on if today - day < YEAR)


def decide(settings: TrustSettings, *, suspended: bool, episode_id: int | None,
           episode_actions: Sequence[Action], unlocked_on: Iterable[date],
           services: Sequence[ServiceView] | None, today: date) -> Offer | Refusal:
    """May the client unlock now? ``suspended``: its standing is suspended (owes past the
    grace, a service Suspended); ``episode_id``: its open delinquency episode (None: none);
    ``episode_actions``: that episode's actions; ``unlocked_on``: the days (WHMCS's) of its
    unlocks, of any episode; ``services``: as WHMCS shows them now, or None (the banner: the
    services are then not looked at)."""
    if not settings.enabled:
        return Refusal(OFF, why.gettext("Unlocking is not available."))
    if episode_id is None:
        return Refusal(NOT_SUSPENDED, why.gettext("Your services are not suspended."))
    if any(a.kind == UNLOCKED_BY_TRUST for a in episode_actions):
        return Refusal(ALREADY_UNLOCKED, already_unlocked())
    if not suspended:
        return Refusal(NOT_SUSPENDED, why.gettext("Your services are not suspended."))
    days = counted(unlocked_on, today)
    if len(days) >= settings.max_per_year:
        frees_on = days[len(days) - settings.max_per_year] + YEAR
        return Refusal(YEARLY_LIMIT, why.ngettext(
            "You have already unlocked your services %(num)d time in the last 12 months; "
            "you can unlock again from %(day)s.",
            "You have already unlocked your services %(num)d times in the last 12 months; "
            "you can unlock again from %(day)s.", len(days), day=frees_on), frees_on)
    until = today + timedelta(days=settings.days)
    if services is None:
        return Offer(until)
    chosen = tuple(sorted(s.id for s in services if unlockable(s)))
    if not chosen:
        return Refusal(NOTHING_TO_UNLOCK, why.gettext(
            "None of your services can be unlocked here: contact us."))
    return Offer(until, chosen)


def audit_reasons(until: date, service_ids: Sequence[int],
                  failed: Sequence[int] = ()) -> tuple[Reason, ...]:
    """The audit row's reasons of an unlock: the date and the services."""
    reasons = [why.gettext("unlocked by the client until %(day)s: services %(services)s",
                           day=until, services=", ".join(f"#{i}" for i in service_ids))]
    if failed:
        reasons.append(why.gettext("WHMCS did not unsuspend services %(services)s",
                                   services=", ".join(f"#{i}" for i in failed)))
    return tuple(reasons)


def failed_reasons(until: date, failed: Sequence[int],
                   left: Sequence[int]) -> tuple[Reason, ...]:
    """The audit row's reasons of an unlock WHMCS did not take, which left an override set on
    ``left`` (lifted by the regular pass)."""
    return (why.gettext("the client's unlock until %(day)s failed: WHMCS did not unsuspend "
                        "services %(services)s", day=until,
                        services=", ".join(f"#{i}" for i in failed)),
            why.gettext("override set on services %(services)s, to be lifted",
                        services=", ".join(f"#{i}" for i in left)))


def unlock_action(at: datetime, until: date) -> Action:
    """The episode's :data:`UNLOCKED_BY_TRUST` action: ``detail`` is the until date as ISO
    ``YYYY-MM-DD`` exactly (the recovery figures read it)."""
    return Action(UNLOCKED_BY_TRUST, at, ACTOR, None, until.isoformat())
