"""The sandbox WHMCS's includes/api.php: every action with WHMCS's quirks and exact errors,
authentication, the IP allow-list, pagination, hooks fired by API writes, the fault switch."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from bridge.sandbox.api import create_sandbox_app
from bridge.sandbox.forwarder import PythonForwarder
from bridge.sandbox.serve import start_sandbox
from bridge.sandbox.whmcs import Sandbox, SandboxClock
from tests.helpers import Recorder

API_ID = "vipgate-api"
API_SECRET = "s3cret-api-secret"
ACCESS_KEY = "sandbox-access-key"
NOW = datetime(2026, 11, 21, 9, 0, 0)




@dataclass
class World:
    vip: int
    regular: int
    ana: int
    bruno: int
    carla: int
    diego: int
    ana_service: int
    bruno_service: int
    carla_service: int
    ana_invoice: int
    bruno_invoice: int
    carla_unpaid: int
    carla_paid: int
    support: int
    billing: int
    ana_ticket: int
    bruno_ticket: int


def make_sandbox(url: str, recorder: Recorder, *, new: bool = True) -> Sandbox:
    sandbox = Sandbox(url, fire=recorder, clock=SandboxClock(NOW), seed=7, accesskey=ACCESS_KEY)
    if new:
        sandbox.add_api_credential(API_ID, API_SECRET)
    return sandbox


def seed(sandbox: Sandbox, recorder: Recorder) -> World:
    with sandbox.quiet():
        vip = sandbox.add_group("VIP", susptermexempt=True, groupcolour="#28C99B")
        regular = sandbox.add_group("Regular")
        ana = sandbox.add_client("Ana", "Souza", "ana@example.com", groupid=vip)
        bruno = sandbox.add_client("Bruno", "Lima", "bruno@example.com", groupid=regular)
        carla = sandbox.add_client("Carla", "Reis", "carla@example.com",
                                   companyname="Carla Hosting Ltda")
        diego = sandbox.add_client("Diego", "Alves", "diego@example.com", status="Inactive")
        ana_service = sandbox.add_service(ana, "2026-11-10", "Monthly", "89.90")
        bruno_service = sandbox.add_service(bruno, "2026-11-10", "Monthly", "50.00")
        carla_service = sandbox.add_service(carla, "2026-12-20", "Annually", "300.00")
        ana_invoice = sandbox.add_invoice(ana, "2026-11-10",
                                          [("Hosting", ana_service, "Plan", "89.90")])
        bruno_invoice = sandbox.add_invoice(bruno, "2026-11-10",
                                            [("Hosting", bruno_service, "Plan", "50.00")])
        carla_unpaid = sandbox.add_invoice(carla, "2026-12-20",
                                           [("Hosting", carla_service, "Plan", "300.00")])
        carla_paid = sandbox.add_invoice(carla, "2025-12-20", [("Other", 0, "Setup", "30.00")],
                                         status="Paid", datepaid="2025-12-19 10:00:00")
        support = sandbox.add_department("Support")
        billing = sandbox.add_department("Billing")
        ana_ticket = sandbox.open_ticket(ana, support, "Site down", "High").ticket_id
        bruno_ticket = sandbox.open_ticket(bruno, billing, "Invoice", "Low").ticket_id
        sandbox.update_ticket(bruno_ticket, status="Closed")
    recorder.calls.clear()
    assert ana_ticket is not None and bruno_ticket is not None
    return World(vip, regular, ana, bruno, carla, diego, ana_service, bruno_service,
                 carla_service, ana_invoice, bruno_invoice, carla_unpaid, carla_paid, support,
                 billing, ana_ticket, bruno_ticket)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, World]:
    """The seeded WHMCS database, built once; each test works on a copy (fast)."""
    path = tmp_path_factory.mktemp("whmcs-template") / "whmcs.db"
    sandbox = make_sandbox(f"sqlite:///{path}", Recorder())
    world = seed(sandbox, Recorder())
    sandbox.dispose()
    return path, world


@pytest.fixture
def sandbox(tmp_path: Path, recorder: Recorder,
            template: tuple[Path, World]) -> Iterator[Sandbox]:
    shutil.copy(template[0], tmp_path / "whmcs.db")
    sandbox = make_sandbox(f"sqlite:///{tmp_path}/whmcs.db", recorder, new=False)
    yield sandbox
    sandbox.dispose()


@pytest.fixture
def world(template: tuple[Path, World]) -> World:
    return template[1]


class Api:
    def __init__(self, sandbox: Sandbox) -> None:
        self.client = create_sandbox_app(sandbox).test_client()

    def post(self, fields: dict[str, Any], ip: str = "127.0.0.1") -> Any:
        return self.client.post("/includes/api.php", data=fields,
                                environ_base={"REMOTE_ADDR": ip})

    def raw(self, action: str, ip: str = "127.0.0.1", **params: Any) -> Any:
        return self.post({"action": action, "identifier": API_ID, "secret": API_SECRET,
                          "responsetype": "json", **params}, ip)

    def __call__(self, action: str, **params: Any) -> dict[str, Any]:
        response = self.raw(action, **params)
        assert response.status_code == 200
        assert response.mimetype == "application/json"
        return response.get_json()

    def ok(self, action: str, **params: Any) -> dict[str, Any]:
        body = self(action, **params)
        assert body["result"] == "success", body
        return body


@pytest.fixture
def api(sandbox: Sandbox) -> Api:
    return Api(sandbox)


# --- authentication and access -------------------------------------------------------------


@pytest.mark.parametrize(("fields", "message"), [
    ({"identifier": API_ID, "secret": "wrong"}, "Invalid or missing credentials"),
    ({"identifier": "nobody", "secret": API_SECRET}, "Invalid or missing credentials"),
    ({"identifier": API_ID}, "Invalid or missing credentials"),
    ({}, "Invalid or missing credentials"),
    ({"username": API_ID, "password": "wrong"}, "Invalid or missing credentials"),
    ({"identifier": API_ID, "secret": API_SECRET, "accesskey": "wrong"}, "Invalid Access Key"),
])
def test_bad_credentials_are_refused_with_http_200(api: Api, fields: dict[str, str],
                                                   message: str) -> None:
    response = api.post({"action": "GetClients", "responsetype": "json", **fields})
    assert response.status_code == 200
    assert response.get_json() == {"result": "error", "message": message}


@pytest.mark.parametrize(("refuse", "message"), [
    (lambda sb: sb.set_admin_disabled(1), "Administrator Account Disabled"),
    (lambda sb: sb.set_api_credential_admin(API_ID, False), "Access Denied"),
])
def test_a_right_secret_is_still_refused_for_a_disabled_admin_or_a_non_admin_credential(
        sandbox: Sandbox, api: Api, refuse: Any, message: str) -> None:
    assert api("GetClientGroups")["result"] == "success"
    refuse(sandbox)
    assert api("GetClientGroups") == {"result": "error", "message": message}


def test_identifier_and_secret_may_be_sent_as_username_and_password(api: Api) -> None:
    response = api.post({"action": "GetClientGroups", "username": API_ID,
                         "password": API_SECRET})
    assert response.get_json()["result"] == "success"


def test_action_names_are_case_insensitive(api: Api) -> None:
    assert api("getclientgroups")["result"] == "success"


def test_role_without_the_action_gets_invalid_permissions_with_lowercased_action(
        sandbox: Sandbox, api: Api) -> None:
    sandbox.add_api_credential("reader", "reader-secret", ["GetInvoices"])
    body = api.post({"action": "GetClients", "identifier": "reader",
                     "secret": "reader-secret"}).get_json()
    assert body == {"result": "error",
                    "message": 'Invalid Permissions: API action "getclients" is not allowed'}
    allowed = api.post({"action": "GetInvoices", "identifier": "reader",
                        "secret": "reader-secret"}).get_json()
    assert allowed["result"] == "success"


@pytest.mark.parametrize("action", ["NoSuchThing", ""])
def test_unknown_action_is_command_not_found(api: Api, action: str) -> None:
    assert api(action) == {"result": "error", "message": "Command Not Found"}


def test_ip_allow_list_is_enforced_unless_the_accesskey_matches(sandbox: Sandbox,
                                                                api: Api) -> None:
    assert api.raw("GetClientGroups", ip="203.0.113.9").get_json() == {
        "result": "error", "message": "Invalid IP 203.0.113.9"}
    assert api.raw("GetClientGroups", ip="203.0.113.9",
                   accesskey="wrong").get_json()["message"] == "Invalid Access Key"
    assert api.raw("GetClientGroups", ip="203.0.113.9",
                   accesskey=ACCESS_KEY).get_json()["result"] == "success"
    sandbox.allow_api_ips("203.0.113.9")
    assert api.raw("GetClientGroups", ip="203.0.113.9").get_json()["result"] == "success"
    assert api.raw("GetClientGroups").get_json()["message"] == "Invalid IP 127.0.0.1"


def test_credentials_are_not_kept_in_the_api_log(sandbox: Sandbox, api: Api) -> None:
    api("GetClientGroups", accesskey=ACCESS_KEY)
    entry = sandbox.api_log[-1]
    assert entry["action"] == "GetClientGroups" and entry["result"] == "success"
    assert not {"identifier", "secret", "accesskey"} & set(entry["params"])


# --- clients ---------------------------------------------------------------------------------


def test_get_clients_nests_and_stringifies(api: Api, world: World) -> None:
    body = api.ok("GetClients", orderby="id")
    assert (body["totalresults"], body["startnumber"], body["numreturned"]) == ("4", "0", "4")
    assert body["clients"]["client"][0] == {
        "id": str(world.ana), "firstname": "Ana", "lastname": "Souza", "companyname": "",
        "email": "ana@example.com", "datecreated": "2026-11-21", "groupid": str(world.vip),
        "status": "Active"}


def test_get_clients_paginates_with_limitstart_and_limitnum(api: Api, world: World) -> None:
    body = api.ok("GetClients", orderby="id", limitstart=1, limitnum=2)
    # totalresults is counted after the offset (whmcs-reference §6): "0" past the first page
    assert (body["totalresults"], body["startnumber"], body["numreturned"]) == ("0", "1", "2")
    assert [c["id"] for c in body["clients"]["client"]] == [str(world.bruno), str(world.carla)]


def test_lists_default_to_25_per_page(sandbox: Sandbox, api: Api, world: World) -> None:
    with sandbox.quiet():
        for n in range(26):
            sandbox.add_client("Bulk", f"Client{n:02d}")
    first = api.ok("GetClients", orderby="id")
    assert (first["totalresults"], first["numreturned"]) == ("30", "25")
    rest = api.ok("GetClients", orderby="id", limitstart=25)
    assert (rest["startnumber"], rest["numreturned"]) == ("25", "5")
    assert rest["clients"]["client"][-1]["lastname"] == "Client25"


def test_client_add_fires_with_the_documented_vars(sandbox: Sandbox, recorder: Recorder,
                                                   world: World) -> None:
    client = sandbox.add_client("Eva", "Costa", "eva@example.com", groupid=world.regular)
    [added] = recorder.vars("ClientAdd")
    assert (added["client_id"], added["userid"], added["groupid"], added["email"]) == (
        client, client, world.regular, "eva@example.com")
    assert PythonForwarder.pick("ClientAdd", added) == {
        "client_id": client, "user_id": client, "groupid": world.regular}


@pytest.mark.parametrize(("search", "expected"), [
    ("ana@", ["Ana"]), ("Bru", ["Bruno"]), ("Lima", ["Bruno"]), ("Carla Reis", ["Carla"]),
    ("Carla Host", ["Carla"]), ("ouza", []), ("%", []),
])
def test_get_clients_search_is_a_prefix_match(api: Api, world: World, search: str,
                                              expected: list[str]) -> None:
    body = api.ok("GetClients", search=search)
    names = [c["firstname"] for c in body["clients"]["client"]] if expected else []
    assert names == expected
    if not expected:  # no clients: the key is left out (whmcs-reference §6)
        assert "clients" not in body and body["totalresults"] == "0"


def test_get_clients_filters_status_and_orders(api: Api, world: World) -> None:
    inactive = api.ok("GetClients", status="Inactive")["clients"]["client"]
    assert [c["firstname"] for c in inactive] == ["Diego"]
    ordered = api.ok("GetClients", orderby="firstname", sorting="DESC")["clients"]["client"]
    assert [c["firstname"] for c in ordered] == ["Diego", "Carla", "Bruno", "Ana"]


def _walk_pages(api: Api, action: str, container: str, item: str, size: int,
                **params: Any) -> list[list[str]]:
    """Every page's ids, as a reader paging by limitstart/limitnum sees them."""
    pages, start = [], 0
    while True:
        body = api.ok(action, limitstart=start, limitnum=size, **params)
        found = body[container][item] if body.get(container) else []
        if not found:
            return pages
        pages.append([row["id"] for row in found])
        start += len(found)


