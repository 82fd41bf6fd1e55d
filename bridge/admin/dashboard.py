"""The delinquency dashboard: the daily snapshots (``bridge.store.snapshots``) as charts with their
numbers beside them, a CSV export, and a button that stores today's snapshot now; and the
recovery figures of the same range (``bridge.admin.recovery``) as tables and a CSV.

Today's figures are counted when the page (or the CSV) is read (``snapshots.live``), so a
payment or a restoration vipgate handled a minute ago is in them; past days are the rows the
worker closed at midnight in WHMCS's time zone (final), or the last row taken that day (a
complete full reconcile, the button) when vipgate did not see the day end. Each day's figures
say when they were last updated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import abort, flash, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext, lazy_ngettext, ngettext
from flask_wtf import FlaskForm
from markupsafe import Markup
from werkzeug.wrappers import Response
from wtforms import SelectField

# types-WTForms (3.2) predates SelectChoice (WTForms 3.3).
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]

from bridge import days
from bridge.admin import charts, recovery
from bridge.admin.charts import Series
from bridge.admin.common import audit, back_to, bp, business_now, csv_response, rt
from bridge.admin.language import current
from bridge.admin.localtime import shown, to_local
from bridge.i18n import why
from bridge.policy.recovery import PHENOMENON_DAYS, Recovery
from bridge.store import Store, snapshots
from bridge.store.snapshots import AGING_BUCKETS, DUE_DAYS, CurrencyTotal, Snapshot

RANGES = (7, 30, 90, 365)
DEFAULT_DAYS = 30


def range_error() -> str:
    return _("Choose one of %(some)s or %(last)s days.",
             some=", ".join(map(str, RANGES[:-1])), last=RANGES[-1])


class RangeForm(FlaskForm):
    """The range selector (a GET form: nothing changes, so no CSRF token)."""

    class Meta:
        csrf = False

    days = SelectField(lazy_gettext("Range"), coerce=int, default=DEFAULT_DAYS,
                       choices=[SelectChoice(str(n), lazy_ngettext("Last %(num)d day",
                                                                   "Last %(num)d days", n))
                                for n in RANGES])


class SnapshotForm(FlaskForm):
    """The "Take a snapshot now" button (its CSRF token only)."""


@dataclass(frozen=True)
class Panel:
    """One chart with its numbers: the table's columns and rows (already formatted)."""

    ident: str
    heading: str
    svg: Markup
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]]
    note: str = ""
    updated: bool = False  # the last column says when each day's figures were updated


@dataclass(frozen=True)
class Headline:
    label: str
    value: str
    detail: str = ""
    delta: str = ""  # "+3 vs 2026-11-20"
    trend: str = ""  # worse | better | "" (CSS class delta-<trend>)


def _range() -> tuple[RangeForm, int, bool]:
    """The range asked for (days), and whether it was valid (else the default is used)."""
    form = RangeForm(formdata=request.args or None)
    if not request.args or form.validate():
        return form, form.days.data or DEFAULT_DAYS, True
    form.days.errors = [range_error()]
    return form, DEFAULT_DAYS, False


def _today() -> date:
    """Today in WHMCS's time zone, by the business clock."""
    return days.business_day(business_now(), rt().settings.bridge.timezone)


def _figures(since: date, until: date) -> tuple[list[Snapshot], list[CurrencyTotal] | None]:
    """The days ``since`` to ``until`` that have figures, oldest first: the stored rows, and
    today's counted now (when the standing cache has clients) in place of today's row; and
    today's split by currency (None: today is not counted)."""
    store, settings = rt().store, rt().settings
    rows = snapshots.snapshots(store, since, until)
    now = business_now()
    today = days.business_day(now, settings.bridge.timezone)
    if not since <= today <= until:
        return rows, None
    live, split = snapshots.live(store, today, now, settings.policy.vip_group_id,
                                 timezone=settings.bridge.timezone)
    if not live.clients:
        return rows, None
    return [s for s in rows if s.day != today] + [live], split


