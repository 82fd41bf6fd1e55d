"""VIP membership: in the VIP group ⇔ eligible AND paying.

Eligible: pinned (by staff or by adoption), or, only with ``promote_by_rules``, long enough a
client, paying on time and spending enough in the look-back window; never when excluded or not
Active. Rule-based promotion is off by default: on a first run it would move most old paying
clients INTO the group WHMCS exempts from suspension. Paying: standing
``current`` (an active promise to pay counts only with ``promise_restores_vip``).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache

from bridge.i18n import why
from bridge.model import GroupRef, Money, Reason, ReasonValue
from bridge.policy.standing import STANDING_REASONS, Standing, describe
from bridge.policy.state import ACTIVE, COLLECTIONS, PAID, ClientState, Membership
from bridge.settings import PolicySettings


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class VipDecision:
    in_vip: bool
    target_group_id: int  # the group the client should be in (may equal the current one)
    reasons: tuple[Reason, ...]
    # set when vipgate moves the client into VIP: the group to go back to when it leaves
    record_home_group_id: int | None = None
    eligible: bool | None = None  # None: no VIP group is managed
    held: bool = False  # kept in VIP by a staff hold while owing


@dataclass(frozen=True)
class MembershipChange:
    """What to record after a group change made by staff (see :func:`follow_staff_change`)."""

    pinned: bool
    excluded: bool
    home_group_id: int | None  # None = keep what is recorded
    reason: Reason

    def apply(self, membership: Membership) -> Membership:
        home = membership.home_group_id if self.home_group_id is None else self.home_group_id
        return Membership(self.pinned, self.excluded, home,
                          membership.held_since if self.pinned else None,
                          membership.held_by if self.pinned else None)


@lru_cache(maxsize=8192)  # a resync asks for the same few thousand (day, months) pairs
def add_months(day: date, months: int) -> date:
    """``day`` moved by whole months, clamped to the month's end (31 Jan + 1 = 28/29 Feb)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def months_between(start: date, end: date) -> int:
    """Whole months from ``start`` to ``end`` (0 when ``end`` is not later)."""
    months = (end.year - start.year) * 12 + end.month - start.month
    if months > 0 and add_months(start, months) > end:
        months -= 1
    return max(months, 0)


def _criteria(client: ClientState, settings: PolicySettings,
              today: date) -> list[tuple[bool, Reason]]:
    """The three rules for clients who are not pinned, each as (passed, reason)."""
    def money(amount: Decimal) -> Money:
        return Money(amount, client.currency_prefix, client.currency_suffix)

    tenure = months_between(client.datecreated, today)
    old_enough = tenure >= settings.min_tenure_months
    since: dict[str, ReasonValue] = {"since": client.datecreated,
                                     "minimum": settings.min_tenure_months}
    checks = [(old_enough, why.ngettext(
        "client for %(num)d month (since %(since)s) >= min_tenure_months %(minimum)d",
        "client for %(num)d months (since %(since)s) >= min_tenure_months %(minimum)d",
        tenure, **since) if old_enough else why.ngettext(
        "client for %(num)d month (since %(since)s) < min_tenure_months %(minimum)d",
        "client for %(num)d months (since %(since)s) < min_tenure_months %(minimum)d",
        tenure, **since))]
    start = add_months(today, -settings.lookback_months)
    tolerance = settings.late_tolerance_days
    late = []
    for inv in client.invoices:
        if inv.status == PAID and inv.datepaid is not None and inv.datepaid >= start:
            days = (inv.datepaid - inv.duedate).days
            if days > tolerance:
                late.append(why.ngettext(
                    "invoice #%(number)s paid %(num)d day late (%(paid)s) > "
                    "late_tolerance_days %(tolerance)d",
                    "invoice #%(number)s paid %(num)d days late (%(paid)s) > "
                    "late_tolerance_days %(tolerance)d",
                    days, number=inv.number, paid=inv.datepaid, tolerance=tolerance))
        elif inv.counts_as_owed(settings.collections_owed) \
                and (today - inv.duedate).days > tolerance:
            unpaid: dict[str, ReasonValue] = {"number": inv.number, "tolerance": tolerance}
            days = (today - inv.duedate).days
            late.append(why.ngettext(
                "invoice #%(number)s in Collections still unpaid %(num)d day after its due "
                "date > late_tolerance_days %(tolerance)d",
                "invoice #%(number)s in Collections still unpaid %(num)d days after its due "
                "date > late_tolerance_days %(tolerance)d", days, **unpaid)
                if inv.status == COLLECTIONS else why.ngettext(
                "invoice #%(number)s still unpaid %(num)d day after its due date > "
                "late_tolerance_days %(tolerance)d",
                "invoice #%(number)s still unpaid %(num)d days after its due date > "
                "late_tolerance_days %(tolerance)d", days, **unpaid))
    checks += [(False, text) for text in late] or [
        (True, why.ngettext(
            "no invoice paid more than %(tolerance)d days late in the last %(num)d month",
            "no invoice paid more than %(tolerance)d days late in the last %(num)d months",
            settings.lookback_months, tolerance=tolerance))]
    spent = client.paid_in_window
    if spent is None:
        spent = sum((inv.total for inv in client.invoices if inv.status == PAID
                     and inv.datepaid is not None and start <= inv.datepaid <= today),
                    Decimal(0))
    enough = spent >= settings.min_spend
    paid: dict[str, ReasonValue] = {"spent": money(spent), "start": start,
                                    "minimum": money(settings.min_spend)}
    checks.append((enough, why.gettext("paid %(spent)s since %(start)s >= min_spend %(minimum)s",
                                       **paid) if enough else
                   why.gettext("paid %(spent)s since %(start)s < min_spend %(minimum)s",
                               **paid)))
    return checks


