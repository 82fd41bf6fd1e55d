"""Invoices and payments: creation, AddInvoicePayment (partial payments included), status
changes, and what paying a Hosting item does to its service."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bridge.sandbox.clock import next_cycle, recurs
from bridge.sandbox.core import WhmcsError, as_date, as_datetime, inserted_id, money
from bridge.sandbox.services import OVERDUE_REASON, ServicesMixin
from bridge.whmcs.schema import tblaccounts, tblclients, tblhosting, tblinvoiceitems, tblinvoices

INVOICE_STATUSES = ("Draft", "Unpaid", "Paid", "Cancelled", "Refunded", "Collections",
                    "Payment Pending")
PAYABLE = ("Unpaid", "Payment Pending", "Collections")  # a full payment turns these Paid
Item = tuple[str, int, str, Any] | Mapping[str, Any]  # (type, relid, description, amount)
PendingHooks = list[tuple[str, dict[str, Any]]]


def _item_values(item: Item) -> dict[str, Any]:
    if isinstance(item, Mapping):
        return {"type": item.get("type", ""), "relid": int(item.get("relid", 0)),
                "description": item.get("description", ""), "amount": money(item["amount"]),
                "taxed": int(bool(item.get("taxed", 0)))}
    kind, relid, description, amount = item
    return {"type": kind, "relid": int(relid), "description": description,
            "amount": money(amount), "taxed": 0}


class BillingMixin(ServicesMixin):
    # --- creating ----------------------------------------------------------------------

    def add_invoice(self, client: int, duedate: date | str, items: Iterable[Item],
                    status: str = "Unpaid", *, date: date | str | None = None,
                    datepaid: datetime | str | None = None, invoicenum: str = "") -> int:
        """An invoice as the admin area creates it. A ``Paid`` one gets a matching payment
        transaction (so its balance is zero), paid at ``datepaid`` (default: now)."""
        return self.create_invoice(client, items, duedate=duedate, date=date, status=status,
                                   datepaid=datepaid, invoicenum=invoicenum,
                                   source="adminarea", user=1)

    def create_invoice(self, client: int, items: Iterable[Item], *, duedate: date | str,
                       date: date | str | None = None, status: str = "Unpaid",
                       datepaid: datetime | str | None = None, invoicenum: str = "",
                       notes: str = "", paymentmethod: str = "mailin", source: str = "api",
                       user: int | str = "system") -> int:
        """CreateInvoice; fires InvoiceCreation and InvoiceCreated (not for a Draft)."""
        if status not in INVOICE_STATUSES:
            raise WhmcsError(f"Invalid status {status}")
        with self.transaction() as conn:
            client_row = self._require(conn, tblclients, client, "Client ID Not Found")
            invoice_id = self.insert_invoice(
                conn, client_row, items, duedate=as_date(duedate) or self.today,
                date=as_date(date) or self.today, status=status, invoicenum=invoicenum,
                notes=notes, paymentmethod=paymentmethod)
            if status == "Paid":
                paid_at = as_datetime(datepaid) or self.now
                total = self._require(conn, tblinvoices, invoice_id, "")["total"]
                conn.execute(tblinvoices.update().where(tblinvoices.c.id == invoice_id)
                             .values(datepaid=paid_at))
                self._record_payment(conn, invoice_id, client_row, money(total),
                                     gateway=paymentmethod, transid=f"sandbox-{invoice_id}",
                                     when=paid_at, fees=Decimal("0"))
        if status != "Draft":
            hook_vars = {"source": source, "user": user, "invoiceid": invoice_id,
                         "status": status}
            self.run_hook("InvoiceCreation", hook_vars)
            self.run_hook("InvoiceCreated", hook_vars)
        return invoice_id

    def insert_invoice(self, conn: Connection, client_row: dict[str, Any],
                       items: Iterable[Item], *, duedate: date, date: date, status: str,
                       invoicenum: str = "", notes: str = "",
                       paymentmethod: str = "mailin") -> int:
        rows = [_item_values(item) for item in items]
        total = sum((row["amount"] for row in rows), Decimal("0.00"))
        invoice_id = inserted_id(conn.execute(tblinvoices.insert().values(
            userid=client_row["id"], invoicenum=invoicenum, date=date, duedate=duedate,
            subtotal=total, total=total, status=status, paymentmethod=paymentmethod,
            notes=notes, created_at=self.now, updated_at=self.now)))
        if rows:
            conn.execute(tblinvoiceitems.insert(), [
                {**row, "invoiceid": invoice_id, "userid": client_row["id"], "duedate": duedate,
                 "paymentmethod": paymentmethod} for row in rows])
        return invoice_id

    # --- reading -----------------------------------------------------------------------

    def paid_amount(self, conn: Connection, invoice_id: int) -> Decimal:
        return money(conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(tblaccounts.c.amountin
                                                   - tblaccounts.c.amountout), 0))
            .where(tblaccounts.c.invoiceid == invoice_id)).scalar())

    def invoice_balance(self, conn: Connection, invoice: dict[str, Any]) -> Decimal:
        """total − SUM(amountin − amountout) of the invoice's transactions."""
        return money(invoice["total"]) - self.paid_amount(conn, int(invoice["id"]))

    def invoice(self, invoice_id: int) -> dict[str, Any] | None:
        """The tblinvoices row plus ``balance``."""
        with self.engine.connect() as conn:
            row = self.get_row(conn, tblinvoices, invoice_id)
            if row is not None:
                row["balance"] = self.invoice_balance(conn, row)
            return row

    def balance(self, invoice_id: int) -> Decimal:
        row = self.invoice(invoice_id)
        if row is None:
            raise WhmcsError("Invoice ID Not Found")
        return Decimal(row["balance"])

    # --- AddInvoicePayment -------------------------------------------------------------

    def add_payment(self, invoice_id: int, amount: Any = None, *, transid: str = "",
                    gateway: str = "mailin", date: datetime | str | None = None,
                    fees: Any = 0) -> Decimal:
        """AddInvoicePayment; ``amount`` None pays the balance. Fires AddInvoicePayment for
        every payment; when the balance reaches zero the invoice turns Paid, its Hosting items
        advance their services' next due date (and AutoUnsuspend reactivates services
        suspended for "Overdue on Payment", firing AfterModuleUnsuspend), then InvoicePaid.
        Returns the balance left."""
        with self.transaction() as conn:
            invoice = self._require(conn, tblinvoices, invoice_id, "Invoice ID Not Found")
            if invoice["status"] == "Cancelled":
                raise WhmcsError("It is not possible to add a payment to an invoice that is "
                                 "Cancelled")
            client_row = self.get_row(conn, tblclients, invoice["userid"]) or {
                "id": invoice["userid"], "currency": 1}
            balance = self.invoice_balance(conn, invoice)
            paid = balance if amount in (None, "") else money(amount)
            when = as_datetime(date) or self.now
            self._record_payment(conn, int(invoice["id"]), client_row, paid, gateway=gateway,
                                 transid=transid, when=when, fees=money(fees))
            left = balance - paid
            pending: PendingHooks = []
            became_paid = left <= 0 and invoice["status"] in PAYABLE
            if became_paid:
                conn.execute(tblinvoices.update().where(tblinvoices.c.id == invoice["id"])
                             .values(status="Paid", datepaid=when, updated_at=self.now))
                self.log_activity(conn, f"Invoice Marked Paid - Invoice ID: {invoice['id']}",
                                  int(invoice["userid"]))
                pending = self._apply_paid(conn, invoice)
            paid_invoice = self.get_row(conn, tblinvoices, invoice_id)
        self.run_hook("AddInvoicePayment", {"invoiceid": int(invoice_id)})
        if became_paid:
            self.run_hooks(pending)
            self.run_hook("InvoicePaid", {"invoiceid": int(invoice_id),
                                          "invoice": {"__object__": paid_invoice}})
        return left

    def _record_payment(self, conn: Connection, invoice_id: int, client_row: dict[str, Any],
                        amount: Decimal, *, gateway: str, transid: str, when: datetime,
                        fees: Decimal) -> None:
        conn.execute(tblaccounts.insert().values(
            userid=client_row["id"], currency=client_row.get("currency", 1), gateway=gateway,
            date=when, description="Invoice Payment", amountin=amount, fees=fees,
            transid=transid, invoiceid=invoice_id))
        self.log_activity(conn, f"Added Invoice Payment - Invoice ID: {invoice_id}",
                          int(client_row["id"]))

    def _apply_paid(self, conn: Connection, invoice: dict[str, Any]) -> PendingHooks:
        """Automation on a paid invoice: renew each Hosting item's service; unsuspend it if
        it was suspended for non-payment (or with a blank reason) and AutoUnsuspend is on."""
        pending: PendingHooks = []
        continuous = self.setting_on("ContinuousInvoiceGeneration", conn)
        auto_unsuspend = self.setting_on("AutoUnsuspend", conn)
        items = conn.execute(sa.select(tblinvoiceitems.c.relid).where(
            tblinvoiceitems.c.invoiceid == invoice["id"],
            tblinvoiceitems.c.type == "Hosting")).scalars().all()
        for service_id in dict.fromkeys(items):
            service = self.get_row(conn, tblhosting, service_id)
            if service is None:
                continue
            values: dict[str, Any] = {}
            if recurs(service["billingcycle"]) and service["nextduedate"] is not None:
                values["nextduedate"] = next_cycle(service["nextduedate"],
                                                   service["billingcycle"])
                if not continuous:
                    values["nextinvoicedate"] = values["nextduedate"]
                conn.execute(tblhosting.update().where(tblhosting.c.id == service_id)
                             .values(values))
            if (service["domainstatus"] == "Suspended" and auto_unsuspend
                    and service["suspendreason"] in (OVERDUE_REASON, "")):
                params = self._unsuspend(conn, {**service, **values})
                self.log_activity(conn, f"Module Unsuspend Successful - Service ID: "
                                        f"{service_id}", int(service["userid"]))
                pending.append(("AfterModuleUnsuspend", {"params": params}))
        return pending

    # --- UpdateInvoice -----------------------------------------------------------------

    def update_invoice(self, invoice_id: int, *, status: str | None = None,
                       duedate: date | str | None = None, date: date | str | None = None,
                       datepaid: datetime | str | None = None, notes: str | None = None,
                       paymentmethod: str | None = None) -> None:
        """UpdateInvoice. A status change fires InvoiceCancelled / InvoiceUnpaid /
        InvoiceRefunded; setting Paid here records no payment and fires no InvoicePaid."""
        if status is not None and status not in INVOICE_STATUSES:
            raise WhmcsError(f"Invalid status {status}")
        values: dict[str, Any] = {}
        for name, value in (("duedate", as_date(duedate)), ("date", as_date(date)),
                            ("notes", notes), ("paymentmethod", paymentmethod)):
            if value is not None:
                values[name] = value
        if datepaid is not None:
            values["datepaid"] = as_datetime(datepaid)
        with self.transaction() as conn:
            invoice = self._require(conn, tblinvoices, invoice_id, "Invoice ID Not Found")
            changed = status is not None and status != invoice["status"]
            if changed:
                values["status"] = status
                if status == "Cancelled":
                    values["date_cancelled"] = self.now
                elif status == "Refunded":
                    values["date_refunded"] = self.now
                elif status == "Unpaid":
                    values.setdefault("datepaid", None)
                elif status == "Paid" and "datepaid" not in values:
                    values["datepaid"] = self.now
            values["updated_at"] = self.now
            conn.execute(tblinvoices.update().where(tblinvoices.c.id == invoice["id"])
                         .values(values))
        hook = {"Cancelled": "InvoiceCancelled", "Unpaid": "InvoiceUnpaid",
                "Refunded": "InvoiceRefunded"}.get(status or "")
        if changed and hook:
            self.run_hook(hook, {"invoiceid": int(invoice_id)})

    def set_invoice_status(self, invoice_id: int, status: str) -> None:
        self.update_invoice(invoice_id, status=status)
