"""The VIP roster page over a whole installation (sandbox WHMCS, bridge, worker): its tabs,
search, and the pin / unpin / exclude / include buttons, which change vipgate's memory under
the client's lease and reconcile the client at once. On SQLite and on MariaDB."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bridge.model import ClientMemory
from bridge.store import inbox as queue
from tests.admin_helpers import ADMIN, AdminSession
from tests.admin_world import customer, flashes, listed, reconcile, text
from tests.world import World, make_world, wall


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[World]:
    # min_spend 500: a client paying 89.90 a month is not eligible by the rules
    with make_world(database_url, tmp_path, policy={"min_spend": "500",
                                                    "promote_by_rules": True}) as w:
        yield w


@pytest.fixture
def admin(world: World) -> AdminSession:
    assert world.app is not None
    return AdminSession(world.app)


def cast(w: World) -> dict[str, int]:
    """Six clients after a reconcile, one for each way of being on the roster."""
    ana, _, _ = customer(w, "Ana", group=w.vip)  # adopted (pinned); owes: leaves VIP
    carla, _, _ = customer(w, "Carla", group=w.vip, due="2026-10-20", paid="2026-10-20")
    dora, _, _ = customer(w, "Dora", group=w.regular, due="2026-10-01", amount="600.00",
                          paid="2026-10-01")  # eligible by the rules: moved into VIP
    eve, _, _ = customer(w, "Eve", group=w.regular, due="2026-10-20", paid="2026-10-20")
    frank, service, _ = customer(w, "Frank", group=w.regular, due="2026-10-01",
                                 amount="600.00", paid="2026-10-01")
    with w.sandbox.quiet():  # Frank owes this month's invoice: eligible, but out of VIP
        w.sandbox.add_invoice(frank, "2026-10-28", [("Hosting", service, "Plano", "600.00")])
    gil, _, _ = customer(w, "Gil", group=w.regular, due="2026-10-01", amount="600.00",
                         paid="2026-10-01")
    w.store.save_memory(ClientMemory(gil, excluded=True), wall())
    people = {"ana": ana, "carla": carla, "dora": dora, "eve": eve, "frank": frank, "gil": gil}
    reconcile(w, *people.values())
    return people


@pytest.mark.parametrize(("tab", "expected"), [
    ("members", ["carla", "dora"]),
    ("pinned", ["ana", "carla"]),
    ("excluded", ["gil"]),
    ("eligible", ["ana", "frank"]),
    ("all", ["ana", "carla", "dora", "eve", "frank", "gil"]),
])
def test_each_tab_lists_its_clients_with_counts(world: World, admin: AdminSession, tab: str,
                                                expected: list[str]) -> None:
    people = cast(world)
    assert (world.group(people["dora"]), world.group(people["ana"])) == (world.vip,
                                                                        world.regular)
    page = admin.text(f"/admin/roster?tab={tab}")
    assert listed(page) == [people[name] for name in expected]
    counts = dict(re.findall(r'tab=(\w+)"[^>]*>[^<]*<span class="count">(\d+)</span>', page))
    assert counts == {"members": "2", "pinned": "2", "excluded": "1", "eligible": "2",
                      "all": "6"}


def test_rows_show_standing_overdue_group_and_flags(world: World,
                                                    admin: AdminSession) -> None:
    people = cast(world)
    page = text(admin.text("/admin/roster?tab=eligible"))
    ana_row = page.split(f'href="/admin/clients/{people["ana"]}"')[1].split("</tr>")[0]
    assert 'badge-overdue">overdue' in ana_row
    assert "$89.90 USD · 5 days" in ana_row
    assert f"group {world.regular}" in ana_row and "pinned" in ana_row
    assert 'value="unpin"' in ana_row and 'value="exclude"' in ana_row


def test_rows_name_the_clients_as_whmcs_has_them(world: World, admin: AdminSession) -> None:
    """The names come from the engine's own reads of the clients (the standing cache), not
    from a WHMCS search; a client vipgate has not read since names were kept shows its id."""
    people = cast(world)
    with world.sandbox.quiet():
        acme = world.sandbox.add_client("", "", groupid=world.regular, companyname="Acme Ltda",
                                        datecreated="2020-01-15")
        both = world.sandbox.add_client("Bia", "Lima", groupid=world.regular,
                                        companyname="Lima & Filhos", datecreated="2020-01-15")
    reconcile(world, acme, both)
    world.store.add_memories([ClientMemory(9000)], wall())  # remembered, never read
    page = text(admin.text("/admin/roster?tab=all"))

    def row(client_id: int) -> str:
        return page.split(f'href="/admin/clients/{client_id}"')[1].split("</tr>")[0]

    assert "Ana Silva" in row(people["ana"]) and "Gil Silva" in row(people["gil"])
    assert "Acme Ltda" in row(acme) and "Bia Lima (Lima & Filhos)" in row(both)
    assert row(9000).startswith(">#9000</a> </td>")
    # WHMCS renames a client: the next read of it brings the new name
    with world.sandbox.quiet():
        world.sandbox.update_client(people["eve"], firstname="Evelyn")
    reconcile(world, people["eve"])
    assert "Evelyn Silva" in text(admin.text("/admin/roster?tab=all"))


def test_unknown_tab_falls_back_to_members(world: World, admin: AdminSession) -> None:
    people = cast(world)
    assert listed(admin.text("/admin/roster?tab=nonsense")) == [people["carla"], people["dora"]]


def test_search_by_id_lists_that_client_only(world: World, admin: AdminSession) -> None:
    people = cast(world)
    page = admin.text(f"/admin/roster?tab=all&q={people['frank']}")
    assert listed(page) == [people["frank"]]
    assert "Frank Silva" in page  # the name, from WHMCS


def test_search_by_name_goes_through_whmcs_and_shows_names(world: World,
                                                           admin: AdminSession) -> None:
    people = cast(world)
    with world.sandbox.quiet():  # in WHMCS, never reconciled by vipgate
        newcomer = world.sandbox.add_client("Frida", "Souza", groupid=world.regular)
    page = admin.text("/admin/roster?tab=all&q=Fr")
    assert listed(page) == [people["frank"], newcomer]
    assert "Frank Silva" in page and "Frida Souza" in page
    unseen = page.split("not yet reconciled by vipgate")[1]
    assert f'/admin/clients/{newcomer}/membership' in unseen
    assert "Frank" not in unseen
    # the tab filter applies to the matches
    assert listed(admin.text("/admin/roster?tab=members&q=Fr")) == [newcomer]


def test_roster_pages_through_many_clients(world: World, admin: AdminSession) -> None:
    world.store.add_memories([ClientMemory(cid) for cid in range(1000, 1075)], wall())
    first = admin.text("/admin/roster?tab=all")
    second = admin.text("/admin/roster?tab=all&page=2")
    assert listed(first) == list(range(1000, 1050))
    assert listed(second) == list(range(1050, 1075))
    assert "page 2 of 2 (75)" in second


def test_pin_moves_a_paying_client_into_vip_at_once_and_is_audited(
        world: World, admin: AdminSession) -> None:
    eve = cast(world)["eve"]
    assert world.group(eve) == world.regular  # paying, but 89.90 < min_spend 500
    answer = admin.post(f"/admin/clients/{eve}/membership",
                        {"action": "pin", "next": "/admin/roster?tab=all"})
    assert answer.status_code == 302 and answer.headers["Location"] == "/admin/roster?tab=all"
    assert world.group(eve) == world.vip  # in WHMCS already, before any event
    memory = world.store.get_memory(eve)
    assert memory.pinned and not memory.excluded and memory.home_group_id == world.regular
    [entry] = world.store.audit_log(client_id=eve, action="pin")
    assert (entry.actor, entry.before, entry.after) == (ADMIN, "rules", "pinned")
    page = admin.text("/admin/roster?tab=all")
    assert any(f"Client {eve} pinned. WHMCS: group #{world.regular} -> #{world.vip}" in message
               for _, message in flashes(page))
    world.drain()  # vipgate's own UpdateClient comes back as ClientEdit: not a staff change
    assert world.group(eve) == world.vip and world.store.get_memory(eve).pinned


def test_exclude_takes_a_member_out_and_unpins_it(world: World, admin: AdminSession) -> None:
    carla = cast(world)["carla"]
    admin.post(f"/admin/clients/{carla}/membership", {"action": "exclude"})
    assert world.group(carla) == world.regular  # no home group known: default_group_id
    memory = world.store.get_memory(carla)
    assert memory.excluded and not memory.pinned
    [entry] = world.store.audit_log(client_id=carla, action="exclude")
    assert (entry.actor, entry.before, entry.after) == (ADMIN, "pinned", "excluded")


def test_unpin_lets_the_rules_decide(world: World, admin: AdminSession) -> None:
    carla = cast(world)["carla"]  # adopted as pinned; 89.90 < min_spend 500
    admin.post(f"/admin/clients/{carla}/membership", {"action": "unpin"})
    assert world.group(carla) == world.regular
    memory = world.store.get_memory(carla)
    assert not memory.pinned and not memory.excluded


def test_include_takes_a_client_off_the_exclusion_list(world: World,
                                                       admin: AdminSession) -> None:
    gil = cast(world)["gil"]  # paid 600: eligible by the rules once included
    admin.post(f"/admin/clients/{gil}/membership", {"action": "include"})
    assert world.group(gil) == world.vip
    assert not world.store.get_memory(gil).excluded
    [entry] = world.store.audit_log(client_id=gil, action="include")
    assert (entry.before, entry.after) == ("excluded", "rules")


def test_pin_clears_excluded(world: World, admin: AdminSession) -> None:
    gil = cast(world)["gil"]
    admin.post(f"/admin/clients/{gil}/membership", {"action": "pin"})
    memory = world.store.get_memory(gil)
    assert memory.pinned and not memory.excluded
    assert world.group(gil) == world.vip


def test_pinning_a_client_who_owes_keeps_it_out_until_it_pays(world: World,
                                                              admin: AdminSession) -> None:
    frank = cast(world)["frank"]
    admin.post(f"/admin/clients/{frank}/membership", {"action": "pin"})
    assert world.store.get_memory(frank).pinned
    assert world.group(frank) == world.regular  # pinned = in VIP while paying


def test_a_busy_client_is_not_changed(world: World, admin: AdminSession) -> None:
    eve = cast(world)["eve"]
    before = world.store.get_memory(eve)
    assert queue.acquire_client(world.store, eve, "worker-elsewhere", wall(),
                                lease=timedelta(minutes=5))
    answer = admin.post(f"/admin/clients/{eve}/membership", {"action": "pin"})
    assert answer.status_code == 302
    assert world.store.get_memory(eve) == before
    assert world.group(eve) == world.regular
    assert world.store.audit_log(client_id=eve, action="pin") == []
    page = admin.text(answer.headers["Location"])
    assert ("warning", f"Client {eve} is busy (a worker is reconciling it): try again in a "
            "moment.") in flashes(page)
    queue.release_client(world.store, eve, "worker-elsewhere")
    # the admin's lease was given back: a worker can take the client
    assert queue.acquire_client(world.store, eve, "worker-elsewhere", wall(),
                                lease=timedelta(minutes=5))


def test_whmcs_failing_keeps_the_pin_for_the_next_reconcile(world: World,
                                                            admin: AdminSession) -> None:
    eve = cast(world)["eve"]
    world.sandbox.faults.push("html", action="UpdateClient")
    answer = admin.post(f"/admin/clients/{eve}/membership", {"action": "pin"})
    assert answer.status_code == 302
    assert world.group(eve) == world.regular
    assert world.store.get_memory(eve).pinned  # the memory change stays
    [(kind, message)] = flashes(admin.text(answer.headers["Location"]))
    assert kind == "warning" and "WHMCS failed" in message
    assert "The group will be fixed at the next reconcile." in message
    reconcile(world, eve)
    assert world.group(eve) == world.vip


@pytest.mark.parametrize(("form", "why"), [
    ({"action": "promote"}, "Action: Not a valid choice"),
    ({"action": "pin", "reason": "x" * 201}, "Reason (optional): At most 200 characters."),
])
def test_a_bad_membership_form_changes_nothing(world: World, admin: AdminSession,
                                               form: dict[str, str], why: str) -> None:
    eve = cast(world)["eve"]
    before = world.store.get_memory(eve)
    answer = admin.post(f"/admin/clients/{eve}/membership", form)
    [(kind, message)] = flashes(admin.text(answer.headers["Location"]))
    assert kind == "error" and why in message
    assert world.store.get_memory(eve) == before


def test_pinning_a_client_whmcs_does_not_have_changes_nothing(world: World,
                                                              admin: AdminSession) -> None:
    answer = admin.post("/admin/clients/9999/membership", {"action": "pin"})
    assert answer.status_code == 302
    assert not world.store.get_memory(9999).known
    assert world.store.audit_log(client_id=9999) == []


def test_a_membership_post_without_csrf_token_is_refused(world: World,
                                                         admin: AdminSession) -> None:
    eve = cast(world)["eve"]
    before = world.store.get_memory(eve)
    answer = admin.client.post(f"/admin/clients/{eve}/membership", data={"action": "pin"})
    assert answer.status_code == 400
    assert world.store.get_memory(eve) == before and world.group(eve) == world.regular
    forged = admin.client.post(f"/admin/clients/{eve}/membership",
                               data={"action": "pin", "csrf_token": "forged"})
    assert forged.status_code == 400
    assert world.store.get_memory(eve) == before


def test_the_roster_needs_a_login(world: World) -> None:
    assert world.app is not None
    answer = world.app.test_client().get("/admin/roster")
    assert answer.status_code == 302 and "/admin/login" in answer.headers["Location"]


def test_searching_an_id_whmcs_does_not_have_says_so(world: World,
                                                     admin: AdminSession) -> None:
    cast(world)
    page = admin.text("/admin/roster?tab=all&q=9999")
    assert listed(page) == [] and "not yet reconciled by vipgate" not in page
    assert "WHMCS has no client 9999." in page
