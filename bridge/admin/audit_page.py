"""The audit log (``/admin/audit``): every change vipgate made, every staff decision it
followed, every admin action; filtered by client, action, actor and days (in WHMCS's time
zone), newest first, a page at a time; ``/admin/audit.csv`` exports every matching row.

Paging is by offset over ``(at, id)`` descending, which ix_audit_at / ix_audit_client_at
answer; the count stops at :data:`COUNT_CAP` so a large table never makes the page slow (past
it, narrow the days or export). The export streams the rows a keyset page at a time.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date

from flask import Response, render_template, request, stream_with_context
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from wtforms import Form, SelectField, StringField

# types-WTForms (3.2) predates SelectChoice (WTForms 3.3).
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]

from bridge import accounts
from bridge.admin.common import _safe_cell, bp, page_from_request, rt
from bridge.admin.language import current
from bridge.admin.localtime import day_end_utc, day_start_utc, shown, to_local
from bridge.admin.overview import slow_checks
from bridge.model import WhmcsNames
from bridge.store.audit import AuditFilter

PAGE_SIZE = 50
COUNT_CAP = 10_000
CSV_PAGE = 1000
CSV_HEADER = ("id", "at", "actor", "action", "client_id", "ticket_id", "before", "after",
              "reasons", "event_id")
MAX_CLIENT_ID = 2**31 - 1


class AuditFilterForm(Form):
    """The GET form above the log (no CSRF: it changes nothing)."""

    client_id = StringField(lazy_gettext("Client id"),
                            render_kw={"inputmode": "numeric", "size": 10})
    action = SelectField(lazy_gettext("Action"), choices=[SelectChoice("", lazy_gettext("any"))],
                         validate_choice=False)
    actor = StringField(lazy_gettext("Actor"), render_kw={"list": "audit-actors", "size": 14,
                                            "maxlength": 64})
    since = StringField(lazy_gettext("From"), render_kw={"type": "date"})
    until = StringField(lazy_gettext("To"), render_kw={"type": "date"})


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def parse_filters(form: AuditFilterForm) -> AuditFilter | None:
    """The filter the form asks for; None when a field is wrong (its error is set on it)."""
    client_text = (form.client_id.data or "").strip()
    client_id = None
    if client_text:
        if client_text.isascii() and client_text.isdigit() and 0 < int(client_text) \
                <= MAX_CLIENT_ID:
            client_id = int(client_text)
        else:
            form.client_id.errors = [_("A client id is a whole number above 0, e.g. 1042.")]
    action = (form.action.data or "").strip() or None
    if action is not None and len(action) > 32:
        form.action.errors = [_("No such action (at most 32 characters).")]
    actor = (form.actor.data or "").strip() or None
    if actor is not None and len(actor) > 64:
        form.actor.errors = [_("An actor name has at most 64 characters.")]
    days: dict[str, date | None] = {}
    for field in (form.since, form.until):
        text = (field.data or "").strip()
        days[field.name] = _day(text) if text else None
        if text and days[field.name] is None:
            field.errors = [_("Enter a date as YYYY-MM-DD, e.g. 2026-11-21.")]
    since, until = days["since"], days["until"]
    if since and until and since > until:
        form.until.errors = [_("The end date is before the start date.")]
    if any(f.errors for f in form):
        return None
    return AuditFilter(client_id=client_id, action=action, actor=actor,
                       since=day_start_utc(since) if since else None,
                       until=day_end_utc(until) if until else None)


def _form() -> tuple[AuditFilterForm, AuditFilter | None, list[str]]:
    """The form from the query string, its filter, and the actor names to suggest."""
    form = AuditFilterForm(request.args)
    store = rt().store
    actions, _checked_at = slow_checks().get(("audit_actions",), rt().clock(), store.audit_actions)
    chosen = (form.action.data or "").strip()
    t = current()
    form.action.choices = [SelectChoice("", _("any")),
                           *(SelectChoice(a, t.audit_action(a)) for a in actions),
                           *([SelectChoice(chosen, chosen)]
                             if chosen and chosen not in actions else [])]
    actors = ["vipgate", "staff", *accounts.users(store)]
    return form, parse_filters(form), actors


def _bad_filters(form: AuditFilterForm, actors: list[str]) -> tuple[str, int]:
    return render_template("admin/audit.html", title=_("Audit log"), form=form, actors=actors,
                           entries=[], page=None, capped=False, shown=shown, tz="",
                           csv_args={}, names=WhmcsNames(), client_names={}), 400


@bp.route("/audit", endpoint="audit")
def view() -> tuple[str, int]:
    form, filters, actors = _form()
    if filters is None:
        return _bad_filters(form, actors)
    store = rt().store
    total = store.audit_count(filters, cap=COUNT_CAP)
    page = page_from_request(total, PAGE_SIZE)
    entries = store.audit_page(filters, limit=page.size, offset=page.offset)
    csv_args = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template("admin/audit.html", title=_("Audit log"), form=form, actors=actors,
                           entries=entries, page=page, capped=total >= COUNT_CAP,
                           shown=shown, tz=rt().settings.bridge.timezone,
                           csv_args=csv_args, names=store.whmcs_names(),
                           client_names=store.client_names(
                               e.client_id for e in entries if e.client_id is not None)), 200


def csv_rows(filters: AuditFilter) -> Iterator[str]:
    """The export, a line at a time: every matching row, newest first, cells that a
    spreadsheet would run as a formula quoted with '."""
    out = io.StringIO()
    writer = csv.writer(out)

    def line(cells: tuple[object, ...]) -> str:
        out.seek(0)
        out.truncate()
        writer.writerow([_safe_cell(c) for c in cells])
        return out.getvalue()

    yield line(CSV_HEADER)
    for e in rt().store.iter_audit(filters, page=CSV_PAGE):
        local = to_local(e.at)
        yield line((e.id, local.isoformat() if local else "", e.actor, e.action,
                    e.client_id, e.ticket_id, e.before, e.after, " | ".join(e.reasons),
                    e.event_id))


@bp.route("/audit.csv", endpoint="audit_csv")
def export() -> Response | tuple[str, int]:
    form, filters, actors = _form()
    if filters is None:
        return _bad_filters(form, actors)
    return Response(stream_with_context(csv_rows(filters)), mimetype="text/csv",
                    headers={"Content-Disposition":
                             'attachment; filename="vipgate-audit.csv"'})
