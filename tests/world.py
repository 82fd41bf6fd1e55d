"""A whole installation for engine tests: the sandbox WHMCS served over HTTP, the bridge served
over HTTP with its engine, hooks forwarded by the stub (Python emulation by default, the real
PHP stub with ``php=True``), and a worker driven one step at a time.

The business clock is the sandbox's (fixed, moved by ``advance``); signatures and the inbox use
the wall clock, as the stub signs with it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.serving import make_server

from bridge import first_run
from bridge.engine.reconcile import Engine
from bridge.runtime import runtime
from bridge.sandbox.forwarder import Forwarder, PhpForwarder, PythonForwarder
from bridge.sandbox.serve import RunningSandbox, start_sandbox
from bridge.sandbox.whmcs import Sandbox, SandboxClock
from bridge.settings import Settings, default_settings
from bridge.store import Store
from bridge.web.app import create_app
from bridge.whmcs import WhmcsClient
from bridge.whmcs.stub_install import install_stub
from bridge.worker import Outcome, Worker
from tests.helpers import SECRET

API_ID = "vipgate-engine"
API_SECRET = "engine-api-secret"
START = datetime(2026, 11, 2, 9, 0)  # a Monday


def wall() -> datetime:
    return datetime.now(UTC)


@dataclass
class World:
    sandbox: Sandbox
    whmcs: RunningSandbox
    settings: Settings
    store: Store
    engine: Engine
    worker: Worker
    bridge_url: str
    forwarder: Forwarder
    vip: int
    regular: int
    support: int
    billing: int
    stop: list[Callable[[], None]] = field(default_factory=list)
    whmcs_database_url: str = ""  # the sandbox's tables (what a WHMCS database reader reads)
    app: Flask | None = None  # the bridge's app (its admin page: world.app.test_client())

    def drain(self) -> list[Outcome]:
        """Process every due inbox event (the bridge's own echoes included)."""
        return self.worker.drain()

    def group(self, client_id: int) -> int:
        row = self.sandbox.client(client_id)
        assert row is not None
        return int(row["groupid"])

    def priority(self, ticket_id: int) -> str:
        row = self.sandbox.ticket(ticket_id)
        assert row is not None
        return str(row["urgency"])

    def api(self) -> WhmcsClient:
        return WhmcsClient(self.settings.whmcs)


def _settings(database_url: str, whmcs_url: str, vip: int, regular: int, billing: int,
              **sections: dict[str, Any]) -> Settings:
    base = {
        "bridge": {"database_url": database_url, "language": "en"},
        "webhook": {"secrets": SECRET},
        "whmcs": {"url": whmcs_url, "identifier": API_ID, "secret": API_SECRET,
                  "timeout_seconds": 5},
        "policy": {"vip_group_id": vip, "default_group_id": regular, "grace_days": 3,
                   "min_tenure_months": 0, "late_tolerance_days": 5},
        "tickets": {"billing_departments": str(billing)},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return default_settings().replace(**base)


@contextmanager
def make_world(database_url: str, tmp: Path, *, php: bool = False,
               whmcs_database_url: str | None = None, first_run_confirmed: bool = True,
               **sections: dict[str, Any]) -> Iterator[World]:
    """A sandbox WHMCS and a bridge; by default an installation past its first full reconcile
    (``first_run_confirmed=False``: a new one, whose cron full reconciles only plan)."""
    holder: dict[str, Forwarder] = {}
    whmcs_database_url = whmcs_database_url or f"sqlite:///{tmp}/whmcs.db"
    sandbox = Sandbox(whmcs_database_url, clock=SandboxClock(START), seed=11,
                      fire=lambda hook, variables: holder["f"].fire(hook, variables)
                      if "f" in holder else [])
    sandbox.add_api_credential(API_ID, API_SECRET)
    with sandbox.quiet():
        vip = sandbox.add_group("VIP", susptermexempt=True)
        regular = sandbox.add_group("Clientes")
        support = sandbox.add_department("Suporte")
        billing = sandbox.add_department("Financeiro")
    served = start_sandbox(sandbox)
    settings = _settings(database_url, served.url, vip, regular, billing, **sections)
    store = Store(database_url)
    store.upgrade()
    if first_run_confirmed:
        first_run.confirm(store, by="tests", at=wall())
    app = create_app(settings, store=store, clock=wall,
                     business_clock=lambda: sandbox.clock.aware)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    bridge_url = f"http://127.0.0.1:{server.server_port}"
    with app.app_context():
        engine = runtime().engine
    assert engine is not None
    # The stub keeps its spool in WHMCS's own database and reads tbltickets there, as in a
    # real WHMCS; a sandbox on MariaDB gets a spool file of its own.
    whmcs_file = whmcs_database_url.removeprefix("sqlite:///")
    spool = Path(whmcs_file) if whmcs_file != whmcs_database_url else tmp / "spool.db"
    if php:
        (tmp / "whmcs" / "includes" / "hooks").mkdir(parents=True)
        hooks_dir = install_stub(tmp / "whmcs", bridge_url, SECRET)[0].parent
        holder["f"] = PhpForwarder(hooks_dir, spool, tmp / "module-log.jsonl")
    else:
        holder["f"] = PythonForwarder(f"{bridge_url}/hooks/whmcs", SECRET, spool)
    world = World(sandbox, served, settings, store, engine,
                  Worker(engine, clock=wall, name="test-worker"), bridge_url, holder["f"],
                  vip, regular, support, billing, whmcs_database_url=whmcs_database_url,
                  app=app)
    try:
        yield world
    finally:
        server.shutdown()
        thread.join(timeout=5)
        served.stop()
        store.dispose()
        sandbox.dispose()