def test_get_clients_without_orderby_sorts_by_last_name_with_ties_unstable_between_pages(
        sandbox: Sandbox, api: Api) -> None:
    with sandbox.quiet():
        made = {str(sandbox.add_client(f"P{n:02d}", "Silva")) for n in range(30)}
    first = api.ok("GetClients", limitnum=100)["clients"]["client"]
    names = [c["lastname"] for c in first]
    assert names == sorted(names)  # by last name, not by id
    silvas = [c["id"] for c in first if c["lastname"] == "Silva"]
    assert set(silvas) == made and silvas != sorted(silvas, key=int)
    seen = [i for page in _walk_pages(api, "GetClients", "clients", "client", 7)
            for i in page]
    # 34 rows in pages of 7: some Silva came twice and some never (MySQL under LIMIT)
    assert len(seen) == 34 and len(set(seen)) < 34 and not made <= set(seen)
    by_id = [i for page in _walk_pages(api, "GetClients", "clients", "client", 7,
                                       orderby="id") for i in page]
    assert by_id == sorted(by_id, key=int) and len(set(by_id)) == 34


@pytest.mark.parametrize(("params", "key", "reverse"), [
    ({"orderby": "firstname"}, "firstname", False),
    ({"orderby": "email", "sorting": "DESC"}, "email", True),
    ({"orderby": "datecreated"}, "datecreated", False),
    ({"orderby": "id", "sorting": "DESC"}, "id", True),
])
def test_get_clients_honours_orderby_and_sorting(api: Api, world: World,
                                                 params: dict[str, str], key: str,
                                                 reverse: bool) -> None:
    rows = api.ok("GetClients", **params)["clients"]["client"]
    values = [int(r[key]) if key == "id" else r[key] for r in rows]
    assert values == sorted(values, reverse=reverse) and len(values) == 4


