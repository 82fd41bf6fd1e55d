"""A WHMCS cron run that fires 10,000 InvoiceCreated with the bridge hung, then the next cron run
with the bridge back (issue 17 target: <= 10 s added to the cron; then all 10,000 delivered by
the next cron run in <= 30 s).

The real ``php`` runs the installed stub (``bridge/sandbox/php/bootstrap.php`` as WHMCS, the
outbox ``mod_vipgate_spool`` on MariaDB in a throw-away database, and the bridge's in another:
``vipgate_bench_stub_<random>``, made by stub_overhead.py's helper and dropped at the end).
One php process plays WHMCS's cron: it fires ``--events`` InvoiceCreated hooks in a loop, then
AfterCronJob, as WHMCS's cron does at its end, then exits (the stub's delivery after the
"response" runs in its shutdown functions).

Phase 1, bridge hung: the stub's URL is a loopback socket that accepts connections (the
kernel's backlog) and never answers. The same php loop with no stub installed is the baseline;
"added" is the stub run's wall time (php start to exit, so the AfterCronJob flush and the
shutdown delivery are included) minus the baseline's. Inside php the loop and AfterCronJob are
timed apart; "tail" is from the end of the script to the process's exit (shutdown functions).

Phase 2, bridge back: the hung socket is closed and the real bridge is started on the same port
(gunicorn, ``--workers`` sync workers, ``bridge.web.app:create_app()`` on a throw-away MariaDB
database, as ``bench/ingest/run.py`` starts it); the next cron run is a php process firing
AfterCronJob alone. Its wall time is the time until all events are in the bridge's inbox (the
flush is synchronous: each batch is stored before it is answered). Checks: the outbox is empty
(nothing waiting, nothing rejected) and the inbox holds exactly the outbox's webhook ids, each
once.

Usage: python bench/cron_outbox.py [--events 10000] [--workers 4] [--mariadb URL] [--json]
Smoke: python bench/cron_outbox.py --events 200 --workers 2 (tests/test_bench_cron_outbox.py)
Exit status 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE / "ingest"))
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

import sqlalchemy as sa  # noqa: E402
from run import Gunicorn  # noqa: E402  (bench/ingest/run.py)
from stub_overhead import DEFAULT_MARIADB, FLOOR, mariadb_database, run_with_php  # noqa: E402

from bridge.sandbox.forwarder import PHP_DIR  # noqa: E402
from bridge.store import Store  # noqa: E402
from bridge.store.meta import new_webhook_secret  # noqa: E402
from bridge.whmcs.stub_install import install_stub  # noqa: E402

# WHMCS's cron: InvoiceCreated per invoice (vars as WHMCS passes them), then AfterCronJob.
CRON = r"""
require $argv[1] . '/bootstrap.php';
$hookDir = $argv[2];
$events = (int) $argv[3];
foreach (glob($hookDir . '/*.php') ?: [] as $hookFile) {
    if (substr(basename($hookFile), 0, 1) !== '_') {
        require_once $hookFile;
    }
}
WHMCS\Database\Capsule::connection()->getPdo(); // WHMCS is connected before any hook runs
$started = microtime(true);
if (!empty($argv[4])) {
    vipgate_test_run_hook('PreCronJob', []); // WHMCS's cron fires it first
}
$precron = microtime(true);
for ($i = 1; $i <= $events; $i++) {
    vipgate_test_run_hook('InvoiceCreated', ['source' => 'autogen', 'user' => 'system',
        'invoiceid' => 500000 + $i, 'status' => 'Unpaid']);
}
$looped = microtime(true);
vipgate_test_run_hook('AfterCronJob', []);
$ended = microtime(true);
echo json_encode(['started' => $started, 'ended' => $ended,
    'precron_ms' => ($precron - $started) * 1000,
    'hooks_ms' => ($looped - $precron) * 1000, 'after_cron_ms' => ($ended - $looped) * 1000]), "\n";
