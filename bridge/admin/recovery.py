"""The dashboard's "Recovery" section and its CSV: the recovery figures of the range
(``Store.recovery``; the arithmetic is ``bridge.policy.recovery``) as tables in the reader's
language — the trust unlocks' last, a short line when there were none — and as rows for the CSV
export. The definitions are written on the page."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal

from flask_babel import gettext as _
from flask_babel import lazy_gettext, ngettext
from markupsafe import Markup

from bridge.admin import charts
from bridge.admin.charts import Series
from bridge.admin.language import current
from bridge.model import WhmcsNames
from bridge.policy.recovery import (
    BREAKDOWNS,
    NO_ACTION,
    PHENOMENON_DAYS,
    UNKNOWN_GROUP,
    UNLOCK_OUTCOMES,
    UNTAGGED,
    WITHIN_DAYS,
    CurrencyTotal,
    Figures,
    MonthTotal,
    Recovery,
    TrustUnlocks,
)

HEADINGS = {"first_action": lazy_gettext("By first action"),
            "group": lazy_gettext("By client group"),
            "reason": lazy_gettext("By reason tag")}
KEYS = {"first_action": lazy_gettext("First action"), "group": lazy_gettext("Client group"),
        "reason": lazy_gettext("Reason tag")}
UNLOCK_ROWS = {"paid": lazy_gettext("Ended in payment"),
               "paid_by_date": lazy_gettext("… paid within the days granted"),
               "paid_later": lazy_gettext("… paid later"),
               "open": lazy_gettext("Still open"),
               "ended_unpaid": lazy_gettext("Ended without payment"),
               "suspended_again": lazy_gettext("Suspended again after the unlock")}


@dataclass(frozen=True)
class Table:
    ident: str
    heading: str
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]]
    svg: Markup | None = None  # a chart of the table's figures
    empty: str = ""  # shown instead of the table when it has no rows ("": the table all the same)


def label(breakdown: str, key: str, names: WhmcsNames) -> str:
    """A breakdown's key for people: the action's name, the group's name, the reason tag."""
    if breakdown == "first_action":
        return _("no action") if key == NO_ACTION else current().episode_action(key)
    if breakdown == "group":
        return _("not seen yet") if key == UNKNOWN_GROUP else names.group(int(key))
    return _("untagged") if key == UNTAGGED else current().episode_reason(key)


def _percent(value: Decimal | None) -> str:
    return "—" if value is None else current().number(value, 1) + "%"


def _money(totals: Sequence[MonthTotal]) -> str:
    """The amounts per currency (months added up), unconverted: ``R$ 225,00; US$ 60,00``."""
    sums: dict[tuple[str, str], Decimal] = {}
    for m in totals:
        key = (m.currency_prefix, m.currency_suffix)
        sums[key] = sums.get(key, Decimal(0)) + m.amount
    return "; ".join(current().money(a, p, s) for (p, s), a in sums.items()) or "—"


def _currencies(totals: Sequence[CurrencyTotal]) -> str:
    return "; ".join(current().money(m.amount, m.currency_prefix, m.currency_suffix)
                     for m in totals) or "—"


def _columns(first: str) -> tuple[str, ...]:
    return (first, _("Recovered"), _("Paid episodes"),
            *(_("Within %(days)s days", days=n) for n in WITHIN_DAYS), _("Median days to pay"),
            _("Suspended by WHMCS"),
            _("Paid within %(days)s days of the suspension", days=PHENOMENON_DAYS))


def _row(name: str, f: Figures) -> tuple[str, ...]:
    t = current()
    return (name, _money(f.recovered), t.number(f.paid),
            *(_percent(f.within_share(n)) for n in WITHIN_DAYS),
            "—" if f.median_days is None else t.number(f.median_days, 1),
            t.number(f.suspended),
            _percent(f.phenomenon) + f" ({t.number(f.suspended_paid)})" if f.suspended
            else "—")


def tables(r: Recovery, names: WhmcsNames) -> list[Table]:
    """The section's tables: money per month, then the figures of all episodes and per
    breakdown."""
    t = current()
    out = [Table("recovery-money", _("Money recovered per month"),
                 (_("Month"), _("Currency"), _("Recovered"), _("Episodes paid into")),
                 [(t.month(m.month), (m.currency_prefix + " " + m.currency_suffix).strip()
                   or _("(no symbol)"), t.money(m.amount, m.currency_prefix, m.currency_suffix),
                   t.number(m.episodes)) for m in r.total.recovered]),
           Table("recovery-all", _("Days to pay"), _columns(_("Episodes")),
                 [_row(_("All episodes"), r.total)])]
    for b in BREAKDOWNS:
        out.append(Table(f"recovery-{b.replace('_', '-')}", str(HEADINGS[b]),
                         _columns(str(KEYS[b])),
                         [_row(label(b, f.key, names), f) for f in r.by[b]],
                         _within_chart(r, names) if b == "first_action" and r.total.paid
                         else None))
    out.append(trust_table(r.trust))
    return out


