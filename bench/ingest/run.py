#!/usr/bin/env python3
"""Ingest benchmark: signed events per second and latency of ``POST /hooks/whmcs`` under
gunicorn (sync workers, MariaDB store), beside a hello-world Flask app under the same gunicorn
settings, on the same machine, in the same run.

    python bench/ingest/run.py [--json results.json] [--whatif]

What it does, in order (about two and a half minutes with the defaults):

1. waits (up to ``--wait-quiet`` s) for the machine to be idle; creates a throw-away MariaDB
   database ``vipgate_bench_<random>`` and runs the schema with ``Store(url).upgrade()``;
2. starts gunicorns on free loopback ports, same settings (``--workers 4 --worker-class
   sync``): the bridge (``bridge.web.app:create_app()``, settings from ``VIPGATE_*`` variables), the
   hello-world app (``hello:app``, beside this file) and, with ``--whatif``, the bridge with
   the inbox written the way it was before session 5 (``whatif.py``);
3. peak throughput, closed loop: wrk with ``requests.lua``, which walks a file of signed,
   unique requests generated right before each phase; a warm-up, then rounds alternating the
   endpoints until ``--rounds`` of them were not disturbed by other work on the machine;
4. latency at half of each endpoint's peak: the open-loop fixed-rate generator ``openloop.c``
   (built with cc at start; ``--openloop python`` for the asyncio one in ``openloop.py``);
5. checks the status mix and that the inbox holds one row per 202 (per phase);
6. prints the figures (and writes them as JSON with ``--json``); stops the gunicorns and drops
   the database, also on error, Ctrl-C, SIGTERM or when ``--time-limit`` is reached.

Everything talks to 127.0.0.1 only. See README.md beside this file.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

import openloop  # noqa: E402
import signedreq  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from bridge.settings import check_webhook_secret  # noqa: E402
from bridge.store import Store  # noqa: E402
from bridge.store.meta import new_webhook_secret  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
# a phase is flagged "disturbed" when the machine did other work (or the hypervisor stole
# time) worth more than this many cores on average over the phase, or in any one second
OTHER_LOAD_WARN = 0.15
OTHER_PEAK_WARN = 0.5


class Abort(Exception):
    """Raised by the signal handlers so that the clean-up in ``finally`` runs."""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- CPU accounting (read-only /proc) ----------------------------------------------------------


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            if ppid == pid:
                found.append(int(entry.name))
    return found


def _mariadb_pid() -> int | None:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in ("mariadbd", "mysqld"):
                    return int(entry.name)
            except (FileNotFoundError, ProcessLookupError):
                continue
    return None


def _machine_cpu() -> dict[str, float]:
    """Machine-wide seconds of CPU from /proc/stat: busy (all but idle/iowait), idle, steal."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = values[:8]
    return {"machine_busy": (user + nice + system + irq + softirq + steal) / CLK_TCK,
            "machine_idle": (idle + iowait) / CLK_TCK, "machine_steal": steal / CLK_TCK}


