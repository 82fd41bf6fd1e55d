"""Client lookup: find a client (by id, or by name/e-mail through WHMCS's GetClients search)
and see why vipgate treats it as it does: standing and VIP decision with their reasons (a
fresh plan: WHMCS is read, nothing applied), the changes a reconcile would make, open tickets
with vipgate's record of their priority, membership memory, promise to pay, history; plus a
"reconcile now" button. When WHMCS cannot answer, the cached standing is shown instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from itertools import islice

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext, ngettext
from werkzeug.wrappers import Response

from bridge.admin import membership
from bridge.admin.common import admin_name, audit, bp, business_now, business_today, rt, whmcs
from bridge.admin.language import current
from bridge.admin.localtime import shown
from bridge.engine.plan import ClientPlan
from bridge.engine.reconcile import ACTIVE_TICKETS
from bridge.i18n import EPISODE_ACTIONS
from bridge.model import CachedStanding, WhmcsNames, client_name
from bridge.policy.episodes import REASON_NOTE_MAX, REASONS, ReasonTagError, check_reason
from bridge.policy.vip import hold_time
from bridge.whmcs import WhmcsError, WhmcsNotFound
from bridge.whmcs.models import ClientDetails, Ticket

SEARCH_LIMIT = 50  # GetClients rows read for a name/e-mail search
TICKET_LIMIT = 100  # open tickets shown
HISTORY = 50  # audit rows on the client page; the audit page has the rest


def group_label(group_id: int | None, vip_group_id: int,
                names: Mapping[int, str] | None = None) -> str:
    """A group for people: its name when WHMCS gave the names, else its id."""
    if group_id is None:
        return _("not seen yet")
    if group_id == 0:
        return _("no group")
    name = (names or {}).get(group_id)
    if vip_group_id and group_id == vip_group_id:
        return f"VIP: {name} ({group_id})" if name else f"VIP ({group_id})"
    return f"{name} ({group_id})" if name else _("group %(id)s", id=group_id)


@dataclass
class Found:
    """A search: ``ids`` None when there was nothing to search for."""

    query: str = ""
    ids: list[int] | None = None
    names: dict[int, str] = field(default_factory=dict)
    emails: dict[int, str] = field(default_factory=dict)
    notice: str | None = None
    more: bool = False  # more matches than SEARCH_LIMIT
    missing: set[int] = field(default_factory=set)  # ids WHMCS says it does not have


def find_clients(query: str) -> Found:
    """A client id (``42`` or ``#42``), or a name/e-mail prefix searched in WHMCS (the first
    :data:`SEARCH_LIMIT` matches). WHMCS's answer is never required for an id."""
    query = query.strip()[:100]
    found = Found(query)
    if not query:
        return found
    api = whmcs()
    if query.lstrip("#").isdigit():
        cid = int(query.lstrip("#"))
        found.ids = [cid]
        if api is not None:
            try:
                details = api.get_client(cid)
                found.names[cid] = client_name(details.firstname, details.lastname,
                                               details.companyname)
                found.emails[cid] = details.email
            except WhmcsNotFound:
                found.notice = _("WHMCS has no client %(id)s.", id=cid)
                found.missing.add(cid)
            except WhmcsError as exc:
                found.notice = _("WHMCS could not be asked for the client's name: %(error)s",
                                 error=exc)
        return found
    found.ids = []
    if api is None:
        found.notice = _("Searching by name or e-mail needs WHMCS's API ([whmcs] url).")
        return found
    try:
        rows = list(islice(api.iter_clients(search=query, page_size=SEARCH_LIMIT + 1),
                           SEARCH_LIMIT + 1))
    except WhmcsError as exc:
        found.notice = _("WHMCS could not be searched: %(error)s", error=exc)
        return found
    found.more = len(rows) > SEARCH_LIMIT
    for row in rows[:SEARCH_LIMIT]:
        found.ids.append(row.id)
        found.names[row.id] = client_name(row.firstname, row.lastname, row.companyname)
        found.emails[row.id] = row.email
    return found


@bp.route("/clients", endpoint="clients")
def clients() -> str | Response:
    query = request.args.get("q", "").strip()
    if query.lstrip("#").isdigit():
        return redirect(url_for("admin.client", client_id=int(query.lstrip("#"))))
    found = find_clients(query)
    store, vip = rt().store, rt().settings.policy.vip_group_id
    rows = {r.client_id: r for r in store.roster("all", vip, client_ids=found.ids,
                                                 limit=SEARCH_LIMIT)} if found.ids else {}
    return render_template("admin/clients.html", title=_("Clients"), found=found, rows=rows,
                           vip=vip, group_label=group_label, groups=store.whmcs_names().groups)


