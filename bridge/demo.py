"""``vipgate demo``: the ingestion path end to end, on embedded defaults.

A bridge on SQLite in a throw-away folder, the PHP stub installed into a throw-away WHMCS
folder, hook events fired through it (the real stub when ``php`` is installed), the bridge
stopped so that events wait in WHMCS's spool table, restarted so that the next cron run
flushes them, and a forged request refused.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from werkzeug.serving import BaseWSGIServer, make_server

from bridge import create_app
from bridge.runtime import open_store, webhook_secrets
from bridge.sandbox.forwarder import Forwarder, PhpForwarder, PythonForwarder, php_available
from bridge.settings import default_settings
from bridge.signing import signed_headers
from bridge.store import Store
from bridge.stub_install import install_stub


@dataclass
class Bridge:
    """The bridge served on loopback in a thread, restartable on the same port."""

    app: Any
    port: int = 0
    server: BaseWSGIServer | None = None

    def start(self) -> str:
        self.server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def _stored(store: Store, since: int) -> list[str]:
    lines = []
    for row in store.events()[since:]:
        lines.append(f"    inbox #{row.id} {row.hook} {row.vars} ({row.state})")
    return lines


def run_demo(*, port: int = 0, wait: Callable[[], None] | None = None,
             out: Callable[[str], None] = print) -> int:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    workdir = Path(tempfile.mkdtemp(prefix="vipgate-demo-"))
    settings = default_settings().replace(
        bridge={"database_url": f"sqlite:///{workdir}/vipgate.db"})
    store = open_store(settings)
    secret = webhook_secrets(settings, store)[0]
    bridge = Bridge(create_app(settings, store=store), port)
    url = bridge.start()
    (workdir / "whmcs" / "includes" / "hooks").mkdir(parents=True)
    hooks_dir = install_stub(workdir / "whmcs", url, secret)[0].parent
    spool_db = workdir / "whmcs.db"
    forwarder: Forwarder
    if php_available():
        forwarder = PhpForwarder(hooks_dir, spool_db, workdir / "module-log.jsonl")
        how = "the real PHP stub, run by php"
    else:
        forwarder = PythonForwarder(f"{url}/hooks/whmcs", secret, spool_db)
        how = ("a Python emulation of the stub (install php-cli php-curl php-sqlite3 for the "
               "real one)")
    out(f"vipgate demo: bridge at {url}, store {workdir}/vipgate.db, hooks fired through {how}")
    out(f"  WHMCS folder {workdir}/whmcs with includes/hooks/vipgate.php and its config")

    def step(title: str, hook: str, variables: dict[str, Any]) -> list[Any]:
        seen = len(store.events())
        returns = forwarder.fire(hook, variables)
        out(f"- {title}: {hook}")
        for line in _stored(store, seen):
            out(line)
        return returns

    out("\n1. WHMCS events reach the bridge's inbox, signed, only whitelisted fields")
    step("staff move client 12 from group 1 (VIP) to 2", "ClientEdit", {
        "userid": 12, "groupid": "2", "status": "Active", "password": "never sent",
        "olddata": {"groupid": "1", "status": "Active", "email": "x@example.com"}})
    step("invoice 1042 paid (WHMCS passes an Invoice object)", "InvoicePaid", {
        "invoiceid": "1042", "invoice": {"__object__": {"id": 1042}}})
    step("cron suspends service 77 (params carry server passwords)", "AfterModuleSuspend", {
        "params": {"serviceid": "77", "userid": "12", "pid": "3", "password": "secret",
                   "serverpassword": "secret", "serveraccesshash": "secret"}})

    out("\n2. The bridge goes down: WHMCS keeps working, events wait in mod_vipgate_spool")
    bridge.stop()
    for hook, variables in (("AddInvoicePayment", {"invoiceid": "1043"}),
                            ("TicketOpen", {"ticketid": "501", "userid": "12", "deptid": "1",
                                            "priority": "High", "message": "not forwarded"}),
                            ("InvoicePaid", {"invoiceid": "1043"})):
        forwarder.fire(hook, variables)
        out(f"- {hook} while the bridge is down")
    waiting = forwarder.spooled()
    out(f"  spooled in WHMCS's database: {len(waiting)} event(s) {waiting}")

    out("\n3. The bridge is back; the next cron run (AfterCronJob) flushes the spool, oldest first")
    bridge.start()
    seen = len(store.events())
    forwarder.fire("AfterCronJob", {})
    for line in _stored(store, seen):
        out(line)
    arrived = [row.webhook_id for row in store.events()[seen:]]
    lost = [msg_id for msg_id in waiting if msg_id not in arrived]
    out(f"  spool now {len(forwarder.spooled())}; lost {len(lost)}; same ids as spooled: "
        f"{arrived[:len(waiting)] == waiting}")

    out("\n4. Forged and replayed requests")
    forged = requests.post(f"{url}/hooks/whmcs", data=b'{"hook":"PreCronJob","vars":{},'
                           b'"occurred_at":"2026-11-21T10:00:00+00:00"}',
                           headers={"Content-Type": "application/json", "webhook-id": "msg_x",
                                    "webhook-timestamp": str(int(time.time())),
                                    "webhook-signature": "v1,AAAA"},
                           timeout=5)
    out(f"- forged signature: HTTP {forged.status_code} {forged.json()}")
    first = store.events()[0]
    body = json.dumps({"hook": first.hook, "vars": first.vars,
                       "occurred_at": "2026-11-21T10:00:00+00:00"}).encode()
    headers = signed_headers([secret], first.webhook_id, int(time.time()), body)
    replay = requests.post(f"{url}/hooks/whmcs", data=body, timeout=5,
                           headers={**headers, "Content-Type": "application/json"})
    out(f"- {first.webhook_id} sent again, freshly signed: HTTP {replay.status_code} "
        f"{replay.json()}")
    total = len(store.events())
    out(f"  inbox holds {total} event(s), each stored once: {store.inbox_counts()}")

    health = requests.get(f"{url}/healthz", timeout=5).json()
    out(f"\nhealth: {health}")
    out(f"endpoints: {url}/hooks/whmcs  {url}/healthz  {url}/metrics")
    if wait is not None:
        out("Ctrl-C to stop.")
        with contextlib.suppress(KeyboardInterrupt):
            wait()
    bridge.stop()
    store.dispose()
    return 0 if not lost else 1
