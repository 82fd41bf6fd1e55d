"""Client lookup over a whole installation: search, the client page (a fresh plan with its
reasons, tickets with vipgate's record, membership, promise, history), "reconcile now", and
what the page does when WHMCS cannot answer. On SQLite and on MariaDB."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from flask import Flask

from bridge.engine.names import refresh_names
from bridge.model import CachedStanding, ClientMemory, OverdueInvoice
from bridge.store import Store
from bridge.store import inbox as queue
from tests.admin_helpers import ADMIN, AdminSession
from tests.admin_world import customer, flashes, listed, reconcile, text
from tests.world import World, wall


def section(page: str, title: str) -> str:
    """The card headed ``title`` on the client page (text, entities decoded)."""
    return text(page).split(f"<h2>{title}</h2>")[1].split("</section>")[0]


def test_client_page_shows_the_plan_with_its_reasons_and_applies_nothing(
        world: World, admin: AdminSession) -> None:
    ana, _, invoice = customer(world, "Ana", group=world.vip)  # due 28 Oct: 5 days overdue
    page = admin.text(f"/admin/clients/{ana}")
    assert f"Client #{ana} · Ana Silva" in page
    assert "WHMCS status Active" in page
    standing = section(page, "Standing")
    assert 'badge-overdue">overdue' in standing
    assert f"invoice #{invoice} $89.90 USD overdue 5 days > grace 3" in standing
    decision = section(page, "VIP decision")
    assert "eligible: pinned by staff" in decision
    assert f"not in VIP: leaves VIP for group #{world.regular}" in decision  # no name read yet
    planned = section(page, "What a reconcile would change")
    assert f"group #{world.vip} -> #{world.regular}" in planned  # no name read yet
    assert "adopted as pinned" in planned
    assert world.group(ana) == world.vip  # a plan only: nothing applied
    assert world.store.audit_log(client_id=ana) == []


def test_open_tickets_show_priority_and_vipgates_record(world: World,
                                                       admin: AdminSession) -> None:
    ana, _, invoice = customer(world, "Ana", group=world.vip)
    ticket = world.sandbox.open_ticket(ana, world.support, "Site lento", "Medium")
    world.drain()
    assert world.priority(ticket.ticket_id) == "Low"
    page = section(admin.text(f"/admin/clients/{ana}"), "Open tickets")
    row = page.split(f"#{ticket.ticket_id}", 1)[1].split("</tr>")[0]
    cells = [c.strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
    # subject, department, priority now, a reconcile sets, original, managed, staff note
    assert cells[0] == "Site lento" and cells[1] == f"#{world.support}"  # no name read yet
    assert cells[2:] == ["Low", "—", "Medium", "Low", f"ids:{invoice}"]


def test_history_lists_the_clients_audit_entries_newest_first(world: World,
                                                              admin: AdminSession) -> None:
    ana, _, _ = customer(world, "Ana", group=world.vip)
    reconcile(world, ana)
    history = section(admin.text(f"/admin/clients/{ana}"), "History")
    assert f"#{world.vip} → #{world.regular}" in history  # WHMCS's names not read yet
    assert refresh_names(world.store, world.api(), wall())  # as the worker does, hourly
    history = section(admin.text(f"/admin/clients/{ana}"), "History")
    group = history.index(f"VIP (#{world.vip}) → Clientes (#{world.regular})")
    adopted = history.index("unknown → pinned")
    assert group < adopted  # newest first
    assert f"/admin/audit?client_id={ana}" in history


def test_reconcile_now_applies_the_plan_and_is_audited(world: World,
                                                       admin: AdminSession) -> None:
    ana, _, _ = customer(world, "Ana", group=world.vip)
    answer = admin.post(f"/admin/clients/{ana}/reconcile")
    assert answer.status_code == 302 and answer.headers["Location"] == f"/admin/clients/{ana}"
    assert world.group(ana) == world.regular
    page = admin.text(answer.headers["Location"])
    assert ("message", f"Reconciled client {ana}: group #{world.vip} -> #{world.regular}.") \
        in flashes(page)
    [entry] = world.store.audit_log(client_id=ana, action="reconcile")
    assert entry.actor == ADMIN and entry.reasons == (f"group {world.vip} -> {world.regular}",)
    again = admin.post(f"/admin/clients/{ana}/reconcile")
    assert ("message", f"Reconciled client {ana}: nothing to change.") \
        in flashes(admin.text(again.headers["Location"]))
    assert len(world.store.audit_log(client_id=ana, action="reconcile")) == 2


def test_reconcile_now_on_a_busy_client_changes_nothing(world: World,
                                                        admin: AdminSession) -> None:
    ana, _, _ = customer(world, "Ana", group=world.vip)
    assert queue.acquire_client(world.store, ana, "worker-elsewhere", wall(),
                                lease=timedelta(minutes=5))
    answer = admin.post(f"/admin/clients/{ana}/reconcile")
    assert world.group(ana) == world.vip
    assert world.store.audit_log(client_id=ana) == []
    [(kind, message)] = flashes(admin.text(answer.headers["Location"]))
    assert kind == "warning" and "busy" in message


def test_whmcs_down_shows_the_cached_standing_with_a_notice(world: World,
                                                            admin: AdminSession) -> None:
    ana, _, invoice = customer(world, "Ana", group=world.vip)
    world.sandbox.open_ticket(ana, world.support, "Site lento", "Medium")
    world.drain()
    world.sandbox.faults.push("html", times=100)
    page = admin.text(f"/admin/clients/{ana}")
    assert "WHMCS could not be read" in page and "Showing the standing vipgate cached" in page
    assert f"Client #{ana} · Ana Silva</h1>" in page  # the name vipgate read last
    standing = section(page, "Standing")
    assert 'badge-overdue">overdue' in standing and "(cached)" in standing
    # the reasons the last reconcile cached
    assert f"invoice #{invoice} $89.90 USD overdue 5 days > grace 3" in standing
    decision = section(page, "VIP decision")
    assert "(cached)" in decision and "without reasons" not in decision
    assert "eligible: pinned by staff" in decision
    tickets = section(page, "Open tickets")
    assert "Medium" in tickets and "vipgate's records only" in tickets


def test_the_reasons_read_in_the_pages_language(world: World) -> None:
    ana, _, invoice = customer(world, "Ana", group=world.vip)
    world.store.put_whmcs_names({world.regular: "Clientes"}, {}, wall())
    assert world.app is not None
    admin = AdminSession(world.app, language="pt_BR")
    page = admin.text(f"/admin/clients/{ana}")
    assert "status no WHMCS Ativo" in page  # WHMCS's own word, translated
    standing = section(page, "Situação")
    assert f"fatura #{invoice} $89,90 USD vencida há 5 dias > carência 3" in standing
    decision = section(page, "Decisão de VIP")
    assert "elegível: fixado pela equipe" in decision
    assert f"fora do VIP: sai do VIP para o grupo Clientes (#{world.regular})" in decision
    reconcile(world, ana)  # the reasons it caches are shown when WHMCS cannot be read
    world.sandbox.faults.push("html", times=100)
    cached = text(admin.text(f"/admin/clients/{ana}"))
    assert f"fatura #{invoice} $89,90 USD vencida há 5 dias > carência 3" in cached
    assert "situação em atraso" in cached


def test_cached_rows_from_before_the_reasons_were_messages_still_show(
        app: Flask, store: Store) -> None:
    """Rows with the English sentences of older versions show them as they are; rows with
    no reasons at all show their invoices, in the page's language."""
    due = "2026-10-28"
    store.put_standing(CachedStanding(
        7, "overdue", 5, Decimal("1200.00"), (OverdueInvoice(41, "41", Decimal("1200.00"), due),),
        "R$ ", "", None, wall(), "overdue", 2, False, True,
        ("invoice #41 R$ 1,200.00 overdue 5 days > grace 3", "standing overdue"),
        ("eligible: pinned by staff", "not in VIP: stays in group 2")))
    store.put_standing(CachedStanding(
        8, "overdue", 5, Decimal("1200.00"), (OverdueInvoice(42, "42", Decimal("1200.00"), due),),
        "R$ ", "", None, wall(), "overdue", 2, False, True))
    pt = AdminSession(app, language="pt_BR")
    old = text(pt.text("/admin/clients/7"))
    assert "<li>invoice #41 R$ 1,200.00 overdue 5 days > grace 3</li>" in old
    assert "<li>not in VIP: stays in group 2</li>" in old
    older = text(pt.text("/admin/clients/8"))
    assert "<li>fatura #42 R$ 1.200,00, venceu em 28/10/2026</li>" in older
    assert "<li>total em atraso R$ 1.200,00, a mais antiga há 5 dias</li>" in older
    assert "(em cache, sem motivos)" in older


