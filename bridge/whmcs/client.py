"""WhmcsClient: the WHMCS API actions vipgate uses, typed, with pagination helpers.

Reads return the frozen dataclasses of ``bridge.whmcs.models``; writes return nothing and raise
on failure. ``read_client_state`` builds the pure policy's ``ClientState`` from the API.
A client holds one ``requests.Session``: use one per thread.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import requests

from bridge.model import TICKET_PRIORITIES
from bridge.policy import state
from bridge.settings import WhmcsSettings
from bridge.whmcs import parse as p
from bridge.whmcs.errors import WhmcsApiError, WhmcsResponseError
from bridge.whmcs.models import (
    ClientDetails,
    ClientGroup,
    ClientSummary,
    Currency,
    Department,
    InvoiceDetails,
    InvoiceSummary,
    Product,
    Ticket,
    TicketDetails,
    Transaction,
)
from bridge.whmcs.transport import ATTEMPTS, Transport

PAGE_SIZE = 250
MAX_PAGE_SIZE = 1000
ACTIVE_TICKETS = "All Active Tickets"  # GetTickets' filter for every status shown as active
CREATED_KEPT = 100_000  # clients whose datecreated one WhmcsClient keeps (see datecreated)
UNKNOWN_SETTING = "Invalid name for parameter setting"  # GetConfigurationValue, unknown name


class WhmcsClient:
    def __init__(self, settings: WhmcsSettings, *, session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 rng: Callable[[], float] = random.random, attempts: int = ATTEMPTS) -> None:
        self.transport = Transport(settings, session=session, sleep=sleep, rng=rng,
                                   attempts=attempts)
        self._created: dict[int, date] = {}  # client id → datecreated read from GetClients

    def __repr__(self) -> str:
        return f"WhmcsClient({self.transport.endpoint!r})"

    def __enter__(self) -> WhmcsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.transport.close()

    def call(self, action: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Any action; the decoded ``result=success`` object (values not coerced)."""
        return self.transport.call(action, params)

    # --- pagination -------------------------------------------------------------------------

    def paginate(self, action: str, container: str, item: str,
                 params: Mapping[str, Any] | None = None, *,
                 page_size: int = PAGE_SIZE, by_id: bool = False) -> Iterator[dict[str, Any]]:
        """Every raw row of a ``limitstart``/``limitnum`` list action, page by page.

        Stops at an empty page or a short one (fewer rows than a full page), never on
        ``totalresults``: WHMCS 8's GetClients computes it after the offset, so past the first
        page it is 0 or wrong (whmcs-reference §6). A full page is ``page_size`` rows, or
        fewer when the first page shows WHMCS serving fewer per page (its ``totalresults``,
        right on the first page, is larger than what came). Offsets shift when rows are added
        or deleted meanwhile: a row repeated from the previous page is skipped, and a missed
        row is caught by the next reconcile. A page of nothing but repeats means WHMCS
        ignores ``limitstart``: WhmcsResponseError rather than a loop without end.

        ``by_id``: the caller asked for ascending ids (``orderby=id``); a row that breaks that
        order means WHMCS ignored the order (GetClients before 8.2 orders by last name, with
        ties in no stable order between pages, so rows would be missed): WhmcsResponseError.
        """
        size = max(1, min(int(page_size), MAX_PAGE_SIZE))
        full, start, previous, highest = size, 0, set[str](), -1
        while True:
            data = self.call(action, {**(params or {}), "limitstart": start, "limitnum": size})
            found = p.container_rows(data.get(container), item, action)
            if not found:
                return
            keys = [_row_key(row, n + start) for n, row in enumerate(found)]
            fresh = [row for row, key in zip(found, keys, strict=True) if key not in previous]
            if not fresh:
                raise WhmcsResponseError(action, f"pagination does not advance at limitstart "
                                         f"{start}")
            if by_id:
                highest = _ascending(action, fresh, highest)
            if start == 0:
                total = p.count(data.get("totalresults"))
                if total is not None and len(found) < min(total, size):
                    full = len(found)  # WHMCS serves fewer rows a page than asked
            yield from fresh
            if len(found) < full:
                return
            start += len(found)
            previous = set(keys)

    def iter_clients(self, *, status: str | None = None, search: str | None = None,
                     page_size: int = PAGE_SIZE) -> Iterator[ClientSummary]:
        """GetClients by ascending id (``orderby``, WHMCS 8.2+; without it WHMCS orders by
        last name, unstable between pages). No group filter exists in WHMCS: filter on
        ``groupid`` here."""
        params = {"status": status, "search": search, "orderby": "id", "sorting": "ASC"}
        for row in self.paginate("GetClients", "clients", "client", params,
                                 page_size=page_size, by_id=True):
            yield p.load(p.ClientSummarySchema, row, "GetClients")

    def iter_invoices(self, *, status: str | None = None, userid: int | None = None,
                      page_size: int = PAGE_SIZE) -> Iterator[InvoiceSummary]:
        """GetInvoices by ascending id (``orderby``/``order``, WHMCS 7.7+; the default order,
        ``status DESC, duedate ASC``, has ties in no stable order between pages). ``status``
        may also be WHMCS's filter-only ``Overdue``."""
        params = {"status": status, "userid": userid, "orderby": "id", "order": "asc"}
        for row in self.paginate("GetInvoices", "invoices", "invoice", params,
                                 page_size=page_size, by_id=True):
            yield p.load(p.InvoiceSummarySchema, row, "GetInvoices")

    def iter_tickets(self, *, status: str | None = None, clientid: int | None = None,
                     deptid: int | None = None,
                     page_size: int = PAGE_SIZE) -> Iterator[Ticket]:
        """GetTickets in every department (``ignore_dept_assignments``: the API admin may not
        be assigned to all). ``status`` may be ``All Active Tickets`` or ``Awaiting Reply``.
        GetTickets takes no order parameter: WHMCS's own order is used."""
        params = {"status": status, "clientid": clientid, "deptid": deptid,
                  "ignore_dept_assignments": True}
        for row in self.paginate("GetTickets", "tickets", "ticket", params,
                                 page_size=page_size):
            yield p.load(p.TicketSchema, row, "GetTickets")

    def iter_products(self, *, clientid: int | None = None,
                      page_size: int = PAGE_SIZE) -> Iterator[Product]:
        """GetClientsProducts (no order parameter: WHMCS's own order is used)."""
        for row in self.paginate("GetClientsProducts", "products", "product",
                                 {"clientid": clientid}, page_size=page_size):
            yield p.load(p.ProductSchema, row, "GetClientsProducts")

    # --- single reads -----------------------------------------------------------------------

    def get_client(self, client_id: int) -> ClientDetails:
        return self._client_details(self.call("GetClientsDetails", {"clientid": client_id}))

    def get_client_with_stats(self, client_id: int) -> tuple[ClientDetails, ClientStats]:
        """GetClientsDetails with ``stats``: the client, and the counts that tell which other
        reads can be skipped (:class:`ClientStats`)."""
        data = self.call("GetClientsDetails", {"clientid": client_id, "stats": True})
        stats = data.get("stats")
        stats = stats if isinstance(stats, dict) else {}
        return self._client_details(data), ClientStats(
            active_tickets=p.count(stats.get("numactivetickets")),
            services=p.count(stats.get("productsnumtotal")),
            active_services=p.count(stats.get("productsnumactive")))

    @staticmethod
    def _client_details(data: dict[str, Any]) -> ClientDetails:
        client = data.get("client")
        # Older WHMCS put the fields at the top level only (still duplicated there).
        return p.load(p.ClientDetailsSchema, client if isinstance(client, dict) else data,
                      "GetClientsDetails")

    def get_configuration_value(self, setting: str) -> str | None:
        """A WHMCS system setting (tblconfiguration), e.g. ``AutoSuspensionDays``; None when
        WHMCS does not know it (it answers "Invalid name for parameter setting")."""
        try:
            value = self.call("GetConfigurationValue", {"setting": setting}).get("value")
        except WhmcsApiError as exc:
            if exc.message.lower().startswith(UNKNOWN_SETTING.lower()):
                return None
            raise
        return "" if value is None else str(value)

    def count_clients(self) -> int:
        """How many clients WHMCS has: GetClients' ``totalresults`` on the first page (from
        ``limitstart`` 0 it is right; past it WHMCS 8 answers 0 or a wrong number)."""
        data = self.call("GetClients", {"limitstart": 0, "limitnum": 1})
        return p.count(data.get("totalresults")) or 0

    def get_currencies(self) -> tuple[Currency, ...]:
        data = self.call("GetCurrencies")
        return tuple(p.load_rows(p.CurrencySchema, data.get("currencies"), "currency",
                                 "GetCurrencies"))

    def get_client_groups(self) -> tuple[ClientGroup, ...]:
        data = self.call("GetClientGroups")
        return tuple(p.load_rows(p.ClientGroupSchema, data.get("groups"), "group",
                                 "GetClientGroups"))

    def get_invoice(self, invoice_id: int) -> InvoiceDetails:
        return p.load(p.InvoiceDetailsSchema, self.call("GetInvoice", {"invoiceid": invoice_id}),
                      "GetInvoice")

    def client_transactions(self, client_id: int) -> tuple[Transaction, ...]:
        """GetTransactions of one client (the action has no pages: all of them at once)."""
        data = self.call("GetTransactions", {"clientid": client_id})
        return tuple(p.load_rows(p.TransactionSchema, data.get("transactions"), "transaction",
                                 "GetTransactions"))

    def get_service(self, service_id: int) -> Product | None:
        """One service (GetClientsProducts ``serviceid``); None when WHMCS has no such
        service."""
        data = self.call("GetClientsProducts", {"serviceid": service_id})
        for row in p.container_rows(data.get("products"), "product", "GetClientsProducts"):
            product = p.load(p.ProductSchema, row, "GetClientsProducts")
            if product.id == service_id:
                return product
        return None

    def get_ticket(self, ticket_id: int) -> TicketDetails:
        return p.load(p.TicketDetailsSchema, self.call("GetTicket", {"ticketid": ticket_id}),
                      "GetTicket")

    def get_support_departments(self) -> tuple[Department, ...]:
        data = self.call("GetSupportDepartments", {"ignore_dept_assignments": True})
        return tuple(p.load_rows(p.DepartmentSchema, data.get("departments"), "department",
                                 "GetSupportDepartments"))

    def find_client_summary(self, client: ClientDetails) -> ClientSummary | None:
        """The GetClients row of a client (it has ``datecreated``), found by e-mail prefix."""
        if not client.email:
            return None
        for row in self.iter_clients(search=client.email):
            if row.id == client.id:
                return row
        return None

    # --- the policy's view ------------------------------------------------------------------

    def policy_invoices(self, client_id: int, *,
                        known: Mapping[int, InvoiceDetails] | None = None
                        ) -> tuple[tuple[state.Invoice, ...], str, str]:
        """All invoices of a client for the policy, and the currency prefix/suffix seen.

        GetInvoices has no balance, so each owed invoice (Unpaid, Payment Pending, Collections;
        usually few) is read again with GetInvoice, whose ``balance`` counts partial payments.
        ``known``: GetInvoice answers the caller read just before (the worker's owner look-up
        of an invoice event), used instead of reading the invoice again when GetInvoices shows
        it in the same status.
        """
        invoices, prefix, suffix = [], "", ""
        for summary in self.iter_invoices(userid=client_id):
            prefix, suffix = prefix or summary.currency_prefix, suffix or summary.currency_suffix
            balance: Decimal | None = None
            if summary.status in state.OWED_STATUSES:
                read = (known or {}).get(summary.id)
                if read is None or read.status != summary.status:
                    read = self.get_invoice(summary.id)
                balance = read.balance
            invoices.append(summary.to_policy(balance))
        return tuple(invoices), prefix, suffix

    def policy_services(self, client_id: int) -> tuple[state.Service, ...]:
        return tuple(product.to_policy() for product in self.iter_products(clientid=client_id))

    def datecreated(self, details: ClientDetails) -> date:
        """When the client signed up. GetClientsDetails' documented answer lacks it
        (whmcs-reference §2.3), so it comes from the client's GetClients row, once: WHMCS's API
        cannot change it (UpdateClient takes no ``datecreated``), so it is kept for the
        client's id (up to :data:`CREATED_KEPT` clients, the oldest forgotten first)."""
        if details.datecreated is not None:
            return details.datecreated
        created = self._created.get(details.id)
        if created is None:
            summary = self.find_client_summary(details)
            if summary is None or summary.datecreated is None:
                raise WhmcsResponseError("GetClients",
                                         f"no datecreated for client {details.id}")
            created = summary.datecreated
            if len(self._created) >= CREATED_KEPT:
                del self._created[next(iter(self._created))]
            self._created[details.id] = created
        return created

    def read_client_state(self, client_id: int, *,
                          promise: state.Promise | None = None) -> state.ClientState:
        """One client's ``ClientState`` from the API (promise: vipgate's own memory)."""
        return self._client_state(self.get_client(client_id), promise=promise)

    def read_client(self, client_id: int, *, promise: state.Promise | None = None,
                    known: Mapping[int, InvoiceDetails] | None = None
                    ) -> tuple[state.ClientState, tuple[Ticket, ...]]:
        """One client's ``ClientState`` and active tickets, in as few calls as WHMCS allows:
        GetClientsDetails with its stats says when the client has no active ticket, and then
        GetTickets is not asked, and when every service it has is Active (or it has none),
        and then GetClientsProducts is not asked and the state holds no service: the policy
        looks only at suspended services (``bridge.policy.standing``). ``known``: see
        :meth:`policy_invoices`."""
        details, stats = self.get_client_with_stats(client_id)
        client = self._client_state(details, promise=promise, known=known,
                                    services=not stats.all_services_active)
        tickets: tuple[Ticket, ...] = ()
        if stats.active_tickets != 0:
            tickets = tuple(self.iter_tickets(clientid=client_id, status=ACTIVE_TICKETS))
        return client, tickets

    def _client_state(self, details: ClientDetails, *, promise: state.Promise | None,
                      known: Mapping[int, InvoiceDetails] | None = None,
                      services: bool = True) -> state.ClientState:
        created = self.datecreated(details)
        invoices, prefix, suffix = self.policy_invoices(details.id, known=known)
        return details.to_policy(
            datecreated=created, invoices=invoices,
            services=self.policy_services(details.id) if services else (),
            promise=promise, currency_prefix=details.currency_prefix or prefix,
            currency_suffix=details.currency_suffix or suffix)

    # --- writes -----------------------------------------------------------------------------

    def update_client_group(self, client_id: int, group_id: int) -> None:
        """UpdateClient ``groupid`` (0 = no group). WHMCS fires ClientEdit for it."""
        self.call("UpdateClient", {"clientid": client_id, "groupid": group_id})

    def set_suspend_override(self, service_id: int, until: date | None) -> None:
        """UpdateClientProduct: Override Auto-Suspend on until ``until`` (WHMCS's cron
        leaves the service alone until then), or off (``until`` None)."""
        if until is None:
            self.call("UpdateClientProduct", {"serviceid": service_id,
                                              "overideautosuspend": "off"})
        else:
            self.call("UpdateClientProduct", {"serviceid": service_id,
                                              "overideautosuspend": "on",
                                              "overidesuspenduntil": until.isoformat()})

    def unsuspend_service(self, service_id: int) -> None:
        """ModuleUnsuspend: the service's module reactivates it (WHMCS fires
        AfterModuleUnsuspend)."""
        self.call("ModuleUnsuspend", {"serviceid": service_id})

    def update_ticket_priority(self, ticket_id: int, priority: str) -> None:
        if priority not in TICKET_PRIORITIES:
            raise ValueError(f"priority must be one of {', '.join(TICKET_PRIORITIES)}")
        self.call("UpdateTicket", {"ticketid": ticket_id, "priority": priority})

    def move_ticket(self, ticket_id: int, department_id: int) -> None:
        """UpdateTicket ``deptid``: the ticket moves to another department."""
        self.call("UpdateTicket", {"ticketid": ticket_id, "deptid": department_id})

    def add_ticket_note(self, ticket_id: int, message: str, *, markdown: bool = False) -> None:
        """A staff-only note. Not idempotent: after ``WhmcsUnavailable(maybe_applied=True)``
        look at ``get_ticket(...).notes`` before adding it again."""
        self.call("AddTicketNote", {"ticketid": ticket_id, "message": message,
                                    "markdown": markdown or None})

    def add_ticket_reply(self, ticket_id: int, message: str, *,
                         adminusername: str | None = None, status: str | None = None,
                         noemail: bool = False, markdown: bool = False) -> None:
        """A reply the client sees (and is e-mailed unless ``noemail``). Not idempotent."""
        self.call("AddTicketReply", {"ticketid": ticket_id, "message": message,
                                     "adminusername": adminusername, "status": status,
                                     "noemail": noemail or None, "markdown": markdown or None})