def test_get_clients_totalresults_is_zero_past_the_first_page(api: Api) -> None:
    assert api.ok("GetClients", orderby="id", limitnum=2)["totalresults"] == "4"
    later = api.ok("GetClients", orderby="id", limitstart=2, limitnum=2)
    assert (later["totalresults"], later["numreturned"]) == ("0", "2")


def test_get_invoices_default_order_is_status_desc_then_duedate_with_unstable_ties(
        sandbox: Sandbox, api: Api, world: World) -> None:
    with sandbox.quiet():
        made = {str(sandbox.add_invoice(world.bruno, "2026-10-01",
                                        [("Other", 0, "Same day", "5.00")]))
                for _ in range(20)}
    rows = api.ok("GetInvoices", limitnum=100)["invoices"]["invoice"]
    keys = [(r["status"], r["duedate"]) for r in rows]
    assert [k[0] for k in keys] == sorted((k[0] for k in keys), reverse=True)
    unpaid = [k[1] for k in keys if k[0] == "Unpaid"]
    assert unpaid == sorted(unpaid)
    tied = [r["id"] for r in rows if r["id"] in made]
    assert tied != sorted(tied, key=int)
    seen = [i for page in _walk_pages(api, "GetInvoices", "invoices", "invoice", 6)
            for i in page]
    assert len(seen) == 24 and not made <= set(seen)
    by_id = [i for page in _walk_pages(api, "GetInvoices", "invoices", "invoice", 6,
                                       orderby="id", order="asc") for i in page]
    assert by_id == sorted(by_id, key=int) and len(set(by_id)) == 24


def test_get_configuration_value_unknown_setting_is_an_error(api: Api) -> None:
    assert api.ok("GetConfigurationValue", setting="AutoSuspensionDays")["value"] == "5"
    assert api("GetConfigurationValue", setting="NoSuchSetting") == {
        "result": "error", "message": "Invalid name for parameter setting"}


def test_get_clients_details_duplicates_fields_and_formats_stats(api: Api, world: World) -> None:
    body = api.ok("GetClientsDetails", clientid=world.ana, stats="true")
    client = body["client"]
    assert client["id"] == client["userid"] == body["id"] == str(world.ana)
    assert body["groupid"] == client["groupid"] == str(world.vip)
    assert (client["status"], client["credit"], client["currency_code"]) == (
        "Active", "0.00", "USD")
    stats = body["stats"]
    assert stats["numoverdueinvoices"] == "1"
    assert stats["overdueinvoicesbalance"] == "$89.90 USD"
    assert stats["unpaidinvoicesamount"] == "$89.90 USD"
    assert stats["numpaidinvoices"] == "0" and stats["numactivetickets"] == "1"


def test_get_clients_details_by_email_and_without_stats(api: Api, world: World) -> None:
    body = api.ok("GetClientsDetails", email="carla@example.com")
    assert body["client"]["companyname"] == "Carla Hosting Ltda"
    assert "stats" not in body


@pytest.mark.parametrize(("params", "message"), [
    ({}, "Either clientid Or email Is Required"),
    ({"clientid": "999"}, "Client Not Found"),
    ({"email": "ghost@example.com"}, "Client Not Found"),
    ({"clientid": "abc"}, "Client Not Found"),
])
def test_get_clients_details_errors(api: Api, world: World, params: dict[str, str],
                                    message: str) -> None:
    assert api("GetClientsDetails", **params) == {"result": "error", "message": message}


