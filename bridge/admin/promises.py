"""Promises to pay: staff register that a client promised to pay by a date. Until then the
client counts as current for its tickets (and for VIP when ``[policy] promise_restores_vip``
is on). One promise per client: a new one replaces the old. Creating or cancelling reconciles
the client at once, under its lease, so its tickets follow without waiting for an event.
"""

from __future__ import annotations

from datetime import date, timedelta

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import DateField, IntegerField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, ValidationError

from bridge.admin import membership
from bridge.admin.common import (
    admin_name,
    audit,
    back_to,
    bp,
    business_now,
    business_today,
    page_from_request,
    rt,
)
from bridge.admin.language import current
from bridge.admin.localtime import shown
from bridge.i18n import why
from bridge.model import AuditEntry
from bridge.policy.episodes import PROMISE, Action, EpisodeStep

MAX_DAYS_AHEAD = 90  # a promise further out is a payment plan, not a promise
NOTE_MAX = 500


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


class PromiseForm(FlaskForm):
    client_id = IntegerField(lazy_gettext("Client id"), validators=[
        InputRequired(lazy_gettext("Enter the client's id.")),
        NumberRange(min=1, message=lazy_gettext("A client id is a whole number from 1."))])
    until = DateField(lazy_gettext("Pays by"), validators=[
        InputRequired(lazy_gettext("Enter the date the client promised to pay by."))])
    note = TextAreaField(lazy_gettext("Note"), filters=[_strip], validators=[
        DataRequired(lazy_gettext("Write what was agreed (kept in the audit log).")),
        Length(max=NOTE_MAX, message=lazy_gettext("At most %(max)s characters.",
                                                  max=NOTE_MAX))])

    def validate_until(self, field: DateField) -> None:
        if field.data is None:  # not a date: DateField said so
            return
        today: date = business_today()
        if field.data < today:
            raise ValidationError(_("The date is in the past: today is %(today)s.",
                                    today=current().day(today)))
        last = today + timedelta(days=MAX_DAYS_AHEAD)
        if field.data > last:
            raise ValidationError(_("At most %(days)s days ahead (until %(last)s).",
                                    days=MAX_DAYS_AHEAD, last=current().day(last)))


def _render(form: PromiseForm, status: int = 200) -> tuple[str, int]:
    today = business_today()
    records = rt().store.promise_records()
    active = sorted((r for r in records if r.until >= today), key=lambda r: r.until)
    expired = [r for r in records if r.until < today]
    page = page_from_request(len(expired))
    expired = expired[page.offset:page.offset + page.size]
    return render_template(
        "admin/promises.html", title=_("Promises to pay"), form=form, today=today,
        active=active, expired=expired, page=page,
        names=rt().store.client_names(r.client_id for r in (*active, *expired)),
        max_days=MAX_DAYS_AHEAD, note_max=NOTE_MAX, shown=shown,
        tz=rt().settings.bridge.timezone,
        restores_vip=rt().settings.policy.promise_restores_vip), status


@bp.route("/promises", methods=["GET", "POST"], endpoint="promises")
def promises() -> tuple[str, int] | Response:
    if request.method == "GET":
        wanted = request.args.get("client_id", "")
        form = PromiseForm(data={"client_id": int(wanted)} if wanted.isdigit() else None)
        return _render(form)
    form = PromiseForm()
    if not form.validate_on_submit():
        return _render(form, 400)
    client_id, until, note = int(form.client_id.data or 0), form.until.data, form.note.data
    assert until is not None and note is not None
    exists = membership.client_exists(client_id)
    if exists is False:
        form.client_id.errors = [*form.client_id.errors,
                                 _("WHMCS has no client %(id)s.", id=client_id)]
        return _render(form, 400)
    if exists is None and rt().engine is not None:
        flash(_("WHMCS could not be reached to check that client %(id)s exists.",
                id=client_id), "warning")

    def work() -> None:
        store = rt().store
        previous = store.get_promise(client_id)
        now = business_now()
        store.set_promise(client_id, until, note, admin_name(), now)
        # the audit row, and the promise as an action of the client's open episode (if any)
        store.record(client_id, [AuditEntry(
            now, admin_name(), "promise", client_id, None,
            f"until {previous[0].isoformat()}" if previous else None,
            f"until {until.isoformat()}", (note,))],
            EpisodeStep(actions=(Action(PROMISE, now, admin_name(), None,
                                        f"until {until.isoformat()}"),)), now)
        t = current()
        what = (_("Promise to pay by %(until)s saved for client %(id)s (it replaces the one "
                  "until %(previous)s)", until=t.day(until), id=client_id,
                  previous=t.day(previous[0])) if previous else
                _("Promise to pay by %(until)s saved for client %(id)s", until=t.day(until),
                  id=client_id))
        membership.flash_reconciled(membership.reconcile_now(client_id), what,
                                    later="tickets")

    if not membership.with_client(client_id, work):
        return _render(form, 409)
    return redirect(url_for("admin.promises"))


@bp.route("/promises/<int:client_id>/cancel", methods=["POST"], endpoint="promise_cancel")
def cancel(client_id: int) -> Response:
    """Cancel (or, once expired, remove) a client's promise; reconcile the client."""
    def work() -> None:
        store = rt().store
        previous = store.get_promise(client_id)
        if previous is None:
            flash(_("Client %(id)s has no promise to pay.", id=client_id), "warning")
            return
        store.clear_promise(client_id)
        audit("promise_cancel", client_id=client_id,
              before=f"until {previous[0].isoformat()}", after=None,
              reasons=(why.gettext("promise cancelled: %(note)s", note=previous[1]),))
        membership.flash_reconciled(membership.reconcile_now(client_id),
                                    _("Promise of client %(id)s cancelled", id=client_id),
                                    later="tickets")

    membership.with_client(client_id, work)
    return back_to("admin.promises")
