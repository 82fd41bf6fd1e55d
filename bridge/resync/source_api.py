"""The WHMCS API source: bulk paginated list calls, never a loop over clients.

A full scan reads every page of GetClients, GetInvoices (all statuses, by id),
GetClientsProducts and GetTickets (``All Active Tickets``), 1000 rows a page, keeps what the
policy needs (owed invoices past due, payments in the look-back window summed per client, the
late ones, Suspended services, active tickets of clients), and hands out the clients in id
order. GetInvoices has no balance, so each owed invoice past its due date (the only ones
whose balance the policy reads) is read again with GetInvoice, ``concurrency`` at a time.

What the bulk lists do not show: the client's language (the standing cache keeps the one it
had) and the currency of a client without any invoice (WHMCS's default currency is assumed:
the one with rate 1, as GetCurrencies does not mark the default).

Reading some clients only (``client_ids``) uses the per-client calls the engine uses for an
event (GetClientsDetails, GetInvoices, GetClientsProducts, GetTickets by client).

Unlike the database source this one holds the kept rows of every client in memory until the
lists are read (small: a few numbers per client); the database source streams.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from bridge.engine.plan import OpenTicket
from bridge.engine.reconcile import ACTIVE_TICKETS, read_client
from bridge.model import client_name
from bridge.policy.state import OWED_STATUSES, PAID, SUSPENDED, ClientState, Invoice
from bridge.resync.snapshot import ClientSnapshot, Window
from bridge.whmcs import WhmcsClient, WhmcsNotFound
from bridge.whmcs.client import MAX_PAGE_SIZE
from bridge.whmcs.models import InvoiceSummary


class WhmcsApiReader:
    name = "api"

    def __init__(self, whmcs: Callable[[], WhmcsClient], *, concurrency: int = 4,
                 page_size: int = MAX_PAGE_SIZE) -> None:
        self._make = whmcs
        self._local = threading.local()
        self.concurrency = concurrency
        self.page_size = page_size

    def client(self) -> WhmcsClient:
        found = getattr(self._local, "whmcs", None)
        if found is None:
            found = self._local.whmcs = self._make()
        return found

    def dispose(self) -> None:
        pass

    def count(self, client_ids: Sequence[int] | None = None) -> int:
        """How many clients a scan will hand out (GetClients' ``totalresults``)."""
        if client_ids is not None:
            return len(set(client_ids))
        return self.client().count_clients()

    def invoices(self, invoice_ids: Sequence[int]) -> tuple[Invoice, ...]:
        """Some invoices, one GetInvoice each (its ``balance`` counts partial payments)."""
        found = []
        for invoice_id in invoice_ids:
            try:
                found.append(self.client().get_invoice(invoice_id).to_policy())
            except WhmcsNotFound:
                continue
        return tuple(found)

    def scan(self, window: Window, client_ids: Iterable[int] | None = None
             ) -> Iterator[ClientSnapshot]:
        if client_ids is not None:
            yield from self._some(sorted(set(client_ids)))
            return
        yield from self._everyone(window)

    # --- some clients: the engine's per-client reads ------------------------------------------

    def _some(self, ids: list[int]) -> Iterator[ClientSnapshot]:
        whmcs = self.client()
        for client_id in ids:
            found = read_client(whmcs, client_id)
            if found is not None:
                yield ClientSnapshot(*found)

    # --- everyone: bulk lists -------------------------------------------------------------------

    def _everyone(self, window: Window) -> Iterator[ClientSnapshot]:
        whmcs, size = self.client(), self.page_size
        default = _default_currency(whmcs)
        clients = sorted(whmcs.iter_clients(page_size=size), key=lambda c: c.id)
        spent: dict[int, Decimal] = defaultdict(Decimal)
        currency: dict[int, tuple[str, str]] = {}
        kept: dict[int, list[InvoiceSummary]] = defaultdict(list)
        owed: list[InvoiceSummary] = []
        for inv in whmcs.iter_invoices(page_size=size):
            money = (inv.currency_prefix, inv.currency_suffix)
            if money != default and inv.userid not in currency:
                currency[inv.userid] = money
            due = inv.duedate or inv.date
            if inv.status in OWED_STATUSES and (due is None or due < window.today):
                owed.append(inv)
            elif inv.status == PAID and inv.datepaid is not None \
                    and window.start <= inv.datepaid <= window.today:
                spent[inv.userid] += inv.total
                if due is not None and (inv.datepaid - due).days > window.late_tolerance_days:
                    kept[inv.userid].append(inv)
        balances = self._balances([inv.id for inv in owed])
        policy_invoices: dict[int, list[Invoice]] = defaultdict(list)
        for inv in owed:
            if inv.id in balances and (inv.date or inv.duedate):
                policy_invoices[inv.userid].append(inv.to_policy(balances[inv.id]))
        for userid, rows in kept.items():
            policy_invoices[userid].extend(inv.to_policy() for inv in rows)
        services = defaultdict(list)
        for product in whmcs.iter_products(page_size=size):
            if product.status == SUSPENDED:
                services[product.clientid].append(product.to_policy())
        tickets: dict[int, dict[int, OpenTicket]] = defaultdict(dict)
        for ticket in whmcs.iter_tickets(status=ACTIVE_TICKETS, page_size=size):
            if ticket.userid > 0:
                tickets[ticket.userid][ticket.id] = OpenTicket(ticket.id, ticket.deptid,
                                                               ticket.priority, ticket.status)
        for summary in clients:
            if summary.datecreated is None:
                continue  # not judgeable (WHMCS always sets it)
            prefix, suffix = currency.get(summary.id, default)
            state = ClientState(
                id=summary.id, status=summary.status, group_id=summary.groupid,
                datecreated=summary.datecreated, currency_prefix=prefix,
                currency_suffix=suffix, language=None,
                invoices=tuple(sorted(policy_invoices.get(summary.id, ()), key=lambda i: i.id)),
                services=tuple(sorted(services.get(summary.id, ()), key=lambda s: s.id)),
                promise=None, paid_in_window=spent.get(summary.id, Decimal(0)),
                name=client_name(summary.firstname, summary.lastname, summary.companyname))
            found = tickets.get(summary.id, {})
            yield ClientSnapshot(state, tuple(found[t] for t in sorted(found)),
                                 language_known=False)

    def _balances(self, invoice_ids: list[int]) -> dict[int, Decimal]:
        """GetInvoice's ``balance`` of each invoice (one deleted meanwhile is left out)."""
        def one(invoice_id: int) -> tuple[int, Decimal | None]:
            try:
                return invoice_id, self.client().get_invoice(invoice_id).balance
            except WhmcsNotFound:
                return invoice_id, None

        if self.concurrency <= 1 or len(invoice_ids) <= 1:
            found = map(one, invoice_ids)
            return {i: b for i, b in found if b is not None}
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="vipgate-read") as pool:
            return {i: b for i, b in pool.map(one, invoice_ids) if b is not None}


def _default_currency(whmcs: WhmcsClient) -> tuple[str, str]:
    found = whmcs.get_currencies()
    if not found:
        return ("", "")
    base = next((c for c in found if c.rate == 1), found[0])
    return (base.prefix, base.suffix)