def test_update_client_changes_group_and_fires_client_edit_with_olddata(
        api: Api, world: World, recorder: Recorder, sandbox: Sandbox) -> None:
    assert api.ok("UpdateClient", clientid=world.ana, groupid=world.regular) == {
        "result": "success", "clientid": str(world.ana)}
    assert sandbox.client(world.ana)["groupid"] == world.regular  # type: ignore[index]
    [edit] = recorder.vars("ClientEdit")
    assert (edit["userid"], edit["groupid"], edit["status"]) == (world.ana, world.regular,
                                                                 "Active")
    assert edit["olddata"]["groupid"] == world.vip


def test_update_client_status_by_email(api: Api, world: World, sandbox: Sandbox) -> None:
    api.ok("UpdateClient", clientemail="bruno@example.com", status="Inactive")
    assert sandbox.client(world.bruno)["status"] == "Inactive"  # type: ignore[index]


@pytest.mark.parametrize(("params", "message"), [
    ({"clientid": "999", "groupid": "1"}, "Client ID Not Found"),
    ({"groupid": "1"}, "Client ID Not Found"),
    ({"clientid": "1", "email": "bruno@example.com"}, "Duplicate Email Address"),
    ({"clientid": "1", "email": "not-an-email"}, "The email address entered is not valid"),
    ({"clientid": "1", "status": "Deleted"},
     "Invalid Client Status. Valid statuses are: Active,Inactive,Closed"),
])
def test_update_client_errors_change_nothing(api: Api, world: World, recorder: Recorder,
                                             params: dict[str, str], message: str) -> None:
    assert api("UpdateClient", **params) == {"result": "error", "message": message}
    assert recorder.vars("ClientEdit") == []


def test_get_client_groups_shows_the_exemption_flag(api: Api, world: World) -> None:
    body = api.ok("GetClientGroups")
    assert body["totalresults"] == "2"
    assert body["groups"]["group"] == [
        {"id": str(world.vip), "groupname": "VIP", "groupcolour": "#28C99B",
         "discountpercent": "0.00", "susptermexempt": "on", "separateinvoices": ""},
        {"id": str(world.regular), "groupname": "Regular", "groupcolour": "",
         "discountpercent": "0.00", "susptermexempt": "", "separateinvoices": ""}]


def test_get_client_groups_empty_leaves_the_key_out(tmp_path: Path) -> None:
    sandbox = make_sandbox(f"sqlite:///{tmp_path}/empty.db", Recorder())
    try:  # whmcs-reference §6: no "groups" key at all
        assert Api(sandbox).ok("GetClientGroups") == {"result": "success",
                                                      "totalresults": "0"}
    finally:
        sandbox.dispose()


# --- services ----------------------------------------------------------------------------


def test_get_clients_products_fields(api: Api, world: World, sandbox: Sandbox) -> None:
    sandbox.suspend_service(world.bruno_service, "Abuse")
    sandbox.update_service(world.bruno_service, overideautosuspend=True,
                           overidesuspenduntil="2026-12-31")
    body = api.ok("GetClientsProducts", clientid=world.bruno)
    assert (body["clientid"], body["serviceid"], body["pid"], body["domain"]) == (
        str(world.bruno), None, None, None)
    assert (body["totalresults"], body["startnumber"], body["numreturned"]) == ("1", 0, 1)
    [product] = body["products"]["product"]
    assert product["id"] == str(world.bruno_service)
    assert (product["status"], product["suspensionreason"], product["nextduedate"]) == (
        "Suspended", "Abuse", "2026-11-10")
    assert (product["overideautosuspend"], product["overidesuspenduntil"]) == ("1",
                                                                               "2026-12-31")
    assert product["recurringamount"] == "50.00" and product["billingcycle"] == "Monthly"


def test_get_clients_products_by_service_and_empty(api: Api, world: World) -> None:
    body = api.ok("GetClientsProducts", serviceid=world.carla_service)
    assert [p["overidesuspenduntil"] for p in body["products"]["product"]] == ["0000-00-00"]
    assert api.ok("GetClientsProducts", clientid=world.diego)["products"] == ""


def test_update_client_product_sets_the_auto_suspend_override(api: Api, world: World,
                                                              sandbox: Sandbox) -> None:
    api.ok("UpdateClientProduct", serviceid=world.ana_service, overideautosuspend="on",
           overidesuspenduntil="2026-12-01")
    service = sandbox.service(world.ana_service)
    assert service is not None
    assert (service["overideautosuspend"], str(service["overidesuspenduntil"])) == (
        1, "2026-12-01")
    assert api("UpdateClientProduct", serviceid=999)["message"] == "Service ID Not Found"


def test_module_suspend_and_unsuspend_fire_hooks_with_module_params(
        api: Api, world: World, recorder: Recorder, sandbox: Sandbox) -> None:
    api.ok("ModuleSuspend", serviceid=world.bruno_service, suspendreason="Abuse")
    api.ok("ModuleUnsuspend", accountid=world.bruno_service)
    assert recorder.names() == ["AfterModuleSuspend", "AfterModuleUnsuspend"]
    params = recorder.vars("AfterModuleSuspend")[0]["params"]
    assert (params["serviceid"], params["userid"]) == (world.bruno_service, world.bruno)
    # WHMCS hands module hooks the account and server credentials; the stub must strip them.
    assert params["password"] and params["serverpassword"] and params["serveraccesshash"]
    assert params["clientsdetails"]["email"] == "bruno@example.com"
    stripped = PythonForwarder.pick("AfterModuleSuspend", recorder.calls[0][1])
    assert stripped == {"serviceid": world.bruno_service, "userid": world.bruno, "pid": 1}
    assert "Module Suspend Successful - Service ID: " + str(world.bruno_service) in \
        sandbox.activity(world.bruno)