@bp.route("/dashboard", endpoint="dashboard")
def view() -> tuple[str, int]:
    form, days, valid = _range()
    store = rt().store
    until = _today()
    since = until - timedelta(days=days - 1)
    rows, split = _figures(since, until)
    last = rows[-1] if rows and rows[-1].live else snapshots.latest(store)
    previous = snapshots.before(store, last.day) if last else None
    if last is not None and not last.live:
        split = snapshots.currency_split(store, last.day)
    money = _money_format(split)
    context = {
        "form": form, "days": days, "since": since, "until": until, "rows": rows,
        "last": last, "previous": previous, "split": split if split and len(split) > 1 else None,
        "mixed": split is None or len(split) > 1,
        "headlines": _headlines(last, previous, money) if last else [],
        "panels": _panels(rows, since, until, last, money) if last else [],
        "updated": updated(last, until) if last else "",
        "last_day": current().day(last.day) if last else "",
        "previous_day": current().day(previous.day) if previous else "",
        "missed": _missed(rows, since, until) if last else [],
        "reconcile": _reconcile(store),
        "snapshot_form": SnapshotForm(),
        "phenomenon_days": PHENOMENON_DAYS,
        "recovery": recovery.tables(_recovery(since, until), store.whmcs_names()),
    }
    return render_template("admin/dashboard.html", **context), 200 if valid else 400


def _clock(moment: datetime, day: date) -> str:
    """``14:05`` when ``moment`` (naive UTC) falls on ``day`` in WHMCS's time zone, else the
    day and time (``2026-11-20 23:10``)."""
    local = to_local(moment)
    assert local is not None
    return local.strftime("%H:%M") if local.date() == day else shown(moment)


def updated(s: Snapshot, today: date) -> str:
    """When a day's figures were last updated, for people (WHMCS's time zone)."""
    if s.closed_at is not None:
        return _("final: day closed %(moment)s", moment=shown(s.closed_at))
    if s.day < today:
        return _("not closed: figures as of %(moment)s", moment=shown(s.taken_at))
    moment = to_local(s.taken_at)
    if moment is not None and moment.date() == s.day:
        return _("updated %(time)s", time=moment.strftime("%H:%M"))
    return _("updated %(moment)s", moment=shown(s.taken_at))


def _missed(rows: Sequence[Snapshot], since: date, until: date) -> list[str]:
    """The past days of the range without figures, after the first day that has some
    (vipgate was not running at their end): listed, not invented."""
    first = snapshots.first_day(rt().store)
    if first is None:
        return []
    have = {s.day for s in rows}
    day = max(since, first)
    out = []
    while day < until:
        if day not in have:
            out.append(current().day(day))
        day += timedelta(days=1)
    return out


def _csv_range() -> tuple[date, date]:
    """A CSV's range of days (the range selector's ``days``); a bad one is refused (400)."""
    _form, days, valid = _range()
    if not valid:
        abort(400, f"days: {range_error()}")
    until = _today()
    return until - timedelta(days=days - 1), until


@bp.route("/dashboard.csv", endpoint="dashboard_csv")
def csv_export() -> Response:
    since, until = _csv_range()
    header = ["day", "taken_at_utc", "clients", "delinquent", "overdue", "suspended",
              "share_percent", "overdue_total", "vip_members", "vip_removed", "vip_restored",
              *(f"aging_{label.replace('-', '_').replace('+', '_plus')}"
                for label, _, _ in AGING_BUCKETS),
              *(f"due_day_{d}" for d in DUE_DAYS), "closed_at_utc", "state"]
    rows = ([s.day.isoformat(), s.taken_at.isoformat(sep=" "), s.clients, s.delinquent,
             s.overdue, s.suspended, f"{s.share:.2f}", str(s.overdue_total), s.vip_members,
             s.vip_removed, s.vip_restored, *s.aging.values(), *s.by_due_day.values(),
             "" if s.closed_at is None else s.closed_at.isoformat(sep=" "), _state(s, until)]
            for s in _figures(since, until)[0])
    return csv_response(f"vipgate-delinquency-{since}-{until}.csv", header, rows)