# --- one client -------------------------------------------------------------------------------

@dataclass
class Live:
    """What WHMCS says now, and the plan vipgate makes from it (nothing applied)."""

    details: ClientDetails
    plan: ClientPlan
    tickets: list[Ticket]
    groups: dict[int, str]  # group names by id


def read_live(client_id: int) -> tuple[Live | None, str | None]:
    """WHMCS's view and the plan, or (None, why not). 404 when WHMCS has no such client."""
    engine, api = rt().engine, whmcs()
    if engine is None or api is None:
        return None, _("No WHMCS API is configured ([whmcs] url).")
    try:
        try:
            details = api.get_client(client_id)
        except WhmcsNotFound:
            abort(404, _("WHMCS has no client %(id)s.", id=client_id))
        plan = engine.plan(client_id)
        if plan is None:
            abort(404, _("WHMCS has no client %(id)s.", id=client_id))
        tickets = list(islice(api.iter_tickets(clientid=client_id, status=ACTIVE_TICKETS),
                              TICKET_LIMIT))
        groups = {g.id: g.name for g in api.get_client_groups()}
    except WhmcsError as exc:
        return None, _("WHMCS could not be read (%(error)s).", error=exc)
    return Live(details, plan, tickets, groups), None


def cached_reasons(cached: CachedStanding, names: WhmcsNames) -> list[str]:
    """The cached standing's reasons in the page's language; rows cached before the reasons
    were kept (they keep the invoices only) in words made from the invoices."""
    t = current()
    if cached.standing_reasons:
        return [t.reason(r, names) for r in cached.standing_reasons]

    def money(amount: Decimal) -> str:
        return t.money(amount, cached.currency_prefix, cached.currency_suffix)

    lines = [_("invoice #%(number)s %(amount)s due %(day)s", number=i.number,
               amount=money(i.balance), day=t.day(i.due_date)) for i in cached.invoices]
    if cached.overdue_total:
        lines.append(ngettext("overdue total %(amount)s, oldest %(num)d day",
                              "overdue total %(amount)s, oldest %(num)d days",
                              cached.overdue_days, amount=money(cached.overdue_total)))
    return lines or [_("nothing overdue past the grace")]


@dataclass(frozen=True)
class TicketLine:
    id: int
    tid: str
    subject: str
    deptid: int
    billing: bool
    status: str
    priority: str
    planned: str | None  # the priority a reconcile would set
    original: str | None
    managed: str | None
    note_key: str | None


def ticket_lines(client_id: int, live: Live | None) -> list[TicketLine]:
    """Open tickets (from WHMCS) with vipgate's record; without WHMCS, the records alone."""
    records = rt().store.ticket_memories(client_id)
    billing = set(rt().settings.tickets.billing_departments)
    if live is None:
        return [TicketLine(r.ticket_id, "", "", 0, False, "", "", None, r.original_priority,
                           r.managed_priority, r.note_key) for r in records.values()]
    planned = {c.ticket_id: c.after for c in live.plan.changes if c.kind == "ticket_priority"}
    lines = []
    for t in live.tickets:
        record = records.get(t.id)
        lines.append(TicketLine(
            t.id, t.tid, t.subject, t.deptid, t.deptid in billing, t.status, t.priority,
            planned.get(t.id), record.original_priority if record else None,
            record.managed_priority if record else None, record.note_key if record else None))
    return lines


def staff_hold(since: datetime, by: str | None) -> str:
    """``staff hold since 2026-12-03 14:05 UTC by alice``, in the page's language."""
    if by:
        return _("staff hold since %(at)s by %(by)s", at=hold_time(since), by=by)
    return _("staff hold since %(at)s", at=hold_time(since))


EPISODES = 20  # the newest episodes shown on the client page

# How an episode ended and what was done during it, as the client page names them
# (bridge.policy.episodes.END_KINDS, ACTION_KINDS).
EPISODE_ENDS = {"paid": lazy_gettext("paid"), "cancelled": lazy_gettext("invoice cancelled"),
                "client_closed": lazy_gettext("client closed"),
                "client_gone": lazy_gettext("client deleted from WHMCS"),
                "other": lazy_gettext("no longer overdue, neither paid nor cancelled")}

