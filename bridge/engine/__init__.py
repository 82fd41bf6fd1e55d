"""The engine: from an inbox event to WHMCS matching policy.

``plan`` (pure: one client's state and vipgate's memory → the changes), ``reconcile``
(``Engine``: read from WHMCS, plan, apply only the diffs, record), ``worker`` (claims inbox rows
and reconciles their subjects, one client at a time, with retries and dead letters),
``liveness`` (the worker's heartbeat, and its pause while WHMCS is down).
"""

from bridge.engine.plan import Change, ClientPlan, OpenTicket, plan_client
from bridge.engine.reconcile import ClientResult, Engine, ReconcileError

__all__ = ["Change", "ClientPlan", "ClientResult", "Engine", "OpenTicket",
           "ReconcileError", "plan_client"]
