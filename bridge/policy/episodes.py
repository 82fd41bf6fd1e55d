"""Delinquency episodes: when a client's debt past the grace begins and how it ends (pure).

An episode of a client opens on the day its standing (``bridge.policy.standing``) stops being
``current`` — an invoice owed past the grace — and ends on the day it is ``current`` again, or
when the client is closed or gone from WHMCS. It records the debt it opened with, every action
taken during it (:data:`ACTION_KINDS`), the payments of its invoices, how it ended
(:data:`END_KINDS`), the amount recovered and the days to recover.

Two ways in, one meaning:

- :func:`step` — live: the engine (and the resync) compare the open episode with the client as
  WHMCS shows it now and get what changed (:class:`EpisodeStep`);
- :func:`bridge.policy.past_episodes.reconstruct` — the past: a client's invoices and
  transactions as WHMCS kept them give its past episodes (``vipgate backfill``).

Staff tag an episode with why the client stopped paying (:data:`REASONS`,
:func:`check_reason`, :func:`reason_changes`); the figures count episodes and money by it.

Nothing here reads or writes; ``now`` and ``today`` (WHMCS's time zone) are passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from bridge.i18n import EPISODE_REASONS, why
from bridge.model import TICKET_PRIORITIES, AuditEntry, Reason
from bridge.policy.standing import Standing
from bridge.policy.state import OWED_STATUSES, PAID, ClientState, Invoice

# How an episode ended.
PAID_UP = "paid"  # the debt past the grace was paid (recovered > 0, nothing cancelled)
CANCELLED = "cancelled"  # an invoice of the episode was cancelled (the rest may have been paid)
CLIENT_CLOSED = "client_closed"  # the client was closed in WHMCS while it owed
CLIENT_GONE = "client_gone"  # the client no longer exists in WHMCS
OTHER = "other"  # neither paid nor cancelled: a due date moved, the grace or minimum changed
END_KINDS = (PAID_UP, CANCELLED, CLIENT_CLOSED, CLIENT_GONE, OTHER)

# What was done during an episode. The last two are for the trust unlock and the staff's
# reason tag (issue 19 items 5 and 3).
LEFT_VIP = "left_vip"
TICKET_LOWERED = "ticket_lowered"
TICKET_BLOCKED = "ticket_blocked"
SUSPENDED = "suspended"
PROMISE = "promise"
UNLOCKED_BY_TRUST = "unlocked_by_trust"
REASON_TAGGED = "reason_tagged"
ACTION_KINDS = (LEFT_VIP, TICKET_LOWERED, TICKET_BLOCKED, SUSPENDED, PROMISE,
                UNLOCKED_BY_TRUST, REASON_TAGGED)

# Invoice statuses that end a debt without payment.
WRITTEN_OFF = frozenset({"Cancelled"})


@dataclass(frozen=True)
class Payment:
    """Money paid to one of the episode's invoices."""

    invoice_id: int
    amount: Decimal
    paid_on: date


@dataclass(frozen=True)
class Action:
    """Something vipgate (``actor`` vipgate), WHMCS (``whmcs``) or staff (an admin name) did
    during the episode."""

    kind: str  # one of ACTION_KINDS
    at: datetime
    actor: str
    ticket_id: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class Opening:
    opened_at: datetime
    opened_on: date  # WHMCS's day
    amount: Decimal  # owed past the grace
    currency_prefix: str
    currency_suffix: str
    tracked: Mapping[int, Decimal]  # invoice id -> balance owed


@dataclass(frozen=True)
class Ending:
    ended_at: datetime
    ended_on: date
    how: str  # one of END_KINDS
    recovered: Decimal
    days: int | None  # days to recover (paid only): ended_on - opened_on


@dataclass(frozen=True)
class OpenEpisode:
    """The client's open episode as the store keeps it."""

    id: int
    client_id: int
    opened_on: date
    amount: Decimal
    tracked: Mapping[int, Decimal]  # the episode's invoices still owed, with their balance
    standing: str  # the last standing seen (overdue | suspended)
    recovered: Decimal = Decimal(0)  # paid so far
    written_off: Decimal = Decimal(0)  # cancelled so far


