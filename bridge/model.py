"""Plain data shared by the pure layers (policy, hooks) and the I/O layers (store, web)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True)
class OverdueInvoice:
    invoice_id: int
    number: str  # WHMCS invoicenum, or the id when numbering is off
    balance: Decimal
    due_date: str  # YYYY-MM-DD


@dataclass(frozen=True)
class CachedStanding:
    """The last standing vipgate computed for a client, kept for synchronous answers."""

    client_id: int
    standing: str  # current | overdue | suspended
    overdue_days: int
    overdue_total: Decimal
    invoices: tuple[OverdueInvoice, ...]
    currency_prefix: str
    currency_suffix: str
    language: str | None
    updated_at: datetime
