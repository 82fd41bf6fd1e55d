"""The inbox (``/admin/inbox``): the webhook events by state — queued, retrying (failing),
dead, processing, recently done, discarded — with their attempts and last error, and the two
things an admin may do about one: retry it now, or discard it with a reason.

Both are conditional on the state the admin saw (``bridge.store.inbox.retry_now`` / ``discard``): a
row a worker claimed, finished or failed again meanwhile is left alone and the admin is told.
Retrying starts the attempts again from 0 (the admin looked at the error and wants the full
schedule, as ``requeue_dead`` does) and keeps the last error until the next attempt replaces
it. Discarding keeps the row (its webhook id stays known, so a redelivery is a duplicate)
and puts who and why before its last error.
"""

from __future__ import annotations

import json

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import HiddenField, StringField
from wtforms.validators import AnyOf, DataRequired, Length

from bridge.admin.common import admin_name, audit, bp, page_from_request, rt, service_now
from bridge.admin.language import current
from bridge.admin.localtime import shown
from bridge.i18n import why
from bridge.store import inbox as queue

PAGE_SIZE = 50
RECENT_DONE = 500  # the "done" tab shows this many of the newest
MAX_REASON = 200
TABS = (("queued", lazy_gettext("Queued")), ("retrying", lazy_gettext("Retrying (failing)")),
        ("dead", lazy_gettext("Dead")), ("processing", lazy_gettext("Processing")),
        ("done", lazy_gettext("Done (recent)")), ("discarded", lazy_gettext("Discarded")))


def _state(state: str) -> str:
    """An event's state inside a sentence (``bridge.i18n.INBOX_STATES``)."""
    return current().inbox_state(state)


def last_error(text: str) -> str:
    """An event's last error for the page (``Texts.inbox_error``)."""
    return current().inbox_error(text)


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


class RetryForm(FlaskForm):
    state = HiddenField(validators=[AnyOf(queue.RETRYABLE)])


class DiscardForm(FlaskForm):
    state = HiddenField(validators=[AnyOf(queue.DISCARDABLE)])
    reason = StringField(lazy_gettext("Reason"), filters=[_strip], validators=[
        DataRequired(message=lazy_gettext("Say why the event is discarded.")),
        Length(max=MAX_REASON, message=lazy_gettext("At most %(max)s characters.",
                                                    max=MAX_REASON))])


def _default_tab(counts: dict[str, int]) -> str:
    for state in ("dead", "retrying", "queued"):
        if counts.get(state):
            return state
    return "queued"


def _render(state: str | None, *, errors: dict[int, str] | None = None,
            reasons: dict[int, str] | None = None, status: int = 200) -> tuple[str, int]:
    store = rt().store
    counts = store.inbox_counts()
    state = state or _default_tab(counts)
    if state not in dict(TABS):
        abort(404, _("No inbox state %(state)s: the states are %(states)s.",
                     state=repr(state), states=", ".join(key for key, _label in TABS)))
    total = min(counts.get(state, 0), RECENT_DONE) if state == "done" else counts.get(state, 0)
    page = page_from_request(total, PAGE_SIZE)
    rows = queue.list_state(store, state, limit=page.size, offset=page.offset)
    payloads = {item.row.id: json.dumps(item.row.vars, indent=2, ensure_ascii=False,
                                        sort_keys=True) for item in rows}
    return render_template(
        "admin/inbox.html", title=_("Inbox"), tabs=TABS, state=state, counts=counts, rows=rows,
        page=page, payloads=payloads, shown=shown, errors=errors or {}, reasons=reasons or {},
        retryable=queue.RETRYABLE, discardable=queue.DISCARDABLE, max_reason=MAX_REASON,
        tz=rt().settings.bridge.timezone, recent_done=RECENT_DONE, last_error=last_error,
        state_word=_state(state)), status


@bp.route("/inbox", endpoint="inbox")
def view() -> tuple[str, int]:
    return _render(request.args.get("state") or None)


def _changed(row_id: int, seen: str) -> None:
    current = queue.get_row(rt().store, row_id)
    now = current.row.state if current is not None else "gone"
    flash(_("Event %(event)s changed meanwhile: it was %(seen)s, it is now %(now)s. Nothing "
            "was done; look again.", event=current.row.webhook_id if current else row_id,
            seen=_state(seen), now=_state(now)), "warning")


@bp.route("/inbox/<int:row_id>/retry", methods=["POST"], endpoint="inbox_retry")
def retry(row_id: int) -> Response | tuple[str, int]:
    listed = queue.get_row(rt().store, row_id) or abort(404, _("No such inbox event."))
    row = listed.row
    form = RetryForm()
    if not form.validate():
        flash(_("Only a dead or retrying event can be retried (event %(event)s is %(state)s).",
                event=row.webhook_id, state=_state(row.state)), "error")
        return redirect(url_for("admin.inbox", state=row.state))
    seen = form.state.data or ""
    if not queue.retry_now(rt().store, row_id, service_now(), seen_state=seen):
        _changed(row_id, seen)
        return redirect(url_for("admin.inbox", state=seen))
    # before: language-neutral data, shown in the reader's language (Texts.inbox_value)
    audit("inbox_retry", client_id=row.client_id, before=f"{seen}, {row.attempts} attempts",
          after="queued", reasons=(row.webhook_id, row.hook, why.gettext(
              "retried now by %(admin)s; attempts start again", admin=admin_name())))
    flash(_("Event %(event)s (%(hook)s) is queued again; a worker takes it next.",
            event=row.webhook_id, hook=row.hook))
    return redirect(url_for("admin.inbox", state=seen))


@bp.route("/inbox/<int:row_id>/discard", methods=["POST"], endpoint="inbox_discard")
def discard(row_id: int) -> Response | tuple[str, int]:
    listed = queue.get_row(rt().store, row_id) or abort(404, _("No such inbox event."))
    row = listed.row
    form = DiscardForm()
    if not form.validate():
        if form.state.errors:
            flash(_("Only a queued, retrying or dead event can be discarded (event %(event)s "
                    "is %(state)s).", event=row.webhook_id, state=_state(row.state)), "error")
            return redirect(url_for("admin.inbox", state=row.state))
        shown_state = form.state.data or row.state
        return _render(shown_state, errors={row_id: form.reason.errors[0]},
                       reasons={row_id: (request.form.get("reason") or "")[:MAX_REASON * 2]},
                       status=400)
    seen, reason = form.state.data or "", form.reason.data or ""
    note = f"discarded by {admin_name()}: {reason}"  # shown by last_error()
    if not queue.discard(rt().store, row_id, service_now(), seen_state=seen, note=note):
        _changed(row_id, seen)
        return redirect(url_for("admin.inbox", state=seen))
    audit("inbox_discard", client_id=row.client_id, before=seen, after="discarded",
          reasons=(row.webhook_id, row.hook, reason))
    flash(_("Event %(event)s (%(hook)s) is discarded.", event=row.webhook_id, hook=row.hook))
    return redirect(url_for("admin.inbox", state=seen))