def trust_table(u: TrustUnlocks) -> Table:
    """The trust unlocks made in the range and what became of them (no rows without any)."""
    t = current()
    rows: list[tuple[str, ...]] = []
    if u.made:
        rows.append((_("Unlocks made"), t.number(u.made), "—", "—"))
        rows += [(str(UNLOCK_ROWS[o]), t.number(u.counts[o]), _percent(u.share(o)),
                  _currencies(u.recovered.get(o, ())) if o.startswith("paid") else "—")
                 for o in UNLOCK_OUTCOMES]
    return Table("recovery-trust", _("Trust unlock"),
                 (_("Unlocks by trust"), _("Episodes"), _("Share of the unlocks made"),
                  _("Recovered since the unlock")), rows,
                 empty=_("No client unlocked its services by trust in this range."))


def _within_chart(r: Recovery, names: WhmcsNames) -> Markup:
    """The share of paid episodes paid within 3, 7, 15, 30 days: all episodes, and per first
    action (side by side), so what each action brought back can be compared."""
    t = current()
    sets = [(_("All episodes"), r.total)] + [
        (label("first_action", f.key, names), f) for f in r.by["first_action"]]
    series = [Series(name, [None if (v := f.within_share(n)) is None else float(v)
                            for n in WITHIN_DAYS]) for name, f in sets]
    desc = "; ".join(ngettext("%(name)s: %(shares)s of %(num)d paid episode",
                              "%(name)s: %(shares)s of %(num)d paid episodes", f.paid,
                              name=name, shares=", ".join(_percent(f.within_share(n))
                                                          for n in WITHIN_DAYS))
                     for name, f in sets) + "."
    return charts.bar_chart([_("within %(days)s d", days=n) for n in WITHIN_DAYS], series,
                            chart_id="chart-recovery-within",
                            title=_("Share of paid episodes paid within 3, 7, 15 and 30 days, "
                                    "by first action"),
                            desc=desc, fmt=lambda v: t.number(v, 1) + "%")


CSV_HEADER = ("breakdown", "key", "figure", "month", "currency_prefix", "currency_suffix",
              "value")
TRUST_BREAKDOWN = "trust_unlock"


def csv_rows(r: Recovery) -> Iterator[tuple[str, ...]]:
    """The figures in long form, one value a row: ``all``/``first_action``/``group``/
    ``reason``, the key, the figure's name (``recovered``, ``recovered_episodes``,
    ``paid_episodes``, ``paid_within_7``, ``paid_within_7_percent``, ``median_days``,
    ``suspended``, ``suspended_paid_within_7``, ``suspended_paid_within_7_percent``), the
    month and currency for money, the value (empty: not defined, no episode). Then the trust
    unlocks, breakdown ``trust_unlock``, key ``all``: ``made``; for each of ``paid``,
    ``paid_by_date``, ``paid_later``, ``open``, ``ended_unpaid``, ``suspended_again`` the count
    and ``<name>_percent`` of the unlocks made; for the three paid ones ``<name>_recovered``
    per currency (no month)."""
    sets = [("all", r.total)] + [(b, f) for b in BREAKDOWNS for f in r.by[b]]
    for breakdown, f in sets:
        for m in f.recovered:
            yield (breakdown, f.key, "recovered", m.month, m.currency_prefix, m.currency_suffix,
                   str(m.amount))
            yield (breakdown, f.key, "recovered_episodes", m.month, m.currency_prefix,
                   m.currency_suffix, str(m.episodes))
        values: list[tuple[str, object]] = [("paid_episodes", f.paid)]
        for n in WITHIN_DAYS:
            values += [(f"paid_within_{n}", f.within[n]),
                       (f"paid_within_{n}_percent", f.within_share(n))]
        values += [("median_days", f.median_days), ("suspended", f.suspended),
                   (f"suspended_paid_within_{PHENOMENON_DAYS}", f.suspended_paid),
                   (f"suspended_paid_within_{PHENOMENON_DAYS}_percent", f.phenomenon)]
        for name, value in values:
            yield (breakdown, f.key, name, "", "", "", "" if value is None else str(value))
    yield from _trust_rows(r.trust)


def _trust_rows(u: TrustUnlocks) -> Iterator[tuple[str, ...]]:
    yield (TRUST_BREAKDOWN, "all", "made", "", "", "", str(u.made))
    for o in UNLOCK_OUTCOMES:
        percent = u.share(o)
        yield (TRUST_BREAKDOWN, "all", o, "", "", "", str(u.counts[o]))
        yield (TRUST_BREAKDOWN, "all", f"{o}_percent", "", "", "",
               "" if percent is None else str(percent))
        for m in u.recovered.get(o, ()):
            yield (TRUST_BREAKDOWN, "all", f"{o}_recovered", "", m.currency_prefix,
                   m.currency_suffix, str(m.amount))
