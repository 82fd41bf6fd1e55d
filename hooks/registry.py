"""The hook registry: which WHMCS hooks vipgate handles, and the handler for each.

Hook names form a declared spec (``HOOK_SPEC``). Registering a handler for a name outside the
spec, or a second handler for the same name, fails at import with a message naming both. A
handler receives only the ``vars`` it names as parameters and returns what must be reconciled.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar


@dataclass(frozen=True)
class HookSpec:
    name: str
    sync: bool
    doc: str


def _spec(*items: tuple[str, bool, str]) -> dict[str, HookSpec]:
    return {name: HookSpec(name, sync, doc) for name, sync, doc in items}


HOOK_SPEC: dict[str, HookSpec] = _spec(
    ("InvoiceCreated", False, "an invoice left Draft status"),
    ("InvoicePaid", False, "an invoice was paid in full"),
    ("InvoiceUnpaid", False, "an invoice was marked Unpaid"),
    ("InvoiceCancelled", False, "an invoice was cancelled"),
    ("InvoiceRefunded", False, "an invoice was refunded"),
    ("AddInvoicePayment", False, "a payment, maybe partial, was applied to an invoice"),
    ("AfterModuleSuspend", False, "a service was suspended"),
    ("AfterModuleUnsuspend", False, "a service was unsuspended"),
    ("ClientAdd", False, "a client was created"),
    ("ClientEdit", False, "a client was edited (client area, admin area or API)"),
    ("ClientClose", False, "a client was closed"),
    ("TicketOpen", False, "a client opened a ticket"),
    ("TicketOpenAdmin", False, "staff opened a ticket for a client"),
    ("TicketUserReply", False, "a client replied to a ticket"),
    ("TicketPriorityChange", False, "a ticket's priority changed"),
    ("TicketOpenValidation", True, "a client is about to open a ticket (answered at once)"),
    ("PreCronJob", False, "WHMCS's daily cron is about to run"),
    ("AfterCronJob", False, "WHMCS's cron finished a run (every few minutes)"),
    ("DailyCronJob", False, "WHMCS's daily cron finished"),
    ("AdminAreaClientSummaryPage", True, "staff opened a client's summary (answered at once)"),
    ("AdminAreaViewTicketPage", True, "staff opened a ticket (answered at once)"),
    ("ClientAreaPageSubmitTicket", True,
     "a client opened the submit-ticket page (answered at once)"),
    ("ClientAreaHomepage", True, "a client opened the client area home (answered at once)"),
)


@dataclass(frozen=True)
class Subjects:
    """What an event asks to be reconciled. Invoices and tickets are resolved to their client
    by the engine, which re-reads everything from WHMCS: events are hints, not truth."""

    clients: frozenset[int] = frozenset()
    invoices: frozenset[int] = frozenset()
    tickets: frozenset[int] = frozenset()
    everyone: bool = False
    # Tickets a client just opened (TicketOpen), as (ticket id, department opened in): the
    # engine checks whether one got round the ticket gate (e-mail piping never meets it).
    opened: frozenset[tuple[int, int]] = frozenset()
    # The admin (WHMCS username) behind the event, when WHMCS said: a staff change is his.
    staff: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.clients or self.invoices or self.tickets or self.everyone)


@dataclass(frozen=True)
class TicketGateQuestion:
    """Asked synchronously by TicketOpenValidation: may this client open a ticket here?

    ``language`` is the WHMCS language name the client reads the client area in, as the stub
    sends it (WHMCS does not pass one to this hook); None from a stub that does not."""

    client_id: int
    department_id: int
    by_admin: bool
    language: str | None = None


PanelKind = Literal["client_summary", "ticket_badge", "submit_ticket", "home_banner"]


@dataclass(frozen=True)
class PanelQuestion:
    """Asked synchronously by a WHMCS page hook: what should this page show of vipgate?

    ``client_id`` 0 means unknown (nobody logged in, a ticket from a guest); ``language`` is
    the WHMCS language name the page is shown in, when the stub knows it."""

    panel: PanelKind
    client_id: int
    ticket_id: int | None = None
    language: str | None = None
    # The client-area home posted the banner's trust unlock form: ``action`` "trust_unlock"
    # and the form's token (the stub takes the client from the session, never the form).
    action: str | None = None
    token: str | None = None


@dataclass(frozen=True)
class Handler:
    hook: str
    function: Callable[..., Any]
    params: tuple[str, ...] = field(default=())


class RegistryError(Exception):
    """A handler was registered for an unknown hook, or twice for one hook."""


F = TypeVar("F", bound=Callable[..., Any])


class Registry:
    def __init__(self, spec: Mapping[str, HookSpec]) -> None:
        self.spec = dict(spec)
        self.handlers: dict[str, Handler] = {}

    def on(self, *hooks: str) -> Callable[[F], F]:
        """Register the decorated function for ``hooks``; returns it unchanged."""

        def register(function: F) -> F:
            params = tuple(inspect.signature(function).parameters)
            for hook in hooks:
                if hook not in self.spec:
                    raise RegistryError(
                        f"{function.__module__}.{function.__qualname__} is registered for "
                        f"unknown hook {hook!r}; known hooks: {', '.join(self.spec)}")
                if hook in self.handlers:
                    old = self.handlers[hook].function
                    raise RegistryError(
                        f"hook {hook!r} has two handlers: {old.__module__}.{old.__qualname__}"
                        f" and {function.__module__}.{function.__qualname__}")
                self.handlers[hook] = Handler(hook, function, params)
            return function

        return register

    def check_complete(self) -> None:
        missing = [name for name in self.spec if name not in self.handlers]
        if missing:
            raise RegistryError("no handler for hook(s): " + ", ".join(missing))

    def dispatch(self, hook: str, variables: Mapping[str, Any]) -> Any:
        """Call the handler of ``hook`` with the vars it names (absent ones are None)."""
        handler = self.handlers[hook]
        return handler.function(**{p: variables.get(p) for p in handler.params})


registry = Registry(HOOK_SPEC)
on = registry.on