def test_reconcile_now_with_whmcs_down_says_so_and_is_audited(world: World,
                                                              admin: AdminSession) -> None:
    ana, _, _ = customer(world, "Ana", group=world.vip)
    world.sandbox.faults.push("html", times=100)
    answer = admin.post(f"/admin/clients/{ana}/reconcile")
    assert answer.status_code == 302
    world.sandbox.faults.clear()
    [(kind, message)] = flashes(admin.text(answer.headers["Location"]))
    assert kind == "error" and message.startswith("WHMCS failed: WHMCS GetClientsDetails")
    [entry] = world.store.audit_log(client_id=ana, action="reconcile")
    assert entry.actor == ADMIN and (entry.after or "").startswith("failed: ")
    assert world.group(ana) == world.vip


def test_an_unknown_client_is_a_404(world: World, admin: AdminSession) -> None:
    page = admin.text("/admin/clients/9999", status=404)
    assert "WHMCS has no client 9999." in page


def test_search_by_name_lists_matches_with_vipgates_view(world: World,
                                                         admin: AdminSession) -> None:
    ana, _, _ = customer(world, "Ana", group=world.vip)
    anabel, _, _ = customer(world, "Anabel", group=world.regular, paid="2026-10-28")
    customer(world, "Bruno", group=world.regular)
    reconcile(world, ana)
    page = admin.text("/admin/clients?q=Ana")
    assert listed(page) == [ana, anabel]
    rows = text(page)
    assert "Anabel Silva" in rows and "anabel.silva@example.com" in rows
    assert 'badge-overdue">overdue' in rows and "not reconciled yet" in rows