@pytest.mark.parametrize(("params", "message"), [
    ({}, "Service ID is required"),
    ({"serviceid": "999"}, "Service ID not found"),
])
def test_module_command_errors(api: Api, world: World, params: dict[str, str],
                               message: str) -> None:
    assert api("ModuleSuspend", **params) == {"result": "error", "message": message}


def test_module_command_on_a_product_without_module(api: Api, world: World,
                                                    sandbox: Sandbox) -> None:
    product = sandbox.add_product("Manual", servertype="")
    service = sandbox.add_service(world.carla, "2026-12-01", product=product)
    assert api("ModuleSuspend", serviceid=service)["message"] == \
        "Service not assigned to a module"


# --- invoices ----------------------------------------------------------------------------


def test_get_invoices_overdue_is_unpaid_and_past_due(api: Api, world: World) -> None:
    overdue = api.ok("GetInvoices", status="Overdue")["invoices"]["invoice"]
    assert sorted(int(i["id"]) for i in overdue) == [world.ana_invoice, world.bruno_invoice]
    unpaid = api.ok("GetInvoices", status="Unpaid")["invoices"]["invoice"]
    assert len(unpaid) == 3


def test_get_invoices_item_quirks(api: Api, world: World) -> None:
    body = api.ok("GetInvoices", userid=world.carla, orderby="duedate", order="desc")
    assert (body["totalresults"], body["startnumber"], body["numreturned"]) == ("2", "0", "2")
    unpaid, paid = body["invoices"]["invoice"]
    assert unpaid["datepaid"] == "0000-00-00 00:00:00"
    assert paid["datepaid"] == "2025-12-19 10:00:00"
    assert (unpaid["total"], unpaid["credit"], unpaid["status"]) == ("300.00", "0.00", "Unpaid")
    assert (unpaid["currencycode"], unpaid["currencyprefix"], unpaid["currencysuffix"]) == (
        "USD", "$", " USD")
    assert (unpaid["firstname"], unpaid["companyname"]) == ("Carla", "Carla Hosting Ltda")


def test_get_invoices_paginates_and_empty_is_an_empty_list(api: Api, world: World) -> None:
    body = api.ok("GetInvoices", orderby="total", order="asc", limitnum=1, limitstart=1)
    assert (body["totalresults"], body["numreturned"]) == ("4", "1")
    assert body["invoices"]["invoice"][0]["total"] == "50.00"
    assert api.ok("GetInvoices", userid=world.diego)["invoices"] == []  # whmcs-reference §6


def test_get_invoice_balance_items_and_transactions(api: Api, world: World) -> None:
    body = api.ok("GetInvoice", invoiceid=world.ana_invoice)
    assert (body["invoiceid"], body["total"], body["balance"]) == (
        str(world.ana_invoice), "89.90", "89.90")
    assert body["transactions"] == ""
    assert body["items"]["item"][0] == {
        "id": body["items"]["item"][0]["id"], "type": "Hosting",
        "relid": str(world.ana_service), "description": "Plan", "amount": "89.90",
        "taxed": "0"}
    api.ok("AddInvoicePayment", invoiceid=world.ana_invoice, transid="T1", gateway="mailin",
           amount="40.00")
    after = api.ok("GetInvoice", invoiceid=world.ana_invoice)
    assert (after["balance"], after["status"]) == ("49.90", "Unpaid")
    [payment] = after["transactions"]["transaction"]
    assert (payment["amountin"], payment["transid"]) == ("40.00", "T1")


@pytest.mark.parametrize("params", [{}, {"invoiceid": "999"}, {"invoiceid": "x"}])
def test_get_invoice_not_found_answers_status_error_without_result(
        api: Api, world: World, params: dict[str, str]) -> None:
    assert api("GetInvoice", **params) == {"status": "error",
                                           "message": "Invoice ID Not Found"}


def test_partial_then_full_payment_fires_the_documented_hooks(
        api: Api, world: World, recorder: Recorder, sandbox: Sandbox) -> None:
    api.ok("AddInvoicePayment", invoiceid=world.bruno_invoice, transid="A", gateway="mailin",
           amount="20.00")
    assert recorder.names() == ["AddInvoicePayment"]
    assert recorder.vars("AddInvoicePayment") == [{"invoiceid": world.bruno_invoice}]
    assert sandbox.invoice(world.bruno_invoice)["status"] == "Unpaid"  # type: ignore[index]
    api.ok("AddInvoicePayment", invoiceid=world.bruno_invoice, transid="B", gateway="mailin",
           date="2026-11-21 10:30:00")
    assert recorder.names() == ["AddInvoicePayment", "AddInvoicePayment", "InvoicePaid"]
    paid = recorder.vars("InvoicePaid")[0]
    assert paid["invoiceid"] == world.bruno_invoice
    assert set(paid["invoice"]) == {"__object__"}  # WHMCS passes an Invoice object
    assert PythonForwarder.pick("InvoicePaid", paid) == {"invoiceid": world.bruno_invoice}
    body = api.ok("GetInvoice", invoiceid=world.bruno_invoice)
    assert (body["status"], body["balance"], body["datepaid"]) == (
        "Paid", "0.00", "2026-11-21 10:30:00")


@pytest.mark.parametrize(("status", "hook"), [
    ("Cancelled", "InvoiceCancelled"), ("Refunded", "InvoiceRefunded"),
    ("Collections", None), ("Unpaid", None),
])
def test_update_invoice_status_fires_the_matching_hook(api: Api, world: World,
                                                       recorder: Recorder, status: str,
                                                       hook: str | None) -> None:
    assert api.ok("UpdateInvoice", invoiceid=world.ana_invoice, status=status) == {
        "result": "success", "invoiceid": str(world.ana_invoice)}
    assert recorder.calls == ([(hook, {"invoiceid": world.ana_invoice})] if hook else [])


def test_marking_a_paid_invoice_unpaid_fires_invoice_unpaid(api: Api, world: World,
                                                           recorder: Recorder) -> None:
    api.ok("UpdateInvoice", invoiceid=world.carla_paid, status="Unpaid")
    assert recorder.calls == [("InvoiceUnpaid", {"invoiceid": world.carla_paid})]
    body = api.ok("GetInvoice", invoiceid=world.carla_paid)
    assert (body["status"], body["datepaid"]) == ("Unpaid", "0000-00-00 00:00:00")