def _recovery(since: date, until: date) -> Recovery:
    """The recovery figures of the range (WHMCS's days)."""
    return rt().store.recovery(since, until, rt().settings.bridge.timezone)


@bp.route("/dashboard/recovery.csv", endpoint="dashboard_recovery_csv")
def recovery_csv() -> Response:
    """The recovery figures of the range, one value a row (``recovery.csv_rows``)."""
    since, until = _csv_range()
    return csv_response(f"vipgate-recovery-{since}-{until}.csv", recovery.CSV_HEADER,
                        recovery.csv_rows(_recovery(since, until)))


def _state(s: Snapshot, today: date) -> str:
    """The CSV's ``state``: ``final`` (closed), ``live`` (today, counted for the export),
    ``open`` (today's stored row) or ``not_closed`` (a past day vipgate did not see end)."""
    if s.closed_at is not None:
        return "final"
    if s.live:
        return "live"
    return "open" if s.day >= today else "not_closed"


@bp.route("/dashboard/snapshot", methods=["POST"], endpoint="dashboard_snapshot")
def take_snapshot() -> Response:
    form = SnapshotForm()
    if not form.validate_on_submit():
        abort(400)
    settings = rt().settings
    now = business_now()
    day = days.business_day(now, settings.bridge.timezone)
    snapshot, currencies = snapshots.compute(rt().store, day, now,
                                             settings.policy.vip_group_id,
                                             timezone=settings.bridge.timezone)
    if not snapshot.clients:
        flash(_("The standing cache is empty, so there is nothing to count: run a full "
                "reconcile first ('vipgate resync')."), "error")
        return back_to("admin.dashboard")
    if not snapshots.save(rt().store, snapshot, currencies):
        flash(_("A snapshot of %(day)s taken later than now is already stored; it was kept.",
                day=current().day(day)), "warning")
        return back_to("admin.dashboard")
    audit("snapshot", after=day.isoformat(), reasons=(why.ngettext(
        "snapshot of %(day)s taken from the standing cache: %(num)d client, %(delinquent)s "
        "delinquent", "snapshot of %(day)s taken from the standing cache: %(num)d clients, "
        "%(delinquent)s delinquent", snapshot.clients, day=day,
        delinquent=snapshot.delinquent),))
    flash(ngettext("Snapshot of %(day)s taken: %(delinquent)s delinquent of %(clients)s client.",
                   "Snapshot of %(day)s taken: %(delinquent)s delinquent of %(clients)s "
                   "clients.", snapshot.clients, day=current().day(day),
                   delinquent=current().number(snapshot.delinquent),
                   clients=current().number(snapshot.clients)))
    return back_to("admin.dashboard")


# --- building the page ------------------------------------------------------------------------


def _reconcile(store: Store) -> dict[str, Any] | None:
    """The last full reconcile, its time shown in WHMCS's time zone."""
    try:
        record = snapshots.last_full_reconcile(store)
    except ValueError:
        return None  # the Overview says why it cannot be read
    if record is not None:
        record["at"] = shown(record["at"])
    return record


def _money_format(split: Sequence[CurrencyTotal] | None) -> Callable[[Decimal], str]:
    """Amounts with the currency's prefix/suffix when the delinquent owe in one currency,
    in the page's language (``R$ 1.234,56`` / ``R$ 1,234.56``)."""
    t = current()
    if split and len(split) == 1:
        prefix, suffix = split[0].prefix, split[0].suffix
        return lambda amount: t.money(amount, prefix, suffix)
    return lambda amount: t.money(amount, "", "")


