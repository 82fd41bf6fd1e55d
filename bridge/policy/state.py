"""What the policy reads: one client's WHMCS state (after type coercion) and vipgate's memory.

The readers (WHMCS API client, read-only WHMCS DB reader) build these; the policy only reads
them. Dates are calendar days in the WHMCS time zone; money is ``Decimal`` in the client's
currency (vipgate never converts currencies).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

# Invoice statuses (tblinvoices.status) under which money is still owed. Collections is unpaid
# debt handed over for collection (WHMCS counts it in GetClientsDetails'
# ``collectionsinvoicesamount``); the readers read its balance like the others', and the
# policy counts it unless ``[policy] collections_owed`` is off (see ``counts_as_owed``).
OWED_STATUSES = frozenset({"Unpaid", "Payment Pending", "Collections"})
PAYMENT_PENDING = "Payment Pending"
COLLECTIONS = "Collections"
PAID = "Paid"
SUSPENDED = "Suspended"  # tblhosting.domainstatus
ACTIVE = "Active"  # tblclients.status


@dataclass(frozen=True)
class Invoice:
    id: int
    number: str  # invoicenum, or the id as text when sequential numbering is off
    status: str  # Draft, Unpaid, Paid, Cancelled, Refunded, Collections, Payment Pending
    # dt.date: inside the class body, ``date`` names the field above.
    date: dt.date
    duedate: dt.date
    total: Decimal
    balance: Decimal  # what remains unpaid; partial payments already subtracted
    datepaid: dt.date | None  # None for WHMCS's 0000-00-00

    @property
    def owed(self) -> bool:
        return self.status in OWED_STATUSES and self.balance > 0

    def counts_as_owed(self, collections_owed: bool) -> bool:
        """Owed, and counted by the policy: a Collections invoice only when
        ``collections_owed`` (``[policy] collections_owed``) is on."""
        return self.owed and (collections_owed or self.status != COLLECTIONS)


@dataclass(frozen=True)
class Service:
    id: int
    status: str  # Pending, Active, Suspended, Terminated, Cancelled, Fraud, Completed
    suspendreason: str
    nextduedate: date | None


@dataclass(frozen=True)
class Promise:
    """A promise to pay registered by staff; it counts until ``until`` (inclusive)."""

    until: date
    note: str


@dataclass(frozen=True)
class ClientState:
    id: int
    status: str  # Active, Inactive, Closed
    group_id: int  # 0 = no group
    datecreated: date
    currency_prefix: str
    currency_suffix: str
    language: str | None  # WHMCS language name ("portuguese-br"), None = system default
    invoices: tuple[Invoice, ...]
    services: tuple[Service, ...]
    promise: Promise | None
    # Total of the invoices paid within the look-back window (``add_months(today,
    # -lookback_months) <= datepaid <= today``) when a bulk reader summed it in SQL; then
    # ``invoices`` needs to hold only the owed ones and the ones paid late in the window.
    # None: the policy sums ``invoices``.
    paid_in_window: Decimal | None = None
    # The client's name as WHMCS has it (``bridge.model.client_name``), for the standing
    # cache: the admin page shows it; no decision looks at it. None: the reader had none.
    name: str | None = None


@dataclass(frozen=True)
class Membership:
    """vipgate's own memory of a client.

    ``pinned``: in VIP whatever the eligibility rules say (staff put them there, or adoption).
    ``excluded``: on the exclusion list, never in VIP. ``home_group_id``: the group the client
    had before vipgate moved it into VIP (None = unknown, use ``default_group_id``).
    ``held_since``: staff put the client into VIP while it owed; that decision is respected, not
    fought: the client stays in VIP until it is paid up, then the normal rules apply;
    ``held_by`` names the admin when WHMCS said who.
    """

    pinned: bool = False
    excluded: bool = False
    home_group_id: int | None = None
    held_since: datetime | None = None
    held_by: str | None = None