@pytest.mark.parametrize(("action", "params", "message"), [
    ("UpdateInvoice", {"invoiceid": "999", "status": "Paid"}, "Invoice ID Not Found"),
    ("UpdateInvoice", {"invoiceid": "1", "status": "Overdue"}, "Invalid status Overdue"),
    ("AddInvoicePayment", {"invoiceid": "999", "transid": "x", "gateway": "mailin"},
     "Invoice ID Not Found"),
    ("CreateInvoice", {"userid": "999"}, "Client ID Not Found"),
    ("CreateInvoice", {"userid": "1", "draft": "1", "sendinvoice": "1"},
     "Cannot create and send a draft invoice in a single API request. Please create and "
     "send separately."),
])
def test_invoice_write_errors(api: Api, world: World, action: str, params: dict[str, str],
                              message: str) -> None:
    assert api(action, **params) == {"result": "error", "message": message}


def test_no_payment_on_a_cancelled_invoice(api: Api, world: World, sandbox: Sandbox) -> None:
    sandbox.set_invoice_status(world.ana_invoice, "Cancelled")
    assert api("AddInvoicePayment", invoiceid=world.ana_invoice, transid="x",
               gateway="mailin")["message"] == ("It is not possible to add a payment to an "
                                                "invoice that is Cancelled")


def test_create_invoice_with_numbered_items(api: Api, world: World, recorder: Recorder) -> None:
    body = api.ok("CreateInvoice", userid=world.diego, duedate="2026-12-01",
                  itemdescription1="Domain", itemamount1="40.00", itemdescription2="SSL",
                  itemamount2="9.90", itemtaxed2="1")
    assert body["status"] == "Unpaid"
    invoice = api.ok("GetInvoice", invoiceid=body["invoiceid"])
    assert (invoice["total"], invoice["duedate"]) == ("49.90", "2026-12-01")
    assert [i["description"] for i in invoice["items"]["item"]] == ["Domain", "SSL"]
    assert recorder.vars("InvoiceCreated") == [{"source": "api", "user": "system",
                                                "invoiceid": int(body["invoiceid"]),
                                                "status": "Unpaid"}]


# --- tickets -----------------------------------------------------------------------------


def test_get_tickets_filters_and_has_no_priority_filter(api: Api, world: World) -> None:
    everything = api.ok("GetTickets")
    assert (everything["totalresults"], everything["startnumber"],
            everything["numreturned"]) == ("2", 0, 2)
    active = api.ok("GetTickets", status="All Active Tickets")["tickets"]["ticket"]
    assert [(t["id"], t["priority"]) for t in active] == [(str(world.ana_ticket), "High")]
    assert api.ok("GetTickets", priority="Low")["totalresults"] == "2"  # ignored, as WHMCS
    mine = api.ok("GetTickets", clientid=world.bruno)["tickets"]["ticket"]
    assert [(t["status"], t["deptid"], t["name"]) for t in mine] == [
        ("Closed", str(world.billing), "Bruno Lima")]
    assert api.ok("GetTickets", deptid=world.billing, status="Open")["tickets"] == ""


def test_get_ticket_shows_priority_replies_and_notes(api: Api, world: World,
                                                     sandbox: Sandbox) -> None:
    assert api.ok("GetTicket", ticketid=world.ana_ticket)["notes"] == []  # whmcs-ref §6
    sandbox.advance(minutes=5)
    sandbox.client_reply(world.ana_ticket, "Still down")
    api.ok("AddTicketNote", ticketid=world.ana_ticket, message="Overdue invoice #1")
    body = api.ok("GetTicket", ticketid=world.ana_ticket)
    assert (body["ticketid"], body["priority"], body["status"], body["deptname"]) == (
        str(world.ana_ticket), "High", "Customer-Reply", "Support")
    assert [(r["replyid"], r["message"]) for r in body["replies"]["reply"]] == [
        ("0", "Hello, I need help."), (body["replies"]["reply"][1]["replyid"], "Still down")]
    assert [n["message"] for n in body["notes"]["note"]] == ["Overdue invoice #1"]
    assert body["lastreply"] == "2026-11-21 09:05:00"
    by_mask = api.ok("GetTicket", ticketnum=body["tid"], repliessort="DESC")
    assert by_mask["replies"]["reply"][0]["message"] == "Still down"


@pytest.mark.parametrize("params", [{}, {"ticketid": "999"}, {"ticketnum": "ZZZ-000000"}])
def test_get_ticket_not_found(api: Api, world: World, params: dict[str, str]) -> None:
    assert api("GetTicket", **params) == {"result": "error", "message": "Ticket ID Not Found"}


def test_update_ticket_priority_fires_ticket_priority_change(api: Api, world: World,
                                                             recorder: Recorder,
                                                             sandbox: Sandbox) -> None:
    assert api.ok("UpdateTicket", ticketid=world.ana_ticket, priority="Low") == {
        "result": "success", "ticketid": str(world.ana_ticket)}
    assert recorder.calls == [("TicketPriorityChange", {"ticketid": world.ana_ticket,
                                                        "priority": "Low"})]
    api.ok("UpdateTicket", ticketid=world.ana_ticket, priority="Low")  # no change, no hook
    assert len(recorder.calls) == 1
    sandbox.update_ticket_fires_hooks = False
    api.ok("UpdateTicket", ticketid=world.ana_ticket, priority="High")
    assert len(recorder.calls) == 1
    assert sandbox.ticket(world.ana_ticket)["urgency"] == "High"  # type: ignore[index]


def test_update_ticket_status_and_department(api: Api, world: World,
                                             recorder: Recorder) -> None:
    api.ok("UpdateTicket", ticketid=world.ana_ticket, status="Answered", deptid=world.billing)
    assert recorder.names() == ["TicketDepartmentChange", "TicketStatusChange"]
    assert recorder.vars("TicketDepartmentChange")[0]["deptname"] == "Billing"


