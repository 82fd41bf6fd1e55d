#!/usr/bin/env python3
"""Resync benchmark: ``vipgate resync --dry-run --source db`` over a generated WHMCS of 100k
clients (and 1M with ``--million``), against the bare bulk scans and a naive per-client API
loop.

    python bench/resync/run.py [--runs 3] [--naive-clients 2000] [--skip-naive] [--million]
                               [--url URL] [--url-1m URL] [--json results.json]

Measures, printing a markdown report on stdout (progress on stderr):

1. floor: ``WhmcsDbReader(url).floor(window)`` in this process (the same bulk SQL queries as
   the resync, every row read, nothing built);
2. dry run: ``python -m bridge --config CFG resync --dry-run --source db --json`` as a child
   process (stdout to a file; the summary is parsed and the change lines counted): wall time,
   peak RSS and CPU of that child (``os.wait4``); and ``python -m bridge --help`` alone, the
   process start and imports;
3. naive: the sandbox WHMCS served over the same database, ``GetClientsDetails``,
   ``GetInvoices`` and ``GetClientsProducts`` for each of the first N clients, sequentially;
4. with ``--million``: floor and dry run on the 1M-client database.

Rounds interleave the measurements (floor, dry run, --help) so that a burst of other work on
the machine hits all of them alike; every figure is the median of ``--runs`` rounds. One
untimed floor pass first warms MariaDB's buffer pool and the page cache.

Exit codes: 0 every measurement ran (targets met or not: see the table), 1 a command failed
(its stderr is shown), 2 a database is missing or unreachable (the command that generates it
is shown), 130 interrupted. See README.md beside this file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import secrets
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))

import sqlalchemy as sa  # noqa: E402

from bridge.settings import load_settings, shown_url  # noqa: E402

DEFAULT_URL = "mysql+pymysql://root@127.0.0.1:3306/vipgate_bench"
DEFAULT_URL_1M = "mysql+pymysql://root@127.0.0.1:3306/vipgate_bench_1m"
DATA_TODAY = date(2026, 11, 21)  # bench/gen_whmcs.py's default --today
TIMEZONE = "America/Sao_Paulo"
CONFIG = """\
[bridge]
database_url = sqlite:///{store}
timezone = {timezone}
language = pt_BR

[whmcs]
database_url = {url}

[policy]
vip_group_id = 2
default_group_id = 1
min_spend = 100
min_tenure_months = 12
"""
# targets (the issue)
DRY_RUN_SECONDS = 5.0
DRY_RUN_MB = 250.0
SPEED_UP = 100.0
FLOOR_RATIO = 3.0
RSS_GROWTH = 1.5
OTHER_WARN = 0.15  # cores of other work on the machine that flag a run as disturbed


class Missing(Exception):
    """A database to measure is not there (exit 2)."""


class Failed(Exception):
    """A measured command failed (exit 1)."""


class Abort(Exception):
    """SIGTERM, turned into an exception so that the clean-up runs."""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- CPU accounting: what else the machine did during a measurement -------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _busy_seconds() -> float:
    """CPU time spent by the whole machine (all cores), hypervisor steal included."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def _process_seconds(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def _find_mariadb() -> int | None:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() in ("mariadbd", "mysqld"):
                    return int(entry.name)
    return None


@dataclass
class Cpu:
    """CPU seconds over one measurement: the measured child, this process, MariaDB, the
    rest of the machine (``other``), and ``other_cores`` = other / wall."""

    child: float = 0.0
    own: float = 0.0
    mariadb: float = 0.0
    other: float = 0.0
    other_cores: float = 0.0


class CpuMeter:
    def __init__(self) -> None:
        self.mariadb = _find_mariadb()

    @contextlib.contextmanager
    def measure(self) -> Iterator[Cpu]:
        """Fills the yielded Cpu on exit; set ``cpu.child`` inside for a child process."""
        cpu = Cpu()
        own0, db0, busy0 = self._own(), _process_seconds(self.mariadb), _busy_seconds()
        t0 = time.perf_counter()
        yield cpu
        wall = max(time.perf_counter() - t0, 1e-6)
        cpu.own = self._own() - own0
        cpu.mariadb = _process_seconds(self.mariadb) - db0
        cpu.other = max(0.0, _busy_seconds() - busy0 - cpu.own - cpu.mariadb - cpu.child)
        cpu.other_cores = cpu.other / wall

    @staticmethod
    def _own() -> float:
        t = os.times()
        return t.user + t.system


