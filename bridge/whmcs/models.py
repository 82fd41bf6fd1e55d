"""What the WHMCS client returns: frozen dataclasses with WHMCS's quirks already coerced.

Ids are ``int``, money is ``Decimal``, WHMCS's ``0000-00-00`` dates are ``None``, ``"on"``/``""``
flags are ``bool``. Field names follow the WHMCS API so they can be looked up in its docs.
``to_policy()`` converts to the pure policy's input types (``bridge.policy.state``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from bridge.model import client_name
from bridge.policy import state
from bridge.whmcs.errors import WhmcsResponseError


@dataclass(frozen=True)
class ClientSummary:
    """One row of GetClients."""

    id: int
    firstname: str
    lastname: str
    companyname: str
    email: str
    datecreated: date | None
    groupid: int  # 0 = no group
    status: str  # Active, Inactive, Closed


@dataclass(frozen=True)
class ClientDetails:
    """GetClientsDetails ``client``. ``datecreated`` and the currency prefix/suffix are not
    in WHMCS's documented example: ``None``/``""`` when absent."""

    id: int
    firstname: str
    lastname: str
    companyname: str
    email: str
    groupid: int
    status: str
    language: str | None  # None = system default
    currency_id: int
    currency_code: str
    currency_prefix: str
    currency_suffix: str
    credit: Decimal
    datecreated: date | None

    def to_policy(self, *, datecreated: date, invoices: tuple[state.Invoice, ...],
                  services: tuple[state.Service, ...],
                  promise: state.Promise | None = None, currency_prefix: str | None = None,
                  currency_suffix: str | None = None) -> state.ClientState:
        return state.ClientState(
            id=self.id, status=self.status, group_id=self.groupid, datecreated=datecreated,
            currency_prefix=self.currency_prefix if currency_prefix is None else currency_prefix,
            currency_suffix=self.currency_suffix if currency_suffix is None else currency_suffix,
            language=self.language, invoices=invoices, services=services, promise=promise,
            name=client_name(self.firstname, self.lastname, self.companyname))


@dataclass(frozen=True)
class Currency:
    """One row of GetCurrencies (WHMCS does not say which is the default)."""

    id: int
    code: str
    prefix: str
    suffix: str
    rate: Decimal


@dataclass(frozen=True)
class ClientGroup:
    id: int
    name: str
    susptermexempt: bool  # exempt from automatic suspension and termination


@dataclass(frozen=True)
class _InvoiceBase:
    """What GetInvoices rows and GetInvoice share."""

    id: int
    invoicenum: str
    userid: int
    status: str
    # dt.date: inside the class body, ``date`` names the field above.
    date: dt.date | None
    duedate: dt.date | None
    datepaid: dt.date | None
    subtotal: Decimal
    credit: Decimal
    tax: Decimal
    tax2: Decimal
    total: Decimal

    @property
    def number(self) -> str:
        return self.invoicenum or str(self.id)


@dataclass(frozen=True)
class InvoiceSummary(_InvoiceBase):
    """One row of GetInvoices. It has no ``balance``: see :meth:`to_policy`."""

    paymentmethod: str
    currency_code: str
    currency_prefix: str
    currency_suffix: str
    date_cancelled: dt.date | None = None  # None for WHMCS's 0000-00-00
    updated_at: dt.date | None = None

    def to_policy(self, balance: Decimal | None = None) -> state.Invoice:
        """The policy's invoice. ``total - credit`` is not the balance once partial payments
        exist, and GetInvoices does not return payments, so for an owed status (Unpaid,
        Payment Pending, Collections) the balance must come from GetInvoice; for other
        statuses nothing is collectable and the balance is 0."""
        if balance is None:
            if self.status in state.OWED_STATUSES:
                raise ValueError(f"invoice {self.id} is {self.status}: pass its balance "
                                 "from get_invoice(), GetInvoices has none")
            balance = Decimal(0)
        return _policy_invoice(self.id, self.number, self.status, self.date, self.duedate,
                               self.total, balance, self.datepaid)


@dataclass(frozen=True)
class InvoiceItem:
    id: int
    type: str
    relid: int
    description: str
    amount: Decimal


@dataclass(frozen=True)
class Transaction:
    id: int
    date: date | None
    gateway: str
    transid: str
    amountin: Decimal
    amountout: Decimal
    invoiceid: int = 0  # 0: not applied to an invoice
    userid: int = 0


@dataclass(frozen=True)
class InvoiceDetails(_InvoiceBase):
    """GetInvoice: has ``balance`` (what is left to pay, partial payments subtracted)."""

    balance: Decimal
    paymentmethod: str
    items: tuple[InvoiceItem, ...]
    transactions: tuple[Transaction, ...]

    def to_policy(self) -> state.Invoice:
        return _policy_invoice(self.id, self.number, self.status, self.date, self.duedate,
                               self.total, self.balance, self.datepaid)


def _policy_invoice(invoice_id: int, number: str, status: str, created: date | None,
                    due: date | None, total: Decimal, balance: Decimal,
                    paid: date | None) -> state.Invoice:
    # A zero due date would be a broken row; the invoice date is the closest truth.
    due = due or created
    created = created or due
    if created is None or due is None:
        raise WhmcsResponseError("GetInvoices", f"invoice {invoice_id} has neither date "
                                 "nor due date")
    return state.Invoice(id=invoice_id, number=number, status=status, date=created,
                         duedate=due, total=total, balance=balance, datepaid=paid)


@dataclass(frozen=True)
class Product:
    """One row of GetClientsProducts (a service, ``tblhosting``)."""

    id: int
    clientid: int
    pid: int
    name: str
    domain: str
    status: str  # Pending, Active, Suspended, Terminated, Cancelled, Fraud, Completed
    billingcycle: str
    regdate: date | None
    nextduedate: date | None
    suspensionreason: str
    overideautosuspend: bool  # WHMCS's spelling
    overidesuspenduntil: date | None

    def to_policy(self) -> state.Service:
        return state.Service(id=self.id, status=self.status,
                             suspendreason=self.suspensionreason, nextduedate=self.nextduedate)


@dataclass(frozen=True)
class Ticket:
    """One row of GetTickets (``priority`` is ``tbltickets.urgency``)."""

    id: int
    tid: str  # the public ticket mask
    userid: int  # 0 = not a client (guest e-mail)
    deptid: int
    status: str
    priority: str  # Low, Medium, High
    subject: str
    date: datetime | None
    lastreply: datetime | None


@dataclass(frozen=True)
class TicketNote:
    id: int
    date: datetime | None
    message: str
    admin: str


@dataclass(frozen=True)
class TicketReply:
    """One entry of GetTicket's ``replies``: the opening message (id 0) and each reply;
    ``admin`` is the staff member's name, empty for the client's own."""

    id: int
    date: datetime | None
    admin: str


@dataclass(frozen=True)
class TicketDetails(Ticket):
    """GetTicket: a ticket with its department name, staff notes and replies (who and when,
    not the text)."""

    deptname: str = ""
    notes: tuple[TicketNote, ...] = ()
    replies: tuple[TicketReply, ...] = ()

    @property
    def staff_replied(self) -> bool:
        return any(r.admin.strip() for r in self.replies if r.id)


@dataclass(frozen=True)
class Department:
    id: int
    name: str
    awaitingreply: int
    opentickets: int