def _tree_cpu(root: int, extra: int | None) -> tuple[float, set[int]]:
    """CPU seconds of ``root`` and all its descendants (and of ``extra``), and their pids."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            pid = int(entry.name)
            parents[pid] = int(fields[1])
            cpu[pid] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    mine = {root} | ({extra} if extra else set())
    grew = True
    while grew:
        more = {pid for pid, ppid in parents.items() if ppid in mine and pid not in mine}
        mine |= more
        grew = bool(more)
    mine &= set(cpu)
    return sum(cpu[pid] for pid in mine), mine


class CpuMeter:
    """CPU used during a phase, in cores: the gunicorn under test, MariaDB, our children (the
    load generator), and "other": everything else the machine did, hypervisor steal included.

    Besides the averages over the phase, a thread samples every second the CPU of this
    script's whole process tree plus MariaDB against the machine's busy time, so that a burst
    of other work shows up even when the average hides it (``other_peak``, ``steal_peak``).
    """

    def __init__(self, server: Gunicorn) -> None:
        self.server = server
        self.mariadb = _mariadb_pid()
        self.seconds: list[tuple[float, float]] = []  # per second: other, steal
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def snapshot(self) -> dict[str, float]:
        child = resource.getrusage(resource.RUSAGE_CHILDREN)
        me = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "time": time.monotonic(),
            "server": self.server.cpu_seconds(),
            "mariadb": _proc_cpu(self.mariadb) if self.mariadb else 0.0,
            "loadgen": child.ru_utime + child.ru_stime,
            "self": me.ru_utime + me.ru_stime,
            **_machine_cpu(),
        }

    def _sample(self) -> None:
        prev_time = time.monotonic()
        prev_cpu, prev_pids = _tree_cpu(os.getpid(), self.mariadb)
        prev_machine = _machine_cpu()
        while not self._stop.wait(1.0):
            now = time.monotonic()
            cpu, pids = _tree_cpu(os.getpid(), self.mariadb)
            machine = _machine_cpu()
            wall = now - prev_time
            if prev_pids <= pids:  # skip a second in which one of ours exited (its CPU is lost)
                busy = machine["machine_busy"] - prev_machine["machine_busy"]
                steal = machine["machine_steal"] - prev_machine["machine_steal"]
                self.seconds.append((max(0.0, busy - (cpu - prev_cpu)) / wall, steal / wall))
            prev_time, prev_cpu, prev_pids, prev_machine = now, cpu, pids, machine

    def __enter__(self) -> CpuMeter:
        self.before = self.snapshot()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.after = self.snapshot()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def cores(self) -> dict[str, float]:
        before, after = self.before, self.after
        wall = after["time"] - before["time"]
        cores = {k: (after[k] - before[k]) / wall for k in before if k != "time"}
        cores["other"] = max(0.0, cores["machine_busy"] - cores["server"] - cores["mariadb"]
                             - cores["loadgen"] - cores["self"])
        cores["other_peak"] = max((o for o, _ in self.seconds), default=0.0)
        cores["steal_peak"] = max((st for _, st in self.seconds), default=0.0)
        return {k: round(v, 2) for k, v in cores.items()}


def disturbed(cores: dict[str, float]) -> bool:
    """Whether other work (or steal) on the machine was enough to skew a phase's figures."""
    return cores["other"] > OTHER_LOAD_WARN or cores["other_peak"] > OTHER_PEAK_WARN


def wait_for_quiet(limit: float, threshold: float = OTHER_LOAD_WARN) -> float:
    """Wait (at most ``limit`` seconds) for a 3 s window in which the machine is nearly idle;
    returns the busy cores of the last window. Other work on the machine skews every figure."""
    deadline = time.monotonic() + limit
    while True:
        before, t0 = _machine_cpu(), time.monotonic()
        time.sleep(3)
        after, t1 = _machine_cpu(), time.monotonic()
        busy = (after["machine_busy"] - before["machine_busy"]) / (t1 - t0)
        if busy <= threshold or time.monotonic() >= deadline:
            return round(busy, 2)
        log(f"machine busy with other work ({busy:.2f} cores); waiting for it to calm down")


# --- gunicorn -------------------------------------------------------------------------------


class Gunicorn:
    def __init__(self, name: str, app: str, pythonpath: str, port: int, workers: int,
                 env: dict[str, str], workdir: Path) -> None:
        self.name, self.app, self.pythonpath, self.port = name, app, pythonpath, port
        self.workers, self.env, self.workdir = workers, env, workdir
        self.log_path = workdir / f"gunicorn-{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        return [sys.executable, "-m", "gunicorn", "--workers", str(self.workers),
                "--worker-class", "sync", "--bind", f"127.0.0.1:{self.port}",
                "--pythonpath", self.pythonpath, "--graceful-timeout", "5",
                "--log-level", "warning", self.app]

    def start(self) -> None:
        with open(self.log_path, "wb") as out:
            # own session: the clean-up can signal exactly this gunicorn and its workers
            self.proc = subprocess.Popen(self.command(), cwd=self.workdir, env=self.env,
                                         stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_ready(self, probe_path: str, timeout: float = 30.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn {self.name} exited: {self.log_tail()}")
            booted = len(_children(self.proc.pid)) >= self.workers
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{probe_path}",
                                            timeout=2) as response:
                    answered = response.status == 200
            except OSError:
                answered = False
            if booted and answered:
                return
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn {self.name} not ready after {timeout}s: {self.log_tail()}")

    def cpu_seconds(self) -> float:
        if self.proc is None:
            return 0.0
        return _proc_cpu(self.proc.pid) + sum(_proc_cpu(p) for p in _children(self.proc.pid))

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)  # the master stops its workers
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the session this script created
            proc.wait(timeout=5)
        # a worker that outlived its master would still be in the group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


# --- phases ---------------------------------------------------------------------------------