# --- memory of a process tree ------------------------------------------------------------------


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (``/proc/PID/task/TID/children``)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{current}/task"):
                with contextlib.suppress(OSError):
                    todo += [int(c) for c in
                             Path(f"/proc/{current}/task/{task}/children").read_text().split()]
    return found


def _rss_pss_kb(pid: int) -> tuple[int, int]:
    rss = pss = 0
    with contextlib.suppress(OSError), open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    return rss, pss


class TreeMemory:
    """Samples the memory of a process and its descendants (the resync may scan in several
    processes: ``wait4``'s ru_maxrss is the largest single process, not their sum). RSS
    summed counts the pages forked processes share once per process; PSS splits them."""

    INTERVAL = 0.25  # reading smaps_rollup costs CPU the measured run would miss

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.rss_kb = self.pss_kb = 0
        self.processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-memory", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = _tree(self.pid)
            sizes = [_rss_pss_kb(pid) for pid in pids]
            self.rss_kb = max(self.rss_kb, sum(r for r, _ in sizes))
            self.pss_kb = max(self.pss_kb, sum(p for _, p in sizes))
            self.processes = max(self.processes, sum(1 for r, _ in sizes if r))
            self._stop.wait(self.INTERVAL)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


# --- child processes ---------------------------------------------------------------------------


@dataclass
class ChildRun:
    argv: list[str]
    wall: float
    returncode: int
    maxrss_mb: float  # the largest single process of the tree (wait4)
    tree_rss_mb: float  # sampled peak of the tree's summed RSS
    tree_pss_mb: float  # sampled peak of the tree's summed PSS
    processes: int  # most processes seen at once in the tree
    cpu: Cpu
    stdout: Path
    stderr: Path