@dataclass(frozen=True)
class EpisodeStep:
    """What changes in a client's episode at one reconcile. ``opening``: a new episode (its
    first actions in ``actions``); otherwise the open one moves on: ``payments``, ``tracked``
    (None: unchanged), ``standing`` (None: unchanged), ``written_off`` (added), ``ending``."""

    opening: Opening | None = None
    actions: tuple[Action, ...] = ()
    payments: tuple[Payment, ...] = ()
    tracked: Mapping[int, Decimal] | None = None
    standing: str | None = None
    written_off: Decimal = Decimal(0)
    ending: Ending | None = None

    @property
    def changed(self) -> bool:
        return bool(self.opening or self.actions or self.payments or self.ending
                    or self.tracked is not None or self.standing is not None)


NO_STEP = EpisodeStep()


def step(episode: OpenEpisode | None, client: ClientState | None, current: Standing | None,
         today: date, now: datetime, *,
         extra_invoices: Iterable[Invoice] = ()) -> EpisodeStep:
    """The episode's move when the client reads as ``client`` with standing ``current`` at
    ``now`` (``today`` in WHMCS's time zone). ``client`` None: gone from WHMCS.
    ``extra_invoices``: invoices of the episode read apart (a bulk read that leaves out the
    ones no longer owed), as :class:`bridge.policy.state.Invoice`."""
    if client is None or current is None:
        if episode is None:
            return NO_STEP
        return EpisodeStep(ending=_ending(episode, (), Decimal(0), CLIENT_GONE, today, now))
    late = current.kind != "current"
    closed = client.status == "Closed"
    if episode is None:
        if not late or closed:
            return NO_STEP
        first = (Action(SUSPENDED, now, "whmcs"),) if current.kind == "suspended" else ()
        return EpisodeStep(opening=Opening(
            now, today, current.overdue_total, client.currency_prefix, client.currency_suffix,
            {i.invoice.id: i.invoice.balance for i in current.overdue}), actions=first)
    invoices = {inv.id: inv for inv in (*extra_invoices, *client.invoices)}
    payments: list[Payment] = []
    tracked: dict[int, Decimal] = {}
    written_off = Decimal(0)
    for invoice_id, owed in episode.tracked.items():
        invoice = invoices.get(invoice_id)
        if invoice is None:  # not read: its fate is unknown, it leaves the episode
            continue
        if invoice.status == PAID or (invoice.status in OWED_STATUSES and invoice.balance <= 0):
            if owed > 0:
                payments.append(Payment(invoice_id, owed, invoice.datepaid or today))
        elif invoice.status in OWED_STATUSES:
            if invoice.balance < owed:
                payments.append(Payment(invoice_id, owed - invoice.balance, today))
            tracked[invoice_id] = invoice.balance
        elif invoice.status in WRITTEN_OFF:
            written_off += owed
        else:  # Refunded, Draft: no longer owed, neither paid nor cancelled here
            continue
    for item in current.overdue:  # invoices that went past the grace during the episode
        tracked.setdefault(item.invoice.id, item.invoice.balance)
    actions: tuple[Action, ...] = ()
    standing: str | None = None
    if late and current.kind != episode.standing:
        standing = current.kind
        if current.kind == "suspended":
            actions = (Action(SUSPENDED, now, "whmcs"),)
    ending = None
    recovered = sum((p.amount for p in payments), Decimal(0))
    if closed or not late:
        how = CLIENT_CLOSED if closed else ending_kind(
            episode.written_off + written_off, episode.recovered + recovered)
        ending = _ending(episode, payments, recovered, how, today, now)
    return EpisodeStep(actions=actions, payments=tuple(payments),
                       tracked=None if tracked == dict(episode.tracked) else tracked,
                       standing=standing, written_off=written_off, ending=ending)


def ending_kind(written_off: Decimal, recovered: Decimal) -> str:
    """How a debt that is no longer past the grace ended: cancelled, paid or other."""
    if written_off > 0:
        return CANCELLED
    return PAID_UP if recovered > 0 else OTHER