def write_request_file(path: Path, secret: str, prefix: str, count: int,
                       threads: int, batch: int = 0) -> list[int]:
    """``count`` signed requests (of ``batch`` events each to the batch endpoint when
    ``batch``), split in ``threads`` contiguous slices; returns offsets."""
    per = -(-count // threads)
    offsets = [0]
    with open(path, "wb") as out:
        for t in range(threads):
            indices = range(t * per, (t + 1) * per)
            for raw in (signedreq.generate_batches(secret, prefix, indices, batch) if batch
                        else signedreq.generate(secret, prefix, indices)):
                out.write(raw)
                out.write(b"\x1e")
            offsets.append(out.tell())
    return offsets


def wrk_phase(args: argparse.Namespace, workdir: Path, server: Gunicorn, secret: str,
              prefix: str, seconds: float, capacity: int, batch: int = 0) -> dict[str, Any]:
    """Closed loop on ``server``: single events, or batches of ``batch`` events."""
    path = workdir / "requests.bin"
    started = time.monotonic()
    offsets = write_request_file(path, secret, prefix, capacity, args.threads, batch)
    generated = time.monotonic() - started
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds:g}s",
           "--timeout", "10s", "-s", str(HERE / "requests.lua"),
           f"http://127.0.0.1:{server.port}{signedreq.PATH}", "--", str(path),
           *map(str, offsets)]
    with CpuMeter(server) as meter:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60,
                              check=False)
    path.unlink()
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCHJSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    result = json.loads(line[len("BENCHJSON "):])
    result["prefix"] = prefix
    result["capacity"] = capacity
    result["generate_seconds"] = round(generated, 2)
    result["rate"] = round(result["requests"] / (result["duration_us"] / 1e6), 1)
    result["batch"] = batch
    result["events_rate"] = round(result["rate"] * max(batch, 1), 1)
    result["in_flight_at_stop"] = result["sent"] - result["requests"]
    result["cpu_cores"] = meter.cores()
    result["command"] = " ".join([*cmd[:9], "URL", "--", "FILE", "OFFSETS..."])
    return result


def summarize_rounds(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Median over the rounds of each figure (rounds are also kept as they are)."""
    def med(values: list[float]) -> float:
        return statistics.median(values)

    return {
        "rate": round(med([r["rate"] for r in results]), 1),
        "rates": [r["rate"] for r in results],
        "events_rate": round(med([r.get("events_rate", r["rate"]) for r in results]), 1),
        "latency_us": {p: med([r["latency_us"][p] for r in results])
                       for p in ("p50", "p90", "p99", "p999")},
        "cpu_cores": {k: round(med([r["cpu_cores"][k] for r in results]), 2)
                      for k in results[0]["cpu_cores"]},
    }


def build_openloop(workdir: Path) -> Path:
    """Compile openloop.c into the work directory; returns the binary."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError("no C compiler for openloop.c: apt-get install gcc, or run with "
                           "--openloop python")
    binary = workdir / "openloop"
    subprocess.run([compiler, "-O2", "-o", str(binary), str(HERE / "openloop.c")], check=True,
                   timeout=120)
    return binary


def openloop_phase(args: argparse.Namespace, workdir: Path, binary: Path | None,
                   server: Gunicorn, secret: str, prefix: str, rate: float) -> dict[str, Any]:
    with CpuMeter(server) as meter:
        if binary is not None:
            result = openloop.run_c(binary, workdir, server.port, signedreq.PATH, rate,
                                    args.half_seconds, secret, prefix)
        else:
            result = openloop.run(server.port, signedreq.PATH, rate, args.half_seconds, secret,
                                  prefix, args.openloop_procs)
    result["prefix"] = prefix
    cores = meter.cores()
    # the generator runs in forked children of this process; its own figure is exact
    # the generator runs in forked children, reaped before the second snapshot, so "loadgen"
    # covers it (signing included); this is its share while sending only
    cores["generator_sending"] = result["cpu_share_of_one_core"]
    result["cpu_cores"] = cores
    return result


# --- facts and checks -----------------------------------------------------------------------


def machine_facts(admin_url: str) -> dict[str, Any]:
    cpu_model = next((line.split(":", 1)[1].strip()
                      for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), platform.processor())
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    engine = sa.create_engine(admin_url + "/")
    try:
        with engine.connect() as conn:
            row = conn.execute(sa.text(
                "SELECT VERSION(), @@innodb_flush_log_at_trx_commit, @@log_bin, "
                "@@innodb_buffer_pool_size")).one()
    finally:
        engine.dispose()
    versions = {name: importlib.metadata.version(name)
                for name in ("gunicorn", "Flask", "Werkzeug", "SQLAlchemy", "PyMySQL",
                             "marshmallow")}
    return {
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model,
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": versions,
        "wrk": (wrk.stdout + wrk.stderr).splitlines()[0] if (wrk.stdout + wrk.stderr) else "?",
        "mariadb": row[0],
        "innodb_flush_log_at_trx_commit": int(row[1]),
        "log_bin": int(row[2]),
        "innodb_buffer_pool_mb": int(row[3]) // 2**20,
    }


