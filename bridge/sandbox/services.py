"""Services (tblhosting), their products and servers, and the module suspend/unsuspend
commands with the ``params`` WHMCS hands to the AfterModule* hooks."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bridge.sandbox.clients import ClientsMixin
from bridge.sandbox.core import WhmcsError, as_date, inserted_id
from bridge.whmcs.schema import (
    CONTACT_FIELDS,
    SERVICE_STATUSES,
    tblclients,
    tblhosting,
    tblproductgroups,
    tblproducts,
    tblservers,
)

# The reason WHMCS's documentation names for overdue suspensions. WHMCS 8's cron stores an
# empty one (whmcs-reference §6); AutoUnsuspend undoes a suspension with either.
OVERDUE_REASON = "Overdue on Payment"
# Fake credentials that WHMCS would hand to hooks: tests prove the forwarder strips them.
SERVICE_PASSWORD = "sandbox-service-password"  # noqa: S105
SERVER_PASSWORD = "sandbox-server-password"  # noqa: S105


class ServicesMixin(ClientsMixin):
    # --- seeding -----------------------------------------------------------------------

    def add_product(self, name: str = "Starter Hosting", *, group: str = "Shared Hosting",
                    servertype: str = "cpanel") -> int:
        """A product; ``servertype`` is its provisioning module ('' = none)."""
        with self.transaction() as conn:
            gid = conn.execute(sa.select(tblproductgroups.c.id).where(
                tblproductgroups.c.name == group)).scalar()
            if gid is None:
                gid = inserted_id(conn.execute(tblproductgroups.insert().values(name=group)))
            return inserted_id(conn.execute(tblproducts.insert().values(
                type="hostingaccount", gid=gid, name=name, servertype=servertype,
            )))

    def add_server(self, name: str = "Sandbox Server 1", *, hostname: str = "s1.sandbox.test",
                   ipaddress: str = "192.0.2.10", module: str = "cpanel") -> int:
        with self.transaction() as conn:
            return inserted_id(conn.execute(tblservers.insert().values(
                name=name, hostname=hostname, ipaddress=ipaddress, type=module,
                username="root", password=SERVER_PASSWORD,
                accesshash="sandbox-server-accesshash", secure="on", port=2087,
            )))

    def add_service(self, client: int, nextduedate: date | str | None,
                    billingcycle: str = "Monthly", amount: float | str = "10.00",
                    status: str = "Active", *, domain: str | None = None,
                    product: int | None = None, regdate: date | str | None = None,
                    suspendreason: str = "", overideautosuspend: bool = False,
                    overidesuspenduntil: date | str | None = None,
                    nextinvoicedate: date | str | None = None) -> int:
        """A service (tblhosting row) as an accepted order leaves it; no hooks fire."""
        if status not in SERVICE_STATUSES:
            raise ValueError(f"service status must be one of {SERVICE_STATUSES}")
        product_id = product or self._default_product()
        server_id = self._default_server()
        with self.transaction() as conn:
            self._require(conn, tblclients, client, "Client ID Not Found")
            due = as_date(nextduedate)
            service_id = inserted_id(conn.execute(tblhosting.insert().values(
                userid=client, packageid=product_id, server=server_id,
                regdate=as_date(regdate) or self.today, domain=domain or "",
                paymentmethod="mailin", firstpaymentamount=amount, amount=amount,
                billingcycle=billingcycle, nextduedate=due,
                nextinvoicedate=as_date(nextinvoicedate) or due, domainstatus=status,
                username=f"user{client}", password=SERVICE_PASSWORD,
                suspendreason=suspendreason, overideautosuspend=int(overideautosuspend),
                overidesuspenduntil=as_date(overidesuspenduntil),
                created_at=self.now, updated_at=self.now)))
            if not domain:
                conn.execute(tblhosting.update().where(tblhosting.c.id == service_id).values(
                    domain=f"site{service_id}.example.com"))
        return service_id

    def _default_product(self) -> int:
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(tblproducts.c.id).order_by(tblproducts.c.id)).scalar()
        return int(found) if found is not None else self.add_product()

    def _default_server(self) -> int:
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(tblservers.c.id).order_by(tblservers.c.id)).scalar()
        return int(found) if found is not None else self.add_server()

    # --- reading -----------------------------------------------------------------------

    def service(self, service_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            return self.get_row(conn, tblhosting, service_id)

    def module_params(self, conn: Connection, service: dict[str, Any]) -> dict[str, Any]:
        """WHMCS's common module parameters for a service (module-parameters.md), passwords
        included: the forwarder must strip them."""
        product = self.get_row(conn, tblproducts, service["packageid"]) or {}
        server = self.get_row(conn, tblservers, service["server"]) or {}
        client = self.get_row(conn, tblclients, service["userid"]) or {}
        params: dict[str, Any] = {
            "accountid": int(service["id"]), "serviceid": int(service["id"]),
            "userid": int(service["userid"]), "pid": int(service["packageid"]),
            "serverid": int(service["server"]), "domain": service["domain"],
            "username": service["username"], "password": service["password"],
            "producttype": product.get("type", "hostingaccount"),
            "moduletype": product.get("servertype", ""),
            "status": service["domainstatus"], "suspendreason": service["suspendreason"],
        }
        params.update({f"configoption{n}": "" for n in range(1, 25)})
        params["clientsdetails"] = {
            "userid": int(service["userid"]), "id": int(service["userid"]),
            **{name: client.get(name, "") for name in CONTACT_FIELDS},
            "fullname": f"{client.get('firstname', '')} {client.get('lastname', '')}".strip(),
            "groupid": int(client.get("groupid", 0)), "status": client.get("status", "")}
        params.update(customfields={}, configoptions={}, server=bool(server),
                      serverip=server.get("ipaddress", ""),
                      serverhostname=server.get("hostname", ""),
                      serverusername=server.get("username", ""),
                      serverpassword=server.get("password", ""),
                      serveraccesshash=server.get("accesshash", ""),
                      serversecure=server.get("secure", "") == "on",
                      serverport=server.get("port") or "")
        return params

    # --- module commands ---------------------------------------------------------------

    def _module_service(self, conn: Connection, service_id: Any) -> dict[str, Any]:
        if service_id in (None, "", 0, "0"):
            raise WhmcsError("Service ID is required")
        service = self._require(conn, tblhosting, service_id, "Service ID not found")
        product = self.get_row(conn, tblproducts, service["packageid"]) or {}
        if not product.get("servertype"):
            raise WhmcsError("Service not assigned to a module")
        return service

    def suspend_service(self, service_id: int, reason: str = "") -> None:
        """ModuleSuspend (admin or API): suspend with ``reason``; fires AfterModuleSuspend."""
        with self.transaction() as conn:
            service = self._module_service(conn, service_id)
            params = self._suspend(conn, service, reason)
            self.log_activity(conn, f"Module Suspend Successful - Service ID: {service['id']}",
                              int(service["userid"]))
        self.run_hook("AfterModuleSuspend", {"params": params})

    def _suspend(self, conn: Connection, service: dict[str, Any], reason: str) -> dict[str, Any]:
        conn.execute(tblhosting.update().where(tblhosting.c.id == service["id"]).values(
            domainstatus="Suspended", suspendreason=reason, updated_at=self.now))
        return self.module_params(conn, {**service, "domainstatus": "Suspended",
                                         "suspendreason": reason})

    def unsuspend_service(self, service_id: int) -> None:
        """ModuleUnsuspend: reactivate; fires AfterModuleUnsuspend."""
        with self.transaction() as conn:
            service = self._module_service(conn, service_id)
            params = self._unsuspend(conn, service)
            self.log_activity(conn, f"Module Unsuspend Successful - Service ID: {service['id']}",
                              int(service["userid"]))
        self.run_hook("AfterModuleUnsuspend", {"params": params})

    def _unsuspend(self, conn: Connection, service: dict[str, Any]) -> dict[str, Any]:
        conn.execute(tblhosting.update().where(tblhosting.c.id == service["id"]).values(
            domainstatus="Active", suspendreason="", updated_at=self.now))
        return self.module_params(conn, {**service, "domainstatus": "Active",
                                         "suspendreason": ""})

    def update_service(self, service_id: int, **changes: Any) -> None:
        """UpdateClientProduct: ``status``, ``nextduedate``, ``overideautosuspend`` (bool or
        'on'/'off'), ``overidesuspenduntil``, ``suspendreason``, ``billingcycle``,
        ``recurringamount``, ``domain``. No module command runs, no hook fires."""
        columns = {"status": "domainstatus", "recurringamount": "amount"}
        values: dict[str, Any] = {}
        for name, raw in changes.items():
            column = columns.get(name, name)
            if column in ("nextduedate", "overidesuspenduntil", "nextinvoicedate"):
                values[column] = as_date(raw)
            elif column == "overideautosuspend":
                values[column] = int(raw in (True, 1, "1", "on", "true"))
            elif column in ("domainstatus", "suspendreason", "billingcycle", "amount",
                            "domain"):
                values[column] = raw
            else:
                raise TypeError(f"update_service cannot change {name!r}")
        if values.get("domainstatus", "Active") not in SERVICE_STATUSES:
            raise WhmcsError(f"Invalid status {values['domainstatus']}")
        with self.transaction() as conn:
            self._require(conn, tblhosting, service_id, "Service ID Not Found")
            values["updated_at"] = self.now
            conn.execute(tblhosting.update().where(tblhosting.c.id == int(service_id))
                         .values(values))
