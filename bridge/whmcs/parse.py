"""Reading WHMCS API JSON into the dataclasses of ``models``.

marshmallow schemas with ``unknown=EXCLUDE`` (reliability-security §5: WHMCS responses gain
fields between versions; fields not declared here, such as a service's ``password``, are dropped
on the spot). The quirks are absorbed by the fields in ``coerce``. Any shape they cannot read
becomes :class:`WhmcsResponseError` naming the field, never the value (it may be personal data).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, ClassVar

from marshmallow import EXCLUDE, Schema, ValidationError, post_load, pre_load

from bridge.whmcs import models as m
from bridge.whmcs.coerce import Date, DateTime, Flag, Int, Money, Rows, Text, count, rows
from bridge.whmcs.errors import WhmcsResponseError

__all__ = ["container_rows", "count", "load", "load_rows"]

_local = threading.local()


class _Response(Schema):
    model: ClassVar[type]

    class Meta:
        unknown = EXCLUDE

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Any:
        return self.model(**data)


def _alias(data: Any, key: str, alias: str) -> Any:
    """GetInvoice says ``invoiceid`` and GetTicket ``ticketid`` where the lists say ``id``."""
    if isinstance(data, Mapping) and key not in data and alias in data:
        return {**data, key: data[alias]}
    return data


class ClientSummarySchema(_Response):
    model = m.ClientSummary
    id = Int(required=True)
    firstname = Text()
    lastname = Text()
    companyname = Text()
    email = Text()
    datecreated = Date()
    groupid = Int(0)
    status = Text()


class ClientDetailsSchema(_Response):
    model = m.ClientDetails
    id = Int(required=True)
    firstname = Text()
    lastname = Text()
    companyname = Text()
    email = Text()
    groupid = Int(0)
    status = Text()
    language = Text(None)
    currency_id = Int(0, data_key="currency")
    currency_code = Text()
    currency_prefix = Text()
    currency_suffix = Text()
    credit = Money()
    datecreated = Date()

    @pre_load
    def _ids(self, data: Any, **kwargs: Any) -> Any:
        return _alias(_alias(data, "id", "client_id"), "id", "userid")


class CurrencySchema(_Response):
    model = m.Currency
    id = Int(required=True)
    code = Text()
    prefix = Text()
    suffix = Text()
    rate = Money()


class ClientGroupSchema(_Response):
    model = m.ClientGroup
    id = Int(required=True)
    name = Text(data_key="groupname")
    susptermexempt = Flag()


class _InvoiceFields(_Response):
    """What GetInvoices items and GetInvoice share."""

    id = Int(required=True)
    invoicenum = Text()
    userid = Int(0)
    status = Text()
    date = Date()
    duedate = Date()
    datepaid = Date()
    subtotal = Money()
    credit = Money()
    tax = Money()
    tax2 = Money()
    total = Money()


class InvoiceSummarySchema(_InvoiceFields):
    model = m.InvoiceSummary
    paymentmethod = Text()
    currency_code = Text(data_key="currencycode")
    currency_prefix = Text(data_key="currencyprefix")
    currency_suffix = Text(data_key="currencysuffix")
    date_cancelled = Date()
    updated_at = Date()


class InvoiceItemSchema(_Response):
    model = m.InvoiceItem
    id = Int(required=True)
    type = Text()
    relid = Int(0)
    description = Text()
    amount = Money()


class TransactionSchema(_Response):
    model = m.Transaction
    id = Int(required=True)
    date = Date()
    gateway = Text()
    transid = Text()
    amountin = Money()
    amountout = Money()
    invoiceid = Int(0)
    userid = Int(0)


class InvoiceDetailsSchema(_InvoiceFields):
    model = m.InvoiceDetails
    balance = Money(required=True)
    paymentmethod = Text()
    items = Rows(InvoiceItemSchema, "item")
    transactions = Rows(TransactionSchema, "transaction")

    @pre_load
    def _ids(self, data: Any, **kwargs: Any) -> Any:
        return _alias(data, "id", "invoiceid")


class ProductSchema(_Response):
    model = m.Product
    id = Int(required=True)
    clientid = Int(0)
    pid = Int(0)
    name = Text()
    domain = Text()
    status = Text()
    billingcycle = Text()
    regdate = Date()
    nextduedate = Date()
    suspensionreason = Text()
    overideautosuspend = Flag()
    overidesuspenduntil = Date()


class TicketSchema(_Response):
    model = m.Ticket
    id = Int(required=True)
    tid = Text()
    userid = Int(0)
    deptid = Int(0)
    status = Text()
    priority = Text()
    subject = Text()
    date = DateTime()
    lastreply = DateTime()


class TicketNoteSchema(_Response):
    model = m.TicketNote
    id = Int(required=True, data_key="noteid")
    date = DateTime()
    message = Text()
    admin = Text()


class TicketReplySchema(_Response):
    model = m.TicketReply
    id = Int(0, data_key="replyid")
    date = DateTime()
    admin = Text()


class TicketDetailsSchema(TicketSchema):
    model = m.TicketDetails
    deptname = Text()
    notes = Rows(TicketNoteSchema, "note")
    replies = Rows(TicketReplySchema, "reply")

    @pre_load
    def _ids(self, data: Any, **kwargs: Any) -> Any:
        return _alias(data, "id", "ticketid")


class DepartmentSchema(_Response):
    model = m.Department
    id = Int(required=True)
    name = Text()
    awaitingreply = Int(0)
    opentickets = Int(0)


def schema_of(schema: type[Schema]) -> Schema:
    """This thread's instance of ``schema``: making one deep-copies its fields, which cost more
    than the load itself (half a 5,000-client API resync went there)."""
    made: dict[type[Schema], Schema] = _local.__dict__.setdefault("schemas", {})
    found = made.get(schema)
    if found is None:
        found = made[schema] = schema()
    return found


def load(schema: type[Schema], data: Any, action: str) -> Any:
    """One object, or :class:`WhmcsResponseError` naming the fields that could not be read."""
    try:
        return schema_of(schema).load(data)
    except ValidationError as exc:
        raise WhmcsResponseError(action, "unexpected response: " + _describe(exc.messages)) \
            from None


def container_rows(value: Any, item: str, action: str) -> list[Any]:
    """:func:`rows`, or :class:`WhmcsResponseError` when the container is not a list."""
    try:
        return rows(value, item)
    except ValidationError as exc:
        raise WhmcsResponseError(action, "unexpected response: " + _describe(exc.messages)) \
            from None


def load_rows(schema: type[Schema], value: Any, item: str, action: str) -> list[Any]:
    return [load(schema, row, action) for row in container_rows(value, item, action)]


def _describe(messages: Any, prefix: str = "") -> str:
    parts: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, Mapping):
            for key, sub in node.items():
                walk(sub, f"{path}.{key}" if path else str(key))
        elif isinstance(node, list) and node and all(isinstance(s, str) for s in node):
            parts.append(f"{path or 'body'}: {node[0]}")
        elif isinstance(node, list):
            for sub in node:
                walk(sub, path)
        else:
            parts.append(f"{path or 'body'}: {node}")

    walk(messages, prefix)
    shown = "; ".join(parts[:4])
    return shown + (f" (+{len(parts) - 4} more)" if len(parts) > 4 else "")
