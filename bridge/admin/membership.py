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
from bridge.engine.plan import Change
from bridge.model import ClientMemory
from bridge.store import inbox as queue
from bridge.whmcs import WhmcsError, WhmcsNotFound

LEASE = timedelta(minutes=5)  # as long as a worker's; released as soon as the action ends
BUSY = "Client {cid} is busy (a worker is reconciling it): try again in a moment."


class ClientBusy(Exception):
    """A worker (or another admin) holds the client's lease."""


@contextmanager
def client_lease(client_id: int) -> Iterator[None]:
    """Hold the client's lease for the block; :class:`ClientBusy` when someone else does."""
    # One owner per request: two requests of one admin must not share a (re-entrant) lease.
    owner = f"admin:{admin_name()[:40]}:{uuid.uuid4().hex[:8]}"
    store = rt().store
    if not queue.acquire_client(store, client_id, owner, service_now(), lease=LEASE):
        raise ClientBusy(BUSY.format(cid=client_id))
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
        return "; ".join(c.summary for c in self.applied) or "nothing to change"


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


# Each action as the flags it sets (None = left as is); pin and exclude undo each other, as
# staff moving a client into or out of VIP does (bridge.policy.vip.follow_staff_change).
ACTIONS: dict[str, tuple[bool | None, bool | None, str]] = {
    "pin": (True, False, "pinned: in VIP whatever the rules say, while paying"),
    "unpin": (False, None, "unpinned: the eligibility rules decide"),
    "exclude": (False, True, "excluded: never in VIP"),
    "include": (None, False, "taken off the exclusion list: the rules decide"),
}


def changed(memory: ClientMemory, action: str) -> ClientMemory:
    pinned, excluded, _ = ACTIONS[action]
    return replace(memory, pinned=memory.pinned if pinned is None else pinned,
                   excluded=memory.excluded if excluded is None else excluded)


class MembershipForm(FlaskForm):
    """One of the pin / unpin / exclude / include buttons (``action``), with an optional
    reason and the page to go back to."""

    action = SelectField("Action", choices=[SelectChoice(a) for a in ACTIONS],
                         validators=[InputRequired()])
    reason = StringField("Reason (optional)", validators=[Optional(), Length(max=200)])
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


def flash_reconciled(done: Reconciled, what: str, *, later: str) -> None:
    """Tell the admin what the reconcile after ``what`` did; ``later`` says what the next
    reconcile will do when this one could not."""
    if done.skipped:
        flash(f"{what}. No WHMCS API is configured: {later} at the next reconcile.", "warning")
    elif done.gone:
        flash(f"{what}, but WHMCS no longer has this client.", "warning")
    elif done.error:
        landed = f" ({done.summary} applied)" if done.applied else ""
        flash(f"{what}, but WHMCS failed{landed}: {done.error}. {later.capitalize()} at the "
              "next reconcile.", "warning")
    else:
        flash(f"{what}. WHMCS: {done.summary}.")


def with_client(client_id: int, work: Callable[[], None]) -> bool:
    """Run ``work`` under the client's lease; flash "busy" and return False when it is held."""
    try:
        with client_lease(client_id):
            work()
    except ClientBusy as busy:
        flash(str(busy), "warning")
        return False
    return True


@bp.route("/clients/<int:client_id>/membership", methods=["POST"], endpoint="membership")
def membership_action(client_id: int) -> Response:
    """Pin, unpin, exclude or include a client, then reconcile it at once."""
    form = MembershipForm()
    if not form.validate_on_submit():
        problems = "; ".join(f"{name}: {', '.join(errors)}"
                             for name, errors in form.errors.items())
        flash(f"Nothing changed: {problems}", "error")
        return back_to("admin.client", client_id=client_id)
    action, reason = form.action.data or "", (form.reason.data or "").strip()
    if client_exists(client_id) is False:
        flash(f"Nothing changed: WHMCS has no client {client_id}.", "error")
        return back_to("admin.client", client_id=client_id)

    def work() -> None:
        store = rt().store
        before = store.get_memory(client_id)
        after = changed(before, action)
        if (after.pinned, after.excluded) == (before.pinned, before.excluded):
            flash(f"Client {client_id} is already {describe(before)}: nothing changed.")
            return
        store.save_memory(after, business_now())
        audit(action, client_id=client_id, before=describe(before), after=describe(after),
              reasons=(f"{ACTIONS[action][2]} (admin page)",) + ((reason,) if reason else ()))
        flash_reconciled(reconcile_now(client_id),
                         f"Client {client_id} {ACTIONS[action][2].split(':')[0]}",
                         later="the group will be fixed")

    with_client(client_id, work)
    return back_to("admin.client", client_id=client_id)
