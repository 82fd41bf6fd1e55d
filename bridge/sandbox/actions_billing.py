"""API actions about invoices: GetInvoices, GetInvoice, GetTransactions, AddInvoicePayment,
UpdateInvoice, CreateInvoice."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from bridge.sandbox.actions_common import (
    Params,
    StatusError,
    action,
    dt0,
    nest,
    page,
    s,
    unstable_ties,
)
from bridge.sandbox.core import WhmcsError
from bridge.whmcs.schema import tblaccounts, tblclients, tblcurrencies, tblinvoiceitems, tblinvoices

if TYPE_CHECKING:
    from bridge.sandbox.whmcs import Sandbox

INVOICE_ORDER = {"id": "id", "invoicenumber": "invoicenum", "date": "date",
                 "duedate": "duedate", "total": "total", "status": "status"}
MONEY_FIELDS = ("subtotal", "credit", "tax", "tax2", "total", "taxrate", "taxrate2")


@action("GetInvoices")
def get_invoices(sb: Sandbox, p: Params) -> dict[str, Any]:
    i = tblinvoices.c
    query = (sa.select(tblinvoices, tblclients.c.firstname, tblclients.c.lastname,
                       tblclients.c.companyname, tblcurrencies.c.code.label("currencycode"),
                       tblcurrencies.c.prefix.label("currencyprefix"),
                       tblcurrencies.c.suffix.label("currencysuffix"))
             .select_from(tblinvoices.outerjoin(tblclients, tblclients.c.id == i.userid)
                          .outerjoin(tblcurrencies, tblcurrencies.c.id == tblclients.c.currency)))
    if p.has("userid"):
        query = query.where(i.userid == p.int("userid", -1))
    status = p.get("status")
    if status == "Overdue":  # a filter-only pseudo-status: Unpaid and past due
        query = query.where(i.status == "Unpaid", i.duedate < sb.today)
    elif status:
        query = query.where(i.status == status)
    order = p.get("orderby").lower()
    if order in INVOICE_ORDER:
        column = i[INVOICE_ORDER[order]]
        keys = [column.desc() if p.get("order").lower() == "desc" else column.asc()]
    else:  # WHMCS's default order (whmcs-reference §6)
        column, keys = None, [i.status.desc(), i.duedate.asc()]
    if column is not i.id:
        keys.append(unstable_ties(sb, i.id))  # ties in no stable order, as MySQL under LIMIT
    with sb.engine.connect() as conn:
        total, start, rows = page(conn, query, p, keys)
    invoices = [{
        "id": s(r["id"]), "userid": s(r["userid"]), "firstname": r["firstname"] or "",
        "lastname": r["lastname"] or "", "companyname": r["companyname"] or "",
        "invoicenum": r["invoicenum"], "date": s(r["date"]), "duedate": s(r["duedate"]),
        "datepaid": dt0(r["datepaid"]), "last_capture_attempt": dt0(r["last_capture_attempt"]),
        "date_refunded": dt0(r["date_refunded"]), "date_cancelled": dt0(r["date_cancelled"]),
        **{name: s(r[name]) for name in MONEY_FIELDS},
        "status": r["status"], "paymentmethod": r["paymentmethod"],
        "paymethodid": s(r["paymethodid"]), "notes": r["notes"],
        "created_at": dt0(r["created_at"]), "updated_at": dt0(r["updated_at"]),
        "currencycode": r["currencycode"] or "", "currencyprefix": r["currencyprefix"] or "",
        "currencysuffix": r["currencysuffix"] or ""} for r in rows]
    # No invoices: ``"invoices": []`` here, not "" (whmcs-reference §6).
    return {"totalresults": s(total), "startnumber": s(start), "numreturned": s(len(invoices)),
            "invoices": {"invoice": invoices} if invoices else []}


@action("GetInvoice")
def get_invoice(sb: Sandbox, p: Params) -> dict[str, Any]:
    with sb.engine.connect() as conn:
        invoice = sb.get_row(conn, tblinvoices, p.get("invoiceid"))
        if invoice is None:  # without a ``result`` key (whmcs-reference §6)
            raise StatusError("Invoice ID Not Found")
        balance = sb.invoice_balance(conn, invoice)
        items = conn.execute(sa.select(tblinvoiceitems).where(
            tblinvoiceitems.c.invoiceid == invoice["id"]).order_by(tblinvoiceitems.c.id)
        ).mappings().all()
        transactions = conn.execute(sa.select(tblaccounts).where(
            tblaccounts.c.invoiceid == invoice["id"]).order_by(tblaccounts.c.id)
        ).mappings().all()
    return {
        "invoiceid": s(invoice["id"]), "invoicenum": invoice["invoicenum"],
        "userid": s(invoice["userid"]), "date": s(invoice["date"]),
        "duedate": s(invoice["duedate"]), "datepaid": dt0(invoice["datepaid"]),
        "lastcaptureattempt": dt0(invoice["last_capture_attempt"]),
        "subtotal": s(invoice["subtotal"]), "credit": s(invoice["credit"]),
        "tax": s(invoice["tax"]), "tax2": s(invoice["tax2"]), "total": s(invoice["total"]),
        "balance": s(balance), "taxrate": s(invoice["taxrate"]),
        "taxrate2": s(invoice["taxrate2"]), "status": invoice["status"],
        "paymentmethod": invoice["paymentmethod"], "notes": invoice["notes"], "ccgateway": "",
        "items": nest("item", [{"id": s(r["id"]), "type": r["type"], "relid": s(r["relid"]),
                                "description": r["description"], "amount": s(r["amount"]),
                                "taxed": s(r["taxed"])} for r in items]),
        "transactions": nest("transaction", [_transaction(t) for t in transactions]),
    }


@action("GetTransactions")
def get_transactions(sb: Sandbox, p: Params) -> dict[str, Any]:
    """Every transaction matching ``invoiceid``, ``clientid`` and ``transid`` (no pages)."""
    a = tblaccounts.c
    query = sa.select(tblaccounts).order_by(a.id)
    if p.has("invoiceid"):
        query = query.where(a.invoiceid == p.int("invoiceid", -1))
    if p.has("clientid"):
        query = query.where(a.userid == p.int("clientid", -1))
    if p.get("transid"):
        query = query.where(a.transid == p.get("transid"))
    with sb.engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return {"totalresults": s(len(rows)), "startnumber": "0", "numreturned": s(len(rows)),
            "transactions": nest("transaction", [_transaction(t) for t in rows])}


def _transaction(t: Any) -> dict[str, Any]:
    return {"id": s(t["id"]), "userid": s(t["userid"]), "currency": s(t["currency"]),
            "gateway": t["gateway"], "date": s(t["date"]), "description": t["description"],
            "amountin": s(t["amountin"]), "fees": s(t["fees"]), "amountout": s(t["amountout"]),
            "rate": f"{t['rate']:.5f}", "transid": t["transid"], "invoiceid": s(t["invoiceid"]),
            "refundid": s(t["refundid"])}


@action("AddInvoicePayment")
def add_invoice_payment(sb: Sandbox, p: Params) -> dict[str, Any]:
    sb.add_payment(p.int("invoiceid"), p.optional("amount"), transid=p.get("transid"),
                   gateway=p.get("gateway") or "mailin", date=p.optional("date"),
                   fees=p.get("fees") or 0)
    return {}


@action("UpdateInvoice")
def update_invoice(sb: Sandbox, p: Params) -> dict[str, Any]:
    sb.update_invoice(p.int("invoiceid"), status=p.optional("status"),
                      duedate=p.optional("duedate"), date=p.optional("date"),
                      datepaid=p.optional("datepaid"), notes=p.optional("notes"),
                      paymentmethod=p.optional("paymentmethod"))
    return {"invoiceid": p.get("invoiceid")}


@action("CreateInvoice")
def create_invoice(sb: Sandbox, p: Params) -> dict[str, Any]:
    if p.flag("draft") and p.flag("sendinvoice"):
        raise WhmcsError("Cannot create and send a draft invoice in a single API request. "
                         "Please create and send separately.")
    status = "Draft" if p.flag("draft") else (p.get("status") or "Unpaid")
    numbers = sorted({int(m.group(1)) for key in p
                      if (m := re.fullmatch(r"itemdescription(\d+)", key))})
    items = [{"type": "", "relid": 0, "description": p.get(f"itemdescription{n}"),
              "amount": p.get(f"itemamount{n}") or "0", "taxed": p.flag(f"itemtaxed{n}")}
             for n in numbers]
    invoice_id = sb.create_invoice(
        p.int("userid"), items, duedate=p.optional("duedate") or sb.today,
        date=p.optional("date"), status=status, notes=p.get("notes"),
        paymentmethod=p.get("paymentmethod") or "mailin", source="api", user="system")
    return {"invoiceid": s(invoice_id), "status": status}
