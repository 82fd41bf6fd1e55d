"""API actions about clients, groups and services: GetClients, GetClientsDetails,
UpdateClient, GetClientGroups, GetClientsProducts, UpdateClientProduct, ModuleSuspend,
ModuleUnsuspend, GetCurrencies, LogActivity."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bridge.sandbox.actions_common import (
    Params,
    action,
    checkbox,
    currency_row,
    d0,
    dt0,
    formatted,
    nest,
    page,
    s,
    unstable_ties,
)
from bridge.sandbox.clients import CLIENT_FLAGS, EDITABLE
from bridge.sandbox.core import WhmcsError, money
from bridge.whmcs.schema import (
    CONTACT_FIELDS,
    tblaccounts,
    tblclientgroups,
    tblclients,
    tblcurrencies,
    tblhosting,
    tblinvoices,
    tblproductgroups,
    tblproducts,
    tblservers,
    tbltickets,
    tblticketstatuses,
)

if TYPE_CHECKING:
    from bridge.sandbox.whmcs import Sandbox

CLIENT_ORDER = ("id", "firstname", "lastname", "companyname", "email", "groupid",
                "datecreated", "status")
COUNTRIES = {"BR": ("Brazil", "55"), "US": ("United States", "1"),
             "GB": ("United Kingdom", "44"), "PT": ("Portugal", "351")}
GATEWAYS = {"mailin": "Mail In Payment", "banktransfer": "Bank Transfer", "paypal": "PayPal"}


@action("GetClients")
def get_clients(sb: Sandbox, p: Params) -> dict[str, Any]:
    """WHMCS 8's GetClients, quirks included (whmcs-reference §6): without ``orderby`` the
    rows are ordered by ``lastname`` and rows tied on the order column come in a different
    order at each call (MySQL under LIMIT), so pages of equal last names overlap and miss
    rows; ``totalresults`` is counted after ``limitstart``/``limitnum``, so past the first
    page (``limitstart`` > 0) it is "0"; no clients leave the ``clients`` key out."""
    c = tblclients.c
    query = sa.select(c.id, c.firstname, c.lastname, c.companyname, c.email, c.datecreated,
                      c.groupid, c.status)
    term = p.get("search")
    if term:
        query = query.where(sa.or_(*(column.startswith(term, autoescape=True) for column in (
            c.email, c.firstname, c.lastname, c.firstname + " " + c.lastname, c.companyname))))
    if p.has("status"):
        query = query.where(c.status == p.get("status"))
    order = p.get("orderby").lower()
    column = c[order] if order in CLIENT_ORDER else c.lastname
    desc = p.get("sorting").upper() == "DESC"
    keys = [column.desc() if desc else column.asc()]
    if column is not c.id:
        keys.append(unstable_ties(sb, c.id))
    with sb.engine.connect() as conn:
        total, start, rows = page(conn, query, p, keys)
    out: dict[str, Any] = {"totalresults": s(total if start == 0 else 0),
                           "startnumber": s(start), "numreturned": s(len(rows))}
    if rows:
        out["clients"] = {"client": [{k: s(v) for k, v in row.items()} for row in rows]}
    return out


def _client_details(conn: Connection, client: dict[str, Any]) -> dict[str, Any]:
    country, phonecc = COUNTRIES.get(client["country"], (client["country"], ""))
    currency = currency_row(conn, client["currency"])
    details: dict[str, Any] = {
        "client_id": s(client["id"]), "owner_user_id": s(client["id"]),
        "userid": s(client["id"]), "id": s(client["id"]), "uuid": client["uuid"],
        "firstname": client["firstname"], "lastname": client["lastname"],
        "fullname": f"{client['firstname']} {client['lastname']}".strip(),
    }
    details.update({name: client[name] for name in CONTACT_FIELDS if name not in details})
    details.update(
        fullstate=client["state"], countrycode=client["country"], tax_id=client["tax_id"],
        statecode=client["state"], countryname=country, phonecc=phonecc,
        phonenumberformatted=f"+{phonecc}.{client['phonenumber']}" if client["phonenumber"]
        else "", billingcid=s(client["billingcid"]), notes=client["notes"],
        currency=s(client["currency"]), defaultgateway=client["defaultgateway"],
        groupid=s(client["groupid"]), status=client["status"], credit=s(client["credit"]))
    details.update({flag: checkbox(client[flag]) for flag in CLIENT_FLAGS})
    details.update(
        allowSingleSignOn=s(client["allow_sso"]), email_verified=checkbox(
            client["email_verified"]), language=client["language"],
        isOptedInToMarketingEmails=checkbox(client["marketing_emails_opt_in"]),
        lastlogin=s(client["lastlogin"]) or "No Login Logged", currency_code=currency["code"])
    return details


def _client_stats(sb: Sandbox, conn: Connection, client: dict[str, Any]) -> dict[str, str]:
    currency = currency_row(conn, client["currency"])
    paid = (sa.select(tblaccounts.c.invoiceid, sa.func.sum(
        tblaccounts.c.amountin - tblaccounts.c.amountout).label("paid"))
        .where(tblaccounts.c.invoiceid.in_(  # this client's invoices, not every payment made
            sa.select(tblinvoices.c.id).where(tblinvoices.c.userid == client["id"])))
        .group_by(tblaccounts.c.invoiceid).subquery())
    invoices = conn.execute(sa.select(tblinvoices.c.status, tblinvoices.c.duedate,
                                      tblinvoices.c.total, paid.c.paid)
                            .outerjoin(paid, paid.c.invoiceid == tblinvoices.c.id)
                            .where(tblinvoices.c.userid == client["id"])).mappings().all()
    counts: dict[str, int] = {}
    amounts: dict[str, Decimal] = {}

    def add(kind: str, amount: Decimal) -> None:
        counts[kind] = counts.get(kind, 0) + 1
        amounts[kind] = amounts.get(kind, Decimal("0.00")) + amount

    for inv in invoices:
        balance = money(inv["total"]) - money(inv["paid"])
        if inv["status"] == "Unpaid":
            add("unpaid", balance)
            if inv["duedate"] is not None and inv["duedate"] < sb.today:
                add("overdue", balance)
        else:
            add(inv["status"], money(inv["total"]))

    def n(kind: str) -> str:
        return s(counts.get(kind, 0))

    def f(kind: str) -> str:
        return formatted(amounts.get(kind, Decimal("0.00")), currency)

    moved = conn.execute(sa.select(
        sa.func.coalesce(sa.func.sum(tblaccounts.c.amountin), 0),
        sa.func.coalesce(sa.func.sum(tblaccounts.c.amountout), 0)).where(
        tblaccounts.c.userid == client["id"])).one()
    services = conn.execute(sa.select(tblhosting.c.domainstatus, tblproducts.c.type)
                            .outerjoin(tblproducts, tblproducts.c.id == tblhosting.c.packageid)
                            .where(tblhosting.c.userid == client["id"])).all()
    kinds = {"hostingaccount": "hosting", "reselleraccount": "reseller", "server": "servers"}
    products: dict[str, int] = {}
    for status, ptype in services:
        kind = kinds.get(ptype or "", "other")
        products[f"productsnum{kind}"] = products.get(f"productsnum{kind}", 0) + 1
        if status == "Active":
            products[f"productsnumactive{kind}"] = products.get(
                f"productsnumactive{kind}", 0) + 1
    active_statuses = [r for r in conn.execute(sa.select(tblticketstatuses.c.title).where(
        tblticketstatuses.c.showactive == 1)).scalars()]
    tickets = conn.execute(sa.select(tbltickets.c.status).where(
        tbltickets.c.userid == client["id"])).scalars().all()
    credit = money(client["credit"])
    stats = {
        "numdueinvoices": n("unpaid"), "dueinvoicesbalance": f("unpaid"),
        "income": formatted(money(moved[0]) - money(moved[1]), currency),
        "incredit": "1" if credit > 0 else "", "creditbalance": formatted(credit, currency),
        "numoverdueinvoices": n("overdue"), "overdueinvoicesbalance": f("overdue"),
        "numDraftInvoices": n("Draft"), "draftInvoicesBalance": f("Draft"),
        "numpaidinvoices": n("Paid"), "paidinvoicesamount": f("Paid"),
        "numunpaidinvoices": n("unpaid"), "unpaidinvoicesamount": f("unpaid"),
        "numcancelledinvoices": n("Cancelled"), "cancelledinvoicesamount": f("Cancelled"),
        "numrefundedinvoices": n("Refunded"), "refundedinvoicesamount": f("Refunded"),
        "numcollectionsinvoices": n("Collections"),
        "collectionsinvoicesamount": f("Collections"),
        "numpaymentpendinginvoices": n("Payment Pending"),
        "paymentpendinginvoicesamount": f("Payment Pending"),
        "grossRevenue": formatted(money(moved[0]), currency),
        "expenses": formatted(money(moved[1]), currency),
    }
    for kind in ("hosting", "reseller", "servers", "other"):
        stats[f"productsnumactive{kind}"] = s(products.get(f"productsnumactive{kind}", 0))
        stats[f"productsnum{kind}"] = s(products.get(f"productsnum{kind}", 0))
    stats.update(
        productsnumactive=s(sum(1 for status, _ in services if status == "Active")),
        productsnumtotal=s(len(services)), numactivedomains="0", numdomains="0",
        numacceptedquotes="0", numquotes="0", numtickets=s(len(tickets)),
        numactivetickets=s(sum(1 for t in tickets if t in active_statuses)),
        numaffiliatesignups="0", isAffiliate="")
    return stats


@action("GetClientsDetails")
def get_clients_details(sb: Sandbox, p: Params) -> dict[str, Any]:
    if not p.has("clientid") and not p.has("email"):
        raise WhmcsError("Either clientid Or email Is Required")
    with sb.engine.connect() as conn:
        client = sb.find_client(conn, p.optional("clientid"), p.optional("email"))
        if client is None:
            raise WhmcsError("Client Not Found")
        details = _client_details(conn, client)
        # The client's fields also appear at the top level (deprecated, still sent).
        out: dict[str, Any] = {**details, "client": details}
        if p.flag("stats"):
            out["stats"] = _client_stats(sb, conn, client)
    return out


@action("UpdateClient")
def update_client(sb: Sandbox, p: Params) -> dict[str, Any]:
    with sb.engine.connect() as conn:
        client = sb.find_client(conn, p.optional("clientid"), p.optional("clientemail"))
    if client is None:
        raise WhmcsError("Client ID Not Found")
    changes: dict[str, Any] = {name: p.get(name) for name in EDITABLE
                               if name != "defaultgateway" and p.has(name)}
    if p.has("paymentmethod"):
        changes["defaultgateway"] = p.get("paymentmethod")
    if "email" in changes and "@" not in changes["email"]:
        raise WhmcsError("The email address entered is not valid")
    sb.update_client(int(client["id"]), **changes)
    return {"clientid": s(client["id"])}


@action("GetClientGroups")
def get_client_groups(sb: Sandbox, p: Params) -> dict[str, Any]:
    with sb.engine.connect() as conn:
        rows = conn.execute(sa.select(tblclientgroups).order_by(tblclientgroups.c.id)
                            ).mappings().all()
    groups = [{"id": s(r["id"]), "groupname": r["groupname"],
               "groupcolour": r["groupcolour"] or "", "discountpercent": s(r["discountpercent"]),
               "susptermexempt": r["susptermexempt"] or "",
               "separateinvoices": r["separateinvoices"] or ""} for r in rows]
    # No groups: the ``groups`` key is left out (whmcs-reference §6).
    return {"totalresults": s(len(groups)), **({"groups": {"group": groups}} if groups else {})}


@action("GetClientsProducts")
def get_clients_products(sb: Sandbox, p: Params) -> dict[str, Any]:
    h = tblhosting.c
    query = (sa.select(tblhosting, tblproducts.c.name.label("productname"),
                       tblproductgroups.c.name.label("groupname"),
                       tblservers.c.name.label("servername"),
                       tblservers.c.ipaddress.label("serverip"),
                       tblservers.c.hostname.label("serverhostname"))
             .outerjoin(tblproducts, tblproducts.c.id == h.packageid)
             .outerjoin(tblproductgroups, tblproductgroups.c.id == tblproducts.c.gid)
             .outerjoin(tblservers, tblservers.c.id == h.server))
    for name, column in (("clientid", h.userid), ("serviceid", h.id), ("pid", h.packageid)):
        if p.has(name):
            query = query.where(column == p.int(name, -1))
    if p.has("domain"):
        query = query.where(h.domain == p.get("domain"))
    if p.has("username2"):
        query = query.where(h.username == p.get("username2"))
    with sb.engine.connect() as conn:
        total, start, rows = page(conn, query, p, [h.id.asc()])
    products = [_product(row) for row in rows]
    return {"clientid": p.optional("clientid"), "serviceid": p.optional("serviceid"),
            "pid": p.optional("pid"), "domain": p.optional("domain"),
            "totalresults": s(total), "startnumber": start, "numreturned": len(products),
            "products": nest("product", products)}


def _product(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": s(row["id"]), "qty": s(row["qty"]), "clientid": s(row["userid"]),
        "orderid": s(row["orderid"]), "ordernumber": "", "pid": s(row["packageid"]),
        "regdate": d0(row["regdate"]), "name": row["productname"] or "",
        "translated_name": row["productname"] or "", "groupname": row["groupname"] or "",
        "translated_groupname": row["groupname"] or "", "domain": row["domain"],
        "dedicatedip": row["dedicatedip"], "serverid": s(row["server"]),
        "servername": row["servername"] or "", "serverip": row["serverip"] or "",
        "serverhostname": row["serverhostname"] or "",
        "suspensionreason": row["suspendreason"],
        "firstpaymentamount": s(row["firstpaymentamount"]),
        "recurringamount": s(row["amount"]), "paymentmethod": row["paymentmethod"],
        "paymentmethodname": GATEWAYS.get(row["paymentmethod"], row["paymentmethod"]),
        "billingcycle": row["billingcycle"], "nextduedate": d0(row["nextduedate"]),
        "status": row["domainstatus"], "username": row["username"],
        "password": row["password"], "subscriptionid": row["subscriptionid"],
        "promoid": s(row["promoid"]), "overideautosuspend": checkbox(row["overideautosuspend"]),
        "overidesuspenduntil": d0(row["overidesuspenduntil"]), "ns1": row["ns1"],
        "ns2": row["ns2"], "assignedips": row["assignedips"], "notes": row["notes"],
        "diskusage": s(row["diskusage"]), "disklimit": s(row["disklimit"]),
        "bwusage": s(row["bwusage"]), "bwlimit": s(row["bwlimit"]),
        "lastupdate": dt0(row["lastupdate"]),
        "customfields": {"customfield": []}, "configoptions": {"configoption": []},
    }


@action("UpdateClientProduct")
def update_client_product(sb: Sandbox, p: Params) -> dict[str, Any]:
    if not p.has("serviceid"):
        raise WhmcsError("Service ID Not Found")
    changes: dict[str, Any] = {}
    for name in ("status", "nextduedate", "overidesuspenduntil", "suspendreason",
                 "billingcycle", "recurringamount", "domain"):
        if p.has(name):
            changes[name] = p.get(name)
    if p.has("overideautosuspend"):
        changes["overideautosuspend"] = p.get("overideautosuspend").lower() not in (
            "off", "0", "false", "")
    sb.update_service(p.int("serviceid"), **changes)
    return {"serviceid": p.get("serviceid")}


def _service_id(p: Params) -> int:
    """``serviceid``, or ``accountid`` (its legacy name); 0 when missing."""
    return p.int("serviceid") or p.int("accountid")


@action("ModuleSuspend")
def module_suspend(sb: Sandbox, p: Params) -> dict[str, Any]:
    sb.suspend_service(_service_id(p), p.get("suspendreason"))
    return {}


@action("ModuleUnsuspend")
def module_unsuspend(sb: Sandbox, p: Params) -> dict[str, Any]:
    sb.unsuspend_service(_service_id(p))
    return {}


@action("GetCurrencies")
def get_currencies(sb: Sandbox, p: Params) -> dict[str, Any]:
    with sb.engine.connect() as conn:
        rows = conn.execute(sa.select(tblcurrencies).order_by(tblcurrencies.c.id)
                            ).mappings().all()
    currencies = [{"id": s(r["id"]), "code": r["code"], "prefix": r["prefix"],
                   "suffix": r["suffix"], "format": s(r["format"]),
                   "rate": f"{Decimal(str(r['rate'])):.5f}"} for r in rows]
    return {"totalresults": s(len(currencies)), "currencies": nest("currency", currencies)}


@action("GetConfigurationValue")
def get_configuration_value(sb: Sandbox, p: Params) -> dict[str, Any]:
    """A tblconfiguration value; a setting without a row is WHMCS 8's result=error "Invalid
    name for parameter setting" (whmcs-reference §6)."""
    if not p.has("setting"):
        raise WhmcsError("Setting is required")
    if not sb.has_setting(p.get("setting")):
        raise WhmcsError("Invalid name for parameter setting")
    return {"setting": p.get("setting"), "value": sb.setting(p.get("setting"))}


@action("LogActivity")
def log_activity(sb: Sandbox, p: Params) -> dict[str, Any]:
    if not p.has("description"):
        raise WhmcsError("Description is required")
    with sb.transaction() as conn:
        sb.log_activity(conn, p.get("description"), p.int("clientid") or p.int("userid"),
                        user="API")
    return {}
