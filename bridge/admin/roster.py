"""The VIP roster: the clients in VIP, pinned, excluded, eligible but out of VIP (owing), and
every client vipgate knows; searched by id or by name/e-mail through WHMCS; pin, unpin, exclude
and include buttons on each row (``bridge.admin.membership``).

"In VIP" is the group vipgate last saw (or set) in WHMCS (``membership.last_group_id``), not
the last plan's wish (``standing.in_vip``): a resync caches its decisions before applying them,
and a write that failed leaves the wish ahead of WHMCS. Where the two differ the row says what
the next reconcile will do.

Each client is named as WHMCS has it (``bridge.model.client_name``), from the standing cache:
the engine and the resync keep the name they read with the rest of the client, so the page
asks WHMCS nothing for it; a search's answer from WHMCS is fresher and wins; ``#123`` alone
until the client is read again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flask import render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext, ngettext

from bridge.admin import membership  # noqa: F401  (the pin/unpin/exclude/include view)
from bridge.admin.clients import find_clients, group_label, staff_hold
from bridge.admin.common import bp, page_from_request, rt
from bridge.admin.language import current
from bridge.store.standing import ROSTER_TABS, RosterRow

TABS: dict[str, object] = {  # the labels are translated when shown (lazy strings)
    "members": lazy_gettext("In VIP"),
    "pinned": lazy_gettext("Pinned"),
    "excluded": lazy_gettext("Excluded"),
    "eligible": lazy_gettext("Eligible, not in VIP"),
    "all": lazy_gettext("All known"),
}
assert tuple(TABS) == ROSTER_TABS


@dataclass(frozen=True)
class Line:
    """One roster row as the page shows it."""

    client_id: int
    name: str
    pinned: bool
    excluded: bool
    member: bool
    group: str
    standing: str | None  # billing standing: current, overdue, suspended (None: not cached)
    promise: bool  # a promise to pay makes the client current for tickets
    overdue: str
    pending: str | None  # what the next reconcile will do with the group, if anything
    held: str | None = None  # "staff hold since ...": staff put it in VIP while it owed


def line(row: RosterRow, vip_group_id: int, name: str = "",
         groups: Mapping[int, str] | None = None) -> Line:
    cached = row.standing
    member = bool(vip_group_id) and row.last_group_id == vip_group_id
    kind, promise, overdue, pending = None, False, "", None
    if cached is not None:
        kind = cached.billing_standing or cached.standing
        promise = cached.standing == "current" and kind != "current"
        if cached.overdue_total:
            overdue = (current().money(cached.overdue_total, cached.currency_prefix,
                                       cached.currency_suffix) + " · "
                       + ngettext("%(num)d day", "%(num)d days", cached.overdue_days))
        if cached.in_vip is not None and cached.in_vip != member and vip_group_id:
            pending = _("joins VIP") if cached.in_vip else _("leaves VIP")
    held = None if row.held_since is None else staff_hold(row.held_since, row.held_by)
    if not name and cached is not None:
        name = cached.name or ""  # as WHMCS had it when vipgate last read the client
    return Line(row.client_id, name, row.pinned, row.excluded, member,
                group_label(row.last_group_id, vip_group_id, groups), kind, promise, overdue,
                pending, held)


@bp.route("/roster", endpoint="roster")
def roster() -> str:
    store = rt().store
    vip = rt().settings.policy.vip_group_id
    tab = request.args.get("tab", "members")
    if tab not in TABS:
        tab = "members"
    found = find_clients(request.args.get("q", ""))
    counts = store.roster_counts(vip, client_ids=found.ids)
    page = page_from_request(counts[tab])
    rows = store.roster(tab, vip, client_ids=found.ids, offset=page.offset, limit=page.size)
    groups = store.whmcs_names().groups
    lines = [line(r, vip, found.names.get(r.client_id, ""), groups) for r in rows]
    unseen = []
    if found.ids:  # found in WHMCS (or asked by id) but never reconciled by vipgate
        known = set(store.memories(found.ids))
        unseen = [cid for cid in found.ids if cid not in known and cid not in found.missing]
    return render_template("admin/roster.html", title=_("VIP roster"), tabs=TABS, tab=tab,
                           counts=counts, page=page, lines=lines, found=found, unseen=unseen,
                           vip=vip)
