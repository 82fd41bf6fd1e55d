#!/usr/bin/env python3
"""Soak: vipgate under a steady mix of every forwarded hook for a bounded time (default 10
minutes) while faults are injected on a schedule; then every event is accounted for.

    python bench/soak/run.py [--duration 600] [--json results.json]

What runs, all on 127.0.0.1 (see README.md beside this file):

- a MariaDB server of the soak's own (``mariadb-install-db`` in a temporary folder, a free
  port), vipgate's database;
- the bridge under gunicorn (sync workers), an access log with each request's webhook id
  and time taken;
- ``vipgate worker`` processes, restarted a second after they die;
- the sandbox WHMCS (SQLite, a generated dataset of ``--clients`` clients), its API served
  on a fixed port, its hooks fired through the real PHP stub (one ``php`` per hook);
- actors doing what WHMCS's users do, and WHMCS's cron every ``--cron-every`` seconds.

Faults, in order, at fixed fractions of the duration: ``php`` processes killed (SIGKILL)
during their delivery of the outbox after the response; MariaDB killed (SIGKILL) and started
again; WHMCS's API down (connections refused) for ``--whmcs-down`` seconds; the API answering
HTTP 500; the API answering slowly (past vipgate's timeout, then just slowly); a gunicorn worker
killed with SIGKILL; a vipgate worker killed with SIGKILL; the bridge restarted (gunicorn
stopped with SIGTERM and started again); the bridge hung (a proxy in front of gunicorn
accepting connections and never answering, until a WHMCS cron run went through it).

At the end the load stops, WHMCS's cron runs until the stub's spool is empty and the inbox is
settled, and ``vipgate resync --dry-run`` must plan nothing. Exit 0 when every check passed,
1 when one failed, 2 when the soak could not be set up, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # this folder, and bench/ for gen_whmcs

import ledger  # noqa: E402
import load as soak_load  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from procs import BridgeProxy, Gunicorn, MariaDb, Sampler, Workers, free_port  # noqa: E402

from bridge.payloads import whitelist  # noqa: E402
from bridge.sandbox.forwarder import PAGE_HOOKS, php_available  # noqa: E402

Load, Whmcs = soak_load.Load, soak_load.Whmcs

SYNC_HOOKS = frozenset((*PAGE_HOOKS, "TicketOpenValidation"))
DATABASE = "vipgate_soak"
WHMCS_TIMEOUT = 5  # [whmcs] timeout_seconds in the soak's vipgate.ini


def log(message: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Interrupted(Exception):
    pass


@dataclass
class Stage:
    """Everything the run started, for the faults and the clean-up."""

    workdir: Path
    mariadb: MariaDb
    whmcs: Whmcs
    gunicorn: Gunicorn
    workers: Workers
    env: dict[str, str]
    config: Path
    proxy: BridgeProxy
    load: soak_load.Load | None = None


def webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def vipgate(stage: Stage, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bridge", "--config", str(stage.config), *args],
                          cwd=stage.workdir, env=stage.env, capture_output=True, text=True,
                          timeout=timeout, check=False)


# --- faults ---------------------------------------------------------------------------------


def _wait(stop: threading.Event, predicate: Callable[[], bool], limit: float,
          step: float = 0.1) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and not stop.is_set() and not predicate():
        time.sleep(step)


def fault_plan(duration: float, whmcs_down: float) -> list[tuple[float, str]]:
    """(seconds from the start, fault) at fixed fractions of the run; the last quarter is
    left without faults to see the recovery. PHP is killed first, while the stub's breaker is
    still closed (so that its processes deliver after the response)."""
    return [(0.03 * duration, "php_killed"),
            (0.10 * duration, "mariadb_restart"), (0.20 * duration, "whmcs_down"),
            (0.20 * duration + whmcs_down + 0.06 * duration, "whmcs_errors"),
            (0.20 * duration + whmcs_down + 0.12 * duration, "whmcs_slow"),
            (0.55 * duration, "gunicorn_worker_kill"), (0.60 * duration, "worker_kill"),
            (0.66 * duration, "bridge_restart"), (0.72 * duration, "bridge_hung")]


def breaker_open_until(whmcs: Whmcs) -> float | None:
    """Until when the stub's breaker is open (mod_vipgate_state in WHMCS's database), or None."""
    import sqlite3

    assert whmcs.forwarder is not None
    try:
        with sqlite3.connect(whmcs.forwarder.spool_db, timeout=10) as conn:
            row = conn.execute("SELECT at FROM mod_vipgate_state WHERE name = "
                               "'breaker_open_until'").fetchone()
    except sqlite3.Error:
        return None
    return float(row[0]) if row else None


def claimed_rows(whmcs: Whmcs) -> int:
    import sqlite3

    assert whmcs.forwarder is not None
    try:
        with sqlite3.connect(whmcs.forwarder.spool_db, timeout=10) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM mod_vipgate_spool WHERE claimed_by "
                                    "IS NOT NULL").fetchone()[0])
    except sqlite3.Error:
        return 0


def inject(stage: Stage, name: str, stop: threading.Event, args: argparse.Namespace
           ) -> ledger.Fault:
    started = time.time()
    detail = ""
    if name == "mariadb_restart":
        stage.mariadb.crash()
        time.sleep(args.mariadb_down)
        stage.mariadb.start()
        detail = f"SIGKILL, started again after {args.mariadb_down:.0f} s"
    elif name == "whmcs_down":
        stage.whmcs.down()
        stop.wait(args.whmcs_down)
        stage.whmcs.serve()
        detail = f"API refused connections for {args.whmcs_down:.0f} s"
    elif name == "whmcs_errors":
        faults = stage.whmcs.sandbox.faults
        faults.push("http_error", times=args.errors)
        _wait(stop, lambda: faults.pending() == 0, args.fault_window)
        detail = f"next {args.errors} API calls answered HTTP 500 ({faults.pending()} unused)"
        faults.clear()
    elif name == "whmcs_slow":
        faults = stage.whmcs.sandbox.faults
        faults.push("slow", times=3, seconds=WHMCS_TIMEOUT + 1.0)
        faults.push("slow", times=10, seconds=2.0)
        _wait(stop, lambda: faults.pending() == 0, args.fault_window)
        detail = (f"3 API calls answered after {WHMCS_TIMEOUT + 1} s (past vipgate's timeout), "
                  f"then 10 after 2 s ({faults.pending()} unused)")
        faults.clear()
    elif name == "gunicorn_worker_kill":
        before = set(stage.gunicorn.worker_pids())
        killed = stage.gunicorn.kill_worker()
        _wait(stop, lambda: len(set(stage.gunicorn.worker_pids()) - before) >= 1, 30)
        detail = f"SIGKILL to gunicorn worker {killed}; the master started another"
    elif name == "worker_kill":
        restarts = stage.workers.restarts
        killed = stage.workers.kill_one()
        _wait(stop, lambda: stage.workers.restarts > restarts, 30)
        detail = f"SIGKILL to vipgate worker {killed}; started again after 1 s"
    elif name == "bridge_restart":
        stage.gunicorn.stop()
        stage.gunicorn.start()
        detail = "gunicorn stopped (SIGTERM, graceful) and started again"
    elif name == "php_killed":
        # Answers held back a little, so that a kill finds the process waiting on the bridge
        # with its rows claimed (the batch may already be stored: sent again, a duplicate).
        forwarder = stage.whmcs.forwarder
        assert forwarder is not None
        kills_before = len(forwarder.killed)
        stage.proxy.set_mode("slow", delay=0.4)
        forwarder.arm(args.php_kills, delay=(0.05, 0.35))
        _wait(stop, lambda: len(forwarder.killed) - kills_before >= args.php_kills,
              max(5.0, 0.06 * args.duration))
        forwarder.disarm()
        stage.proxy.set_mode("pass")
        killed_now = forwarder.killed[kills_before:]
        claimed = claimed_rows(stage.whmcs)
        detail = (f"SIGKILL to {len(killed_now)} php process(es) in their delivery after the "
                  f"response ({', '.join(sorted({h for _, h, _ in killed_now}))}); {claimed} "
                  "outbox row(s) left claimed (a claim expires after 60 s)")
        if not killed_now:
            raise RuntimeError("no php process delivered after its response during the window")
    elif name == "bridge_hung":
        # The bridge accepts connections and never answers until a cron run has gone through
        # it (the breaker open, the cron flush tried once), at least args.hung seconds.
        load = stage.load
        assert load is not None
        crons = len(load.crons)
        held = stage.proxy.held
        stage.proxy.set_mode("hang")
        stop.wait(args.hung)
        _wait(stop, lambda: len(load.crons) > crons, args.cron_every + 30)
        until = breaker_open_until(stage.whmcs)
        cron_s = [seconds for _, seconds in load.crons[crons:]]
        stage.proxy.set_mode("pass")
        detail = (f"the bridge accepted {stage.proxy.held - held} connection(s) and never "
                  f"answered; the breaker was "
                  f"{'open' if until is not None and until > time.time() else 'NOT open'}; "
                  + (f"the cron run(s) finished in the window took "
                     f"{', '.join(f'{c:.1f}' for c in cron_s)} s" if cron_s else
                     "no cron run finished in the window (one may still be waiting on the "
                     "bridge)")
                  + "; the cron after it flushes the outbox")
        if until is None or until <= time.time():
            raise RuntimeError(f"the stub's breaker did not open while the bridge hung ({detail})")
    else:
        raise ValueError(name)
    fault = ledger.Fault(name, started, time.time(), detail)
    log(f"fault {name}: {detail} ({fault.ended - fault.started:.1f} s)")
    return fault


def run_faults(stage: Stage, plan: list[tuple[float, str]], t0: float, stop: threading.Event,
               args: argparse.Namespace, done: list[ledger.Fault], errors: list[str]) -> None:
    for at, name in plan:
        if stop.wait(max(0.0, t0 + at - time.time())):
            return
        try:
            done.append(inject(stage, name, stop, args))
        except Exception as exc:  # reported; the soak goes on
            errors.append(f"fault {name} could not be injected: {type(exc).__name__}: {exc}")
            log(errors[-1])


# --- the end ------------------------------------------------------------------------------


def query(url: str, sql: str) -> list[sa.Row[Any]]:
    """Read vipgate's tables directly, not through bridge.store: the account must not depend
    on the code it checks."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(sql)))
    finally:
        engine.dispose()


