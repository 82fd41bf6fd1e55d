"""The sandbox WHMCS: WHMCS's state (its own tables) and behaviour, in Python.

    sandbox = Sandbox("sqlite:///whmcs.db", fire=forwarder.fire,
                      clock=SandboxClock(datetime(2026, 11, 21, 9, 0)))
    vip = sandbox.add_group("VIP", susptermexempt=True)
    client = sandbox.add_client("Ana", "Souza", groupid=vip)
    service = sandbox.add_service(client, "2026-11-10", "Monthly", "89.90")
    invoice = sandbox.add_invoice(client, "2026-11-10", [("Hosting", service, "Plan", "89.90")])
    sandbox.run_cron()                      # PreCronJob … suspensions … AfterCronJob
    sandbox.add_payment(invoice, "50.00")   # partial: AddInvoicePayment only
    sandbox.add_payment(invoice)            # the rest: Paid, service renewed, InvoicePaid

Every WHMCS action fires the hooks WHMCS fires, through ``fire(hook, vars) -> returns`` (the
forwarder: the real PHP stub or its Python emulation), after its change is committed. The
HTTP API over this object is :func:`bridge.sandbox.api.create_sandbox_app`.

Public API (see each method):
- time: ``now``, ``today``, ``advance(days=...)``, ``clock``
- settings: ``setting(name)``, ``setting_on(name)``, ``configure(Name=value, ...)``,
  ``allow_api_ips(*ips)``, ``accesskey``, ``update_ticket_fires_hooks``
- seeding: ``add_currency``, ``add_group``, ``add_client``, ``add_product``, ``add_server``,
  ``add_service``, ``add_invoice``, ``add_department``, ``add_api_credential``, ``quiet()``
- clients: ``client``, ``group``, ``update_client`` (ClientEdit)
- services: ``service``, ``update_service`` (UpdateClientProduct), ``suspend_service`` /
  ``unsuspend_service`` (AfterModuleSuspend / AfterModuleUnsuspend)
- billing: ``invoice``, ``balance``, ``create_invoice``, ``add_payment`` (AddInvoicePayment,
  InvoicePaid, AfterModuleUnsuspend), ``update_invoice`` / ``set_invoice_status``
  (InvoiceCancelled / InvoiceUnpaid / InvoiceRefunded)
- tickets: ``ticket``, ``open_ticket`` (TicketOpenValidation, TicketOpen), ``client_reply``
  (TicketUserReply), ``admin_reply``, ``add_ticket_note``, ``update_ticket``
  (TicketPriorityChange, ...)
- cron: ``run_cron()`` → :class:`CronSummary`
- observing: ``fired`` / ``hooks(name)``, ``activity(userid)``, ``api_log``, ``faults``
"""

from __future__ import annotations

from bridge.sandbox.clock import SandboxClock
from bridge.sandbox.core import FiredHook, WhmcsError
from bridge.sandbox.cron import CronMixin, CronSummary
from bridge.sandbox.tickets import TicketOpenResult, TicketsMixin

__all__ = ["CronSummary", "FiredHook", "Sandbox", "SandboxClock", "TicketOpenResult",
           "WhmcsError"]


class Sandbox(CronMixin, TicketsMixin):
    """WHMCS in a box; see the module docstring."""
