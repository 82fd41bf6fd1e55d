"""The daily automation cron: PreCronJob, invoice generation, overdue suspensions,
DailyCronJob, AfterCronJob (https://docs.whmcs.com/Automation_Settings; whmcs-reference §4).

Order follows WHMCS's task list (invoices are generated before overdue suspensions run); the
hooks bracket the whole run. PreCronJob is run and waited for before anything else, so that
what a hook changes (vipgate moves delinquent clients out of an exempt group) is what the
suspension step sees.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bridge.sandbox.billing import BillingMixin
from bridge.sandbox.clock import CYCLE_MONTHS, next_cycle
from bridge.whmcs.schema import (
    tblclientgroups,
    tblclients,
    tblhosting,
    tblinvoiceitems,
    tblinvoices,
    tblproducts,
)

UNPAID = ("Unpaid", "Payment Pending", "Collections", "Draft")
MAX_PERIODS_PER_RUN = 36


@dataclass
class CronSummary:
    ran_at: datetime
    invoices_created: list[int] = field(default_factory=list)
    suspended: list[int] = field(default_factory=list)  # service ids
    spared_exempt_group: list[int] = field(default_factory=list)  # overdue, group exempt
    spared_override: list[int] = field(default_factory=list)  # overdue, per-service override
    spared_pending: list[int] = field(default_factory=list)  # latest invoice Payment Pending
    manual_required: list[int] = field(default_factory=list)  # overdue, product has no module
    hooks: list[str] = field(default_factory=list)  # hook names fired during the run, in order

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ran_at"] = self.ran_at.isoformat(sep=" ")
        return out


class CronMixin(BillingMixin):
    def run_cron(self) -> CronSummary:
        """One daily cron run, as WHMCS's: see the module docstring."""
        summary = CronSummary(ran_at=self.now)
        fired_before = len(self.fired)
        self.run_hook("PreCronJob", {})
        self._generate_invoices(summary)
        self._overdue_suspensions(summary)
        self.run_hook("DailyCronJob", {})
        self.run_hook("AfterCronJob", {})
        summary.hooks = [f.hook for f in self.fired[fired_before:]]
        return summary

    # --- invoice generation ------------------------------------------------------------

    def _generate_invoices(self, summary: CronSummary) -> None:
        """Invoices ``CreateInvoiceDaysBefore`` days ahead of the due date. Continuous
        Invoice Generation off: no new invoice for a service while one for it is unpaid (the
        next due date only moves on payment). On: every period, paid or not (the next invoice
        date moves on generation)."""
        with self.engine.connect() as conn:
            continuous = self.setting_on("ContinuousInvoiceGeneration", conn)
            horizon = self.today + timedelta(days=int(self.setting(
                "CreateInvoiceDaysBefore", conn) or 0))
            services = [dict(r) for r in conn.execute(sa.select(tblhosting).where(
                tblhosting.c.domainstatus.in_(("Active", "Suspended")),
                tblhosting.c.billingcycle.in_(list(CYCLE_MONTHS))).order_by(
                tblhosting.c.id)).mappings()]
        for service in services:
            with self.transaction() as conn:
                created = self._invoice_service(conn, service, continuous, horizon)
            for invoice_id in created:
                summary.invoices_created.append(invoice_id)
                hook_vars = {"source": "autogen", "user": "system", "invoiceid": invoice_id,
                             "status": "Unpaid"}
                self.run_hook("InvoiceCreation", hook_vars)
                self.run_hook("InvoiceCreated", hook_vars)

    def _invoice_service(self, conn: Connection, service: dict[str, Any], continuous: bool,
                         horizon: date) -> list[int]:
        due = (service["nextinvoicedate"] or service["nextduedate"]) if continuous \
            else service["nextduedate"]
        if due is None or due > horizon:
            return []
        if not continuous:
            if self._has_unpaid_invoice(conn, service["id"]):
                return []
            return [] if self._invoiced(conn, service["id"], due) else \
                [self._invoice_period(conn, service, due)]
        created = []
        for _ in range(MAX_PERIODS_PER_RUN):
            if due > horizon:
                break
            if not self._invoiced(conn, service["id"], due):
                created.append(self._invoice_period(conn, service, due))
            due = next_cycle(due, service["billingcycle"])
        conn.execute(tblhosting.update().where(tblhosting.c.id == service["id"]).values(
            nextinvoicedate=due))
        return created

    def _has_unpaid_invoice(self, conn: Connection, service_id: int) -> bool:
        return conn.execute(sa.select(tblinvoices.c.id).join(
            tblinvoiceitems, tblinvoiceitems.c.invoiceid == tblinvoices.c.id).where(
            tblinvoiceitems.c.type == "Hosting", tblinvoiceitems.c.relid == service_id,
            tblinvoices.c.status.in_(UNPAID)).limit(1)).first() is not None

    def _invoiced(self, conn: Connection, service_id: int, due: date) -> bool:
        return conn.execute(sa.select(tblinvoiceitems.c.id).join(
            tblinvoices, tblinvoiceitems.c.invoiceid == tblinvoices.c.id).where(
            tblinvoiceitems.c.type == "Hosting", tblinvoiceitems.c.relid == service_id,
            tblinvoiceitems.c.duedate == due, tblinvoices.c.status != "Cancelled",
        ).limit(1)).first() is not None

    def _invoice_period(self, conn: Connection, service: dict[str, Any], due: date) -> int:
        client = self.get_row(conn, tblclients, service["userid"]) or {"id": service["userid"]}
        product = self.get_row(conn, tblproducts, service["packageid"]) or {"name": "Service"}
        end = next_cycle(due, service["billingcycle"]) - timedelta(days=1)
        description = (f"{product['name']} - {service['domain']} "
                       f"({due:%d/%m/%Y} - {end:%d/%m/%Y})")
        invoice_id = self.insert_invoice(
            conn, client, [("Hosting", service["id"], description, service["amount"])],
            duedate=due, date=self.today, status="Unpaid",
            paymentmethod=service["paymentmethod"] or "mailin")
        self.log_activity(conn, f"Cron Job: Generated Invoice - Invoice ID: {invoice_id}",
                          int(service["userid"]))
        return invoice_id

    # --- overdue suspensions -----------------------------------------------------------

    def _overdue_suspensions(self, summary: CronSummary) -> None:
        """WHMCS's AutoSuspensions task (whmcs-reference §4 and §6). Active services whose next
        due date is ``AutoSuspensionDays`` days past or more (``nextduedate <= today -
        AutoSuspensionDays``: the boundary day suspends) are suspended through their module,
        firing AfterModuleSuspend, with an empty ``suspendreason`` (not "Overdue on
        Payment"). Spared: a client group exempt from suspension (``susptermexempt='on'``), a
        service overriding auto-suspension (with no end date, or one not yet past), a service
        whose latest invoice is Payment Pending. A service whose product has no provisioning
        module (``tblproducts.servertype`` empty) is not suspended: "Manual Suspension
        Required" goes to the activity log and no hook fires."""
        with self.transaction() as conn:
            if not self.setting_on("AutoSuspension", conn):
                return
            cutoff = self.today - timedelta(days=int(self.setting("AutoSuspensionDays", conn)
                                                     or 0))
            self.log_activity(conn, "Automated Task: Starting Overdue Suspensions")
            overdue = [dict(r) for r in conn.execute(
                sa.select(tblhosting, tblclientgroups.c.susptermexempt,
                          tblproducts.c.servertype.label("module"))
                .join(tblclients, tblclients.c.id == tblhosting.c.userid)
                .outerjoin(tblclientgroups, tblclientgroups.c.id == tblclients.c.groupid)
                .outerjoin(tblproducts, tblproducts.c.id == tblhosting.c.packageid)
                .where(tblhosting.c.domainstatus == "Active",
                       tblhosting.c.billingcycle.in_(list(CYCLE_MONTHS)),
                       tblhosting.c.nextduedate <= cutoff)
                .order_by(tblhosting.c.id)).mappings()]
        for service in overdue:
            until = service["overidesuspenduntil"]
            if service["susptermexempt"] == "on":
                summary.spared_exempt_group.append(int(service["id"]))
            elif service["overideautosuspend"] and (until is None or until >= self.today):
                summary.spared_override.append(int(service["id"]))
            elif self._latest_invoice_status(service["id"]) == "Payment Pending":
                summary.spared_pending.append(int(service["id"]))
            elif not service["module"]:
                with self.transaction() as conn:
                    self.log_activity(conn, "Cron Job: Manual Suspension Required - Service "
                                            f"ID: {service['id']}", int(service["userid"]))
                summary.manual_required.append(int(service["id"]))
            else:
                with self.transaction() as conn:
                    current = self.get_row(conn, tblhosting, service["id"])
                    if (current is None or current["domainstatus"] != "Active"
                            or current["nextduedate"] is None
                            or current["nextduedate"] > cutoff):
                        continue  # paid or changed since the list was read
                    params = self._suspend(conn, current, "")
                    self.log_activity(conn, "Cron Job: Suspending Service - Service ID: "
                                            f"{current['id']}", int(current["userid"]))
                summary.suspended.append(int(current["id"]))
                self.run_hook("AfterModuleSuspend", {"params": params})

    def _latest_invoice_status(self, service_id: int) -> str | None:
        """The status of the newest invoice billing the service (a Hosting item), if any."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(tblinvoices.c.status).join(
                tblinvoiceitems, tblinvoiceitems.c.invoiceid == tblinvoices.c.id).where(
                tblinvoiceitems.c.type == "Hosting", tblinvoiceitems.c.relid == service_id)
                .order_by(tblinvoices.c.id.desc()).limit(1)).scalar()