def child_env() -> dict[str, str]:
    """This environment without vipgate's settings overrides (the config file decides)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("VIPGATE_")}


def run_child(argv: list[str], out: Path, err: Path, meter: CpuMeter,
              timeout: float) -> ChildRun:
    """Run ``argv``; its wall time, exit code, CPU and largest RSS (``os.wait4``: this child
    and the descendants it waited for, not every child so far), and its tree's memory
    (sampled)."""
    with out.open("wb") as stdout, err.open("wb") as stderr, meter.measure() as cpu:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=stdout, stderr=stderr, env=child_env(), cwd=REPO)
        memory = TreeMemory(proc.pid)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            timer.cancel()
            memory.stop()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        cpu.child = usage.ru_utime + usage.ru_stime
    return ChildRun(argv, wall, proc.returncode, usage.ru_maxrss / 1024,
                    memory.rss_kb / 1024, memory.pss_kb / 1024, memory.processes, cpu, out, err)


def check_child(run: ChildRun, what: str) -> None:
    if run.returncode != 0:
        tail = run.stderr.read_text(errors="replace")[-4000:]
        raise Failed(f"{what} exited {run.returncode}: {shlex.join(run.argv)}\n"
                     f"--- its stderr (end) ---\n{tail}")


def parse_resync_json(path: Path) -> tuple[dict[str, Any], int]:
    """The ``summary`` object of ``resync --json`` and how many change lines came before it,
    reading the file line by line (at 1M clients it is tens of MB)."""
    changes, last = 0, ""
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.startswith('  {"client_id"'):
                changes += 1
            elif line.strip():
                last = line
    key = '"summary": '
    at = last.rfind(key)
    if at < 0:
        raise Failed(f"no summary in {path}: last line {last[:200]!r}")
    summary, _ = json.JSONDecoder().raw_decode(last, at + len(key))
    return summary, changes


# --- the measurements --------------------------------------------------------------------------


@dataclass
class DryRun:
    wall: float
    maxrss_mb: float  # largest single process
    tree_rss_mb: float
    tree_pss_mb: float  # what the targets are checked against
    processes: int
    cpu: Cpu
    inner_seconds: float  # the summary's "seconds": the scan and plan inside the process
    clients: int
    changes: dict[str, int]
    change_lines: int
    complete: bool


@dataclass
class Timed:
    seconds: float
    cpu: Cpu
    rows: int = 0
    maxrss_mb: float = 0.0


@dataclass
class Dataset:
    label: str
    url: str
    clients: int
    config: Path
    floor_warmup: float = 0.0
    floors: list[Timed] = field(default_factory=list)
    dry_runs: list[DryRun] = field(default_factory=list)


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args, self.tmp = args, tmp
        self.meter = CpuMeter()
        self.store = tmp / "vipgate.db"
        self.helps: list[Timed] = []
        self.naive: list[Timed] = []
        self.naive_ids: list[int] = []
        self.commands: list[str] = []
        self.today = datetime.now(ZoneInfo(TIMEZONE)).date()
        self.processes = 1  # [resync] processes, as vipgate reads the generated config

    def python_bridge(self, config: Path, *rest: str) -> list[str]:
        return [sys.executable, "-m", "bridge", "--config", str(config), *rest]

    def dataset(self, label: str, url: str) -> Dataset:
        config = self.tmp / f"vipgate-{label}.ini"
        text = CONFIG.format(store=self.store, timezone=TIMEZONE, url=url)
        if self.args.processes is not None:
            text += f"\n[resync]\nprocesses = {self.args.processes}\n"
        config.write_text(text)
        resync = load_settings(config, environ={}).resync
        self.processes = getattr(resync, "processes", 1)  # older vipgate: one process
        return Dataset(label, url, count_clients(url, label), config)

    def window(self, config: Path) -> Any:
        from bridge.resync.snapshot import Window

        # the resync's own window: today in the config's time zone, its policy settings
        return Window.of(self.today, load_settings(config, environ={}).policy)

    def floor(self, ds: Dataset) -> Timed:
        from bridge.resync.source_db import WhmcsDbReader

        window = self.window(ds.config)
        reader = WhmcsDbReader(ds.url)
        try:
            with self.meter.measure() as cpu:
                started = time.perf_counter()
                rows = reader.floor(window)
                seconds = time.perf_counter() - started
        finally:
            reader.dispose()
        return Timed(seconds, cpu, rows=rows)

    def dry_run(self, ds: Dataset, n: int) -> DryRun:
        argv = self.python_bridge(ds.config, "resync", "--dry-run", "--source", "db", "--json")
        out, err = self.tmp / f"resync-{ds.label}-{n}.json", self.tmp / f"resync-{ds.label}.err"
        run = run_child(argv, out, err, self.meter, self.args.timeout)
        check_child(run, f"vipgate resync ({ds.label})")
        summary, lines = parse_resync_json(out)
        out.unlink()
        return DryRun(run.wall, run.maxrss_mb, run.tree_rss_mb, run.tree_pss_mb,
                      run.processes, run.cpu, float(summary["seconds"]),
                      int(summary["clients"]), dict(summary["changes"]), lines,
                      bool(summary["complete"]))

    def help(self) -> Timed:
        argv = [sys.executable, "-m", "bridge", "--help"]
        run = run_child(argv, self.tmp / "help.out", self.tmp / "help.err", self.meter, 60)
        check_child(run, "python -m bridge --help")
        return Timed(run.wall, run.cpu, maxrss_mb=run.maxrss_mb)

    def upgrade_store(self, config: Path) -> None:
        argv = self.python_bridge(config, "db", "upgrade")
        run = run_child(argv, self.tmp / "upgrade.out", self.tmp / "upgrade.err", self.meter,
                        120)
        check_child(run, "vipgate db upgrade")
        self.commands.append(f"{shlex.join(argv)}   # once, before measuring ({run.wall:.2f} s)")

    def measure_dataset(self, ds: Dataset, runs: int, with_help: bool) -> None:
        log(f"{ds.label}: {ds.clients:,} clients at {shown_url(ds.url)}; warm-up floor pass")
        ds.floor_warmup = self.floor(ds).seconds
        log(f"{ds.label}: warm-up floor {ds.floor_warmup:.2f} s")
        for n in range(1, runs + 1):
            floor = self.floor(ds)
            ds.floors.append(floor)
            log(f"{ds.label} round {n}/{runs}: floor {floor.seconds:.2f} s "
                f"({floor.rows:,} rows)")
            dry = self.dry_run(ds, n)
            ds.dry_runs.append(dry)
            log(f"{ds.label} round {n}/{runs}: dry run {dry.wall:.2f} s, "
                f"{dry.tree_pss_mb:.0f} MB PSS in {dry.processes} processes, "
                f"{dry.clients:,} clients, "
                f"{sum(dry.changes[k] for k in ('group', 'ticket_priority', 'ticket_note')):,}"
                " changes")
            if with_help:
                self.helps.append(self.help())
                log(f"round {n}/{runs}: python -m bridge --help {self.helps[-1].seconds:.2f} s")

    def measure_naive(self, ds: Dataset, runs: int, count: int) -> None:
        from bridge.sandbox.serve import start_sandbox
        from bridge.sandbox.whmcs import Sandbox
        from bridge.settings import default_settings
        from bridge.whmcs import WhmcsClient
        from bridge.whmcs.schema import tblapi_roles, tblclients, tbldeviceauth

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request
        sandbox = Sandbox(ds.url)
        identifier = f"vipgate-bench-{secrets.token_hex(4)}"
        secret = secrets.token_hex(16)
        credential = sandbox.add_api_credential(
            identifier, secret, ["GetClientsDetails", "GetInvoices", "GetClientsProducts"],
            description="bench/resync/run.py (removed at the end)")
        served = None
        try:
            with sandbox.engine.connect() as conn:
                self.naive_ids = list(conn.execute(sa.select(tblclients.c.id)
                                                   .order_by(tblclients.c.id).limit(count))
                                      .scalars())
            served = start_sandbox(sandbox)
            settings = default_settings().replace(whmcs={
                "url": served.url, "identifier": identifier, "secret": secret}).whmcs
            with WhmcsClient(settings) as client:
                naive_loop(client, self.naive_ids[:20])  # warm-up: connection, first requests
                for n in range(1, runs + 1):
                    with self.meter.measure() as cpu:
                        started = time.perf_counter()
                        naive_loop(client, self.naive_ids)
                        seconds = time.perf_counter() - started
                    self.naive.append(Timed(seconds, cpu))
                    log(f"naive round {n}/{runs}: {len(self.naive_ids):,} clients in "
                        f"{seconds:.2f} s ({seconds / len(self.naive_ids) * 1000:.2f} ms each)")
        finally:
            if served is not None:
                served.stop()
            with sandbox.engine.begin() as conn:
                roles = conn.execute(sa.select(tbldeviceauth.c.role_ids)
                                     .where(tbldeviceauth.c.id == credential)).scalar()
                conn.execute(tbldeviceauth.delete().where(tbldeviceauth.c.id == credential))
                for role in json.loads(roles or "[]"):
                    conn.execute(tblapi_roles.delete().where(tblapi_roles.c.id == int(role)))
            sandbox.engine.dispose()


def naive_loop(client: Any, ids: list[int]) -> None:
    """What a resync without bulk reads would do: three API reads per client, one by one."""
    for client_id in ids:
        client.call("GetClientsDetails", {"clientid": client_id, "stats": False})
        client.call("GetInvoices", {"userid": client_id, "limitnum": 1000})
        client.call("GetClientsProducts", {"clientid": client_id})


# --- databases and machine ---------------------------------------------------------------------


def count_clients(url: str, label: str) -> int:
    """Clients in ``url``'s WHMCS; Missing (with the command that makes it) when the server,
    the database or its tables are not there."""
    clients = 1_000_000 if label == "1M" else 100_000
    make = f"python bench/gen_whmcs.py --clients {clients} --url {shlex.quote(url)}"
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            found = int(conn.execute(sa.text("SELECT COUNT(*) FROM tblclients")).scalar() or 0)
    except sa.exc.OperationalError as exc:
        reason = str(exc.orig).splitlines()[0]
        if "Unknown database" in reason:
            raise Missing(f"the {label} database is missing ({shown_url(url)}): {reason}\n"
                          f"generate it with: {make}") from None
        raise Missing(f"cannot reach the {label} database at {shown_url(url)}: {reason}\n"
                      "(is MariaDB running? the database is made with: " + make + ")") from None
    except sa.exc.ProgrammingError as exc:
        raise Missing(f"the {label} database at {shown_url(url)} has no WHMCS tables: "
                      f"{str(exc.orig).splitlines()[0]}\ngenerate it with: {make}") from None
    finally:
        engine.dispose()
    if not found:
        raise Missing(f"the {label} database at {shown_url(url)} has no clients\n"
                      f"generate it with: {make}")
    return found


def git_state() -> str:
    """HEAD's short hash, and "+ changes" when the working tree differs (bridge/ is being
    worked on while this runs: the figures are of that tree)."""
    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], cwd=REPO, capture_output=True, text=True,
                              check=False)
        return done.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "?"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "bridge")
    return head + (" + uncommitted changes in bridge/" if dirty else "")


def machine(urls: list[str]) -> dict[str, Any]:
    info: dict[str, Any] = {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": next((line.split(":", 1)[1].strip() for line in
                     Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name")), platform.processor()),
        "memory_gb": round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_average_at_start": os.getloadavg(),
        "git": git_state(),
    }
    engine = sa.create_engine(urls[0])
    try:
        with engine.connect() as conn:
            info["mariadb"] = conn.execute(sa.text("SELECT VERSION()")).scalar()
            pool = int(conn.execute(sa.text("SELECT @@innodb_buffer_pool_size")).scalar())
            info["innodb_buffer_pool_size_mb"] = pool // 2**20
            sizes = {}
            for url in urls:
                name = sa.engine.make_url(url).database
                size = conn.execute(sa.text(
                    "SELECT SUM(data_length + index_length) FROM information_schema.tables "
                    "WHERE table_schema = :db"), {"db": name}).scalar()
                sizes[name] = round(int(size or 0) / 2**20)
            info["database_size_mb"] = sizes
    finally:
        engine.dispose()
    return info


# --- the report --------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def total_changes(dry: DryRun) -> int:
    return sum(dry.changes[k] for k in ("group", "ticket_priority", "ticket_note"))


def report(bench: Bench, info: dict[str, Any], sets: list[Dataset]) -> str:
    args = bench.args
    sets = [ds for ds in sets if ds.dry_runs]
    if not sets:
        return ""
    small = sets[0]
    big = sets[1] if len(sets) > 1 else None
    lines = ["# vipgate resync benchmark", ""]
    lines.append(f"{datetime.now().isoformat(timespec='seconds')}; today (resync, "
                 f"{TIMEZONE}) {bench.today}" + (
                     "" if bench.today == DATA_TODAY else
                     f" — NOT the data's day {DATA_TODAY}: the plan differs from the usual one"))
    lines.append("")
    load = ", ".join(f"{v:.2f}" for v in info["load_average_at_start"])
    lines.append(f"Machine: {info['nproc']} cores ({info['cpu']}), {info['memory_gb']} GB, "
                 f"Linux {info['kernel']}; Python {info['python']}; MariaDB {info['mariadb']}, "
                 f"innodb_buffer_pool_size {info['innodb_buffer_pool_size_mb']} MB; databases "
                 + ", ".join(f"{k} {v:,} MB" for k, v in info["database_size_mb"].items())
                 + f"; load average at start {load}.")
    lines.append("")
    lines.append(f"vipgate at git {info.get('git', '?')}; `[resync] processes` = "
                 f"{bench.processes}" + (" (--processes)" if args.processes else
                                         " (vipgate's default)") + ".")
    lines.append("")
    lines.append("Each figure is the median of the runs below: " + ", ".join(
        f"{len(ds.dry_runs)} for {ds.label}" for ds in sets)
        + (f", {len(bench.naive)} naive" if bench.naive else "") + ".")
    lines.append("")
    lines += ["| measurement | figure | target | met? |", "|---|---|---|---|"]

    floor = median([t.seconds for t in small.floors])
    dry = median([d.wall for d in small.dry_runs])
    rss = median([d.tree_pss_mb for d in small.dry_runs])
    rss_sum = median([d.tree_rss_mb for d in small.dry_runs])
    rss_one = median([d.maxrss_mb for d in small.dry_runs])
    procs = max(d.processes for d in small.dry_runs)
    inner = median([d.inner_seconds for d in small.dry_runs])
    start = median([t.seconds for t in bench.helps])
    start_rss = median([t.maxrss_mb for t in bench.helps])
    rows = small.floors[0].rows
    per_client = dry / small.clients
    lines.append(f"| bare scan floor, {small.clients:,} clients (`floor()`, {rows:,} rows) | "
                 f"{floor:.2f} s | | |")
    lines.append(f"| process start + imports (`python -m bridge --help`) | {start:.2f} s, "
                 f"{start_rss:.0f} MB | | |")
    lines.append(f"| resync dry run via db, {small.clients:,} clients, wall | {dry:.2f} s "
                 f"(in-process {inner:.2f} s) | ≤ {DRY_RUN_SECONDS:g} s | "
                 f"{yes(dry <= DRY_RUN_SECONDS)} |")
    lines.append(f"| resync dry run, peak memory: PSS of its {procs} "
                 f"process{'es' if procs > 1 else ''} "
                 f"(RSS summed {rss_sum:.0f} MB; largest process {rss_one:.0f} MB) | "
                 f"{rss:.0f} MB | ≤ {DRY_RUN_MB:g} MB | {yes(rss <= DRY_RUN_MB)} |")
    lines.append(f"| dry run / floor | {dry / floor:.2f}× | ≤ {FLOOR_RATIO:g}× | "
                 f"{yes(dry / floor <= FLOOR_RATIO)} |")
    lines.append(f"| (dry run − process start) / floor | {(dry - start) / floor:.2f}× | | |")
    if bench.naive:
        naive = median([t.seconds for t in bench.naive])
        naive_client = naive / len(bench.naive_ids)
        speed_up = naive_client / per_client
        lines.append(f"| naive API loop, {len(bench.naive_ids):,} clients × 3 calls | "
                     f"{naive:.2f} s = {naive_client * 1000:.2f} ms/client | | |")
        lines.append(f"| naive extrapolated to {small.clients:,} clients | "
                     f"{naive_client * small.clients:,.0f} s "
                     f"({naive_client * small.clients / 3600:.2f} h) | | |")
        lines.append(f"| speed-up per client (naive {naive_client * 1000:.2f} ms vs resync "
                     f"{per_client * 1000:.3f} ms) | {speed_up:,.0f}× | ≥ {SPEED_UP:g}× | "
                     f"{yes(speed_up >= SPEED_UP)} |")
    else:
        lines.append(f"| speed-up per client vs naive API loop | skipped (--skip-naive); resync "
                     f"{per_client * 1000:.3f} ms/client | ≥ {SPEED_UP:g}× | – |")
    if big is not None:
        big_floor = median([t.seconds for t in big.floors])
        big_dry = median([d.wall for d in big.dry_runs])
        big_rss = median([d.tree_pss_mb for d in big.dry_runs])
        big_sum = median([d.tree_rss_mb for d in big.dry_runs])
        big_one = median([d.maxrss_mb for d in big.dry_runs])
        done = all(d.complete and d.clients == big.clients for d in big.dry_runs)
        lines.append(f"| bare scan floor, {big.clients:,} clients ({big.floors[0].rows:,} "
                     f"rows) | {big_floor:.2f} s | | |")
        lines.append(f"| resync dry run, {big.clients:,} clients, wall | {big_dry:.2f} s "
                     f"(in-process {median([d.inner_seconds for d in big.dry_runs]):.2f} s; "
                     f"{big_dry / big.clients * 1e6:.0f} µs/client vs "
                     f"{per_client * 1e6:.0f} at 100k) | completes | {yes(done)} |")
        lines.append(f"| resync dry run {big.clients:,}, peak memory: PSS (RSS summed "
                     f"{big_sum:.0f} MB; largest process {big_one:.0f} MB) | {big_rss:.0f} MB "
                     f"({big_rss / rss:.2f}× the 100k figure) | ≤ {RSS_GROWTH:g}× "
                     f"({rss * RSS_GROWTH:.0f} MB) | {yes(big_rss <= rss * RSS_GROWTH)} |")
        lines.append(f"| dry run / floor, {big.clients:,} | {big_dry / big_floor:.2f}× | "
                     f"≤ {FLOOR_RATIO:g}× | {yes(big_dry / big_floor <= FLOOR_RATIO)} |")
    lines.append("")

    lines += ["## Runs", "",
              "`other`: the CPU the rest of the machine used meanwhile, in cores on average "
              f"(flagged above {OTHER_WARN}); `db`: MariaDB's CPU seconds (other clients' "
              "queries included); `child`: the dry run's CPU seconds (its worker processes "
              "included); memory: peaks sampled every 0.25 s over the dry run and its worker "
              "processes (PSS shares the pages forked processes have in common; RSS summed "
              "counts them once per process), and the largest single process (`wait4`).", "",
              "| set | run | floor s | floor db / other | dry run s | in-process s "
              "| PSS / RSS summed / largest MB (processes) | child CPU s | db CPU s "
              "| dry run other | clients | changes (group / priority / note) |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for ds in sets:
        for n, (fl, d) in enumerate(zip(ds.floors, ds.dry_runs, strict=False), 1):
            lines.append(
                f"| {ds.label} | {n} | {fl.seconds:.2f} | {fl.cpu.mariadb:.2f} / "
                f"{_other(fl.cpu)} | {d.wall:.2f} | "
                f"{d.inner_seconds:.2f} | {d.tree_pss_mb:.0f} / {d.tree_rss_mb:.0f} / "
                f"{d.maxrss_mb:.0f} ({d.processes}) | {d.cpu.child:.2f} | "
                f"{d.cpu.mariadb:.2f} | {_other(d.cpu)} | {d.clients:,} | "
                f"{total_changes(d):,} ({d.changes['group']:,} / "
                f"{d.changes['ticket_priority']:,} / {d.changes['ticket_note']:,}) |")
        lines.append(f"| {ds.label} | warm-up | {ds.floor_warmup:.2f} | | | | | | | | | |")
    lines.append("")
    if bench.helps:
        lines.append("`python -m bridge --help`: " + ", ".join(
            f"{t.seconds:.2f} s ({t.maxrss_mb:.0f} MB)" for t in bench.helps) + ".")
    if bench.naive:
        lines.append(f"Naive loop ({len(bench.naive_ids):,} clients, ids "
                     f"{bench.naive_ids[0]}–{bench.naive_ids[-1]}): " + ", ".join(
                         f"{t.seconds:.2f} s (other {_other(t.cpu)})" for t in bench.naive)
                     + ".")
    checks = [_check(ds) for ds in sets]
    if any(checks):
        lines += ["", "Consistency problems:", *[f"- {c}" for c in checks if c]]
    lines.append("")

    lines += ["## Commands", "", "```sh", shlex.join([sys.executable, *sys.argv]),
              *bench.commands, "```", "", f"`{small.config.name}` (and the same with the 1M "
              "URL for 1M):", "", "```ini",
              CONFIG.format(store="<tmpdir>/vipgate.db", timezone=TIMEZONE,
                            url=shown_url(small.url)).rstrip()
              + (f"\n\n[resync]\nprocesses = {args.processes}" if args.processes else ""),
              "```", "",
              "The floor: `WhmcsDbReader(url).floor(Window.of(today, policy))` in the "
              "benchmark's process (the resync's bulk queries over every client at once, every row "
              "read, nothing built; the resync itself splits them by client id range when it "
              "scans in several processes). The "
              "naive loop: the sandbox WHMCS (`Sandbox(url)` + `start_sandbox`, werkzeug on "
              "127.0.0.1, in the benchmark's process) and `WhmcsClient.call` of "
              "`GetClientsDetails` (clientid, stats 0), `GetInvoices` (userid, limitnum 1000) "
              "and `GetClientsProducts` (clientid) per client, sequentially."]
    return "\n".join(lines) + "\n"


def _other(cpu: Cpu) -> str:
    text = f"{cpu.other_cores:.2f}"
    return f"**{text}**" if cpu.other_cores > OTHER_WARN else text


def _check(ds: Dataset) -> str:
    """The dry runs should agree with each other and with the database."""
    problems = []
    for n, d in enumerate(ds.dry_runs, 1):
        if d.clients != ds.clients:
            problems.append(f"run {n}: {d.clients:,} clients, the database has {ds.clients:,}")
        if not d.complete:
            problems.append(f"run {n}: not complete")
        if d.change_lines != total_changes(d):
            problems.append(f"run {n}: {d.change_lines:,} change lines, the summary says "
                            f"{total_changes(d):,}")
    if len({json.dumps(d.changes, sort_keys=True) for d in ds.dry_runs}) > 1:
        problems.append("the runs planned different changes")
    return f"{ds.label}: " + "; ".join(problems) if problems else ""


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/resync/run.py",
        description="Benchmark `vipgate resync --dry-run --source db` against the bare bulk "
                    "scans and a naive per-client API loop; prints a markdown report.",
        epilog="Databases: python bench/gen_whmcs.py --clients 100000 (and --clients 1000000 "
               "--url ..._1m). See bench/resync/README.md.")
    parser.add_argument("--url", default=DEFAULT_URL,
                        help="the 100k-client WHMCS database (default: %(default)s)")
    parser.add_argument("--url-1m", default=DEFAULT_URL_1M,
                        help="the 1M-client WHMCS database, with --million "
                             "(default: %(default)s)")
    parser.add_argument("--runs", type=int, default=3,
                        help="rounds per measurement; figures are medians (default: 3)")
    parser.add_argument("--naive-clients", type=int, default=2000, metavar="N",
                        help="clients in the naive API loop (default: 2000)")
    parser.add_argument("--skip-naive", action="store_true", help="skip the naive API loop")
    parser.add_argument("--million", action="store_true",
                        help="also the 1M-client database (slow: minutes)")
    parser.add_argument("--million-runs", type=int, default=None, metavar="N",
                        help="rounds on the 1M database (default: --runs)")
    parser.add_argument("--processes", type=int, default=None, metavar="N",
                        help="write [resync] processes = N into the config (default: not "
                             "set, vipgate's default)")
    parser.add_argument("--timeout", type=float, default=1800,
                        help="seconds before a dry run is killed (default: %(default)s)")
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="also write every figure as JSON to PATH")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.naive_clients < 1:
        parser.error("--runs and --naive-clients must be at least 1")
    args.million_runs = args.million_runs or args.runs
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def on_term(_signum: int, _frame: Any) -> None:
        raise Abort

    signal.signal(signal.SIGTERM, on_term)
    urls = [args.url] + ([args.url_1m] if args.million else [])
    with tempfile.TemporaryDirectory(prefix="vipgate-resync-bench-") as tmp:
        bench = Bench(args, Path(tmp))
        info: dict[str, Any] = {}
        sets: list[Dataset] = []
        try:
            sets.append(bench.dataset("100k", args.url))
            if args.million:
                sets.append(bench.dataset("1M", args.url_1m))
            info = machine(urls)
            if bench.today != DATA_TODAY:
                log(f"note: today is {bench.today}, the data is as of {DATA_TODAY}")
            bench.upgrade_store(sets[0].config)
            bench.commands.append(shlex.join(bench.python_bridge(
                Path("CFG"), "resync", "--dry-run", "--source", "db", "--json"))
                + " > out.json   # per round, per database")
            bench.commands.append(shlex.join([sys.executable, "-m", "bridge", "--help"])
                                  + "   # per round")
            bench.measure_dataset(sets[0], args.runs, with_help=True)
            if not args.skip_naive:
                bench.measure_naive(sets[0], args.runs, args.naive_clients)
            if args.million:
                bench.measure_dataset(sets[1], args.million_runs, with_help=False)
        except Missing as exc:
            print(f"run.py: {exc}", file=sys.stderr)
            return 2
        except Failed as exc:
            print(f"run.py: {exc}", file=sys.stderr)
            code = 1
        except (KeyboardInterrupt, Abort):
            print("run.py: interrupted", file=sys.stderr)
            code = 130
        else:
            code = 0
    # what was measured, also after a failure (partial: fewer runs, or no 1M part)
    print(report(bench, info, sets), end="")
    if args.json:
        args.json.write_text(json.dumps(to_json(bench, info, sets), indent=2) + "\n")
    return code


def to_json(bench: Bench, info: dict[str, Any], sets: list[Dataset]) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        return json.loads(json.dumps(value, default=str))

    return plain({"machine": info, "today": bench.today, "argv": sys.argv,
                  "datasets": [{**asdict(ds), "config": ds.config.name,
                                "url": shown_url(ds.url)} for ds in sets],
                  "help": [asdict(t) for t in bench.helps],
                  "naive": {"clients": len(bench.naive_ids),
                            "runs": [asdict(t) for t in bench.naive]}})


if __name__ == "__main__":
    sys.exit(main())