"""


def cron_run(php: str, hook_dir: Path, events: int, env: dict[str, str],
             precron: bool = False) -> dict[str, Any]:
    """One cron process; wall time from spawn to exit, and the parts timed inside php."""
    started = time.time()
    done = subprocess.run([php, "-r", CRON, "--", str(PHP_DIR), str(hook_dir), str(events),
                           "1" if precron else ""],
                          capture_output=True, text=True, env=env, timeout=600, check=False)
    ended = time.time()
    if done.returncode != 0 or done.stderr.strip():
        raise RuntimeError(f"php cron exited {done.returncode}: {done.stderr[-2000:]}"
                           f"{done.stdout[-500:]}")
    inside = json.loads(done.stdout.strip().splitlines()[-1])
    return {"wall_s": round(ended - started, 3),
            "precron_s": round(inside["precron_ms"] / 1000, 3),
            "hooks_s": round(inside["hooks_ms"] / 1000, 3),
            "after_cron_s": round(inside["after_cron_ms"] / 1000, 3),
            "tail_s": round(max(0.0, ended - inside["ended"]), 3)}


def floor_run(php: str, events: int, env: dict[str, str]) -> dict[str, Any]:
    """The durable commit alone: a bare autocommit INSERT of the same row per hook, no stub
    (stub_overhead.py's floor), in one process."""
    started = time.time()
    done = subprocess.run([php, "-r", FLOOR, "--", str(events)], capture_output=True, text=True,
                          env=env, timeout=600, check=True)
    ended = time.time()
    calls = json.loads(done.stdout)["calls_ms"]
    return {"wall_s": round(ended - started, 3), "precron_s": 0.0,
            "hooks_s": round(sum(calls) / 1000, 3),
            "after_cron_s": 0.0, "tail_s": 0.0}


def outbox(url: str) -> dict[str, Any]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("mod_vipgate_spool"):
                return {"waiting": 0, "rejected": 0, "ids": [], "breaker_open_until": None}
            rows = conn.execute(sa.text(
                "SELECT webhook_id, hook, rejected_at FROM mod_vipgate_spool")).all()
            breaker = None
            if sa.inspect(conn).has_table("mod_vipgate_state"):
                breaker = conn.execute(sa.text(
                    "SELECT at FROM mod_vipgate_state WHERE name = 'breaker_open_until'")).scalar()
        return {"waiting": sum(r.rejected_at is None for r in rows),
                "rejected": sum(r.rejected_at is not None for r in rows),
                "ids": [r.webhook_id for r in rows if r.hook == "InvoiceCreated"],
                "breaker_open_until": breaker}
    finally:
        engine.dispose()


def inbox_ids(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(
                "SELECT webhook_id FROM inbox WHERE hook = 'InvoiceCreated'")).scalars())
    finally:
        engine.dispose()


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def run(args: argparse.Namespace, php: str) -> dict[str, Any]:
    secret = new_webhook_secret()
    results: dict[str, Any] = {"events": args.events, "workers": args.workers,
                               "precron": args.precron, "checks": []}
    checks: list[str] = results["checks"]
    with tempfile.TemporaryDirectory(prefix="vipgate-bench-cron-") as tmp, \
            mariadb_database(args.mariadb) as whmcs_db, mariadb_database(args.mariadb) as bridge_db:
        work = Path(tmp)
        env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
               "VIPGATE_SANDBOX_LOG": str(work / "module-log.jsonl"),
               **{k: v for k, v in whmcs_db.items() if k != "url"}}
        bare = work / "whmcs-bare"
        (bare / "includes" / "hooks").mkdir(parents=True)
        whmcs = work / "whmcs"
        (whmcs / "includes").mkdir(parents=True)

        hung = socket.socket()
        hung.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        hung.bind(("127.0.0.1", 0))
        hung.listen(1024)  # accepts (the kernel's backlog), never reads or answers
        port = hung.getsockname()[1]
        hook_dir = install_stub(whmcs, f"http://127.0.0.1:{port}", secret)[0].parent

        # --- phase 1: the bridge hung -------------------------------------------------------
        results["load_before"] = load_average()
        baseline = cron_run(php, bare / "includes" / "hooks", args.events, env, args.precron)
        floor = floor_run(php, args.events, env)
        try:
            stub = cron_run(php, hook_dir, args.events, env, args.precron)
        finally:
            hung.close()
        results["load_after_phase1"] = load_average()
        after1 = outbox(whmcs_db["url"])
        added = round(stub["wall_s"] - baseline["wall_s"], 3)
        results["phase1"] = {"baseline": baseline, "floor": floor, "stub": stub, "added_s": added,
                             "per_hook_ms": round((stub["hooks_s"] - baseline["hooks_s"]) * 1000
                                                / max(1, args.events), 3),
                             "outbox_waiting": after1["waiting"],
                             "breaker_open": after1["breaker_open_until"] is not None
                             and int(after1["breaker_open_until"]) > time.time()}
        # a PreCronJob the hung bridge did not take waits in the outbox too
        if (after1["waiting"] != args.events + args.precron
                or len(set(after1["ids"])) != args.events):
            checks.append(f"phase 1: {after1['waiting']} rows waiting, "
                          f"{len(set(after1['ids']))} distinct ids, expected {args.events}")
        if not results["phase1"]["breaker_open"]:
            checks.append("phase 1: the breaker is not open after the hung flush")

        # --- phase 2: the bridge back, the next cron run --------------------------------------
        store = Store(bridge_db["url"])
        store.upgrade()
        store.dispose()
        server_env = {k: v for k, v in os.environ.items()
                      if not k.startswith("VIPGATE_") and k != "PROMETHEUS_MULTIPROC_DIR"}
        server_env.update(VIPGATE_BRIDGE_DATABASE_URL=bridge_db["url"],
                          VIPGATE_WEBHOOK_SECRETS=secret)
        bridge = Gunicorn("bridge", "bridge.web.app:create_app()", str(REPO), port,
                          args.workers, server_env, work)
        bridge.start()
        try:
            bridge.wait_ready("/healthz")
            results["load_before_phase2"] = load_average()
            cron2 = cron_run(php, hook_dir, 0, env)
        finally:
            bridge.stop()
        after2 = outbox(whmcs_db["url"])
        stored = inbox_ids(bridge_db["url"])
        expected = set(after1["ids"])
        results["phase2"] = {**cron2, "outbox_waiting": after2["waiting"],
                             "outbox_rejected": after2["rejected"], "inbox": len(stored),
                             "inbox_distinct": len(set(stored)),
                             "lost": len(expected - set(stored)),
                             "twice": len(stored) - len(set(stored)),
                             "unexpected": len(set(stored) - expected),
                             "events_per_s": round(len(stored) / max(cron2["wall_s"], 1e-9))}
        p2 = results["phase2"]
        if after2["waiting"] or after2["rejected"]:
            checks.append(f"phase 2: outbox not empty ({after2['waiting']} waiting, "
                          f"{after2['rejected']} rejected)")
        if p2["lost"] or p2["twice"] or p2["unexpected"] or len(stored) != args.events:
            checks.append(f"phase 2: inbox {len(stored)} rows, lost {p2['lost']}, twice "
                          f"{p2['twice']}, unexpected {p2['unexpected']}")
    results["targets"] = {"added_le_10s": added <= 10.0,
                          "next_cron_le_30s": results["phase2"]["wall_s"] <= 30.0}
    return results