def inbox_rows(db_url: str) -> dict[str, Any]:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            total, distinct = conn.execute(sa.text(
                "SELECT COUNT(*), COUNT(DISTINCT webhook_id) FROM inbox")).one()
            per_phase = {p: int(n) for p, n in conn.execute(sa.text(
                "SELECT SUBSTRING_INDEX(webhook_id, '_', 1) AS p, COUNT(*) FROM inbox "
                "GROUP BY p"))}
            states = {s: int(n) for s, n in conn.execute(sa.text(
                "SELECT state, COUNT(*) FROM inbox GROUP BY state"))}
    finally:
        engine.dispose()
    return {"total": int(total), "distinct_ids": int(distinct), "per_phase": per_phase,
            "states": states}


def check_batches(phases: dict[str, dict[str, Any]], rows: dict[str, Any]) -> list[str]:
    """One line per batch phase: every answer a 200, the inbox holding size x 200s rows."""
    lines = []
    for name, result in phases.items():
        size = result["batch"]
        answered = int(result["statuses"].get("200", 0))
        stored = rows["per_phase"].get(result["prefix"], 0)
        other = {k: v for k, v in result["statuses"].items() if k != "200"}
        in_flight = int(result.get("in_flight_at_stop", 0))
        ok = (answered * size <= stored <= (answered + in_flight) * size and not other
              and not result.get("exhausted"))
        lines.append(f"{'ok  ' if ok else 'FAIL'} {name}: {answered} x 200 of {size} events, "
                     f"other statuses {other or 'none'}, inbox rows {stored} (200s x {size} + "
                     f"up to {in_flight} batches in flight when wrk stopped)")
    return lines


def check_ingest(phases: dict[str, dict[str, Any]], rows: dict[str, Any]) -> list[str]:
    """One line per phase of a bridge endpoint, prefixed 'ok' or 'FAIL'."""
    lines = []
    for name, result in phases.items():
        accepted = int(result["statuses"].get("202", 0))
        stored = rows["per_phase"].get(result["prefix"], 0)
        other = {k: v for k, v in result["statuses"].items() if k != "202"}
        in_flight = int(result.get("in_flight_at_stop", 0)) + int(result.get("unanswered", 0))
        ok = accepted <= stored <= accepted + in_flight and not other \
            and not result.get("exhausted")
        lines.append(f"{'ok  ' if ok else 'FAIL'} {name}: {accepted} x 202, other statuses "
                     f"{other or 'none'}, inbox rows {stored} (202s + up to {in_flight} "
                     f"requests in flight when the generator stopped)")
    return lines


# --- report ---------------------------------------------------------------------------------


def ms(us: float) -> str:
    return f"{us / 1000:.1f}"


LABELS = {"hello": "hello-world", "ingest": "ingest",
          "whatif": "ingest, inbox as before session 5 (whatif.py)"}


