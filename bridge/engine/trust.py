"""The trust unlock in WHMCS (the rules: ``bridge.policy.trust``; the records:
``bridge.store.trust``).

:func:`unlock` — the client pressed the banner's button: the offer is checked again with the
services WHMCS shows now, the intent is recorded, then for each service WHMCS suspended for
non-payment vipgate sets Override Auto-Suspend until the date (UpdateClientProduct) and
unsuspends it (ModuleUnsuspend). What landed is recorded as the unlock (the episode's
``unlocked_by_trust`` action and the audit row in one transaction). A service whose override
was set but which WHMCS did not unsuspend gets its override lifted again at once; when no
service was unsuspended the unlock is ``failed``: nothing counts and the client may try again.

:func:`settle` — the worker's regular pass (every minute, and first thing at PreCronJob and
DailyCronJob, before WHMCS's cron suspends): an unlock whose date has passed (``expired``),
whose episode ended (``paid``, or ``ended`` another way) or that failed has its override
lifted (``overideautosuspend`` off) on the services vipgate set it on, and only while the
override is still the one vipgate set (on, with the unlock's date): one staff changed is left
as staff left it. Unpaid, WHMCS's cron then suspends the services again, whatever WHMCS makes
of a past date. An unlock left ``pending`` by a crash is settled by what WHMCS shows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta

from bridge.engine.reconcile import Engine
from bridge.i18n import why
from bridge.model import AuditEntry, Reason
from bridge.policy import trust
from bridge.store.trust import FAILED, PENDING, TrustUnlock
from bridge.whmcs import WhmcsError, WhmcsUnavailable

log = logging.getLogger("vipgate.trust")

END_AUDIT_ACTION = "trust_unlock_end"
PENDING_STALE = timedelta(minutes=10)  # a pending unlock older than this was interrupted
PAID, EXPIRED, ENDED = "paid", "expired", "ended"


@dataclass(frozen=True)
class UnlockResult:
    """What the client is told: unlocked until ``until``, or why not (``refusal``)."""

    until: date | None = None
    refusal: Reason | None = None
    service_ids: tuple[int, ...] = ()

    @property
    def done(self) -> bool:
        return self.until is not None


def could_not_unlock() -> Reason:
    return why.gettext("Your services could not be unlocked now; please try again later.")


def unlock(engine: Engine, client_id: int) -> UnlockResult:
    """Unlock the client's services if the policy offers it (see the module's docstring)."""
    settings = engine.settings.trust
    store = engine.store
    now = engine.now()
    today = engine.today(now)
    opened = store.open_episode_actions(client_id)
    cached = store.get_standing(client_id)
    suspended = cached is not None and (cached.billing_standing or cached.standing) == "suspended"

    def decide(services: list[trust.ServiceView] | None) -> trust.Offer | trust.Refusal:
        return trust.decide(settings, suspended=suspended,
                            episode_id=None if opened is None else opened[0],
                            episode_actions=() if opened is None else opened[1],
                            unlocked_on=store.unlock_days(client_id), services=services,
                            today=today)

    first = decide(None)
    if isinstance(first, trust.Refusal):
        return UnlockResult(refusal=first.reason)
    assert opened is not None
    try:
        services = [trust.ServiceView(p.id, p.status, p.suspensionreason, p.overideautosuspend,
                                      p.overidesuspenduntil)
                    for p in engine.whmcs().iter_products(clientid=client_id)]
    except WhmcsError as exc:
        log.warning("trust unlock of client %s: services not read: %s", client_id, exc)
        return UnlockResult(refusal=could_not_unlock())
    offer = decide(services)
    if isinstance(offer, trust.Refusal):
        return UnlockResult(refusal=offer.reason)
    unlock_id = store.begin_unlock(client_id, opened[0], offer.until, offer.service_ids, now,
                                   today)
    if unlock_id is None:
        return UnlockResult(refusal=trust.already_unlocked())
    overridden, unsuspended, failed = _apply(engine, client_id, offer)
    done_at = engine.now()
    if not unsuspended:
        entry = None
        if overridden:  # set and not lifted: the regular pass lifts them
            entry = AuditEntry(done_at, trust.ACTOR, trust.AUDIT_ACTION, client_id, None, None,
                               None, trust.failed_reasons(offer.until, failed, overridden))
        store.fail_unlock(unlock_id, done_at, overridden, entry)
        return UnlockResult(refusal=could_not_unlock())
    entry = AuditEntry(done_at, trust.ACTOR, trust.AUDIT_ACTION, client_id, None, None,
                       offer.until.isoformat(),
                       trust.audit_reasons(offer.until, unsuspended, failed))
    store.finish_unlock(unlock_id, overridden, trust.unlock_action(done_at, offer.until), entry)
    log.info("client %s unlocked services %s until %s by trust%s", client_id, unsuspended,
             offer.until, f" ({failed} failed)" if failed else "")
    return UnlockResult(until=offer.until, service_ids=tuple(unsuspended))


def _apply(engine: Engine, client_id: int,
           offer: trust.Offer) -> tuple[list[int], list[int], list[int]]:
    """Override and unsuspend each service: (services whose override is set, services
    unsuspended, services that failed). WHMCS unavailable stops at that service."""
    overridden: list[int] = []
    unsuspended: list[int] = []
    failed: list[int] = []
    whmcs = engine.whmcs()
    for position, service_id in enumerate(offer.service_ids):
        try:
            _throttle(engine)
            whmcs.set_suspend_override(service_id, offer.until)
        except WhmcsError as exc:
            log.warning("trust unlock of client %s: service %s not overridden: %s", client_id,
                        service_id, exc)
            failed.append(service_id)
            if isinstance(exc, WhmcsUnavailable):
                failed.extend(offer.service_ids[position + 1:])
                break
            continue
        overridden.append(service_id)
        try:
            _throttle(engine)
            whmcs.unsuspend_service(service_id)
        except WhmcsError as exc:
            log.warning("trust unlock of client %s: service %s not unsuspended: %s",
                        client_id, service_id, exc)
            failed.append(service_id)
            try:  # not unlocked: its override must not spare it from the cron
                whmcs.set_suspend_override(service_id, None)
                overridden.remove(service_id)
            except WhmcsError:
                pass  # left for the regular pass (settle)
            if isinstance(exc, WhmcsUnavailable):
                failed.extend(offer.service_ids[position + 1:])
                break
            continue
        unsuspended.append(service_id)
    return overridden, unsuspended, failed


def _throttle(engine: Engine) -> None:
    if engine.throttle is not None:  # [resync] rate_per_second, as every write to WHMCS
        engine.throttle()


def outcome_of(unlock_row: TrustUnlock, today: date) -> str | None:
    """How an applied (or failed) unlock ends today: paid | ended (its episode ended) |
    expired (its date passed) | failed; None while it holds."""
    if unlock_row.state == FAILED:
        return FAILED
    if unlock_row.episode_ended_on is not None:
        return PAID if unlock_row.episode_how == PAID else ENDED
    if today > unlock_row.until:
        return EXPIRED
    return None


def settle(engine: Engine) -> int:
    """Lift the overrides of the unlocks that ended (see the module's docstring); returns how
    many unlocks were settled. A WHMCS failure leaves an unlock for the next pass."""
    store = engine.store
    settled = 0
    for row in store.unlocks_to_settle():
        now = engine.now()
        try:
            if row.state == PENDING:
                if now - row.unlocked_at >= PENDING_STALE:
                    _settle_pending(engine, row)
                    settled += 1
                continue
            outcome = outcome_of(row, engine.today(now))
            if outcome is None:
                continue
            lifted, left = _lift(engine, row)
            reasons = [why.gettext("trust unlock until %(day)s ended: %(outcome)s",
                                   day=row.until, outcome=_outcome_name(outcome))]
            if lifted:
                reasons.append(why.gettext("override lifted on services %(services)s",
                                           services=_ids(lifted)))
            if left:
                reasons.append(why.gettext(
                    "services %(services)s left as they are: their override is no longer "
                    "the one vipgate set", services=_ids(left)))
            entry = AuditEntry(engine.now(), "vipgate", END_AUDIT_ACTION, row.client_id, None,
                               row.until.isoformat(), outcome, tuple(reasons)) \
                if lifted or left else None
            store.clear_unlock(row.id, outcome, engine.now(), entry)
            settled += 1
            log.info("client %s: trust unlock %s settled (%s): override lifted on %s%s",
                     row.client_id, row.id, outcome, lifted or "none",
                     f", left on {left}" if left else "")
        except WhmcsError as exc:
            log.warning("client %s: trust unlock %s not settled now: %s", row.client_id,
                        row.id, exc)
    return settled


def _outcome_name(outcome: str) -> Reason:
    names = {PAID: why.gettext("paid"), EXPIRED: why.gettext("the date passed unpaid"),
             ENDED: why.gettext("the episode ended"),
             FAILED: why.gettext("the unlock failed")}
    return names[outcome]


def _ids(ids: list[int]) -> str:
    return ", ".join(f"#{i}" for i in ids)


def _lift(engine: Engine, row: TrustUnlock) -> tuple[list[int], list[int]]:
    """Lift the override on the unlock's services where it is still vipgate's: (lifted,
    left as staff changed them or gone)."""
    lifted: list[int] = []
    left: list[int] = []
    whmcs = engine.whmcs()
    for service_id in row.service_ids:
        product = whmcs.get_service(service_id)
        if product is None or not product.overideautosuspend \
                or product.overidesuspenduntil != row.until:
            left.append(service_id)
            continue
        _throttle(engine)
        whmcs.set_suspend_override(service_id, None)
        lifted.append(service_id)
    return lifted, left


def _settle_pending(engine: Engine, row: TrustUnlock) -> None:
    """An unlock interrupted between its intent and its outcome: the services that carry its
    override and are Active were unlocked (recorded as applied); else it failed (the
    overrides it left are lifted by a later pass)."""
    store = engine.store
    whmcs = engine.whmcs()
    mine: list[int] = []
    active: list[int] = []
    for service_id in row.service_ids:
        product = whmcs.get_service(service_id)
        if product is not None and product.overideautosuspend \
                and product.overidesuspenduntil == row.until:
            mine.append(service_id)
            if product.status == "Active":
                active.append(service_id)
    now = engine.now()
    if not active:
        store.fail_unlock(row.id, now, mine)
        return
    entry = AuditEntry(now, trust.ACTOR, trust.AUDIT_ACTION, row.client_id, None, None,
                       row.until.isoformat(), trust.audit_reasons(row.until, active))
    store.finish_unlock(row.id, mine, trust.unlock_action(row.unlocked_at, row.until), entry)