def test_search_by_id_opens_the_client_page(world: World, admin: AdminSession) -> None:
    answer = admin.get("/admin/clients?q=%2342")
    assert answer.status_code == 302 and answer.headers["Location"] == "/admin/clients/42"


def test_membership_buttons_on_the_client_page_record_the_reason(
        world: World, admin: AdminSession) -> None:
    bruno, _, _ = customer(world, "Bruno", group=world.regular, due="2026-11-20",
                           paid="2026-10-20")
    page = admin.text(f"/admin/clients/{bruno}")
    assert 'name="reason"' in section(page, "Membership")
    admin.post(f"/admin/clients/{bruno}/membership",
               {"action": "exclude", "reason": "pediu para sair",
                "next": f"/admin/clients/{bruno}"})
    [entry] = world.store.audit_log(client_id=bruno, action="exclude")
    assert entry.reasons[-1] == "pediu para sair"
    assert world.store.get_memory(bruno).excluded
    assert 'badge-bad">excluded' in section(admin.text(f"/admin/clients/{bruno}"),
                                            "Membership")


def test_client_page_shows_an_active_promise(world: World, admin: AdminSession) -> None:
    ana, _, _ = customer(world, "Ana", group=world.vip)
    world.store.set_promise(ana, date(2026, 11, 6), "paga na sexta", "bob", wall())
    promise = section(admin.text(f"/admin/clients/{ana}"), "Promise to pay")
    assert 'badge-ok">active' in promise and "until 2026-11-06" in promise
    assert "paga na sexta" in promise and f"/admin/promises?client_id={ana}" in promise
    standing = section(admin.text(f"/admin/clients/{ana}"), "Standing")
    assert "promise to pay active" in standing


def test_reconcile_without_csrf_token_is_refused(world: World, admin: AdminSession) -> None:
    ana, _, _ = customer(world, "Ana", group=world.vip)
    answer = admin.client.post(f"/admin/clients/{ana}/reconcile")
    assert answer.status_code == 400
    assert world.group(ana) == world.vip
    assert world.store.audit_log(client_id=ana) == []


@pytest.mark.parametrize("path", ["/admin/clients", "/admin/clients/1"])
def test_client_pages_need_a_login(world: World, path: str) -> None:
    assert world.app is not None
    answer = world.app.test_client().get(path)
    assert answer.status_code == 302 and "/admin/login" in answer.headers["Location"]


@pytest.mark.parametrize(("path", "notice"), [
    ("/admin/clients/7", "No WHMCS API is configured ([whmcs] url)."),
    ("/admin/clients?q=Ana", "Searching by name or e-mail needs WHMCS's API ([whmcs] url)."),
    ("/admin/roster?tab=all&q=Ana", "Searching by name or e-mail needs WHMCS's API"),
    ("/admin/roster?tab=all&q=7", ""),
])
def test_pages_work_without_a_whmcs_api(app: Flask, store: Store, path: str,
                                        notice: str) -> None:
    store.put_standing(CachedStanding(7, "overdue", 9, Decimal("50.00"), (), "R$ ", "", None,
                                      wall(), "overdue"))
    store.save_memory(ClientMemory(7, pinned=True, last_group_id=2), wall())
    page = text(AdminSession(app).text(path))
    assert notice in page
    if "q=Ana" not in path:
        assert 'badge-overdue">overdue' in page and "R$ 50.00" in page


def test_pinning_without_a_whmcs_api_is_remembered_for_the_next_reconcile(
        app: Flask, store: Store) -> None:
    admin = AdminSession(app)
    answer = admin.post("/admin/clients/7/membership", {"action": "exclude"})
    assert store.get_memory(7).excluded
    assert ("warning", "Client 7 excluded. No WHMCS API is configured: the group will be "
            "fixed at the next reconcile.") in flashes(admin.text(answer.headers["Location"]))
    [entry] = store.audit_log(client_id=7)
    assert (entry.action, entry.actor) == ("exclude", ADMIN)


def test_the_client_page_lists_its_episodes_with_actions_payments_and_the_end(
        world: World, admin: AdminSession) -> None:
    ana, _, invoice = customer(world, "Ana", group=world.vip)
    assert "None: this client has not owed past the grace" in section(
        admin.text(f"/admin/clients/{ana}"), "Delinquency episodes")
    reconcile(world, ana)
    opened = section(admin.text(f"/admin/clients/{ana}"), "Delinquency episodes")
    assert "$89.90 USD" in opened and "left VIP" in opened and ">open<" in opened
    world.sandbox.clock.advance(days=3)
    world.sandbox.add_payment(invoice)
    world.drain()
    paid = section(admin.text(f"/admin/clients/{ana}"), "Delinquency episodes")
    assert f"$89.90 USD (invoice #{invoice})" in paid
    assert ": paid" in paid and "in 3 days" in paid and ">open<" not in paid