def report(results: dict[str, Any], php_version: str) -> str:
    p1, p2 = results["phase1"], results["phase2"]
    base, stub = p1["baseline"], p1["stub"]
    first = "PreCronJob, " if results["precron"] else ""
    lines = [f"WHMCS cron, {first}{results['events']} InvoiceCreated then AfterCronJob "
             f"(php {php_version}, outbox on MariaDB; load average {results['load_before']} "
             f"before, "
             f"{results['load_after_phase1']} after phase 1)",
             "",
             "phase 1, bridge hung        wall s  PreCronJob s   hooks s  AfterCronJob s   tail s",
             f"  no stub (baseline)    {base['wall_s']:>9.3f} {base['precron_s']:>13.3f}"
             f" {base['hooks_s']:>9.3f}"
             f" {base['after_cron_s']:>15.3f} {base['tail_s']:>8.3f}",
             f"  floor: bare INSERT    {p1['floor']['wall_s']:>9.3f} {'-':>13}"
             f" {p1['floor']['hooks_s']:>9.3f}"
             f" {'-':>15} {'-':>8}",
             f"  stub installed        {stub['wall_s']:>9.3f} {stub['precron_s']:>13.3f}"
             f" {stub['hooks_s']:>9.3f}"
             f" {stub['after_cron_s']:>15.3f} {stub['tail_s']:>8.3f}",
             f"  added by the stub: {p1['added_s']:.3f} s ({p1['per_hook_ms']:.3f} ms per hook in "
             f"the loop; "
             f"target <= 10 s: {'met' if results['targets']['added_le_10s'] else 'MISSED'}); "
             f"outbox waiting {p1['outbox_waiting']}, breaker open: {p1['breaker_open']}",
             "",
             f"phase 2, bridge back (gunicorn, {results['workers']} sync workers, MariaDB), "
             f"next cron run (AfterCronJob):",
             f"  wall {p2['wall_s']:.3f} s (AfterCronJob {p2['after_cron_s']:.3f} s, tail "
             f"{p2['tail_s']:.3f} s), {p2['events_per_s']} events/s; target <= 30 s: "
             f"{'met' if results['targets']['next_cron_le_30s'] else 'MISSED'}",
             f"  inbox {p2['inbox']} ({p2['inbox_distinct']} distinct), lost {p2['lost']}, twice "
             f"{p2['twice']}, unexpected {p2['unexpected']}; outbox waiting "
             f"{p2['outbox_waiting']}, rejected {p2['outbox_rejected']}",
             "",
             "checks: " + ("all ok" if not results["checks"] else "; ".join(results["checks"]))]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000,
                        help="InvoiceCreated hooks the cron fires (smoke: 200)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--mariadb", default=DEFAULT_MARIADB, help="MariaDB server URL")
    parser.add_argument("--precron", action="store_true",
                        help="the cron fires PreCronJob first, as WHMCS's does (with the bridge "
                             "hung it waits precron_timeout_ms unless the breaker is open)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.events < 1:
        parser.error("--events must be at least 1")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    return run_with_php(args, run, report)


if __name__ == "__main__":
    sys.exit(main())
