"""How much time the PHP stub adds to one WHMCS hook call.

Runs the real stub with ``php`` (through ``bridge/sandbox/php/fire.php``, which times each hook call
inside php with microtime, php start-up excluded) in three situations:

- bridge up: vipgate's app (SQLite store) served by werkzeug's threaded server on loopback;
  an asynchronous hook (InvoicePaid, answered 202) and the synchronous TicketOpenValidation;
- bridge down: a loopback port that refuses connections, so each event goes to the spool
  table (SQLite through PDO, as the WHMCS database would be).

Usage: python bench/stub_overhead.py [--calls 200] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server

from bridge.settings import default_settings
from bridge.store import Store
from bridge.store.meta import new_webhook_secret
from bridge.web.app import create_app
from bridge.whmcs.stub_install import install_stub

FIRE = Path(__file__).resolve().parent.parent / "bridge" / "sandbox" / "php" / "fire.php"
SCENARIOS = [
    ("bridge up", "InvoicePaid", {"invoiceid": 1002, "invoice": {"__object__": {"id": 1002}}}),
    ("bridge up", "TicketOpenValidation", {"clientId": 42, "departmentId": 1,
                                           "isAdmin": False, "priority": "Medium"}),
    ("bridge down (spool)", "InvoicePaid", {"invoiceid": 1002}),
]


def fire(php: str, hook_dir: Path, hook: str, variables: dict[str, Any], calls: int,
         env: dict[str, str]) -> list[float]:
    done = subprocess.run([php, str(FIRE), str(hook_dir), hook, json.dumps(variables),
                           str(calls)], capture_output=True, text=True, env=env, check=True,
                          timeout=calls * 5 + 30)
    return json.loads(done.stdout)["calls_ms"]


def summary(samples: list[float]) -> dict[str, float]:
    return {"median_ms": round(statistics.median(samples), 3),
            "p95_ms": round(statistics.quantiles(samples, n=100)[94], 3),
            "max_ms": round(max(samples), 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="hook calls per scenario")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    php = shutil.which("php")
    if php is None:
        print("php is not on PATH (apt-get install php-cli php-curl php-sqlite3)",
              file=sys.stderr)
        return 2
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    secret = new_webhook_secret()
    results = []
    with tempfile.TemporaryDirectory(prefix="vipgate-bench-") as tmp:
        work = Path(tmp)
        settings = default_settings().replace(
            bridge={"database_url": f"sqlite:///{work}/vipgate.db"},
            webhook={"secrets": secret})
        store = Store(settings.bridge.database_url)
        store.upgrade()
        server = make_server("127.0.0.1", 0, create_app(settings, store=store), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        refusing = socket.socket()
        refusing.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        urls = {"bridge up": f"http://127.0.0.1:{server.server_port}",
                "bridge down (spool)": f"http://127.0.0.1:{refusing.getsockname()[1]}"}
        (work / "whmcs" / "includes").mkdir(parents=True)
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin",
               "VIPGATE_SANDBOX_LOG": str(work / "module-log.jsonl"),
               "VIPGATE_SANDBOX_PDO_DSN": f"sqlite:{work}/whmcs.db"}
        try:
            for situation, hook, variables in SCENARIOS:
                hook_dir = install_stub(work / "whmcs", urls[situation], secret)[0].parent
                samples = fire(php, hook_dir, hook, variables, args.calls, env)
                results.append({"situation": situation, "hook": hook, "calls": len(samples),
                                **summary(samples)})
            stored = len(store.events(limit=10 * args.calls))
            spooled = sqlite3.connect(work / "whmcs.db").execute(
                "SELECT COUNT(*) FROM mod_vipgate_spool").fetchone()[0]
        finally:
            server.shutdown()
            refusing.close()
            store.dispose()
    php_version = subprocess.run([php, "-r", "echo PHP_VERSION;"], capture_output=True,
                                 text=True, check=True).stdout
    checks = {"inbox_events": stored, "spooled_rows": spooled}
    if args.json:
        print(json.dumps({"php": php_version, "results": results, "checks": checks}))
    else:
        print(f"vipgate stub overhead per hook call (php {php_version}, timed inside php, "
              f"{args.calls} calls each)")
        print(f"{'situation':<22}{'hook':<22}{'median ms':>10}{'p95 ms':>10}{'max ms':>10}")
        for r in results:
            print(f"{r['situation']:<22}{r['hook']:<22}{r['median_ms']:>10.2f}"
                  f"{r['p95_ms']:>10.2f}{r['max_ms']:>10.2f}")
        print(f"checks: {stored} events in the bridge inbox, {spooled} rows spooled")
    return 0


if __name__ == "__main__":
    sys.exit(main())
