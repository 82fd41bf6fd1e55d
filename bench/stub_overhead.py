"""How much time the PHP stub adds to one WHMCS hook call (target: p99 <= 1 ms, bridge up, down
and hung).

Runs the real stub with ``php`` (through ``bridge/sandbox/php/fire.php``, which times each hook call
inside php with microtime, php start-up excluded), the outbox (mod_vipgate_spool) on SQLite and on
MariaDB (a throw-away database ``vipgate_bench_stub_<random>``, dropped at the end), in three
situations of the bridge:

- up: vipgate's app (SQLite store) served by werkzeug's threaded server on loopback;
- down: a loopback port that refuses connections;
- hung: a loopback server that accepts connections and never answers.

Each php process fires ``--per-process`` hooks (a WHMCS request firing a few hooks), then, as a
request does after its response, delivers the outbox (bridge up: sent in a batch; down or hung:
the delivery fails and opens the breaker, so the following processes do not try). The
asynchronous hook (InvoicePaid) only writes its row. The synchronous TicketOpenValidation is timed
with the bridge up (it waits for the answer) and hung with the breaker open (answered at once).

The row must be committed before the hook returns, so every call pays the database's commit
(on MariaDB with innodb_flush_log_at_trx_commit=1, a log flush to disk). The floor scenario
times that alone: a bare autocommit INSERT of the same row into a copy of the table, by php's
PDO, no stub.

Usage: python bench/stub_overhead.py [--calls 1000] [--per-process 10]
       [--mariadb URL | --no-mariadb] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from werkzeug.serving import make_server

from bridge.settings import default_settings
from bridge.store import Store
from bridge.store.meta import new_webhook_secret
from bridge.web.app import create_app
from bridge.whmcs.stub_install import install_stub

FIRE = Path(__file__).resolve().parent.parent / "bridge" / "sandbox" / "php" / "fire.php"
PAID = {"invoiceid": 1002, "invoice": {"__object__": {"id": 1002}}}
QUESTION = {"clientId": 42, "departmentId": 1, "isAdmin": False, "priority": "Medium"}
# (bridge, hook, vars)
SCENARIOS = [
    ("up", "InvoicePaid", PAID),
    ("down", "InvoicePaid", PAID),
    ("hung", "InvoicePaid", PAID),
    ("up", "TicketOpenValidation", QUESTION),
    ("hung, breaker open", "TicketOpenValidation", QUESTION),
]
DEFAULT_MARIADB = "mysql+pymysql://root@127.0.0.1:3306"
FLOOR = r"""
$user = getenv('VIPGATE_SANDBOX_PDO_USER');
$password = getenv('VIPGATE_SANDBOX_PDO_PASSWORD');
$pdo = new PDO(getenv('VIPGATE_SANDBOX_PDO_DSN'), $user === false ? null : $user,
    $password === false ? null : $password, [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
$mysql = $pdo->getAttribute(PDO::ATTR_DRIVER_NAME) === 'mysql';
$pdo->exec('CREATE TABLE IF NOT EXISTS bench_floor (id ' . ($mysql
    ? 'BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY' : 'INTEGER PRIMARY KEY AUTOINCREMENT')
    . ', webhook_id VARCHAR(64) NOT NULL UNIQUE, hook VARCHAR(64) NOT NULL, body TEXT NOT NULL,'
    . ' created_at DATETIME NOT NULL, attempts INT NOT NULL DEFAULT 0)');
$calls = [];
for ($i = 0; $i < (int) $argv[1]; $i++) {
    $started = microtime(true);
    $pdo->prepare('INSERT INTO bench_floor (webhook_id, hook, body, created_at, attempts)'
        . ' VALUES (?, ?, ?, ?, 0)')->execute(['msg_' . bin2hex(random_bytes(16)), 'InvoicePaid',
        '{"hook":"InvoicePaid","vars":{"invoiceid":1002},"occurred_at":"' . date('c') . '"}',
        gmdate('Y-m-d H:i:s')]);
    $calls[] = round((microtime(true) - $started) * 1000, 3);
}
echo json_encode(['calls_ms' => $calls]);
"""


def run_with_php(args: argparse.Namespace,
                 run: Callable[[argparse.Namespace, str], dict[str, Any]],
                 report: Callable[[dict[str, Any], str], str], version_key: str = "php") -> int:
    """A php bench's main: php found (else exit 2), ``run``, its results printed (``--json``:
    one JSON object) with php's version under ``version_key``; exit 1 when a check failed."""
    php = shutil.which("php")
    if php is None:
        print("php is not on PATH (apt-get install php-cli php-curl php-mysql)", file=sys.stderr)
        return 2
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    php_version = subprocess.run([php, "-r", "echo PHP_VERSION;"], capture_output=True,
                                 text=True, check=True).stdout
    results = run(args, php)
    results[version_key] = php_version
    results["run_id"] = uuid.uuid4().hex[:8]
    print(json.dumps(results) if args.json else report(results, php_version))
    return 1 if results["checks"] else 0


def fire(php: str, hook_dir: Path, hook: str, variables: dict[str, Any], calls: int,
         per_process: int, env: dict[str, str]) -> list[float]:
    samples: list[float] = []
    while len(samples) < calls:
        repeat = min(per_process, calls - len(samples))
        done = subprocess.run([php, str(FIRE), str(hook_dir), hook, json.dumps(variables),
                               str(repeat)], capture_output=True, text=True, env=env,
                              check=True, timeout=60)
        samples += json.loads(done.stdout)["calls_ms"]
    return samples


def summary(samples: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples, n=100)
    return {"median_ms": round(statistics.median(samples), 3), "p95_ms": round(cuts[94], 3),
            "p99_ms": round(cuts[98], 3), "max_ms": round(max(samples), 3)}


@contextmanager
def hung_server() -> Iterator[str]:
    """Accepts connections (the kernel's backlog), never reads or answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


@contextmanager
def mariadb_database(server: str) -> Iterator[dict[str, str]]:
    name = f"vipgate_bench_stub_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server + "/")
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    url = sa.engine.make_url(server)
    try:
        yield {"VIPGATE_SANDBOX_PDO_DSN": f"mysql:host={url.host};port={url.port or 3306};"
                                          f"dbname={name};charset=utf8mb4",
               "VIPGATE_SANDBOX_PDO_USER": url.username or "",
               "VIPGATE_SANDBOX_PDO_PASSWORD": url.password or "",
               "url": f"{server}/{name}"}
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


@contextmanager
def sqlite_database(work: Path) -> Iterator[dict[str, str]]:
    yield {"VIPGATE_SANDBOX_PDO_DSN": f"sqlite:{work}/whmcs.db", "url": f"sqlite:///{work}/whmcs.db"}


def outbox_counts(url: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            waiting, rejected = conn.execute(sa.text(
                "SELECT SUM(rejected_at IS NULL), SUM(rejected_at IS NOT NULL) "
                "FROM mod_vipgate_spool")).one()
        return {"waiting": int(waiting or 0), "rejected": int(rejected or 0)}
    finally:
        engine.dispose()


def reset_breaker(url: str, *, open_: bool) -> None:
    """Each scenario starts with the breaker closed, or open (as a failed delivery leaves it)."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            if sa.inspect(conn).has_table("mod_vipgate_state"):
                conn.execute(sa.text("DELETE FROM mod_vipgate_state"))
            if open_:
                conn.execute(sa.text("INSERT INTO mod_vipgate_state (name, at) VALUES "
                                     "('breaker_open_until', :at)"), {"at": int(time.time()) + 600})
    finally:
        engine.dispose()


def run_database(php: str, work: Path, kind: str, database: dict[str, str], urls: dict[str, str],
                 secret: str, store: Store, args: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin",
           "VIPGATE_SANDBOX_LOG": str(work / "module-log.jsonl"),
           **{k: v for k, v in database.items() if k != "url"}}
    whmcs = work / f"whmcs-{kind}"
    (whmcs / "includes").mkdir(parents=True)
    done = subprocess.run([php, "-r", FLOOR, "--", str(args.calls)], capture_output=True,
                          text=True, env=env, check=True, timeout=300)
    floor = json.loads(done.stdout)["calls_ms"]
    results.append({"outbox": kind, "bridge": "(floor: bare INSERT)", "hook": "-",
                    "calls": len(floor), **summary(floor), "wall_s": 0.0,
                    "inbox_events_added": 0, "outbox_waiting": 0})
    for bridge, hook, variables in SCENARIOS:
        hook_dir = install_stub(whmcs, urls[bridge.split(",")[0]], secret)[0].parent
        reset_breaker(database["url"], open_="breaker open" in bridge)
        before = len(store.events(limit=1_000_000))
        started = time.monotonic()
        samples = fire(php, hook_dir, hook, variables, args.calls, args.per_process, env)
        wall = time.monotonic() - started
        stored = len(store.events(limit=1_000_000)) - before
        counts = outbox_counts(database["url"])
        results.append({"outbox": kind, "bridge": bridge, "hook": hook, "calls": len(samples),
                        **summary(samples), "wall_s": round(wall, 1),
                        "inbox_events_added": stored, "outbox_waiting": counts["waiting"]})
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="hook calls per scenario")
    parser.add_argument("--per-process", type=int, default=10,
                        help="hook calls per php process (one WHMCS request)")
    parser.add_argument("--mariadb", default=DEFAULT_MARIADB,
                        help="MariaDB server URL for the outbox on MariaDB")
    parser.add_argument("--no-mariadb", action="store_true", help="the outbox on SQLite only")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    php = shutil.which("php")
    if php is None:
        print("php is not on PATH (apt-get install php-cli php-curl php-sqlite3 php-mysql)",
              file=sys.stderr)
        return 2
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    secret = new_webhook_secret()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="vipgate-bench-") as tmp, hung_server() as hung:
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
        urls = {"up": f"http://127.0.0.1:{server.server_port}",
                "down": f"http://127.0.0.1:{refusing.getsockname()[1]}", "hung": hung}
        try:
            with sqlite_database(work) as database:
                results += run_database(php, work, "SQLite", database, urls, secret, store, args)
            if not args.no_mariadb:
                with mariadb_database(args.mariadb) as database:
                    results += run_database(php, work, "MariaDB", database, urls, secret, store,
                                            args)
        finally:
            server.shutdown()
            refusing.close()
            store.dispose()
    php_version = subprocess.run([php, "-r", "echo PHP_VERSION;"], capture_output=True,
                                 text=True, check=True).stdout
    if args.json:
        print(json.dumps({"php": php_version, "results": results}))
        return 0
    print(f"vipgate stub overhead per hook call (php {php_version}, timed inside php, "
          f"{args.calls} calls each, {args.per_process} per php process)")
    print(f"{'outbox':<9}{'bridge':<20}{'hook':<22}{'median':>8}{'p95':>8}{'p99':>8}{'max':>8}"
          f"{'wall s':>8}{'inbox+':>8}{'waiting':>8}")
    for r in results:
        print(f"{r['outbox']:<9}{r['bridge']:<20}{r['hook']:<22}{r['median_ms']:>8.3f}"
              f"{r['p95_ms']:>8.3f}{r['p99_ms']:>8.3f}{r['max_ms']:>8.2f}{r['wall_s']:>8.1f}"
              f"{r['inbox_events_added']:>8}{r['outbox_waiting']:>8}")
    print("(ms; inbox+: events the bridge stored during the scenario; waiting: outbox rows "
          "after it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