def eligible(client: ClientState, membership: Membership, settings: PolicySettings,
             today: date) -> Verdict:
    """May this client be in VIP (when it pays)?"""
    blockers = []
    if membership.excluded:
        blockers.append(why.gettext("on the exclusion list"))
    if client.status != ACTIVE:
        blockers.append(why.gettext("client status %(status)s, not Active",
                                    status=client.status))
    if blockers:
        return Verdict(False, (why.gettext("not eligible: %(blockers)s",
                                           blockers=tuple(blockers)),))
    if membership.pinned:
        return Verdict(True, (why.gettext("eligible: pinned by staff"),))
    if not settings.promote_by_rules:
        return Verdict(False, (why.gettext("not eligible: not put in VIP by staff, and "
                                           "promote_by_rules is off"),))
    checks = _criteria(client, settings, today)
    ok = all(passed for passed, _ in checks)
    head = (why.gettext("eligible: all rules met") if ok
            else why.gettext("not eligible: a rule is not met"))
    failed = [text for passed, text in checks if not passed]
    return Verdict(ok, (head, *failed, *(text for passed, text in checks if passed)))


def _leave_to(client: ClientState, membership: Membership, settings: PolicySettings) -> int:
    if client.group_id != settings.vip_group_id:
        return client.group_id
    home = membership.home_group_id
    if home is not None and home != settings.vip_group_id:
        return home
    return settings.default_group_id


def vip_decision(client: ClientState, membership: Membership, standing: Standing,
                 settings: PolicySettings, today: date) -> VipDecision:
    """Which group should the client be in? Outside VIP it keeps its group; leaving VIP it goes
    back to its home group, else ``default_group_id``."""
    vip = settings.vip_group_id
    if vip == 0:
        return VipDecision(False, client.group_id, (why.gettext(
            "vip_group_id is 0: no VIP group managed, group left as is"),))
    verdict = eligible(client, membership, settings, today)
    paying = standing.kind == "current"
    reasons = list(verdict.reasons)
    if paying:
        reasons.append(why.gettext(STANDING_REASONS["current"]))
    elif standing.promise_active and settings.promise_restores_vip:
        paying = True
        reasons.append(why.gettext(
            "%(standing)s, but a promise to pay is active and promise_restores_vip is on",
            standing=why.gettext(STANDING_REASONS[standing.kind])))
    else:
        owed = tuple(describe(i, standing.currency_prefix, standing.currency_suffix)
                     for i in standing.overdue)
        reasons.append(why.gettext("%(standing)s: %(owed)s", owed=owed,
                                   standing=why.gettext(STANDING_REASONS[standing.kind])))
    if verdict.ok and paying:
        home = None if client.group_id == vip else client.group_id
        reasons.append(why.gettext("in VIP group %(group)s", group=GroupRef(vip)))
        return VipDecision(True, vip, tuple(reasons), home, eligible=True)
    if membership.held_since is not None and client.group_id == vip:
        reasons.append(why.gettext(
            "%(hold)s: staff put the client into VIP while it owed; it stays until it is "
            "paid up", hold=describe_hold(membership.held_since, membership.held_by)))
        return VipDecision(True, vip, tuple(reasons), eligible=verdict.ok, held=True)
    target = _leave_to(client, membership, settings)
    if target == client.group_id:
        reasons.append(why.gettext("not in VIP: stays in group %(group)s",
                                   group=GroupRef(target)))
    else:
        reasons.append(why.gettext("not in VIP: leaves VIP for group %(group)s",
                                   group=GroupRef(target)))
    return VipDecision(False, target, tuple(reasons), eligible=verdict.ok)


def hold_time(moment: datetime) -> str:
    """``2026-12-03 14:05 UTC``: when a staff hold began, as reasons show it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def describe_hold(since: datetime, by: str | None) -> Reason:
    """``staff hold since 2026-12-03 14:05 UTC by alice`` (who when WHMCS said)."""
    if by:
        return why.gettext("staff hold since %(since)s by %(by)s", since=since, by=by)
    return why.gettext("staff hold since %(since)s", since=since)


def follow_staff_change(old_group: int, new_group: int, vip_group_id: int,
                        caused_by_vipgate: bool, settings: PolicySettings
                        ) -> MembershipChange | None:
    """A group change vipgate did not make is a staff decision, to be followed, not fought.

    Moved into VIP: pinned (and taken off the exclusion list), home = the group it came from;
    when the client owes, the engine also records a staff hold (``Membership.held_since``).
    Moved out of VIP: unpinned and excluded, or the eligibility rules would put the client
    straight back on the next reconcile.
    """
    if (caused_by_vipgate or not settings.follow_staff_changes or vip_group_id == 0
            or old_group == new_group):
        return None
    if new_group == vip_group_id:
        return MembershipChange(True, False, old_group, why.gettext(
            "staff moved the client from group %(group)s into VIP: pinned",
            group=GroupRef(old_group)))
    if old_group == vip_group_id:
        return MembershipChange(False, True, None, why.gettext(
            "staff moved the client out of VIP to group %(group)s: unpinned and excluded",
            group=GroupRef(new_group)))
    return None


def adopt(current_vip_member_ids: Iterable[int],
          known: Mapping[int, Membership] | None = None) -> dict[int, Membership]:
    """The first time vipgate sees the VIP group, its members are adopted as pinned: the owner
    chose them. What vipgate already knows (exclusion, home group) is kept."""
    known = known or {}
    return {cid: Membership(True, known.get(cid, Membership()).excluded,
                            known.get(cid, Membership()).home_group_id)
            for cid in current_vip_member_ids}
