"""WHMCS API client: the only part of vipgate that speaks HTTP to WHMCS.

``errors`` (typed errors), ``transport`` (the HTTP call: auth, timeouts, retries, decoding),
``parse`` (WHMCS's quirks → dataclasses), ``models`` (the dataclasses), ``client``
(``WhmcsClient``: actions and pagination).
"""

from bridge.whmcs.client import WhmcsClient
from bridge.whmcs.errors import (
    WhmcsApiError,
    WhmcsAuthError,
    WhmcsConfigError,
    WhmcsError,
    WhmcsNotFound,
    WhmcsResponseError,
    WhmcsUnavailable,
)
from bridge.whmcs.models import (
    ClientDetails,
    ClientGroup,
    ClientSummary,
    Currency,
    Department,
    InvoiceDetails,
    InvoiceItem,
    InvoiceSummary,
    Product,
    Ticket,
    TicketDetails,
    TicketNote,
    TicketReply,
    Transaction,
)

__all__ = [
    "ClientDetails", "ClientGroup", "ClientSummary", "Currency", "Department", "InvoiceDetails",
    "InvoiceItem", "InvoiceSummary", "Product", "Ticket", "TicketDetails", "TicketNote",
    "TicketReply",
    "Transaction", "WhmcsApiError", "WhmcsAuthError", "WhmcsClient", "WhmcsConfigError",
    "WhmcsError", "WhmcsNotFound", "WhmcsResponseError", "WhmcsUnavailable",
]
