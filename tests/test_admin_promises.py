"""Promises to pay from the admin page over a whole installation: the form's validation, the
client's tickets following at once (priority and the gate), cancelling, the active/expired
lists. On SQLite and on MariaDB. The business day is 2026-11-02 (tests/world.py START)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from bridge.store import inbox as queue
from tests.admin_helpers import ADMIN, AdminSession
from tests.admin_world import customer, flashes, text
from tests.world import World, wall

TODAY = date(2026, 11, 2)


def field_block(page: str, name: str) -> str:
    """The form field ``name`` with its label, hint and errors."""
    for block in text(page).split('<div class="field')[1:]:
        if f'name="{name}"' in block:
            return block.split("</div>")[0]
    raise AssertionError(f"no field {name}")


def promise_form(client_id: object, until: object, note: object) -> dict[str, object]:
    return {"client_id": client_id, "until": until, "note": note}


@pytest.mark.parametrize(("client_id", "until", "note", "field", "error"), [
    ("{ana}", "2026-11-01", "paga amanhã", "until", "The date is in the past: today is "
                                                    "2026-11-02."),
    ("{ana}", "2027-02-01", "paga amanhã", "until", "At most 90 days ahead (until "
                                                    "2027-01-31)."),
    ("{ana}", "", "paga amanhã", "until", "Enter the date the client promised to pay by."),
    ("{ana}", "05/11/2026", "paga amanhã", "until", "Not a valid date value."),
    ("{ana}", "2026-11-06", "", "note", "Write what was agreed (kept in the audit log)."),
    ("{ana}", "2026-11-06", "   ", "note", "Write what was agreed (kept in the audit log)."),
    ("{ana}", "2026-11-06", "x" * 501, "note", "At most 500 characters."),
    ("", "2026-11-06", "paga amanhã", "client_id", "Enter the client's id."),
    ("abc", "2026-11-06", "paga amanhã", "client_id", "Not a valid integer value."),
    ("0", "2026-11-06", "paga amanhã", "client_id", "A client id is a whole number from 1."),
    ("9999", "2026-11-06", "paga amanhã", "client_id", "WHMCS has no client 9999."),
])
def test_a_bad_promise_is_refused_with_the_error_next_to_the_field(
        world: World, admin: AdminSession, client_id: str, until: str, note: str, field: str,
        error: str) -> None:
    ana, _, _ = customer(world, "Ana", group=world.vip)
    answer = admin.post("/admin/promises",
                        promise_form(client_id.format(ana=ana), until, note))
    assert answer.status_code == 400
    page = answer.get_data(as_text=True)
    assert error in field_block(page, field)
    assert world.store.promise_records() == []
    assert world.store.audit_log(action="promise") == []


def test_the_last_day_allowed_is_90_days_ahead(world: World, admin: AdminSession) -> None:
    ana, _, _ = customer(world, "Ana", group=world.vip)
    last = TODAY + timedelta(days=90)
    answer = admin.post("/admin/promises", promise_form(ana, last.isoformat(), "parcela"))
    assert answer.status_code == 302
    assert world.store.get_promise(ana) == (last, "parcela")


def test_a_promise_restores_the_ticket_priority_at_once_and_cancel_undoes_it(
        world: World, admin: AdminSession) -> None:
    ana, _, _ = customer(world, "Ana", group=world.vip)
    ticket = world.sandbox.open_ticket(ana, world.support, "Site lento", "Medium").ticket_id
    world.drain()
    assert world.priority(ticket) == "Low"
    answer = admin.post("/admin/promises",
                        promise_form(ana, "2026-11-06", "  paga na sexta  "))
    assert answer.status_code == 302 and answer.headers["Location"] == "/admin/promises"
    assert world.priority(ticket) == "Medium"  # before any event: reconciled at once
    assert world.group(ana) == world.regular  # VIP only by payment
    assert world.store.get_promise(ana) == (date(2026, 11, 6), "paga na sexta")
    [entry] = world.store.audit_log(client_id=ana, action="promise")
    assert (entry.actor, entry.before, entry.after, entry.reasons) == (
        ADMIN, None, "until 2026-11-06", ("paga na sexta",))
    page = admin.text("/admin/promises")
    [(kind, message)] = flashes(page)
    assert kind == "message" and message.startswith(
        f"Promise to pay by 2026-11-06 saved for client {ana}. WHMCS: ticket #{ticket} "
        "priority Low -> Medium")
    active = text(page).split("<h2>Active (1)</h2>")[1].split("<h2>Expired")[0]
    assert f"/admin/clients/{ana}" in active and "paga na sexta" in active
    assert ">4</td>" in active  # days left

    answer = admin.post(f"/admin/promises/{ana}/cancel")
    assert answer.status_code == 302
    assert world.store.get_promise(ana) is None
    assert world.priority(ticket) == "Low"
    [cancelled] = world.store.audit_log(client_id=ana, action="promise_cancel")
    assert (cancelled.actor, cancelled.before) == (ADMIN, "until 2026-11-06")


def test_a_promise_lifts_the_block_on_new_tickets(world: World, admin: AdminSession) -> None:
    ana, _, _ = customer(world, "Ana", group=world.vip, due="2026-10-26")
    world.sandbox.run_cron()  # suspended (7 days > AutoSuspensionDays 5)
    world.drain()
    assert not world.sandbox.open_ticket(ana, world.support, "Fora do ar", "High").ticket_id
    admin.post("/admin/promises", promise_form(ana, "2026-11-04", "boleto pago hoje"))
    allowed = world.sandbox.open_ticket(ana, world.support, "Fora do ar", "High")
    assert allowed.ticket_id


def test_a_new_promise_replaces_the_old_one(world: World, admin: AdminSession) -> None:
    ana, _, _ = customer(world, "Ana", group=world.vip)
    admin.post("/admin/promises", promise_form(ana, "2026-11-06", "sexta"))
    admin.post("/admin/promises", promise_form(ana, "2026-11-10", "na outra terça"))
    assert world.store.get_promise(ana) == (date(2026, 11, 10), "na outra terça")
    second = world.store.audit_log(client_id=ana, action="promise")[-1]
    assert (second.before, second.after) == ("until 2026-11-06", "until 2026-11-10")
    assert "it replaces the one until 2026-11-06" in flashes(admin.text("/admin/promises"))[-1][1]


def test_promises_name_their_clients(world: World, admin: AdminSession) -> None:
    ana, _, _ = customer(world, "Ana", group=world.vip)
    world.drain()  # nothing read yet: the page shows the id alone
    admin.post("/admin/promises", promise_form(ana, "2026-11-06", "sexta"))  # reconciles her
    assert '<span class="muted">Ana Silva</span>' in admin.text("/admin/promises")


def test_expired_promises_are_listed_apart(world: World, admin: AdminSession) -> None:
    ana, _, _ = customer(world, "Ana", group=world.vip)
    bia, _, _ = customer(world, "Bia", group=world.vip)
    world.store.set_promise(ana, date(2026, 11, 1), "venceu", "bob", wall())
    world.store.set_promise(bia, date(2026, 11, 2), "vence hoje", "bob", wall())
    page = text(admin.text("/admin/promises"))
    active = page.split("<h2>Active (1)</h2>")[1].split("<h2>Expired (1)</h2>")[0]
    expired = page.split("<h2>Expired (1)</h2>")[1]
    assert "vence hoje" in active and f"/admin/clients/{bia}" in active
    assert "venceu" in expired and f"/admin/clients/{ana}" in expired
    world.sandbox.advance(days=1)
    page = text(admin.text("/admin/promises"))
    assert "<h2>Active (0)</h2>" in page and "<h2>Expired (2)</h2>" in page


def test_the_form_is_prefilled_from_the_client_page_link(world: World,
                                                         admin: AdminSession) -> None:
    page = admin.text("/admin/promises?client_id=42")
    assert 'value="42"' in field_block(page, "client_id")


def test_a_busy_client_gets_no_promise(world: World, admin: AdminSession) -> None:
    ana, _, _ = customer(world, "Ana", group=world.vip)
    assert queue.acquire_client(world.store, ana, "worker-elsewhere", wall(),
                                lease=timedelta(minutes=5))
    answer = admin.post("/admin/promises", promise_form(ana, "2026-11-06", "sexta"))
    assert answer.status_code == 409
    assert world.store.get_promise(ana) is None
    page = answer.get_data(as_text=True)
    assert "busy" in page and "sexta</textarea>" in page  # what was typed is kept


def test_cancelling_without_a_promise_says_so(world: World, admin: AdminSession) -> None:
    ana, _, _ = customer(world, "Ana", group=world.vip)
    answer = admin.post(f"/admin/promises/{ana}/cancel")
    assert ("warning", f"Client {ana} has no promise to pay.") in flashes(
        admin.text(answer.headers["Location"]))
    assert world.store.audit_log(client_id=ana) == []


@pytest.mark.parametrize(("path", "data"), [
    ("/admin/promises", {"client_id": "{ana}", "until": "2026-11-06", "note": "sexta"}),
    ("/admin/promises/{ana}/cancel", {}),
])
def test_promise_posts_without_csrf_token_are_refused(world: World, admin: AdminSession,
                                                      path: str, data: dict[str, str]) -> None:
    ana, _, _ = customer(world, "Ana", group=world.vip)
    world.store.set_promise(ana, date(2026, 11, 5), "antes", "bob", wall())
    answer = admin.client.post(path.format(ana=ana),
                               data={k: v.format(ana=ana) for k, v in data.items()})
    assert answer.status_code == 400
    assert world.store.get_promise(ana) == (date(2026, 11, 5), "antes")
    assert world.store.audit_log(client_id=ana) == []


def test_the_promises_page_needs_a_login(world: World) -> None:
    assert world.app is not None
    answer = world.app.test_client().get("/admin/promises")
    assert answer.status_code == 302 and "/admin/login" in answer.headers["Location"]