def report(results: dict[str, Any]) -> str:
    names = list(results["peak"])
    peak, half, a = results["peak"], results["half"], results["args"]
    used = peak["hello"]["rounds_used"]
    out = [f"peak, closed loop: wrk -t{a['threads']} -c{a['connections']} "
           f"-d{a['peak_seconds']:g}s per round, rounds alternating {' / '.join(names)} "
           f"until {a['rounds']} undisturbed (at most {max(a['rounds'], a['max_rounds'])})",
           "| round | " + " | ".join(f"{n} req/s" for n in names) + " | "
           + " | ".join(f"{n} / hello" for n in names[1:])
           + " | other load, cores: mean (worst second) | used |",
           "|---:|" + "---:|" * (2 * len(names) - 1) + "---|---|"]
    for k, r in enumerate(results["rounds"]):
        out.append(f"| {k + 1} | " + " | ".join(f"{r[n]['rate']:.0f}" for n in names) + " | "
                   + " | ".join(f"{r[n]['rate'] / r['hello']['rate']:.1%}" for n in names[1:])
                   + " | " + " / ".join(f"{r[n]['cpu_cores']['other']} ("
                                         f"{r[n]['cpu_cores']['other_peak']})" for n in names)
                   + f" | {'yes' if k + 1 in used else 'no (disturbed)'} |")
    out += ["", f"| endpoint (median of rounds {used}) | req/s | p50 ms | p99 ms | "
                "cpu cores: gunicorn / mariadb / wrk / other | cpu ms per request: "
                "gunicorn / mariadb |", "|---|---:|---:|---:|---|---|"]
    for name in names:
        r = peak[name]
        c = r["cpu_cores"]
        out.append(f"| {LABELS[name]} | {r['rate']:.0f} | {ms(r['latency_us']['p50'])} | "
                   f"{ms(r['latency_us']['p99'])} | {c['server']} / {c['mariadb']} / "
                   f"{c['loadgen']} / {c['other']} | {c['server'] / r['rate'] * 1000:.2f} / "
                   f"{c['mariadb'] / r['rate'] * 1000:.2f} |")
    out += ["", f"half of each peak, open loop ({a['half_seconds']:g} s, generator "
                f"{half['hello'].get('generator', 'python asyncio')}, fresh connection per "
                "request, latency from due time):",
            "| endpoint | target req/s | achieved | p50 ms | p99 ms | p99.9 ms | max ms | "
            "seconds with p99 > 15 ms | generator lag p99 ms | "
            "cpu cores: gunicorn / mariadb / generator / other (worst second) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for name in names:
        r = half[name]
        d, c = r["latency_ms"]["from_due"], r["cpu_cores"]
        out.append(f"| {LABELS[name]} | {r['rate_target']:.0f} | {r['achieved_rate']:.0f} | "
                   f"{d['p50']:.1f} | {d['p99']:.1f} | {d['p999']:.1f} | {d['max']:.1f} | "
                   f"{r['seconds_p99_over_15ms']} of {len(r['per_second'])} | "
                   f"{r['lag_ms']['p99']:.1f} | {c['server']} / {c['mariadb']} / "
                   f"{c['generator_sending']} / {c['other']} ({c['other_peak']}) |")
    out.append("")
    for name in names[1:]:
        ratio = peak[name]["rate"] / peak["hello"]["rate"]
        ratios = [r[name]["rate"] / r["hello"]["rate"] for r in results["rounds"]
                  if rounds_index(results, r) in used]
        p99 = half[name]["latency_ms"]["from_due"]["p99"]
        out += [f"target 1 ({LABELS[name]}): >= 50% of hello-world peak: {ratio:.1%} "
                f"({peak[name]['rate']:.0f} / {peak['hello']['rate']:.0f} req/s; per round "
                f"{', '.join(f'{x:.1%}' for x in ratios)}) -> "
                f"{'MET' if ratio >= 0.5 else 'MISSED'}",
                f"target 2 ({LABELS[name]}): p99 <= 15 ms at half peak "
                f"({half[name]['rate_target']:.0f} req/s): {p99:.1f} ms -> "
                f"{'MET' if p99 <= 15 else 'MISSED'}"]
    batch_peak = results.get("batch_peak") or {}
    if batch_peak:
        single = peak["ingest"]["rate"]
        out += ["", "batched ingest (POST /hooks/whmcs/batch), closed loop like the peak, "
                f"same rounds, same gunicorn; median of rounds {used}:",
                "| batch size | batches/s | events/s | x single ingest (per round) | "
                "p50 ms | p99 ms per batch | cpu cores: gunicorn / mariadb / wrk / other | "
                "cpu ms per event: gunicorn / mariadb |", "|---:|---:|---:|---|---:|---:|---|---|"]
        for name, r in batch_peak.items():
            c = r["cpu_cores"]
            per_round = [x[name]["events_rate"] / x["ingest"]["rate"] for x in results["rounds"]
                         if rounds_index(results, x) in used]
            out.append(f"| {name[5:]} | {r['rate']:.1f} | {r['events_rate']:.0f} | "
                       f"{r['events_rate'] / single:.1f} ("
                       f"{', '.join(f'{x:.1f}' for x in per_round)}) | "
                       f"{ms(r['latency_us']['p50'])} | {ms(r['latency_us']['p99'])} | "
                       f"{c['server']} / {c['mariadb']} / {c['loadgen']} / {c['other']} | "
                       f"{c['server'] / r['events_rate'] * 1000:.3f} / "
                       f"{c['mariadb'] / r['events_rate'] * 1000:.3f} |")
        best = max(r["events_rate"] for r in batch_peak.values())
        out += ["", f"target 3 (batched): >= 10,000 events/s: {best:.0f} -> "
                f"{'MET' if best >= 10000 else 'MISSED'}",
                f"target 4 (batched): >= 5x the single-event path in the same run: "
                f"{best / single:.1f}x ({best:.0f} / {single:.0f}) -> "
                f"{'MET' if best >= 5 * single else 'MISSED'}"]
    out += ["", "checks:", *results["checks"]]
    return "\n".join(out)


def rounds_index(results: dict[str, Any], round_: dict[str, Any]) -> int:
    return results["rounds"].index(round_) + 1


# --- main -----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Ingest benchmark: POST /hooks/whmcs vs hello-world under gunicorn.")
    parser.add_argument("--mysql-url", default=os.environ.get(
        "VIPGATE_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306"),
                        help="MariaDB server URL without database (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--warmup-seconds", type=float, default=3)
    parser.add_argument("--rounds", type=int, default=3,
                        help="peak rounds (hello, ingest, hello, ingest, ...)")
    parser.add_argument("--max-rounds", type=int, default=6,
                        help="more rounds, up to this many, while others were disturbed")
    parser.add_argument("--peak-seconds", type=float, default=10, help="per round")
    parser.add_argument("--half-seconds", type=float, default=20)
    parser.add_argument("--half-retries", type=int, default=1,
                        help="repeat a disturbed open-loop phase up to this many times")
    parser.add_argument("--openloop", choices=("c", "python"), default="c",
                        help="open-loop generator: openloop.c (built with cc) or the asyncio "
                             "one in openloop.py (5-10x more CPU per request)")
    parser.add_argument("--openloop-procs", type=int, default=1,
                        help="processes of the open-loop generator")
    parser.add_argument("--max-rate", type=int, default=8000,
                        help="upper bound on hello-world req/s, sizes the request files")
    parser.add_argument("--wait-quiet", type=float, default=120,
                        help="wait up to this many seconds for the machine to be idle first")
    parser.add_argument("--time-limit", type=int, default=480,
                        help="abort (and clean up) after this many seconds")
    parser.add_argument("--whatif", action="store_true",
                        help="add a third server: the bridge with the inbox written as "
                             "before session 5 (whatif.py, bench only), measured like the "
                             "others")
    parser.add_argument("--batch", default="",
                        help="comma-separated batch sizes, e.g. 100,500: each round also "
                             "drives POST /hooks/whmcs/batch on the bridge's gunicorn with "
                             "batches of that many events (closed loop, like the peak)")
    parser.add_argument("--batch-max-rate", type=int, default=40000,
                        help="upper bound on batched events/s, sizes the batch request files")
    parser.add_argument("--json", type=Path, help="also write all figures to this file")
    parser.add_argument("--report", type=Path, metavar="JSON",
                        help="only print the tables of an earlier run's --json file")
    args = parser.parse_args()
    if args.report:
        print(report(json.loads(args.report.read_text())))
        return 0

    args.batch_sizes = [int(x) for x in args.batch.split(",") if x.strip()]
    if not all(1 <= size <= 500 for size in args.batch_sizes):
        parser.error("--batch: sizes from 1 to 500")
    if args.peak_seconds + 60 > 290 or args.half_seconds + 30 > 290:
        parser.error("phases must stay well inside the bridge's 300 s timestamp tolerance")

    def abort(signum: int, _frame: Any) -> None:
        raise Abort(f"stopped by {signal.Signals(signum).name}")

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM):
        signal.signal(sig, abort)
    signal.alarm(args.time_limit)

    run_id = secrets.token_hex(4)
    db_name = f"vipgate_bench_{run_id}"
    admin_url = args.mysql_url.rstrip("/")
    db_url = f"{admin_url}/{db_name}"
    secret = new_webhook_secret()
    check_webhook_secret(secret)
    signedreq.self_check(secret)

    servers: list[Gunicorn] = []
    created_db = False
    workdir = Path(tempfile.mkdtemp(prefix="vipgate-bench-"))
    results: dict[str, Any] = {"run_id": run_id, "args": {k: str(v) if isinstance(v, Path)
                                                          else v for k, v in vars(args).items()}}
    try:
        results["machine"] = machine_facts(admin_url)
        log(f"machine: {results['machine']['cpus']} cpus, python {results['machine']['python']}"
            f", gunicorn {results['machine']['versions']['gunicorn']}, "
            f"{results['machine']['mariadb']}")

        binary = build_openloop(workdir) if args.openloop == "c" else None
        results["busy_before_start"] = busy = wait_for_quiet(args.wait_quiet)
        log(f"machine load before start: {busy} cores busy")
        admin = sa.create_engine(admin_url + "/")
        with admin.begin() as conn:
            conn.execute(sa.text(f"CREATE DATABASE `{db_name}` CHARACTER SET utf8mb4"))
        admin.dispose()
        created_db = True
        store = Store(db_url)
        revision = store.upgrade()
        store.dispose()
        log(f"database {db_name} at revision {revision}")

        env = {k: v for k, v in os.environ.items()
               if not k.startswith("VIPGATE_") and k != "PROMETHEUS_MULTIPROC_DIR"}
        bridge_env = dict(env, VIPGATE_BRIDGE_DATABASE_URL=db_url,
                          VIPGATE_WEBHOOK_SECRETS=secret)
        endpoints = {
            "hello": Gunicorn("hello", "hello:app", str(HERE), free_port(), args.workers, env,
                              workdir),
            "ingest": Gunicorn("ingest", "bridge.web.app:create_app()", str(REPO), free_port(),
                               args.workers, bridge_env, workdir),
        }
        if args.whatif:  # the bridge with the inbox written as before session 5 (whatif.py)
            endpoints["whatif"] = Gunicorn("whatif", "whatif:create_app()", f"{HERE},{REPO}",
                                           free_port(), args.workers, bridge_env, workdir)
        for name, server in endpoints.items():
            servers.append(server)
            server.start()
            server.wait_ready("/hello" if name == "hello" else "/healthz")
        results["gunicorn_command"] = " ".join(endpoints["ingest"].command()[1:])
        log("gunicorn up: " + ", ".join(f"{n} on {s.port}" for n, s in endpoints.items())
            + f" ({args.workers} sync workers each)")

        warm: dict[str, Any] = {}
        for name, server in endpoints.items():
            log(f"{name}: warm-up {args.warmup_seconds:g}s")
            warm[name] = wrk_phase(args, workdir, server, secret, f"{run_id}-warm{name}",
                                   args.warmup_seconds,
                                   int(args.max_rate * (args.warmup_seconds + 2)))
        # peak: rounds alternate between the servers, so that a drift of the machine (other
        # load, a slower host) touches all alike; the figures are the median of the rounds
        rounds: list[dict[str, Any]] = []
        # every request file is sized for --max-rate: rates swing with other load on the
        # machine, so a file sized from an earlier round could run out (costs ~2 s to sign)
        capacity = int(args.max_rate * (args.peak_seconds + 2))
        while (sum(not r["disturbed"] for r in rounds) < args.rounds
               and len(rounds) < max(args.rounds, args.max_rounds)):
            k = len(rounds)
            this: dict[str, Any] = {}
            for name, server in endpoints.items():
                this[name] = r = wrk_phase(args, workdir, server, secret,
                                           f"{run_id}-peak{k}{name}", args.peak_seconds,
                                           capacity)
                log(f"round {k + 1} {name}: {r['rate']:.0f} req/s, "
                    f"p50 {ms(r['latency_us']['p50'])} ms, p99 {ms(r['latency_us']['p99'])} ms,"
                    f" statuses {r['statuses']}, exhausted {r['exhausted']}, other load "
                    f"{r['cpu_cores']['other']} cores")
            for size in args.batch_sizes:
                name = f"batch{size}"
                this[name] = r = wrk_phase(
                    args, workdir, endpoints["ingest"], secret, f"{run_id}-peak{k}{name}",
                    args.peak_seconds, int(args.batch_max_rate * (args.peak_seconds + 2)
                                           / size) + args.connections, batch=size)
                log(f"round {k + 1} {name}: {r['rate']:.1f} batches/s = "
                    f"{r['events_rate']:.0f} events/s, p50 {ms(r['latency_us']['p50'])} ms, "
                    f"p99 {ms(r['latency_us']['p99'])} ms, statuses {r['statuses']}, "
                    f"exhausted {r['exhausted']}, other load {r['cpu_cores']['other']} cores")
            this["disturbed"] = any(disturbed(this[n]["cpu_cores"]) for n in this)
            rounds.append(this)
        # the figures: the median of the undisturbed rounds, or of all if none was
        used = [r for r in rounds if not r["disturbed"]] or rounds
        peak = {name: summarize_rounds([r[name] for r in used]) for name in endpoints}
        batch_peak = {f"batch{size}": summarize_rounds([r[f"batch{size}"] for r in used])
                      for size in args.batch_sizes}
        results["batch_peak"] = batch_peak
        for name in peak:
            peak[name]["rounds_used"] = [rounds.index(r) + 1 for r in used]
        half: dict[str, Any] = {}
        half_tries: dict[str, list[dict[str, Any]]] = {}
        for name, server in endpoints.items():
            rate = peak[name]["rate"] / 2
            half_tries[name] = []
            for attempt in range(1 + args.half_retries):
                log(f"{name}: open loop at {rate:.0f} req/s for {args.half_seconds:g}s")
                r = openloop_phase(args, workdir, binary, server, secret,
                                   f"{run_id}-half{attempt}{name}", rate)
                half_tries[name].append(r)
                d = r["latency_ms"]["from_due"]
                log(f"{name}: achieved {r['achieved_rate']:.0f} req/s, p50 {d['p50']:.1f} ms, "
                    f"p99 {d['p99']:.1f} ms, statuses {r['statuses']}, generator "
                    f"{r['cpu_share_of_one_core']:.0%} of a core, other load "
                    f"{r['cpu_cores']['other']} cores")
                if not disturbed(r["cpu_cores"]):
                    break
            # the first undisturbed attempt, else the least disturbed one
            half[name] = min(half_tries[name], key=lambda x: (
                disturbed(x["cpu_cores"]), x["cpu_cores"]["other_peak"]))
        results.update(warm=warm, rounds=rounds, peak=peak, half=half, half_tries=half_tries)

        rows = inbox_rows(db_url)
        results["inbox"] = rows
        phases: dict[str, dict[str, dict[str, Any]]] = {}
        for name in endpoints:
            phases[name] = {f"{name} warm-up": warm[name]}
            for k, r in enumerate(rounds):
                phases[name][f"{name} peak round {k + 1}"] = r[name]
            for k, r in enumerate(half_tries[name]):
                phases[name][f"{name} half-peak try {k + 1}"] = r
        checks = []
        for name in endpoints:
            if name != "hello":
                checks += check_ingest(phases[name], rows)
        checks += check_batches({f"{name} peak round {k + 1}": r[name]
                                 for k, r in enumerate(rounds) for name in batch_peak}, rows)
        checks.append(f"{'ok  ' if rows['total'] == rows['distinct_ids'] else 'FAIL'} inbox: "
                      f"{rows['total']} rows, {rows['distinct_ids']} distinct webhook ids, "
                      f"states {rows['states']}")
        for label, r in phases["hello"].items():
            other = {k: v for k, v in r["statuses"].items() if k != "200"}
            ok = not other and not r.get("exhausted")
            checks.append(f"{'ok  ' if ok else 'FAIL'} {label}: statuses {r['statuses']}")
        everything = {label: r for name in endpoints for label, r in phases[name].items()}
        everything.update({f"{name} peak round {k + 1}": r[name]
                           for k, r in enumerate(rounds) for name in batch_peak})
        for label, r in everything.items():
            errors = {k: v for k, v in r.get("errors", {}).items() if v}
            if errors:
                checks.append(f"FAIL {label}: wrk socket errors {errors}")
            if r.get("unanswered"):
                checks.append(f"FAIL {label}: {r['unanswered']} requests unanswered")
        for label, r in everything.items():
            c = r["cpu_cores"]
            if disturbed(c):
                checks.append(f"warn {label}: other processes or hypervisor steal took "
                              f"{c['other']} cores on average, {c['other_peak']} in the worst "
                              "second (figures disturbed)")
        for server in servers:
            tail = server.log_tail()
            if tail.strip():
                checks.append(f"note: gunicorn {server.name} log:\n{tail}")
        results["checks"] = checks
        text = report(results)
        results["report"] = text
        print(text)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")
        return 1 if any(c.startswith("FAIL") for c in checks) else 0
    finally:
        signal.alarm(0)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)  # let the clean-up finish
        for server in servers:
            try:
                server.stop()
            except Exception as exc:  # keep going: the rest must be cleaned up too
                log(f"could not stop gunicorn {server.name}: {exc}")
        if created_db:
            try:
                admin = sa.create_engine(admin_url + "/")
                with admin.begin() as conn:
                    conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{db_name}`"))
                admin.dispose()
                log(f"dropped database {db_name}")
            except Exception as exc:
                log(f"could not drop database {db_name}: {exc}")
        for leftover in workdir.iterdir():
            leftover.unlink()
        workdir.rmdir()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Abort as exc:
        log(f"aborted: {exc}")
        sys.exit(130)
