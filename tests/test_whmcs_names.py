"""WHMCS's group and department names where vipgate stores ids: read by the worker (hourly)
and by the settings page, kept in vipgate's database (SQLite and MariaDB), shown by the audit
log, the client page, the roster and the panel inside WHMCS; "#id" when the name is unknown."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from bridge.engine.names import refresh_names
from bridge.model import WhmcsNames
from bridge.panels import answer
from bridge.store import Store
from bridge.worker import start_worker_thread
from hooks.registry import PanelQuestion
from tests.admin_helpers import AdminSession
from tests.admin_world import customer, reconcile, text
from tests.world import World, wall

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_names_replace_ids_in_group_and_department_entries_only() -> None:
    names = WhmcsNames({1: "VIP", 2: "Clientes"}, {3: "Financeiro"})
    assert names.audit_value("group", "1") == "VIP (#1)"
    assert names.audit_value("group", "9") == "#9"  # not known: the id, marked as one
    assert names.audit_value("ticket_department", "3") == "Financeiro (#3)"
    assert names.audit_value("ticket_department", "1") == "#1"  # a group's name is not used
    assert names.audit_value("ticket_priority", "1") == "1"
    assert names.audit_value("membership", "pinned") == "pinned"
    assert names.audit_value("group", None) is None
    assert WhmcsNames().group(4) == "#4" and WhmcsNames().department(4) == "#4"


def test_the_store_keeps_the_names_last_read(store: Store) -> None:  # SQLite and MariaDB
    assert store.whmcs_names() == WhmcsNames()
    store.put_whmcs_names({1: "VIP", 2: "Clientes"}, {3: "Suporte"}, NOW)
    store.put_whmcs_names({1: "VIP Ouro", 2: "Clientes"}, {3: "Suporte"}, NOW)
    assert store.whmcs_names() == WhmcsNames({1: "VIP Ouro", 2: "Clientes"}, {3: "Suporte"},
                                             NOW.replace(tzinfo=None))


def test_the_running_worker_reads_the_names(world: World) -> None:
    assert world.store.whmcs_names().groups == {}
    thread, stop = start_worker_thread(world.worker, idle_seconds=0.05)
    try:
        deadline = time.monotonic() + 20
        while not world.store.whmcs_names().groups and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=10)
    names = world.store.whmcs_names()
    assert names.groups == {world.vip: "VIP", world.regular: "Clientes"}
    assert names.departments == {world.support: "Suporte", world.billing: "Financeiro"}
    api_calls = len(world.sandbox.api_log)
    world.worker.refresh_names()  # due again only in an hour: WHMCS is not asked
    assert len(world.sandbox.api_log) == api_calls


def test_the_admin_pages_and_the_panel_show_names(world: World, admin: AdminSession) -> None:
    ana, _, _ = customer(world, "Ana", group=world.vip)  # overdue: leaves VIP
    reconcile(world, ana)
    world.store.put_whmcs_names({world.vip: "VIP"}, {}, wall())  # Clientes not known (yet)
    audit = text(admin.text(f"/admin/audit?client_id={ana}&action=group"))
    assert f"VIP (#{world.vip}) → #{world.regular}" in audit
    assert refresh_names(world.store, world.api(), wall())
    audit = text(admin.text(f"/admin/audit?client_id={ana}&action=group"))
    assert f"VIP (#{world.vip}) → Clientes (#{world.regular})" in audit
    roster = text(admin.text("/admin/roster?tab=all"))
    row = roster.split(f'href="/admin/clients/{ana}"')[1].split("</tr>")[0]
    assert f"Clientes ({world.regular})" in row
    panel = answer(world.store, world.settings,
                   PanelQuestion("client_summary", ana), today=NOW.date())
    assert f"group: VIP (#{world.vip}) → Clientes (#{world.regular})" in panel["html"]

