"""Handlers for the WHMCS hooks vipgate forwards, one module per hook family.

The modules are imported here, explicitly: importing ``hooks`` registers every handler and
checks that each hook in the spec has exactly one.
"""

from hooks import clients, cron, invoices, modules, panels, tickets
from hooks.registry import (
    HOOK_SPEC,
    PanelQuestion,
    Registry,
    RegistryError,
    Subjects,
    TicketGateQuestion,
)
from hooks.registry import registry as registry

registry.check_complete()

__all__ = ["HOOK_SPEC", "PanelQuestion", "Registry", "RegistryError", "Subjects",
           "TicketGateQuestion", "clients", "cron", "invoices", "modules", "panels", "registry",
           "tickets"]
