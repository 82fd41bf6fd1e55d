"""The admin page's audit log: every field of a row in WHMCS's time zone, newest first;
filters by client, action, actor and local days; bad filter values answered next to their
field; pages; the CSV export (same filters, every row, formula-safe). SQLite and MariaDB."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from flask import Flask

from bridge.admin import audit_page
from bridge.model import AuditEntry, CachedStanding
from bridge.settings import Settings
from bridge.store import Store
from bridge.store.audit import AuditFilter
from bridge.store.tables import audit
from bridge.web.app import create_app
from tests.admin_helpers import AdminSession
from tests.helpers import Clock

ZONE = "America/Sao_Paulo"  # UTC-3 all year


@pytest.fixture
def app(settings: Settings, store: Store, clock: Clock) -> Flask:
    return create_app(settings.replace(bridge={"timezone": ZONE}), store=store, clock=clock)


@pytest.fixture
def admin(app: Flask, store: Store) -> AdminSession:
    session = AdminSession(app)
    with store.engine.begin() as conn:  # the login's own audit row: each test writes its own
        conn.execute(audit.delete())
    return session


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def entry(event: str, at: str, *, actor: str = "vipgate", action: str = "group",
          client: int | None = 42, ticket: int | None = None, before: str | None = "1",
          after: str | None = "2", reasons: tuple[str, ...] = ("a reason",)) -> AuditEntry:
    return AuditEntry(utc(at), actor, action, client, ticket, before, after, reasons, event)


STORY = [
    entry("ev_a", "2026-11-21 02:30:00"),  # 20 Nov 23:30 in São Paulo
    entry("ev_b", "2026-11-21 12:00:00", ticket=9, action="ticket_priority",
          before="Medium", after="Low",
          reasons=("invoice #1042 R$ 89.90 overdue 6 days > grace 3", "VIP: no")),
    entry("ev_c", "2026-11-22 15:00:00", actor="staff", client=7, action="membership",
          before="unknown", after="pinned"),
    entry("ev_d", "2026-11-23 02:50:00", actor="alice", client=None, action="admin_login",
          before=None, after=None, reasons=("logged in from 127.0.0.1",)),
]


def events_in(page: str) -> list[str]:
    return re.findall(r'<code class="event-id">(ev_\w+)</code>', page)


def field_of(page: str, name: str) -> str:
    """The HTML of one form field (label to end of its div)."""
    start = page.index(f'<label for="{name}">')
    return page[start:page.index("</div>", start)]


def test_rows_show_every_field_newest_first_in_whmcs_time(admin: AdminSession,
                                                          store: Store) -> None:
    store.add_audit(STORY)
    page = admin.text("/admin/audit")
    assert events_in(page) == ["ev_d", "ev_c", "ev_b", "ev_a"]
    assert "4 entries" in page and f"times in {ZONE}" in page
    assert ">2026-11-20 23:30</time>" in page and ">2026-11-21 09:00</time>" in page
    row_b = page[page.index(">2026-11-21 09:00<"):page.index("ev_b</code>")]
    for part in ("<td>vipgate</td>", '<td title="ticket_priority">ticket priority</td>',
                 '<a href="/admin/clients/42">#42</a>', "<td>#9</td>", "Medium → Low",
                 "<li>invoice #1042 R$ 89.90 overdue 6 days &gt; grace 3</li>", "<li>VIP: no</li>"):
        assert part in row_b, part
    row_d = page[page.index("ev_d") - 900:page.index("ev_d")]
    assert "<td>alice</td>" in row_d and "/admin/clients/" not in row_d


def test_rows_name_the_clients_vipgate_has_read(admin: AdminSession, store: Store) -> None:
    store.add_audit(STORY)
    store.put_standing(CachedStanding(42, "current", 0, Decimal(0), (), "", "", None,
                                      utc("2026-11-21 12:00:00"), name="Ana Souza (Acme)"))
    page = admin.text("/admin/audit")
    assert page.count('<span class="muted">Ana Souza (Acme)</span>') == 2  # ev_a and ev_b
    assert '<a href="/admin/clients/7">#7</a></td>' in page  # no name known: its id


def test_the_engines_reasons_read_in_the_pages_language_and_the_csv_in_english(
        app: Flask, store: Store) -> None:
    """A group change's reasons, kept as messages, in Portuguese on the page (groups by their
    WHMCS names); the CSV export keeps their English text; older rows as they were stored."""
    from decimal import Decimal

    from bridge.i18n import why
    from bridge.model import GroupRef, Money

    owed = why.ngettext("invoice #%(number)s %(amount)s overdue %(num)d day > grace %(grace)s",
                        "invoice #%(number)s %(amount)s overdue %(num)d days > grace %(grace)s",
                        5, number="1042", amount=Money(Decimal("1200"), "R$ ", ""), grace=3)
    leaves = why.gettext("not in VIP: leaves VIP for group %(group)s", group=GroupRef(2))
    store.put_whmcs_names({2: "Clientes"}, {}, utc("2026-11-21 12:00:00"))
    admin = AdminSession(app, language="pt_BR")
    with store.engine.begin() as conn:
        conn.execute(audit.delete())
    store.add_audit([entry("ev_new", "2026-11-21 12:00:00", reasons=(owed, leaves)),
                     entry("ev_old", "2026-11-20 12:00:00", reasons=("standing overdue",))])
    page = admin.text("/admin/audit")
    assert "<li>fatura #1042 R$ 1.200,00 vencida há 5 dias &gt; carência 3</li>" in page
    assert "<li>fora do VIP: sai do VIP para o grupo Clientes (#2)</li>" in page
    assert "<li>standing overdue</li>" in page
    rows = read_csv(admin.get("/admin/audit.csv"))
    reasons = {row[-1]: row[-2] for row in rows[1:]}
    assert reasons == {"ev_new": "invoice #1042 R$ 1,200.00 overdue 5 days > grace 3 | "
                                 "not in VIP: leaves VIP for group 2",
                       "ev_old": "standing overdue"}


@pytest.mark.parametrize(("query", "expected"), [
    ("client_id=42", ["ev_b", "ev_a"]),
    ("client_id=7", ["ev_c"]),
    ("action=membership", ["ev_c"]),
    ("actor=staff", ["ev_c"]),
    ("actor=alice", ["ev_d"]),
    ("actor=nobody", []),
    ("since=2026-11-21", ["ev_d", "ev_c", "ev_b"]),  # ev_a is 20 Nov in São Paulo
    ("until=2026-11-20", ["ev_a"]),
    ("since=2026-11-21&until=2026-11-21", ["ev_b"]),
    ("since=2026-11-23&until=2026-11-23", []),  # ev_d: 23 Nov 02:50 UTC = 22 Nov 23:50
    ("since=2026-11-22&until=2026-11-22", ["ev_d", "ev_c"]),
    ("client_id=42&action=group", ["ev_a"]),
    ("client_id=42&since=2026-11-21&actor=vipgate&action=ticket_priority", ["ev_b"]),
])
def test_filters_narrow_the_log(admin: AdminSession, store: Store, query: str,
                                expected: list[str]) -> None:
    store.add_audit(STORY)
    page = admin.text(f"/admin/audit?{query}")
    assert events_in(page) == expected
    assert (f"{len(expected)} entr" in page) if expected else ("No entries match." in page)


def test_the_action_filter_offers_the_actions_present(admin: AdminSession,
                                                      store: Store) -> None:
    store.add_audit(STORY)
    page = admin.text("/admin/audit?action=membership")
    options = re.findall(r'<option (?:selected )?value="([^"]*)"', field_of(page, "action"))
    assert options == ["", "admin_login", "group", "membership", "ticket_priority"]
    assert '<option selected value="membership">' in page
    assert '<option value="staff">' in page  # actor suggestions
    assert '<option value="alice">' in page


@pytest.mark.parametrize(("query", "field", "message"), [
    ("client_id=abc", "client_id", "A client id is a whole number above 0"),
    ("client_id=-3", "client_id", "A client id is a whole number above 0"),
    ("client_id=0", "client_id", "A client id is a whole number above 0"),
    ("client_id=99999999999", "client_id", "A client id is a whole number above 0"),
    ("since=2026-13-01", "since", "Enter a date as YYYY-MM-DD"),
    ("until=yesterday", "until", "Enter a date as YYYY-MM-DD"),
    ("since=2026-11-22&until=2026-11-21", "until", "The end date is before the start date."),
    ("actor=" + "x" * 65, "actor", "An actor name has at most 64 characters."),
    ("action=" + "y" * 33, "action", "No such action"),
])
@pytest.mark.parametrize("path", ["/admin/audit", "/admin/audit.csv"])
def test_a_bad_filter_is_answered_next_to_its_field(admin: AdminSession, store: Store,
                                                    path: str, query: str, field: str,
                                                    message: str) -> None:
    store.add_audit(STORY)
    answer = admin.get(f"{path}?{query}")
    assert answer.status_code == 400 and answer.mimetype == "text/html"
    page = answer.get_data(as_text=True)
    assert message in field_of(page, field)
    assert events_in(page) == []


def test_pages_hold_fifty_newest_first_and_keep_the_filters(admin: AdminSession,
                                                            store: Store) -> None:
    start = utc("2026-11-01 12:00:00")
    store.add_audit([entry(f"ev_{n:03d}", str(start + timedelta(minutes=n))[:19],
                           client=5 if n % 2 else 6) for n in range(240)])
    first = admin.text("/admin/audit?client_id=5")
    assert "120 entries" in first and "page 1 of 3" in first
    assert events_in(first) == [f"ev_{n:03d}" for n in range(239, 139, -2)]
    assert 'href="/admin/audit?client_id=5&amp;page=2" rel="next"' in first
    last = admin.text("/admin/audit?client_id=5&page=3")
    assert events_in(last) == [f"ev_{n:03d}" for n in range(39, 0, -2)]
    assert events_in(admin.text("/admin/audit?client_id=5&page=99")) == events_in(last)
    assert events_in(admin.text("/admin/audit?client_id=5&page=x")) == events_in(first)


def test_past_the_count_cap_the_page_says_more_than(admin: AdminSession, store: Store,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_page, "COUNT_CAP", 30)
    monkeypatch.setattr(audit_page, "PAGE_SIZE", 10)
    store.add_audit([entry(f"ev_{n:02d}", f"2026-11-01 12:{n:02d}:00") for n in range(40)])
    page = admin.text("/admin/audit")
    assert "More than 30 entries" in page and "page 1 of 3" in page
    assert "narrow the dates, or export the CSV" in page
    assert store.audit_count(AuditFilter(), cap=30) == 30
    assert store.audit_count(AuditFilter()) == 40


def read_csv(answer: object) -> list[list[str]]:
    return list(csv.reader(io.StringIO(answer.get_data(as_text=True))))  # type: ignore[attr-defined]


def test_the_csv_export_has_every_matching_row_with_the_same_filters(
        admin: AdminSession, store: Store) -> None:
    store.add_audit(STORY)
    answer = admin.get("/admin/audit.csv?client_id=42")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert answer.headers["Content-Disposition"] == 'attachment; filename="vipgate-audit.csv"'
    [header, b, a] = read_csv(answer)
    assert header == list(audit_page.CSV_HEADER)
    assert b[1:] == ["2026-11-21T09:00:00-03:00", "vipgate", "ticket_priority", "42", "9",
                     "Medium", "Low",
                     "invoice #1042 R$ 89.90 overdue 6 days > grace 3 | VIP: no", "ev_b"]
    assert a[1] == "2026-11-20T23:30:00-03:00" and a[-1] == "ev_a"
    assert len(read_csv(admin.get("/admin/audit.csv"))) == 1 + len(STORY)
    page = admin.text("/admin/audit?client_id=42&page=1")
    assert 'href="/admin/audit.csv?client_id=42"' in page


def test_the_csv_quotes_cells_a_spreadsheet_would_run_as_formulas(
        admin: AdminSession, store: Store) -> None:
    store.add_audit([entry("ev_x", "2026-11-21 12:00:00", actor="=cmd|' /C calc'!A0",
                           before="=1+1", after="+SUM(A1)",
                           reasons=("@HYPERLINK(\"http://evil\")", "-2"))])
    [_, row] = read_csv(admin.get("/admin/audit.csv"))
    assert row[2] == "'=cmd|' /C calc'!A0"
    assert (row[6], row[7]) == ("'=1+1", "'+SUM(A1)")
    assert row[8] == "'@HYPERLINK(\"http://evil\") | -2"


def test_the_csv_reads_in_keyset_pages_without_losing_rows_that_share_a_time(
        admin: AdminSession, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_page, "CSV_PAGE", 3)
    same = [entry(f"ev_s{n}", "2026-11-21 12:00:00") for n in range(8)]
    store.add_audit([entry("ev_old", "2026-11-20 12:00:00"), *same,
                     entry("ev_new", "2026-11-22 12:00:00")])
    rows = read_csv(admin.get("/admin/audit.csv"))[1:]
    assert [r[-1] for r in rows] == ["ev_new", *[f"ev_s{n}" for n in range(7, -1, -1)],
                                     "ev_old"]
    assert [int(r[0]) for r in rows[1:9]] == sorted((int(r[0]) for r in rows[1:9]),
                                                    reverse=True)


def test_the_store_pages_match_the_stream(store: Store) -> None:
    store.add_audit([entry(f"ev_{n}", f"2026-11-21 12:00:{n % 3:02d}", client=n % 2)
                     for n in range(11)])
    only = AuditFilter(client_id=1)
    streamed = [e.event_id for e in store.iter_audit(only, page=2)]
    paged = [e.event_id for offset in range(0, 6, 2)
             for e in store.audit_page(only, limit=2, offset=offset)]
    assert streamed == paged and len(streamed) == 5 == store.audit_count(only)
    assert store.audit_actions() == ["group"]