@dataclass(frozen=True)
class ClientStats:
    """What GetClientsDetails' ``stats`` tells about the client's other reads: how many active
    tickets (``numactivetickets``: statuses shown as active, as GetTickets' "All Active
    Tickets"), services (``productsnumtotal``) and Active services (``productsnumactive``) it
    has; None when WHMCS did not say (then the read is made)."""

    active_tickets: int | None
    services: int | None
    active_services: int | None = None

    @property
    def all_services_active(self) -> bool:
        """No service, or every one Active: none suspended (False when WHMCS did not say)."""
        return self.services == 0 or (self.services is not None
                                      and self.active_services == self.services)


def _ascending(action: str, rows: list[Any], highest: int) -> int:
    """The highest id after ``rows``, which must each be above the one before."""
    for row in rows:
        value = row.get("id") if isinstance(row, dict) else None
        number = p.count(value)
        if number is None or number <= highest:
            raise WhmcsResponseError(action, "rows are not in ascending id order: WHMCS "
                                     "ignored orderby=id (GetClients needs WHMCS 8.2 or later)")
        highest = number
    return highest


def _row_key(row: Any, position: int) -> str:
    if isinstance(row, dict) and isinstance(row.get("id"), str | int):
        return str(row["id"]).strip()
    return f"#{position}"