def _delta(now: float, before: float, text: str) -> tuple[str, str]:
    """(``+3``, worse|better|"") for a figure where more is worse."""
    if now == before:
        return _("no change"), ""
    return ("+" if now > before else "−") + text, "worse" if now > before else "better"


def _headlines(last: Snapshot, previous: Snapshot | None,
               money: Callable[[Decimal], str]) -> list[Headline]:
    t = current()

    def compared(figure: Callable[[Snapshot], float], text: Callable[[float], str]
                 ) -> dict[str, str]:
        if previous is None:
            return {}
        now, before = figure(last), figure(previous)
        delta, trend = _delta(now, before, text(abs(now - before)))
        return {"delta": _("%(change)s vs %(day)s", change=delta, day=t.day(previous.day)),
                "trend": trend}

    return [
        Headline(_("Delinquent clients"), t.number(last.delinquent),
                 _("%(overdue)s overdue, %(suspended)s suspended",
                   overdue=t.number(last.overdue), suspended=t.number(last.suspended)),
                 **compared(lambda s: s.delinquent, t.number)),
        Headline(_("Overdue amount"), money(last.overdue_total),
                 _("owed past the grace by the delinquent clients"),
                 **compared(lambda s: float(s.overdue_total),
                            lambda d: money(Decimal(str(d)).quantize(Decimal("0.01"))))),
        Headline(_("Share of clients"), t.number(last.share, 1) + "%",
                 _("of %(clients)s clients in the standing cache",
                   clients=t.number(last.clients)),
                 **compared(lambda s: round(s.share, 1),
                            lambda d: _("%(points)s points", points=t.number(d, 1)))),
        Headline(_("VIP members"), t.number(last.vip_members),
                 _("clients vipgate keeps in VIP")),
        Headline(_("Out of / into VIP"),
                 f"{t.number(last.vip_removed)} / {t.number(last.vip_restored)}",
                 _("vipgate's VIP removals / restorations and additions on %(day)s",
                   day=t.day(last.day))),
    ]