def inbox_rows(url: str) -> list[ledger.InboxRow]:
    rows = query(url, "SELECT webhook_id, hook, state, attempts, occurred_at, received_at, "
                      "finished_at, last_error FROM inbox")
    return [ledger.InboxRow(r[0], r[1], r[2], int(r[3]), ledger.epoch(r[4]) or 0.0,
                            ledger.epoch(r[5]) or 0.0, ledger.epoch(r[6]), r[7]) for r in rows]


def audit_rows(url: str) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in query(
        url, "SELECT event_id, action, client_id, ticket_id, `before`, `after` FROM audit")]


def spooled(whmcs: Whmcs) -> list[str]:
    """Webhook ids still in the stub's spool (read as the forwarder reads it)."""
    return whmcs.forwarder.spooled() if whmcs.forwarder is not None else []


def unsettled(url: str) -> int:
    return int(query(url, "SELECT COUNT(*) FROM inbox WHERE state NOT IN "
                          "('done', 'dead', 'discarded')")[0][0])


def settle(stage: Stage, load: Load, url: str, limit: float) -> float:
    """Cron until the spool is empty, then wait for the inbox to settle; seconds taken."""
    started = time.monotonic()
    last_cron = 0.0
    while time.monotonic() - started < limit:
        pending_spool = spooled(stage.whmcs)
        if pending_spool and time.monotonic() - last_cron > 15:
            load.cron()  # AfterCronJob flushes the spool
            last_cron = time.monotonic()
            continue
        try:
            waiting = unsettled(url)
        except sa.exc.OperationalError:
            waiting = -1
        if not pending_spool and waiting == 0:
            return time.monotonic() - started
        time.sleep(1.0)
    return time.monotonic() - started


