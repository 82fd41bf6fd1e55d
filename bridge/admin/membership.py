"""What the roster, the client page and the promises page share: working on one client under
its lease, reconciling it at once, and the pin / unpin / exclude / include actions.

An admin action holds the client's lease (``bridge.store.inbox``) like a worker does, so it never
interleaves with a worker's reconcile of the same client; a client a worker holds is "busy"
and nothing changes. The change is then reconciled at once (WHMCS follows without waiting for
an event); when WHMCS fails, vipgate's memory keeps the change and the next reconcile applies
it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta

from flask import flash
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import HiddenField, SelectField, StringField

# types-WTForms (3.2) predates SelectChoice (WTForms 3.3).
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]
from wtforms.validators import InputRequired, Length, Optional

from bridge.admin.common import (
    admin_name,
    audit,
    back_to,
    bp,
    business_now,
    rt,
    service_now,
    whmcs,
)
from bridge.admin.language import current
from bridge.engine.plan import Change
from bridge.i18n import N_, why
from bridge.model import ClientMemory, Reason
from bridge.store import inbox as queue
from bridge.whmcs import WhmcsError, WhmcsNotFound

LEASE = timedelta(minutes=5)  # as long as a worker's; released as soon as the action ends


class ClientBusy(Exception):
    """A worker (or another admin) holds the client's lease (``args[0]``: the client)."""


@contextmanager
def client_lease(client_id: int) -> Iterator[None]:
    """Hold the client's lease for the block; :class:`ClientBusy` when someone else does."""
    # One owner per request: two requests of one admin must not share a (re-entrant) lease.
    owner = f"admin:{admin_name()[:40]}:{uuid.uuid4().hex[:8]}"
    store = rt().store
    if not queue.acquire_client(store, client_id, owner, service_now(), lease=LEASE):
        raise ClientBusy(client_id)
    try:
        yield
    finally:
        queue.release_client(store, client_id, owner)


@dataclass
class Reconciled:
    """What reconciling one client did: the changes that landed, or why it stopped."""

    applied: list[Change] = field(default_factory=list)
    error: str | None = None  # WHMCS failed (changes listed in ``applied`` did land)
    gone: bool = False  # WHMCS has no such client
    skipped: bool = False  # no WHMCS API configured

    @property
    def summary(self) -> str:
        """The changes in English (``Change.summary``), for the audit log's after column."""
        return "; ".join(c.summary for c in self.applied) or "nothing to change"

    def reasons(self) -> tuple[Reason, ...]:
        """The changes as messages, for the audit log's reasons."""
        return tuple(c.summary for c in self.applied) or (
            why.gettext("nothing to change"),)

    def shown(self) -> str:
        """The changes in the page's language, groups by their WHMCS names."""
        names, t = rt().store.whmcs_names(), current()
        return "; ".join(t.reason(r, names) for r in self.reasons())


def reconcile_now(client_id: int) -> Reconciled:
    """Make WHMCS match policy for the client now. The caller holds the client's lease."""
    engine = rt().engine
    if engine is None:
        return Reconciled(skipped=True)
    done = Reconciled()
    try:
        plan = engine.plan(client_id)
        if plan is None:
            done.gone = True
            return done
        engine.apply(plan, applied=done.applied)
    except WhmcsError as exc:
        done.error = str(exc)
    return done


def describe(memory: ClientMemory) -> str:
    """``pinned``, ``excluded`` or ``rules`` (the eligibility rules decide)."""
    flags = [name for name, on in (("pinned", memory.pinned), ("excluded", memory.excluded))
             if on]
    return "+".join(flags) or "rules"


# A client's membership as ``describe`` names it (kept so in the audit log), for people.
STATES = {"pinned": N_("pinned"), "excluded": N_("excluded"), "rules": N_("rules"),
          "pinned+excluded": N_("pinned+excluded")}

# Each action as the flags it sets (None = left as is); pin and exclude undo each other, as
# staff moving a client into or out of VIP does (bridge.policy.vip.follow_staff_change); its
# audit reason, and what the flash says was done.
ACTIONS: dict[str, tuple[bool | None, bool | None, str, str]] = {
    "pin": (True, False, N_("pinned: in VIP whatever the rules say, while paying (admin page)"),
            N_("Client %(id)s pinned")),
    "unpin": (False, None, N_("unpinned: the eligibility rules decide (admin page)"),
              N_("Client %(id)s unpinned")),
    "exclude": (False, True, N_("excluded: never in VIP (admin page)"),
                N_("Client %(id)s excluded")),
    "include": (None, False, N_("taken off the exclusion list: the rules decide (admin page)"),
                N_("Client %(id)s taken off the exclusion list")),
}


