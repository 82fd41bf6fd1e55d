"""The engine: from an inbox event to WHMCS matching policy.

``plan`` (pure: one client's state and vipgate's memory → the changes), ``reconcile``
(``Engine``: read from WHMCS, plan, apply only the diffs, record), ``liveness`` (the worker's
heartbeat, and its pause while WHMCS is down). The worker that claims inbox rows and runs the
engine and the periodic resync over them is :mod:`bridge.worker`, above this package and
:mod:`bridge.resync` (which reads in bulk and plans with the engine).
"""

from bridge.engine.plan import Change, ClientPlan, OpenTicket, plan_client
from bridge.engine.reconcile import ClientResult, Engine, ReconcileError

__all__ = ["Change", "ClientPlan", "ClientResult", "Engine", "OpenTicket",
           "ReconcileError", "plan_client"]