def _panels(rows: list[Snapshot], since: date, until: date, last: Snapshot,
            money: Callable[[Decimal], str]) -> list[Panel]:
    t = current()
    days = [since + timedelta(days=n) for n in range((until - since).days + 1)]
    labels = [t.day(d) for d in days]
    by_day = {s.day: s for s in rows}
    newest_first = sorted(rows, key=lambda s: s.day, reverse=True)
    span = _("from %(since)s to %(until)s", since=t.day(since), until=t.day(until))
    on_day = t.day(last.day)

    def state(s: Snapshot) -> str:
        """A day's "Updated" cell: ``final``, ``14:05``, ``not closed, 09:00``."""
        if s.closed_at is not None:
            return _("final")
        if s.day < until:
            return _("not closed, %(time)s", time=_clock(s.taken_at, s.day))
        return _clock(s.taken_at, s.day)

    def per_day(ident: str, heading: str, value: Callable[[Snapshot], float], unit: str,
                fmt: Callable[[float], str], *, integer: bool,
                axis: Callable[[float], str] | None = None) -> Panel:
        values = [None if d not in by_day else value(by_day[d]) for d in days]
        known = [v for v in values if v is not None]
        desc = (_("%(heading)s per day %(span)s: %(count)s days with a snapshot, latest "
                  "%(latest)s, highest %(highest)s.", heading=heading, span=span,
                  count=len(known), latest=fmt(known[-1]), highest=fmt(max(known)))
                if known else _("%(heading)s per day %(span)s: no snapshot in this range.",
                                heading=heading, span=span))
        svg = charts.line_chart(labels, [Series(heading, values)], chart_id=ident,
                                title=_("%(heading)s per day", heading=heading), desc=desc,
                                fmt=fmt, axis=axis, integer=integer)
        return Panel(ident, heading, svg, (_("Day"), unit, _("Updated")),
                     [(t.day(s.day), fmt(value(s)), state(s)) for s in newest_first],
                     updated=True)

    def amount(value: float) -> str:
        return money(Decimal(str(value)).quantize(Decimal("0.01")))

    panels = [
        per_day("chart-delinquent", _("Delinquent clients"), lambda s: s.delinquent,
                _("Clients"), t.number, integer=True, axis=t.compact),
        per_day("chart-amount", _("Overdue amount"), lambda s: float(s.overdue_total),
                _("Amount"), amount, integer=False, axis=t.compact),
        per_day("chart-share", _("Share of clients delinquent"), lambda s: s.share,
                _("Share"), lambda v: t.number(v, 1) + "%", integer=False),
    ]
    removed = [None if d not in by_day else by_day[d].vip_removed for d in days]
    restored = [None if d not in by_day else by_day[d].vip_restored for d in days]
    moves_desc = _("VIP removals and restorations per day %(span)s: %(removed)s removals, "
                   "%(restored)s restorations or additions.", span=span,
                   removed=sum(v or 0 for v in removed), restored=sum(v or 0 for v in restored))
    panels.append(Panel(
        "chart-vip", _("VIP removals and restorations"),
        charts.bar_chart(labels, [Series(_("Removed"), removed),
                                  Series(_("Restored or added"), restored)],
                         chart_id="chart-vip",
                         title=_("VIP removals and restorations per day"),
                         desc=moves_desc, fmt=t.plain, integer=True),
        (_("Day"), _("Removed"), _("Restored or added"), _("Updated")),
        [(t.day(s.day), t.number(s.vip_removed), t.number(s.vip_restored), state(s))
         for s in newest_first],
        _("vipgate's own moves out of VIP (unpaid) and into VIP (paid again, or newly "
          "eligible); staff moves are not counted."), updated=True))
    aging = [last.aging[label] for label, _lo, _hi in AGING_BUCKETS]
    panels.append(Panel(
        "chart-aging", _("Aging on %(day)s", day=on_day),
        charts.bar_chart([_("%(bucket)s d", bucket=label) for label, _lo, _hi in AGING_BUCKETS],
                         [Series(_("Delinquent clients"), aging)], chart_id="chart-aging",
                         title=_("Delinquent clients by days overdue on %(day)s", day=on_day),
                         desc="; ".join(_("%(bucket)s days: %(clients)s", bucket=label,
                                          clients=n)
                                        for (label, _lo, _hi), n in
                                        zip(AGING_BUCKETS, aging, strict=True)) + ".",
                         fmt=t.plain, integer=True),
        (_("Days overdue"), _("Clients")),
        [(_("%(bucket)s days", bucket=label), t.number(n))
         for (label, _lo, _hi), n in zip(AGING_BUCKETS, aging, strict=True)],
        _("Days since the oldest overdue invoice's due date, as the policy counts them "
          "(business days when grace_in_business_days is on).")))
    due = [last.by_due_day[d] for d in DUE_DAYS]
    busiest = [str(d) for d in DUE_DAYS if due[d - 1] and due[d - 1] == max(due)]
    panels.append(Panel(
        "chart-due-day", _("By due day of month on %(day)s", day=on_day),
        charts.bar_chart([str(d) for d in DUE_DAYS], [Series(_("Delinquent clients"), due)],
                         chart_id="chart-due-day",
                         title=_("Delinquent clients by due day of month on %(day)s",
                                 day=on_day),
                         desc=_("Delinquent clients by the day of month their oldest overdue "
                                "invoice was due; most on day(s) %(days)s.",
                                days=", ".join(busiest) or "-"),
                         fmt=t.plain, integer=True),
        (_("Due day"), _("Clients")),
        [(str(d), t.number(n)) for d, n in zip(DUE_DAYS, due, strict=True) if n],
        _("Day of month of the oldest overdue invoice's due date; days with no client are "
          "left out of the table.")))
    return panels