@pytest.mark.parametrize(("params", "message"), [
    ({"ticketid": "999", "priority": "Low"}, "Ticket ID Not Found"),
    ({"priority": "Low"}, "Ticket ID Not Found"),
    ({"ticketid": "1", "priority": "Urgent"},
     "Invalid Ticket Priority. Valid priorities are: Low,Medium,High"),
    ({"ticketid": "1", "priority": "low"},
     "Invalid Ticket Priority. Valid priorities are: Low,Medium,High"),
    ({"ticketid": "1", "deptid": "999"}, "Department ID Not Found"),
    ({"ticketid": "1", "status": "Lost"}, "Invalid Ticket Status. Valid statuses are: "
                                          "Open,Answered,Customer-Reply,On Hold,In Progress,"
                                          "Closed"),
])
def test_update_ticket_errors(api: Api, world: World, recorder: Recorder,
                              params: dict[str, str], message: str) -> None:
    assert api("UpdateTicket", **params) == {"result": "error", "message": message}
    assert recorder.calls == []


@pytest.mark.parametrize(("action", "params", "message"), [
    ("AddTicketNote", {"ticketid": "999", "message": "x"}, "Ticket ID not found"),
    ("AddTicketNote", {"ticketid": "1"}, "Message is required"),
    ("AddTicketReply", {"ticketid": "999", "message": "x"}, "Ticket ID not found"),
    ("AddTicketReply", {"ticketid": "1", "message": "x"},
     "Name and email address are required if not a client"),
    ("AddTicketReply", {"ticketid": "1", "message": "x", "clientid": "999"},
     "Client ID Not Found"),
    ("OpenTicket", {"clientid": "1", "deptid": "999", "subject": "s", "message": "m"},
     "Department ID not found"),
    ("OpenTicket", {"clientid": "999", "deptid": "1", "subject": "s", "message": "m"},
     "Client ID Not Found"),
    ("OpenTicket", {"clientid": "1", "deptid": "1", "message": "m"}, "Subject is required"),
    ("OpenTicket", {"deptid": "1", "subject": "s", "message": "m"},
     "Name and email address are required if not a client"),
])
def test_ticket_write_errors(api: Api, world: World, action: str, params: dict[str, str],
                             message: str) -> None:
    assert api(action, **params) == {"result": "error", "message": message}


def test_ticket_replies_fire_user_and_admin_reply_hooks(api: Api, world: World,
                                                        recorder: Recorder) -> None:
    api.ok("AddTicketReply", ticketid=world.ana_ticket, message="me again",
           clientid=world.ana)
    api.ok("AddTicketReply", ticketid=world.ana_ticket, message="on it",
           adminusername="Maria")
    assert recorder.names() == ["TicketUserReply", "TicketAdminReply"]
    user = recorder.vars("TicketUserReply")[0]
    assert (user["ticketid"], user["userid"], user["priority"], user["status"]) == (
        world.ana_ticket, world.ana, "High", "Customer-Reply")
    assert recorder.vars("TicketAdminReply")[0]["admin"] == "Maria"


def test_open_ticket_runs_validation_then_fires_ticket_open(api: Api, world: World,
                                                            recorder: Recorder) -> None:
    body = api.ok("OpenTicket", clientid=world.bruno, deptid=world.support, subject="Slow",
                  message="It is slow", priority="High")
    assert body["id"].isdigit() and body["tid"] and len(body["c"]) == 8
    assert recorder.names() == ["TicketOpenValidation", "TicketOpen"]
    validation = recorder.vars("TicketOpenValidation")[0]
    assert (validation["clientId"], validation["departmentId"], validation["priority"],
            validation["isAdmin"]) == (world.bruno, world.support, "High", False)
    opened = recorder.vars("TicketOpen")[0]
    assert opened == {"ticketid": int(body["id"]), "ticketmask": body["tid"],
                      "userid": world.bruno, "deptid": world.support, "deptname": "Support",
                      "subject": "Slow", "message": "It is slow", "priority": "High"}


def test_open_ticket_blocked_by_validation_creates_nothing(api: Api, world: World,
                                                           recorder: Recorder) -> None:
    recorder.answers["TicketOpenValidation"] = lambda v: ["", "Pay invoice #2 first."]
    body = api("OpenTicket", clientid=world.bruno, deptid=world.support, subject="Slow",
               message="It is slow")
    assert body == {"result": "error", "message": "Pay invoice #2 first."}
    assert recorder.names() == ["TicketOpenValidation"]
    assert api.ok("GetTickets", clientid=world.bruno)["totalresults"] == "1"


def test_staff_opening_a_ticket_fires_ticket_open_admin_not_ticket_open(
        api: Api, world: World, recorder: Recorder) -> None:
    body = api.ok("OpenTicket", clientid=world.bruno, deptid=world.support, subject="Call",
                  message="As agreed on the phone", priority="Low", admin="1")
    assert recorder.names() == ["TicketOpenValidation", "TicketOpenAdmin"]
    assert recorder.vars("TicketOpenValidation")[0]["isAdmin"] is True
    assert recorder.vars("TicketOpenAdmin")[0] == {
        "ticketid": int(body["id"]), "ticketmask": body["tid"], "userid": world.bruno,
        "deptid": world.support, "deptname": "Support", "subject": "Call",
        "message": "As agreed on the phone", "priority": "Low"}
    # an API request runs as its credential's admin (WHMCS's CurrentUser), as the stub sees
    assert recorder.admins == ["admin", "admin"]


def test_a_piped_email_fires_ticket_open_without_validation(sandbox: Sandbox, world: World,
                                                           recorder: Recorder) -> None:
    """E-mail piping skips TicketOpenValidation (code written from the hook docs would
    expect every client ticket to pass it)."""
    email = sandbox.client(world.bruno)["email"]
    opened = sandbox.pipe_ticket(email, world.support, "Help", "Sent by e-mail")
    assert recorder.names() == ["TicketOpen"]
    assert recorder.vars("TicketOpen")[0] == {
        "ticketid": opened.ticket_id, "ticketmask": opened.tid, "userid": world.bruno,
        "deptid": world.support, "deptname": "Support", "subject": "Help",
        "message": "Sent by e-mail", "priority": "Medium"}


