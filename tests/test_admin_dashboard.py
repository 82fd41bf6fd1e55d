"""The delinquency dashboard: figures and SVG charts from the daily snapshots, the range
selector, the CSV export, the empty state, the "take a snapshot now" button, and the
snapshot a full reconcile in a whole installation takes."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from flask import Flask

from bridge.admin import charts
from bridge.admin.charts import Series
from bridge.model import AuditEntry, CachedStanding, OverdueInvoice
from bridge.store import Store, snapshots
from tests.admin_helpers import ADMIN, AdminSession, csrf_token
from tests.helpers import FIXED_NOW
from tests.resync_data import populate
from tests.test_recovery import put_episode, tag, unlock
from tests.world import World, make_world

TODAY = FIXED_NOW.date()  # the app's clock; [bridge] timezone is UTC
VIP = 0  # the default settings' vip_group_id


def put(store: Store, client_id: int, billing: str, *, days: int = 0, total: str = "0",
        due: str | None = None, in_vip: bool = False, prefix: str = "R$ ",
        suffix: str = "") -> None:
    invoices = () if due is None else (OverdueInvoice(client_id, str(client_id),
                                                      Decimal(total), due),)
    store.put_standing(CachedStanding(client_id, billing, days, Decimal(total), invoices,
                                      prefix, suffix, None, FIXED_NOW, billing, 1, in_vip,
                                      True))


def snap(store: Store, day: date) -> snapshots.Snapshot:
    return snapshots.take_snapshot(store, day, datetime.combine(day, FIXED_NOW.timetz()), VIP,
                                   timezone="UTC")


@pytest.fixture
def admin(app: Flask) -> AdminSession:
    return AdminSession(app)


def cells(html: str) -> list[str]:
    return re.findall(r"<td[^>]*>([^<]*)</td>", html)


# --- the page -----------------------------------------------------------------------------------


def test_empty_state_explains_when_snapshots_are_taken(admin: AdminSession,
                                                       store: Store) -> None:
    html = admin.text("/admin/dashboard")
    assert "No snapshot yet" in html
    assert "PreCronJob" in html and "DailyCronJob" in html and "vipgate resync" in html
    assert "<svg" not in html and "Take a snapshot now" in html
    snapshots.record_full_reconcile(store, FIXED_NOW, clients=10, applied=2, failed=0,
                                    complete=False)
    html = admin.text("/admin/dashboard")
    assert "Last full reconcile: 2026-11-21 12:00 (WHMCS time zone), 10 clients" in html
    assert "did not complete" in html


def test_the_page_shows_the_latest_figures_against_the_day_before(admin: AdminSession,
                                                                  store: Store) -> None:
    put(store, 1, "current", in_vip=True)
    put(store, 2, "overdue", days=4, total="100.00", due="2026-11-17")
    put(store, 3, "current")
    put(store, 4, "current")
    snap(store, TODAY - timedelta(days=1))
    put(store, 3, "suspended", days=40, total="25.50", due="2026-10-12")
    put(store, 4, "overdue", days=70, total="10.00", due="2026-09-12")
    store.add_audit([AuditEntry(FIXED_NOW - timedelta(hours=1), "vipgate", "group", 4, None,
                                str(VIP), "1", ("unpaid",))])
    snap(store, TODAY)
    html = admin.text("/admin/dashboard")
    stats = re.findall(r'<div class="stat">([^<]*)</div>', html)
    assert stats == ["3", "R$ 135.50", "75.0%", "1", "1 / 0"]
    assert "+2 vs 2026-11-20" in html and "delta-worse" in html
    assert "+R$ 35.50 vs 2026-11-20" in html and "+50.0 points vs 2026-11-20" in html
    assert "2 overdue, 1 suspended" in html and "of 4 clients" in html
    # six charts, each an accessible image with a title and a description
    assert html.count('<svg class="chart"') == 6
    assert html.count('role="img"') == 6 and html.count("<desc id=") == 6
    assert 'aria-label="Delinquent clients per day"' in html
    assert "<polyline" in html and 'class="chart-bar series-0"' in html
    # the numbers beside the charts
    numbers = cells(html)
    for row in (["2026-11-21", "3"], ["2026-11-20", "1"], ["2026-11-21", "R$ 135.50"],
                ["2026-11-21", "75.0%"], ["2026-11-21", "1", "0"], ["1-7 days", "1"],
                ["31-60 days", "1"], ["60+ days", "1"], ["12", "2"], ["17", "1"]):
        assert _contains_run(numbers, row), row
    # the CSP forbids inline styles and scripts
    assert "style=" not in html and "<script" not in html


def _contains_run(items: list[str], run: list[str]) -> bool:
    return any(items[i:i + len(run)] == run for i in range(len(items)))


def test_several_currencies_are_shown_apart_and_not_converted(admin: AdminSession,
                                                             store: Store) -> None:
    put(store, 1, "overdue", days=4, total="100.00", due="2026-11-17")
    put(store, 2, "overdue", days=4, total="30.00", due="2026-11-17", prefix="$",
        suffix=" USD")
    snap(store, TODAY)
    html = admin.text("/admin/dashboard")
    assert re.findall(r'<div class="stat">([^<]*)</div>', html)[1] == "130.00"
    assert "currencies are not converted" in html
    assert "R$ 100.00" in html and "$30.00 USD" in html


@pytest.mark.parametrize(("days", "shown", "hidden"), [
    ("7", [0], [10, 40]),
    ("30", [0, 10], [40]),
    ("90", [0, 10, 40], [100]),
    ("365", [0, 10, 40, 100], []),
    (None, [0, 10], [40]),  # 30 by default
])
def test_the_range_selector_chooses_the_days_charted(admin: AdminSession, store: Store,
                                                     days: str | None, shown: list[int],
                                                     hidden: list[int]) -> None:
    put(store, 1, "overdue", days=4, total="100.00", due="2026-11-17")
    for back in (0, 10, 40, 100):
        snap(store, TODAY - timedelta(days=back))
    html = admin.text("/admin/dashboard" + (f"?days={days}" if days else ""))
    numbers = cells(html)
    for back in shown:
        assert (TODAY - timedelta(days=back)).isoformat() in numbers
    for back in hidden:
        assert (TODAY - timedelta(days=back)).isoformat() not in numbers
    assert f'<option selected value="{days or 30}">' in html
    assert f"/admin/dashboard.csv?days={days or 30}" in html


@pytest.mark.parametrize("days", ["5", "abc", "", "-30"])
def test_a_bad_range_is_refused_next_to_the_field(admin: AdminSession, store: Store,
                                                  days: str) -> None:
    html = admin.text(f"/admin/dashboard?days={days}", status=400)
    assert re.search(r'<small class="error" role="alert">Choose one of 7, 30, 90 or 365 days.',
                     html)
    assert admin.get(f"/admin/dashboard.csv?days={days}").status_code == 400


def test_a_range_without_snapshots_says_so(admin: AdminSession, store: Store) -> None:
    snap(store, TODAY - timedelta(days=20))  # counted from an empty cache: nothing today
    html = admin.text("/admin/dashboard?days=7")
    assert "No snapshot between 2026-11-15 and 2026-11-21" in html
    assert "Latest snapshot: 2026-11-01" in html


def test_days_without_figures_are_named_not_invented(admin: AdminSession, store: Store) -> None:
    put(store, 1, "overdue", days=4, total="100.00", due="2026-11-17")
    snap(store, TODAY - timedelta(days=20))
    snap(store, TODAY - timedelta(days=3))
    html = admin.text("/admin/dashboard?days=7")
    assert ("No figures for 2026-11-15, 2026-11-16, 2026-11-17, 2026-11-19, 2026-11-20: "
            "vipgate did not see those days end") in html
    assert "Today: 2026-11-21" in html  # today is counted from the cache
    numbers = cells(html)
    assert _contains_run(numbers, ["2026-11-21", "1", "12:00"])
    # the 18th's row was taken that day and never closed: it says so
    assert _contains_run(numbers, ["2026-11-18", "1", "not closed, 12:00"])
    # no day before the first snapshot is said to be missing
    assert "2026-10-31" not in html


def test_each_day_says_when_its_figures_were_updated_in_the_readers_language(
        app: Flask, store: Store) -> None:
    put(store, 1, "overdue", days=4, total="100.00", due="2026-11-17")
    snap(store, TODAY - timedelta(days=2))  # never closed
    snapshots.close_days(store, datetime(2026, 11, 20, 23, 58, tzinfo=UTC), VIP, timezone="UTC")
    snapshots.close_days(store, datetime(2026, 11, 21, 0, 0, 20, tzinfo=UTC), VIP,
                         timezone="UTC")  # the 20th, closed just after midnight
    put(store, 2, "suspended", days=9, total="5.00", due="2026-11-12")  # at 12:00 today
    english = AdminSession(app).text("/admin/dashboard")
    assert "Updated 12:00 (WHMCS time zone), compared with 2026-11-20." in english
    numbers = cells(english)
    assert _contains_run(numbers, ["2026-11-21", "2", "12:00"])
    assert _contains_run(numbers, ["2026-11-20", "1", "final"])
    assert _contains_run(numbers, ["2026-11-19", "1", "not closed, 12:00"])
    assert _contains_run(numbers, ["2026-11-21", "0", "0", "12:00"])  # the VIP moves' table
    portuguese = AdminSession(app, language="pt_BR").text("/admin/dashboard")
    assert "Atualizado às 12:00 (fuso horário do WHMCS), comparado com 20/11/2026." in (
        portuguese)
    numbers = cells(portuguese)
    assert _contains_run(numbers, ["21/11/2026", "2", "12:00"])
    assert _contains_run(numbers, ["20/11/2026", "1", "definitivo"])
    assert _contains_run(numbers, ["19/11/2026", "1", "não fechado, 12:00"])


# --- CSV ----------------------------------------------------------------------------------------


def test_csv_has_one_row_per_day_with_every_column(admin: AdminSession, store: Store) -> None:
    put(store, 1, "overdue", days=4, total="100.00", due="2026-11-17", in_vip=True)
    put(store, 2, "suspended", days=90, total="0.50", due="2026-08-23")
    put(store, 3, "current")
    snap(store, TODAY - timedelta(days=2))
    snap(store, TODAY)
    snap(store, TODAY - timedelta(days=8))
    answer = admin.get("/admin/dashboard.csv?days=7")
    assert answer.status_code == 200
    assert answer.mimetype == "text/csv"
    assert answer.headers["Content-Disposition"] == (
        'attachment; filename="vipgate-delinquency-2026-11-15-2026-11-21.csv"')
    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    assert [r["day"] for r in rows] == ["2026-11-19", "2026-11-21"]
    header = list(rows[0])
    assert header[:11] == ["day", "taken_at_utc", "clients", "delinquent", "overdue",
                           "suspended", "share_percent", "overdue_total", "vip_members",
                           "vip_removed", "vip_restored"]
    assert header[11:16] == ["aging_1_7", "aging_8_15", "aging_16_30", "aging_31_60",
                             "aging_60_plus"]
    assert header[16:47] == [f"due_day_{d}" for d in range(1, 32)]
    assert header[47:] == ["closed_at_utc", "state"]
    row = rows[1]
    assert {k: row[k] for k in header[:11]} == {
        "day": "2026-11-21", "taken_at_utc": "2026-11-21 12:00:00", "clients": "3",
        "delinquent": "2", "overdue": "1", "suspended": "1", "share_percent": "66.67",
        "overdue_total": "100.50", "vip_members": "1", "vip_removed": "0",
        "vip_restored": "0"}
    assert [row[k] for k in header[11:16]] == ["1", "0", "0", "0", "1"]
    assert {k: v for k, v in row.items() if k.startswith("due_day_") and v != "0"} == {
        "due_day_17": "1", "due_day_23": "1"}
    # today's row is counted for the export; the 19th's was taken that day and never closed
    assert (row["closed_at_utc"], row["state"]) == ("", "live")
    assert (rows[0]["closed_at_utc"], rows[0]["state"]) == ("", "not_closed")


def test_csv_defaults_to_30_days(admin: AdminSession, store: Store) -> None:
    put(store, 1, "overdue", days=4, total="1.00", due="2026-11-17")
    snap(store, TODAY - timedelta(days=29))
    snap(store, TODAY - timedelta(days=30))
    rows = list(csv.reader(io.StringIO(admin.get("/admin/dashboard.csv").get_data(
        as_text=True))))
    assert [r[0] for r in rows[1:]] == ["2026-10-23", "2026-11-21"]  # and today, counted


# --- taking a snapshot now ----------------------------------------------------------------------


def test_the_snapshot_button_counts_the_cache_now_and_is_audited(admin: AdminSession,
                                                                 store: Store) -> None:
    put(store, 1, "overdue", days=4, total="100.00", due="2026-11-17")
    put(store, 2, "current")
    page = admin.text("/admin/dashboard")
    assert 'action="/admin/dashboard/snapshot"' in page
    answer = admin.post("/admin/dashboard/snapshot", {"next": "/admin/dashboard?days=7"})
    assert answer.status_code == 302 and answer.headers["Location"] == "/admin/dashboard?days=7"
    taken = snapshots.latest(store)
    assert taken is not None and (taken.day, taken.clients, taken.delinquent) == (TODAY, 2, 1)
    entry = store.audit_log(action="snapshot")[-1]
    assert (entry.actor, entry.after) == (ADMIN, "2026-11-21")
    assert "2 clients, 1 delinquent" in entry.reasons[0]
    assert "Snapshot of 2026-11-21 taken: 1 delinquent of 2 clients." in admin.text(
        "/admin/dashboard")


def test_the_snapshot_button_refuses_an_empty_cache(admin: AdminSession,
                                                    store: Store) -> None:
    answer = admin.post("/admin/dashboard/snapshot")
    assert answer.status_code == 302
    assert snapshots.latest(store) is None and not store.audit_log(action="snapshot")
    assert "standing cache is empty" in admin.text("/admin/dashboard")


def test_the_snapshot_button_needs_the_csrf_token_and_a_login(app: Flask,
                                                              store: Store) -> None:
    put(store, 1, "overdue", days=4, total="100.00", due="2026-11-17")
    admin = AdminSession(app)
    for data in ({}, {"csrf_token": "forged"}):
        answer = admin.client.post("/admin/dashboard/snapshot", data=data)
        assert answer.status_code == 400 and "CSRF" in answer.get_data(as_text=True)
    stranger = app.test_client()
    token = csrf_token(stranger.get("/admin/login").get_data(as_text=True))
    answer = stranger.post("/admin/dashboard/snapshot", data={"csrf_token": token})
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/admin/login")
    for path in ("/admin/dashboard", "/admin/dashboard.csv"):
        answer = stranger.get(path)
        assert answer.status_code == 302 and "/admin/login" in answer.headers["Location"]
    assert snapshots.latest(store) is None


# --- the charts ---------------------------------------------------------------------------------


def test_chart_text_is_escaped() -> None:
    svg = charts.bar_chart(["<b>"], [Series('"x" & <y>', [3]), Series("z", [1])],
                           chart_id="c<1>", title="<script>alert(1)</script>", desc="a & b")
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "<b>" not in svg and "&#34;x&#34; &amp; &lt;y&gt;" in svg
    assert 'id="c&lt;1&gt;"' in svg and "<desc" in svg and "a &amp; b" in svg


def test_a_line_breaks_where_a_day_has_no_value() -> None:
    svg = charts.line_chart(["1", "2", "3", "4", "5"], [Series("s", [1, 2, None, 4, 5])],
                            chart_id="c", title="t", desc="d", integer=True)
    assert svg.count("<polyline") == 2 and svg.count("<circle") == 4
    lonely = charts.line_chart(["1", "2", "3"], [Series("s", [None, 7, None])],
                               chart_id="c", title="t", desc="d")
    assert "<polyline" not in lonely and lonely.count("<circle") == 1


def test_bars_scale_to_round_ticks_and_skip_zeros() -> None:
    svg = charts.bar_chart(["a", "b", "c"], [Series("s", [0, 5, 10])], chart_id="c",
                           title="t", desc="d", integer=True)
    assert svg.count("<rect") == 2
    heights = [float(h) for h in re.findall(r'<rect[^>]* height="([\d.]+)"', svg)]
    assert heights[1] == pytest.approx(2 * heights[0])
    assert charts.nice_ticks(10, integer=True) == [0, 5, 10]
    assert charts.nice_ticks(0) == [0, 0.25, 0.5, 0.75, 1]


def test_a_series_must_match_its_labels() -> None:
    with pytest.raises(ValueError, match="series 's' has 2 values for 3 labels"):
        charts.line_chart(["a", "b", "c"], [Series("s", [1, 2])], chart_id="c", title="t",
                          desc="d")


# --- a whole installation -----------------------------------------------------------------------


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[World]:
    with make_world(database_url, tmp_path,
                    whmcs={"database_url": f"sqlite:///{tmp_path}/whmcs.db"}) as w:
        yield w


def test_the_cron_full_reconcile_fills_the_dashboard(world: World) -> None:
    w = world
    people = populate(w.sandbox, vip=w.vip, regular=w.regular, support=w.support,
                      billing=w.billing, count=20)
    w.forwarder.fire("PreCronJob", {})
    w.drain()
    taken = snapshots.latest(w.store)
    assert taken is not None and taken.day == w.sandbox.today
    assert taken.vip_removed == len(people.vip_owing) > 0
    record = snapshots.last_full_reconcile(w.store)
    assert record is not None and record["complete"] and record["clients"] == 20
    assert w.app is not None
    html = AdminSession(w.app).text("/admin/dashboard")
    stats = re.findall(r'<div class="stat">([^<]*)</div>', html)
    assert stats[0] == str(taken.delinquent) and stats[2] == f"{taken.share:.1f}%"
    assert stats[1] == f"${taken.overdue_total:,.2f} USD"  # one currency: shown with it
    assert stats[4] == f"{taken.vip_removed} / {taken.vip_restored}"
    assert f"Today: {w.sandbox.today}" in html and html.count("<svg") == 6


# --- the recovery figures -------------------------------------------------------------------


def recovered_episodes(store: Store, first: int = 1, group: int | None = 1) -> None:
    """Two paid episodes in the default range (2026-10-23 to 11-21, UTC), of clients ``first``
    (in ``group``) and ``first + 1``: one left VIP, was suspended and paid 2 days later (11
    days after opening); one paid in 3 days."""
    if group is not None:
        store.put_whmcs_names({group: "Clientes"}, {}, FIXED_NOW)
    put_episode(store, first, "2026-11-01", group=group,
                actions=(("left_vip", "2026-11-01T13:00:00"),
                         ("suspended", "2026-11-10T12:00:00")),
                payments=(("150.00", "2026-11-12"),), paid_up=True)
    put_episode(store, first + 1, "2026-11-05", payments=(("50.00", "2026-11-08"),),
                paid_up=True)


def test_the_recovery_section_shows_the_figures_and_their_definitions(
        admin: AdminSession, store: Store) -> None:
    recovered_episodes(store)
    tag(store, 2, "boleto")  # staff's reason tag, named as the tag form names it
    html = admin.text("/admin/dashboard")
    section = html[html.index('id="recovery-heading"'):]
    numbers = cells(section)
    assert "forgot or lost the boleto" in numbers and "boleto" not in numbers
    assert numbers[:4] == ["2026-11", "R$", "R$ 200.00", "2"]
    assert numbers[4:13] == ["All episodes", "R$ 200.00", "2", "50.0%", "50.0%", "100.0%",
                             "100.0%", "7.0", "1"]
    assert "100.0% (1)" in numbers
    left_vip = numbers[numbers.index("left VIP"):][:10]
    assert left_vip == ["left VIP", "R$ 150.00", "1", "0.0%", "0.0%", "100.0%", "100.0%",
                        "11.0", "1", "100.0% (1)"]
    assert "Clientes (#1)" in numbers and "not seen yet" in numbers and "untagged" in numbers
    assert "Paid within 7 days of the suspension" in section
    assert "There is no breakdown by product" in section
    assert "/admin/dashboard/recovery.csv?days=30" in section
    chart = section[section.index('id="chart-recovery-within"'):section.index("</svg>")]
    assert ("All episodes: 50.0%, 50.0%, 100.0%, 100.0% of 2 paid episodes; left VIP: 0.0%, "
            "0.0%, 100.0%, 100.0% of 1 paid episode; no action: 100.0%, 100.0%, 100.0%, "
            "100.0% of 1 paid episode.") in chart


def test_the_recovery_section_without_episodes(admin: AdminSession) -> None:
    html = admin.text("/admin/dashboard?days=7")
    section = html[html.index('id="recovery-heading"'):]
    numbers = cells(section)
    assert numbers[0] == "No episode in this range."  # no money recovered
    assert numbers[1:11] == ["All episodes", "—", "0", "—", "—", "—", "—", "—", "0", "—"]
    assert numbers[11:] == ["No episode in this range."] * 3  # the breakdowns
    assert 'id="chart-recovery-within"' not in section  # no chart of nothing
    assert '<h3 id="recovery-trust-heading">Trust unlock</h3>' in section
    assert ('<p class="muted" id="recovery-trust">No client unlocked its services by trust in '
            'this range.</p>') in section


def test_the_recovery_csv(admin: AdminSession, store: Store) -> None:
    recovered_episodes(store)
    answer = admin.get("/admin/dashboard/recovery.csv?days=30")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert answer.headers["Content-Disposition"] == (
        'attachment; filename="vipgate-recovery-2026-10-23-2026-11-21.csv"')
    rows = list(csv.reader(io.StringIO(answer.get_data(as_text=True))))
    assert rows[0] == ["breakdown", "key", "figure", "month", "currency_prefix",
                       "currency_suffix", "value"]
    got = {tuple(r[:4]): r[6] for r in rows[1:]}
    assert got[("all", "all", "recovered", "2026-11")] == "200.00"
    assert ["all", "all", "recovered", "2026-11", "R$ ", "", "200.00"] in rows
    assert got[("all", "all", "paid_within_3_percent", "")] == "50.00"
    assert got[("all", "all", "median_days", "")] == "7"
    assert got[("all", "all", "suspended_paid_within_7_percent", "")] == "100.00"
    assert got[("first_action", "left_vip", "median_days", "")] == "11"
    assert got[("first_action", "none", "paid_within_3", "")] == "1"
    assert got[("group", "1", "recovered", "2026-11")] == "150.00"
    assert got[("group", "unknown", "suspended_paid_within_7_percent", "")] == ""
    assert got[("reason", "untagged", "paid_episodes", "")] == "2"
    assert admin.get("/admin/dashboard/recovery.csv?days=5").status_code == 400


def unlocked_episodes(store: Store) -> None:
    """Three trust unlocks in the default range (UTC days): client 31 unlocked until 11-05 and
    paid that day; 32 suspended again after its unlock until 11-10, paid 11-15; 33 still open;
    and 34, unlocked before the range."""
    put_episode(store, 31, "2026-11-01", actions=(("suspended", "2026-11-02T12:00:00"),
                                                  unlock("2026-11-03T12:00:00", "2026-11-05")),
                payments=(("80.00", "2026-11-05"),), paid_up=True)
    put_episode(store, 32, "2026-11-04", actions=(("suspended", "2026-11-06T12:00:00"),
                                                  unlock("2026-11-07T12:00:00", "2026-11-10"),
                                                  ("suspended", "2026-11-11T12:00:00")),
                payments=(("20.00", "2026-11-05"), ("40.00", "2026-11-15")), paid_up=True)
    put_episode(store, 33, "2026-11-15", actions=(("suspended", "2026-11-16T12:00:00"),
                                                  unlock("2026-11-17T12:00:00", "2026-11-20")))
    put_episode(store, 34, "2026-10-10", actions=(("suspended", "2026-10-12T12:00:00"),
                                                  unlock("2026-10-13T12:00:00", "2026-10-16")),
                payments=(("10.00", "2026-11-02"),), paid_up=True)


def test_the_recovery_section_shows_the_trust_unlocks(admin: AdminSession,
                                                      store: Store) -> None:
    unlocked_episodes(store)
    html = admin.text("/admin/dashboard")
    section = html[html.index('id="recovery-trust-heading"'):]
    assert cells(section[:section.index("</table>")]) == [
        "Unlocks made", "3", "—", "—",
        "Ended in payment", "2", "66.7%", "R$ 120.00",
        "… paid within the days granted", "1", "33.3%", "R$ 80.00",
        "… paid later", "1", "33.3%", "R$ 40.00",  # the 20.00 before the unlock left out
        "Still open", "1", "33.3%", "—",
        "Ended without payment", "0", "0.0%", "—",
        "Suspended again after the unlock", "1", "33.3%", "—"]
    assert "Recovered since the unlock" in section
    assert "<strong>Trust unlock</strong>: a suspended client unlocked its services" in section
    assert "An unlock is not a first action: it always comes after a" in section
    # a week back, only client 33's unlock (11-17) is in the range
    week = admin.text("/admin/dashboard?days=7")
    week = week[week.index('id="recovery-trust-heading"'):]
    assert cells(week[:week.index("</table>")])[:2] == ["Unlocks made", "1"]


def test_the_recovery_csv_has_the_trust_unlocks(admin: AdminSession, store: Store) -> None:
    unlocked_episodes(store)
    rows = list(csv.reader(io.StringIO(
        admin.get("/admin/dashboard/recovery.csv?days=30").get_data(as_text=True))))
    trust = [r for r in rows if r[0] == "trust_unlock"]
    assert trust == [
        ["trust_unlock", "all", "made", "", "", "", "3"],
        ["trust_unlock", "all", "paid", "", "", "", "2"],
        ["trust_unlock", "all", "paid_percent", "", "", "", "66.67"],
        ["trust_unlock", "all", "paid_recovered", "", "R$ ", "", "120.00"],
        ["trust_unlock", "all", "paid_by_date", "", "", "", "1"],
        ["trust_unlock", "all", "paid_by_date_percent", "", "", "", "33.33"],
        ["trust_unlock", "all", "paid_by_date_recovered", "", "R$ ", "", "80.00"],
        ["trust_unlock", "all", "paid_later", "", "", "", "1"],
        ["trust_unlock", "all", "paid_later_percent", "", "", "", "33.33"],
        ["trust_unlock", "all", "paid_later_recovered", "", "R$ ", "", "40.00"],
        ["trust_unlock", "all", "open", "", "", "", "1"],
        ["trust_unlock", "all", "open_percent", "", "", "", "33.33"],
        ["trust_unlock", "all", "ended_unpaid", "", "", "", "0"],
        ["trust_unlock", "all", "ended_unpaid_percent", "", "", "", "0.00"],
        ["trust_unlock", "all", "suspended_again", "", "", "", "1"],
        ["trust_unlock", "all", "suspended_again_percent", "", "", "", "33.33"]]
    assert rows.index(trust[0]) == len(rows) - len(trust)  # the last section
    assert all(len(r) == 7 for r in rows)
    week = list(csv.reader(io.StringIO(
        admin.get("/admin/dashboard/recovery.csv?days=7").get_data(as_text=True))))
    assert ["trust_unlock", "all", "made", "", "", "", "1"] in week  # client 33's, 11-17
    assert ["trust_unlock", "all", "open_percent", "", "", "", "100.00"] in week


def test_the_recovery_csv_without_unlocks(admin: AdminSession) -> None:
    rows = list(csv.reader(io.StringIO(
        admin.get("/admin/dashboard/recovery.csv?days=7").get_data(as_text=True))))
    trust = {r[2]: r[6] for r in rows if r[0] == "trust_unlock"}
    assert trust == {"made": "0", "paid": "0", "paid_percent": "", "paid_by_date": "0",
                     "paid_by_date_percent": "", "paid_later": "0", "paid_later_percent": "",
                     "open": "0", "open_percent": "", "ended_unpaid": "0",
                     "ended_unpaid_percent": "", "suspended_again": "0",
                     "suspended_again_percent": ""}


def test_the_trust_unlocks_in_portuguese(app: Flask, store: Store) -> None:
    unlocked_episodes(store)
    html = AdminSession(app, language="pt_BR").text("/admin/dashboard")
    section = html[html.index('id="recovery-trust-heading"'):]
    numbers = cells(section[:section.index("</table>")])
    assert numbers[:8] == ["Desbloqueios feitos", "3", "—", "—",
                           "Terminaram em pagamento", "2", "66,7%", "R$ 120,00"]
    assert "Suspensos de novo após o desbloqueio" in numbers
    assert "Desbloqueio por confiança" in section


def test_no_trust_unlock_in_portuguese(app: Flask) -> None:
    html = AdminSession(app, language="pt_BR").text("/admin/dashboard")
    section = html[html.index('id="recovery-trust-heading"'):]
    assert "Nenhum cliente desbloqueou os próprios serviços por confiança neste período." \
        in section


def test_the_recovery_section_in_portuguese(app: Flask, store: Store) -> None:
    recovered_episodes(store)
    html = AdminSession(app, language="pt_BR").text("/admin/dashboard")
    section = html[html.index('id="recovery-heading"'):]
    numbers = cells(section)
    assert numbers[:4] == ["11/2026", "R$", "R$ 200,00", "2"]  # the month as in Brazil
    assert numbers[4:13] == ["Todos os episódios", "R$ 200,00", "2", "50,0%", "50,0%",
                             "100,0%", "100,0%", "7,0", "1"]
    assert "saiu do VIP" in numbers and "nenhuma ação" in numbers and "sem motivo" in numbers
    assert "Pagos em até 7 dias após a suspensão" in section
    assert "Não há divisão por produto" in section