def _ending(episode: OpenEpisode, payments: Sequence[Payment], recovered: Decimal, how: str,
            today: date, now: datetime) -> Ending:
    """The end at ``today``; a payment WHMCS dates earlier (an event lost and caught up by a
    resync) ends a paid episode on that day."""
    ended_on = today
    if how == PAID_UP and payments:
        ended_on = min(today, max(max(p.paid_on for p in payments), episode.opened_on))
    days = (ended_on - episode.opened_on).days if how == PAID_UP else None
    return Ending(now, ended_on, how, episode.recovered + recovered, days)


def change_action(kind: str, before: str | None, after: str | None, vip_group_id: int,
                  ticket_id: int | None, now: datetime, actor: str) -> Action | None:
    """The episode action behind one change vipgate made in WHMCS (an audit row's action,
    before and after), or None when it is not one."""
    vip = str(vip_group_id)
    if kind == "group" and vip_group_id and before == vip and after != vip:
        return Action(LEFT_VIP, now, actor, None, f"{before} -> {after}")
    if kind == "ticket_priority" and before in TICKET_PRIORITIES and after in TICKET_PRIORITIES \
            and TICKET_PRIORITIES.index(after) < TICKET_PRIORITIES.index(before):
        return Action(TICKET_LOWERED, now, actor, ticket_id, f"{before} -> {after}")
    if kind == "ticket_department":  # a ticket that got round the gate, moved to billing
        return Action(TICKET_BLOCKED, now, actor, ticket_id, f"moved to department {after}")
    return None


# Why the client stopped paying, as staff tag the episode (``episode.reason``): the keys of
# ``bridge.i18n.EPISODE_REASONS`` (their names for people). "other" needs a note.
REASONS = tuple(EPISODE_REASONS)
REASON_OTHER = "other"
REASON_NOTE_MAX = 500
REASON_AUDIT = "episode_reason"  # the audit row's action


class ReasonTagError(ValueError):
    """A reason tag that cannot be stored: ``field`` (``reason`` or ``note``) and why, as a
    :class:`bridge.model.Reason` shown in the reader's language."""

    def __init__(self, field: str, message: Reason) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


@dataclass(frozen=True)
class ReasonTag:
    reason: str  # one of REASONS
    note: str  # "" when none


def check_reason(reason: str | None, note: str | None) -> ReasonTag:
    """The tag staff asked for, checked: a reason of :data:`REASONS`; a note (trimmed) of at
    most :data:`REASON_NOTE_MAX` characters, required for "other"."""
    chosen = (reason or "").strip()
    if not chosen:
        raise ReasonTagError("reason", why.gettext("Choose a reason."))
    if chosen not in REASONS:
        raise ReasonTagError("reason", why.gettext(
            "%(reason)s is not one of the reasons: choose one from the list.",
            reason=chosen[:40]))
    text = (note or "").strip()
    if len(text) > REASON_NOTE_MAX:
        raise ReasonTagError("note", why.gettext(
            "At most %(max)s characters (%(count)s written).", max=REASON_NOTE_MAX,
            count=len(text)))
    if chosen == REASON_OTHER and not text:
        raise ReasonTagError("note", why.gettext(
            "Write a note: the reason \"other\" needs one."))
    return ReasonTag(chosen, text)


def reason_name(reason: str) -> Reason:
    """The reason's name as a message (shown in the reader's language)."""
    return why.gettext(EPISODE_REASONS[reason])


def reason_changes(client_id: int, episode_id: int, opened_on: date,
                   before: ReasonTag | None, after: ReasonTag, actor: str,
                   now: datetime) -> tuple[AuditEntry, Action]:
    """The audit row (``before`` → ``after``: the reason keys; the notes in its reasons) and
    the episode's :data:`REASON_TAGGED` action of one tagging."""
    reasons: list[str] = [why.gettext("episode #%(id)s, opened %(day)s: %(reason)s",
                                      id=episode_id, day=opened_on,
                                      reason=reason_name(after.reason))]
    if after.note:
        reasons.append(why.gettext("note: %(note)s", note=after.note))
    if before is not None and before.note and before.note != after.note:
        reasons.append(why.gettext("the note was: %(note)s", note=before.note))
    entry = AuditEntry(now, actor, REASON_AUDIT, client_id, None,
                       None if before is None else before.reason, after.reason, tuple(reasons))
    detail = after.reason if not after.note else f"{after.reason}: {after.note}"
    return entry, Action(REASON_TAGGED, now, actor, None, detail)