def test_a_piped_email_from_an_unknown_address_is_a_guest_ticket(
        sandbox: Sandbox, world: World, recorder: Recorder) -> None:
    opened = sandbox.pipe_ticket("stranger@example.test", world.support, "Hi", "Who am I")
    ticket = sandbox.ticket(opened.ticket_id)
    assert ticket is not None and (ticket["userid"], ticket["email"]) == (
        0, "stranger@example.test")
    assert recorder.vars("TicketOpen")[0]["userid"] == 0


def test_get_support_departments_counts_and_int_total(api: Api, world: World) -> None:
    body = api.ok("GetSupportDepartments")
    assert body["totalresults"] == 2
    assert body["departments"]["department"] == [
        {"id": str(world.support), "name": "Support", "awaitingreply": "1", "opentickets": "1"},
        {"id": str(world.billing), "name": "Billing", "awaitingreply": "0", "opentickets": "0"}]


# --- the fault switch and real HTTP ----------------------------------------------------------


def test_faults_answer_500_then_recover(sandbox: Sandbox, api: Api) -> None:
    sandbox.faults.push("http_error", times=2)
    assert [api.raw("GetClientGroups").status_code for _ in range(3)] == [500, 500, 200]


def test_fault_html_page_and_action_filter(sandbox: Sandbox, api: Api) -> None:
    sandbox.faults.push("html", action="UpdateClient")
    assert api.raw("GetClientGroups").mimetype == "application/json"
    page = api.raw("UpdateClient", clientid=1)
    assert (page.status_code, page.mimetype) == (200, "text/html")
    assert b"Oops! Something went wrong" in page.data
    assert sandbox.faults.pending() == 0


def test_fault_slow_sleeps_then_answers(sandbox: Sandbox, api: Api) -> None:
    slept: list[float] = []
    sandbox.faults.sleep = slept.append
    sandbox.faults.push("slow", seconds=3.5)
    assert api("GetClientGroups")["result"] == "success"
    assert slept == [3.5]


def test_unknown_fault_kind_is_refused(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        sandbox.faults.push("explode")  # type: ignore[arg-type]


def test_served_over_real_http(sandbox: Sandbox, world: World) -> None:
    running = start_sandbox(sandbox)
    try:
        response = requests.post(f"{running.url}/includes/api.php", timeout=5, data={
            "action": "GetClients", "identifier": API_ID, "secret": API_SECRET,
            "responsetype": "json", "limitnum": 1, "orderby": "id"})
    finally:
        running.stop()
    assert response.status_code == 200
    assert response.json()["clients"]["client"][0]["firstname"] == "Ana"


def test_served_connections_are_kept_alive_until_the_server_stops(sandbox: Sandbox,
                                                                   world: World) -> None:
    """As behind Apache or nginx, a client's calls share one connection (werkzeug alone
    closes after each answer); stopping the server ends that connection too, so a client
    finds the sandbox down rather than its old connection still answered."""
    running = start_sandbox(sandbox)
    fields = {"action": "GetClients", "identifier": API_ID, "secret": API_SECRET,
              "responsetype": "json", "limitnum": 1, "orderby": "id"}
    seen: list[int] = []
    try:
        with requests.Session() as session:
            for _ in range(3):
                response = session.post(f"{running.url}/includes/api.php", timeout=5,
                                        data=fields)
                assert response.status_code == 200 and "Connection" not in response.headers
                assert response.json()["clients"]["client"][0]["firstname"] == "Ana"
                seen.append(len(running.server.open_connections))  # type: ignore[attr-defined]
            assert seen == [1, 1, 1]
            running.stop()
            with pytest.raises(requests.ConnectionError):
                session.post(f"{running.url}/includes/api.php", timeout=5, data=fields)
    finally:
        running.stop()


# --- the same API on MariaDB -----------------------------------------------------------------


@pytest.fixture
def any_db_api(database_url: str, recorder: Recorder) -> Iterator[tuple[Api, World]]:
    sandbox = make_sandbox(database_url, recorder)
    try:
        yield Api(sandbox), seed(sandbox, recorder)
    finally:
        sandbox.dispose()


def test_clients_and_pagination_on_each_database(any_db_api: tuple[Api, World]) -> None:
    api, world = any_db_api
    body = api.ok("GetClients", search="Carla Reis", limitnum=1)
    assert body["clients"]["client"][0]["id"] == str(world.carla)
    page = api.ok("GetClients", orderby="email", sorting="DESC", limitstart=3, limitnum=2)
    assert (page["totalresults"], page["numreturned"]) == ("0", "1")
    assert page["clients"]["client"][0]["email"] == "ana@example.com"
    details = api.ok("GetClientsDetails", clientid=world.ana, stats=1)
    assert details["stats"]["overdueinvoicesbalance"] == "$89.90 USD"


def test_payments_zero_dates_and_tickets_on_each_database(any_db_api: tuple[Api, World]
                                                         ) -> None:
    api, world = any_db_api
    invoice = api.ok("GetInvoice", invoiceid=world.ana_invoice)
    assert invoice["datepaid"] == "0000-00-00 00:00:00"
    api.ok("AddInvoicePayment", invoiceid=world.ana_invoice, transid="p1", gateway="mailin",
           amount="89.90")
    paid = api.ok("GetInvoice", invoiceid=world.ana_invoice)
    assert (paid["status"], paid["balance"], paid["datepaid"]) == (
        "Paid", "0.00", "2026-11-21 09:00:00")
    product = api.ok("GetClientsProducts", serviceid=world.ana_service)["products"]["product"]
    assert (product[0]["nextduedate"], product[0]["overidesuspenduntil"]) == (
        "2026-12-10", "0000-00-00")
    api.ok("UpdateTicket", ticketid=world.ana_ticket, priority="Low")
    assert api.ok("GetTicket", ticketid=world.ana_ticket)["priority"] == "Low"