def resync_plan(stage: Stage) -> tuple[int | None, dict[str, Any]]:
    done = vipgate(stage, "resync", "--dry-run", "--json")
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        return None, {"exit": done.returncode, "stderr": done.stderr[-500:]}
    return len(answer.get("changes", [])), {"exit": done.returncode,
                                            "summary": answer.get("summary"),
                                            "changes": answer.get("changes", [])[:10]}


def module_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            entries.append(json.loads(line))
    return entries


# --- report -------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def _s(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def report(results: dict[str, Any]) -> str:
    f = results["figures"]
    e = f["events"]
    lines = [f"vipgate soak: {results['duration_s']:.0f} s of load, {results['clients']} "
             f"clients, {results['actors']} actors at {results['rate']}/s, cron every "
             f"{results['cron_every']:.0f} s, {results['gunicorn_workers']} gunicorn workers, "
             f"{results['vipgate_workers']} vipgate workers", "",
             "| events sent | stored | applied | dead-lettered | lost | sent again: events "
             "(deliveries; in batches) | spooled by the stub | applied twice |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|",
             f"| {e['sent']} | {e['stored']} | {e['applied']} | {e['dead_lettered']} | "
             f"{e['lost']} | {e['events_delivered_more_than_once']} "
             f"({e['duplicate_deliveries']}; {e['duplicates_in_batches']}) | "
             f"{e['spooled_by_the_stub']} | {e['applied_twice']} |", ""]
    lat, lag = f["latency_ms"], f["apply_lag_s"]
    lines += ["| latency | count | p50 | p99 | max |", "|---|---:|---:|---:|---:|",
              f"| ingest, 202 (ms) | {lat['ingest_202']['count']} | "
              f"{_ms(lat['ingest_202']['p50'])} | {_ms(lat['ingest_202']['p99'])} | "
              f"{_ms(lat['ingest_202']['max'])} |",
              f"| synchronous answers, 200 (ms) | {lat['answers_200']['count']} | "
              f"{_ms(lat['answers_200']['p50'])} | {_ms(lat['answers_200']['p99'])} | "
              f"{_ms(lat['answers_200']['max'])} |",
              f"| PreCronJob, 202 after its reconcile (ms) | {lat['precron_202']['count']} | "
              f"{_ms(lat['precron_202']['p50'])} | {_ms(lat['precron_202']['p99'])} | "
              f"{_ms(lat['precron_202']['max'])} |",
              f"| batch from the outbox, 200 (ms) | {lat['batch_200']['count']} | "
              f"{_ms(lat['batch_200']['p50'])} | {_ms(lat['batch_200']['p99'])} | "
              f"{_ms(lat['batch_200']['max'])} |",
              f"| received → applied (s) | {lag['count']} | {_s(lag['p50'])} | "
              f"{_s(lag['p99'])} | {_s(lag['max'])} |",
              *(f"| … joining a backlog of {bucket} events (s) | {b['count']} | "
                f"{_s(b['p50'])} | {_s(b['p99'])} | {_s(b['max'])} |"
                for bucket, b in f["apply_lag_by_backlog_s"].items() if bucket != "max_backlog"),
              f"(the largest backlog an event joined: "
              f"{f['apply_lag_by_backlog_s']['max_backlog']} events)", "",
              "| fault | at (s) | lasted (s) | events in window | ingest back (s) | "
              "backlog applied (s) | recovery (s) |", "|---|---:|---:|---:|---:|---:|---:|"]
    t0 = results["started_at"]
    for r in f["recovery"]:
        lines.append(f"| {r['fault']} | {r['at_s'] - t0:.0f} | {r['lasted_s']:.1f} | "
                     f"{r['events_in_window']} | {_s(r['ingest_back_s'])} | "
                     f"{_s(r['backlog_applied_s'])} | {_s(r['recovery_s'])} |")
    lines += ["", "| process | pid | early MiB | late MiB | peak MiB | grew |",
              "|---|---:|---:|---:|---:|---|"]
    for m in f["memory"]:
        lines.append(f"| {m['role']} | {m['pid']} | {m['early_mib']} | {m['late_mib']} | "
                     f"{m['peak_mib']} | {'yes' if m['grew'] else 'no'} |")
    lines += ["", f"statuses of POST /hooks/whmcs: {f['statuses']}; of POST /hooks/whmcs/batch: "
              f"{f['batch_statuses']}; 5xx by fault: {f['5xx_by_fault']}",
              f"WHMCS cron runs: {len(results['crons'])}, each "
              f"{min(results['crons'], default=0):.0f}–{max(results['crons'], default=0):.0f} s"
              f"; vipgate worker restarts: {results['worker_restarts']}; gunicorn starts: "
              f"{results['gunicorn_starts']}",
              f"settled {results['settle_s']:.0f} s after the load stopped; resync --dry-run "
              f"planned {f['resync_dry_run_changes']} change(s)",
              f"actions done: {dict(sorted(results['actions']['done'].items()))}",
              f"actions failed (WHMCS refused or was down): "
              f"{dict(sorted(results['actions']['failed'].items()))}",
              f"hooks WHMCS fired: {results['hooks_fired']}"]
    if results["problems"]:
        lines += ["", "PROBLEMS:"] + [f"- {p}" for p in results["problems"]]
    else:
        lines += ["", "every check passed"]
    return "\n".join(lines)