@dataclass(frozen=True)
class ReasonForm:
    """A reason tag staff sent for one episode and what was wrong with it."""

    episode_id: int
    reason: str
    note: str
    field: str  # reason | note
    message: str


@bp.route("/clients/<int:client_id>", endpoint="client")
def client(client_id: int) -> str:
    return _client_page(client_id)[0]


def _client_page(client_id: int, refused: ReasonForm | None = None,
                 status: int = 200) -> tuple[str, int]:
    store = rt().store
    t = current()
    live, notice = read_live(client_id)
    promise = store.get_promise(client_id)
    cached = store.get_standing(client_id)
    memory = store.get_memory(client_id)
    names = store.whmcs_names()
    return render_template(
        "admin/client.html", title=_("Client %(id)s", id=client_id), client_id=client_id,
        live=live,
        notice=notice, cached=cached,
        cached_reasons=cached_reasons(cached, names) if cached else [],
        memory=memory, tickets=ticket_lines(client_id, live),
        promise=promise, promise_active=bool(promise and promise[0] >= business_today()),
        history=store.recent_audit(client_id, HISTORY), history_limit=HISTORY, names=names,
        episodes=store.episodes(client_id, limit=EPISODES), episode_ends=EPISODE_ENDS,
        episode_actions={k: t.episode_action(k) for k in EPISODE_ACTIONS}, refused=refused,
        note_max=REASON_NOTE_MAX,
        reason_names={r: t.episode_reason(r) for r in REASONS},
        vip=rt().settings.policy.vip_group_id, group_label=group_label, shown=shown,
        tz=rt().settings.bridge.timezone,
        hold=staff_hold(memory.held_since, memory.held_by) if memory.held_since else "",
        name=client_name(live.details.firstname, live.details.lastname,
                         live.details.companyname) if live else (cached.name or "") if cached
        else ""), status


@bp.route("/clients/<int:client_id>/episodes/<int:episode_id>/reason",
          methods=["GET", "POST"], endpoint="episode_reason")
def episode_reason(client_id: int, episode_id: int) -> tuple[str, int] | Response:
    """Tag (or re-tag) why the client stopped paying in this episode; audited. A GET (the
    language switch of a refused form's page) goes back to the client's page."""
    if request.method == "GET":
        return redirect(url_for("admin.client", client_id=client_id, _anchor="episodes"))
    reason, note = request.form.get("reason", ""), request.form.get("note", "")
    t = current()
    try:
        tag = check_reason(reason, note)
    except ReasonTagError as exc:
        return _client_page(client_id, ReasonForm(episode_id, reason.strip(), note.strip(),
                                                  exc.field, t.reason(exc.message)), 400)
    try:
        before = rt().store.tag_reason(client_id, episode_id, tag, admin_name(), business_now())
    except LookupError:
        abort(404, _("Client %(id)s has no episode %(episode)s.", id=client_id,
                     episode=episode_id))
    after = t.episode_reason(tag.reason)
    if before is None:
        flash(_("Reason of episode #%(episode)s saved: %(reason)s.", episode=episode_id,
                reason=after))
    else:
        flash(_("Reason of episode #%(episode)s changed: %(before)s → %(after)s.",
                episode=episode_id, before=t.episode_reason(before.reason), after=after))
    return redirect(url_for("admin.client", client_id=client_id, _anchor="episodes"))


@bp.route("/clients/<int:client_id>/reconcile", methods=["POST"], endpoint="client_reconcile")
def reconcile(client_id: int) -> Response:
    """Make WHMCS match policy for this client now (under its lease), audited."""
    def work() -> None:
        done = membership.reconcile_now(client_id)
        if done.skipped:
            flash(_("No WHMCS API is configured ([whmcs] url): nothing to reconcile."), "error")
            return
        if done.gone:
            flash(_("WHMCS has no client %(id)s.", id=client_id), "error")
            return
        after = done.summary if done.error is None else f"failed: {done.error}"
        audit("reconcile", client_id=client_id, after=after, reasons=done.reasons())
        if done.error and done.applied:
            flash(_("WHMCS failed: %(error)s. Applied before the failure: %(changes)s.",
                    error=done.error, changes=done.shown()), "error")
        elif done.error:
            flash(_("WHMCS failed: %(error)s.", error=done.error), "error")
        else:
            flash(_("Reconciled client %(id)s: %(changes)s.", id=client_id,
                    changes=done.shown()))

    membership.with_client(client_id, work)
    return redirect(url_for("admin.client", client_id=client_id))