def changed(memory: ClientMemory, action: str) -> ClientMemory:
    pinned, excluded, _reason, _done = ACTIONS[action]
    return replace(memory, pinned=memory.pinned if pinned is None else pinned,
                   excluded=memory.excluded if excluded is None else excluded)


class MembershipForm(FlaskForm):
    """One of the pin / unpin / exclude / include buttons (``action``), with an optional
    reason and the page to go back to."""

    action = SelectField(lazy_gettext("Action"), choices=[SelectChoice(a) for a in ACTIONS],
                         validators=[InputRequired()])
    reason = StringField(lazy_gettext("Reason (optional)"),
                         validators=[Optional(), Length(max=200, message=lazy_gettext(
                             "At most %(max)s characters.", max=200))])
    next = HiddenField()


def client_exists(client_id: int) -> bool | None:
    """Whether WHMCS has the client; None when WHMCS cannot tell (not configured or
    unreachable)."""
    api = whmcs()
    if api is None:
        return None
    try:
        api.get_client(client_id)
    except WhmcsNotFound:
        return False
    except WhmcsError:
        return None
    return True


# What the next reconcile does when this one could not: in a sentence, and as one.
LATER = {"group": (N_("the group will be fixed at the next reconcile"),
                   N_("The group will be fixed at the next reconcile.")),
         "tickets": (N_("its tickets will follow at the next reconcile"),
                     N_("Its tickets will follow at the next reconcile."))}


def flash_reconciled(done: Reconciled, what: str, *, later: str) -> None:
    """Tell the admin what the reconcile after ``what`` (in the page's language) did;
    ``later`` (a key of :data:`LATER`) says what the next reconcile will do when this one
    could not."""
    if done.skipped:
        flash(_("%(what)s. No WHMCS API is configured: %(later)s.", what=what,
                later=_(LATER[later][0])), "warning")
    elif done.gone:
        flash(_("%(what)s, but WHMCS no longer has this client.", what=what), "warning")
    elif done.error and done.applied:
        flash(_("%(what)s, but WHMCS failed (%(applied)s applied): %(error)s. %(later)s",
                what=what, applied=done.shown(), error=done.error, later=_(LATER[later][1])),
              "warning")
    elif done.error:
        flash(_("%(what)s, but WHMCS failed: %(error)s. %(later)s", what=what,
                error=done.error, later=_(LATER[later][1])), "warning")
    else:
        flash(_("%(what)s. WHMCS: %(changes)s.", what=what, changes=done.shown()))


def with_client(client_id: int, work: Callable[[], None]) -> bool:
    """Run ``work`` under the client's lease; flash "busy" and return False when it is held."""
    try:
        with client_lease(client_id):
            work()
    except ClientBusy:
        flash(_("Client %(id)s is busy (a worker is reconciling it): try again in a moment.",
                id=client_id), "warning")
        return False
    return True


@bp.route("/clients/<int:client_id>/membership", methods=["POST"], endpoint="membership")
def membership_action(client_id: int) -> Response:
    """Pin, unpin, exclude or include a client, then reconcile it at once."""
    form = MembershipForm()
    if not form.validate_on_submit():
        problems = "; ".join(f"{form[name].label.text}: {', '.join(errors)}"
                             for name, errors in form.errors.items())
        flash(_("Nothing changed: %(problems)s", problems=problems), "error")
        return back_to("admin.client", client_id=client_id)
    action, reason = form.action.data or "", (form.reason.data or "").strip()
    if client_exists(client_id) is False:
        flash(_("Nothing changed: WHMCS has no client %(id)s.", id=client_id), "error")
        return back_to("admin.client", client_id=client_id)

    def work() -> None:
        store = rt().store
        before = store.get_memory(client_id)
        after = changed(before, action)
        if (after.pinned, after.excluded) == (before.pinned, before.excluded):
            flash(_("Client %(id)s is already %(state)s: nothing changed.", id=client_id,
                    state=_(STATES[describe(before)])))
            return
        store.save_memory(after, business_now())
        audit(action, client_id=client_id, before=describe(before), after=describe(after),
              reasons=(why.gettext(ACTIONS[action][2]),) + ((reason,) if reason else ()))
        flash_reconciled(reconcile_now(client_id), _(ACTIONS[action][3], id=client_id),
                         later="group")

    with_client(client_id, work)
    return back_to("admin.client", client_id=client_id)