# --- main -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=600, help="seconds of load (600)")
    p.add_argument("--clients", type=int, default=300, help="clients in WHMCS (300)")
    p.add_argument("--actors", type=int, default=4, help="actor threads (4)")
    p.add_argument("--rate", type=float, default=4.0, help="actions per second in all (4)")
    p.add_argument("--cron-every", type=float, default=None,
                   help="seconds between WHMCS cron runs (duration/10, at least 10)")
    p.add_argument("--gunicorn-workers", type=int, default=3)
    p.add_argument("--vipgate-workers", type=int, default=2)
    p.add_argument("--whmcs-down", type=float, default=None,
                   help="seconds WHMCS's API is down (60; 10%% of a shorter run)")
    p.add_argument("--mariadb-down", type=float, default=3.0)
    p.add_argument("--errors", type=int, default=30, help="API calls answered HTTP 500")
    p.add_argument("--php-kills", type=int, default=None,
                   help="php processes killed in their delivery after the response "
                        "(duration/60, at least 2)")
    p.add_argument("--hung", type=float, default=None,
                   help="seconds at least the bridge hangs (5%% of the run, at least 5), "
                        "and until a cron run went through the hang")
    p.add_argument("--fault-window", type=float, default=60.0,
                   help="longest wait for the API faults to be used up")
    p.add_argument("--no-faults", action="store_true")
    p.add_argument("--settle-timeout", type=float, default=480.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    p.add_argument("--keep", action="store_true", help="keep the working folder")
    args = p.parse_args(argv)
    if args.cron_every is None:
        args.cron_every = max(10.0, args.duration / 10)
    if args.php_kills is None:
        args.php_kills = max(2, int(args.duration / 60))
    if args.hung is None:
        args.hung = max(5.0, args.duration * 0.05)
    if args.whmcs_down is None:
        args.whmcs_down = min(60.0, max(5.0, args.duration * 0.1))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not php_available():
        print("soak: php with the curl and pdo_sqlite extensions is needed (apt-get install "
              "php-cli php-curl php-sqlite3)", file=sys.stderr)
        return 2

    def on_term(*_: object) -> None:
        raise Interrupted

    signal.signal(signal.SIGTERM, on_term)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the sandbox's request lines
    workdir = Path(tempfile.mkdtemp(prefix="vipgate-soak-"))
    log(f"working folder {workdir}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIPGATE_")}
    env["VIPGATE_CONFIG"] = str(workdir / "vipgate.ini")
    mariadb = MariaDb(workdir)
    whmcs: Whmcs | None = None
    gunicorn = Gunicorn(workdir, free_port(), args.gunicorn_workers, env)
    proxy = BridgeProxy(gunicorn.port)
    workers = Workers(args.vipgate_workers, env, workdir)
    load: soak_load.Load | None = None
    sampler: Sampler | None = None
    stop = threading.Event()
    code = 2
    try:
        mariadb.install()
        mariadb.start()
        mariadb.sql(f"CREATE DATABASE {DATABASE}")
        url = mariadb.url(DATABASE)
        log(f"MariaDB {mariadb.port} up; generating WHMCS with {args.clients} clients")
        whmcs = soak_load.make_whmcs(workdir / "whmcs.db", args.clients, free_port(), args.seed)
        # The ledger reads the stub's module log, which WHMCS keeps only in Module Debug Mode.
        whmcs.sandbox.configure(ModuleDebugMode=True)
        whmcs.serve()
        secret = webhook_secret()
        soak_load.write_config(workdir / "vipgate.ini", url, whmcs.url, secret, WHMCS_TIMEOUT)
        stage = Stage(workdir, mariadb, whmcs, gunicorn, workers, env, workdir / "vipgate.ini",
                      proxy)
        done = vipgate(stage, "db", "upgrade")
        if done.returncode:
            raise RuntimeError(f"vipgate db upgrade: {done.stderr.strip()}")
        gunicorn.start()
        proxy.start()  # the stub's bridge URL: pass-through, but for the "bridge hung" fault
        whmcs.install_stub(workdir / "whmcs", f"http://127.0.0.1:{proxy.port}", secret,
                           workdir / "module-log.jsonl", workdir / "whmcs.db")
        done = vipgate(stage, "resync", "--json", "--yes")  # installation day: repair the drift
        if done.returncode:
            raise RuntimeError(f"first resync: {done.stderr.strip()[-500:]}")
        first = json.loads(done.stdout)
        log(f"first resync applied {len(first['changes'])} change(s); starting the load")
        # what the installation day's resync made WHMCS fire is not the soak's
        before_load = {row.webhook_id for row in inbox_rows(url)}
        workers.start()
        fired_before = len(whmcs.sandbox.fired)
        sampler = Sampler({"gunicorn master": lambda: [gunicorn.pid] if gunicorn.pid else [],
                           "gunicorn worker": gunicorn.worker_pids,
                           "vipgate worker": workers.pids,
                           "mariadb": lambda: [mariadb.pid] if mariadb.pid else []})
        sampler.start()
        load = Load(whmcs, args.actors, args.rate, args.cron_every, args.seed)
        stage.load = load
        t0 = time.time()
        load.start()
        faults: list[ledger.Fault] = []
        fault_errors: list[str] = []
        plan = [] if args.no_faults else fault_plan(args.duration, args.whmcs_down)
        injector = threading.Thread(target=run_faults, args=(
            stage, plan, t0, stop, args, faults, fault_errors), name="soak-faults", daemon=True)
        injector.start()
        while time.time() - t0 < args.duration:
            time.sleep(1.0)
            if int(time.time() - t0) % 30 == 0:
                log(f"{time.time() - t0:.0f} s: actions {sum(load.done.values())}, failed "
                    f"{sum(load.failed.values())}, hooks fired "
                    f"{len(whmcs.sandbox.fired) - fired_before}")
        injector.join()  # the last fault may still be running
        load.stop()
        if not whmcs.up:
            whmcs.serve()
        log("load stopped; settling (cron until the spool is empty, then the inbox)")
        settle_s = settle(stage, load, url, args.settle_timeout)
        sampler.stop()
        log(f"settled in {settle_s:.0f} s; resync --dry-run")
        changes, plan_detail = resync_plan(stage)
        async_hooks = set(whitelist()) - SYNC_HOOKS
        fired_hooks = Counter(f.hook for f in whmcs.sandbox.fired[fired_before:])
        fired = {h: n for h, n in fired_hooks.items() if h in async_hooks}
        access = ledger.parse_access(
            gunicorn.access_log.read_text(errors="replace").splitlines())
        result = ledger.account(
            fired=fired, access=[r for r in access
                                 if r.at >= t0 - 1 and r.webhook_id not in before_load],
            module_log=module_log(workdir / "module-log.jsonl"),
            inbox=[r for r in inbox_rows(url) if r.webhook_id not in before_load],
            spooled=spooled(whmcs), audit=audit_rows(url), faults=faults,
            memory=sampler.samples, resync_changes=changes,
            warmup_s=min(60.0, args.duration * 0.15),
            batch_results=[(msg_id, status) for raw in proxy.batch_answers
                           for msg_id, status in ledger.parse_batch_answer(raw)
                           if msg_id not in before_load])
        problems = fault_errors + result.problems
        unexercised = sorted(set(whitelist()) - set(fired_hooks) - {"ClientClose"})
        if unexercised:
            problems.append(f"hooks never fired during the soak: {unexercised}")
        results = {
            "duration_s": args.duration, "clients": args.clients, "actors": args.actors,
            "rate": args.rate, "cron_every": args.cron_every,
            "gunicorn_workers": args.gunicorn_workers, "vipgate_workers": args.vipgate_workers,
            "started_at": t0, "settle_s": settle_s, "first_resync_changes": len(first["changes"]),
            "faults": [asdict(f) for f in faults], "figures": result.figures,
            "resync_dry_run": plan_detail,
            "actions": {"done": dict(load.done), "failed": dict(load.failed),
                        "skipped": dict(load.skipped), "failures": load.failures[:20]},
            "hooks_fired": dict(sorted(fired_hooks.items())),
            "crons": [round(seconds, 1) for _, seconds in load.crons],
            "worker_restarts": workers.restarts,
            "gunicorn_starts": gunicorn.starts, "problems": problems,
            "php_killed": [{"at": at, "hook": hook, "pid": pid}
                           for at, hook, pid in whmcs.forwarder.killed]
            if whmcs.forwarder is not None else [],
            "workdir": str(workdir),
        }
        print(report(results))
        if args.json:
            args.json.write_text(json.dumps(results, indent=2, default=str))
        code = 1 if problems else 0
    except (KeyboardInterrupt, Interrupted):
        log("interrupted")
        code = 130
    except Exception as exc:  # set-up failures: one line, exit 2
        log(f"soak failed: {type(exc).__name__}: {exc}")
        code = 2 if load is None else 1
    finally:
        stop.set()
        if load is not None:
            load.stop()
        if sampler is not None:
            sampler.stop()
        workers.stop()
        proxy.stop()
        gunicorn.stop()
        if whmcs is not None:
            whmcs.down()
            whmcs.sandbox.dispose()
        mariadb.stop()
        if args.keep or code not in (0, 130):
            log(f"kept {workdir} (logs: gunicorn.log, gunicorn-access.log, workers.log, "
                "module-log.jsonl, mariadb.log)")
        else:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
