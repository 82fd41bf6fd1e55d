"""The soak's processes: a MariaDB server of its own, the bridge under gunicorn, the
``vipgate worker`` processes (kept alive like systemd's ``Restart=always``), and a sampler of
their memory. Everything on 127.0.0.1, every process in a session of its own so that the
clean-up can signal exactly what it started.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pymysql


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                found.append(int(entry.name))
    return sorted(found)


def rss_kib(pid: int) -> int | None:
    """Resident memory of ``pid`` in KiB, None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def kill_first(pids: list[int]) -> int | None:
    """SIGKILL the first of ``pids``; its pid (None when there is none)."""
    if not pids:
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pids[0], signal.SIGKILL)
    return pids[0]


def _stop_group(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM,
                timeout: float = 15.0) -> None:
    """Signal ``proc``; SIGKILL its whole session when it lingers."""
    if proc is None:
        return
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # anything it left behind in its session


# --- MariaDB -------------------------------------------------------------------------------


class MariaDb:
    """A MariaDB server of the soak's own (its own data folder and port), so that restarting
    it disturbs nothing else on the machine (the test suite's server, say)."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.datadir = workdir / "mariadb"
        self.port = port or free_port()
        self.log_path = workdir / "mariadb.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.binary = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
        self.installer = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")

    def url(self, database: str) -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.port}/{database}"

    def install(self) -> None:
        if not Path(self.binary).exists() or self.installer is None:
            raise RuntimeError("MariaDB's server is not installed (mariadbd and "
                               "mariadb-install-db; apt-get install mariadb-server)")
        with open(self.log_path, "ab") as out:
            subprocess.run([self.installer, "--no-defaults", f"--datadir={self.datadir}",
                            "--user=root", "--auth-root-authentication-method=normal",
                            "--skip-test-db"], stdout=out, stderr=subprocess.STDOUT,
                           check=True, timeout=120)

    def start(self, timeout: float = 60.0) -> None:
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [self.binary, "--no-defaults", f"--datadir={self.datadir}",
                 f"--port={self.port}", "--bind-address=127.0.0.1",
                 f"--socket={self.datadir}/mysqld.sock", "--user=root",
                 f"--pid-file={self.datadir}/mysqld.pid", "--skip-log-bin",
                 "--innodb-buffer-pool-size=128M", "--max-connections=200",
                 "--innodb-flush-log-at-trx-commit=1"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mariadbd exited with {self.proc.returncode}; see "
                                   f"{self.log_path}")
            if self.answers():
                return
            time.sleep(0.1)
        raise RuntimeError(f"mariadbd did not answer within {timeout:.0f} s")

    def answers(self) -> bool:
        try:
            pymysql.connect(host="127.0.0.1", port=self.port, user="root",
                            connect_timeout=1).close()
        except pymysql.MySQLError:
            return False
        return True

    def sql(self, statement: str) -> None:
        conn = pymysql.connect(host="127.0.0.1", port=self.port, user="root", connect_timeout=5)
        try:
            with conn.cursor() as cur:
                cur.execute(statement)
            conn.commit()
        finally:
            conn.close()

    def crash(self) -> None:
        """SIGKILL: what a power cut or the OOM killer does (InnoDB recovers on start)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        _stop_group(self.proc, timeout=60)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None


# --- the bridge under gunicorn ----------------------------------------------------------------

# Every request: time, status, microseconds, webhook id, method and path (one line each).
ACCESS_FORMAT = '%(t)s %(s)s %(D)s %({webhook-id}i)s %(m)s %(U)s'


class Gunicorn:
    """``bridge.web.app:create_app()`` under gunicorn (sync workers), settings from
    ``VIPGATE_CONFIG``, an access log with each request's webhook id and time taken."""

    def __init__(self, workdir: Path, port: int, workers: int, env: dict[str, str]) -> None:
        self.workdir, self.port, self.workers, self.env = workdir, port, workers, env
        self.access_log = workdir / "gunicorn-access.log"
        self.error_log = workdir / "gunicorn.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def command(self) -> list[str]:
        return [sys.executable, "-m", "gunicorn", "--workers", str(self.workers),
                "--worker-class", "sync", "--bind", f"127.0.0.1:{self.port}",
                "--timeout", "150", "--graceful-timeout", "20",
                "--access-logfile", str(self.access_log), "--access-logformat", ACCESS_FORMAT,
                "--error-logfile", str(self.error_log), "--log-level", "info",
                "bridge.web.app:create_app()"]

    def start(self, timeout: float = 60.0) -> None:
        self.proc = subprocess.Popen(self.command(), cwd=self.workdir, env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}; see "
                                   f"{self.error_log}")
            if len(children(self.proc.pid)) >= self.workers and self.healthy():
                return
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn not ready within {timeout:.0f} s; see {self.error_log}")

    def healthy(self) -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz",
                                        timeout=2) as answer:
                return answer.status == 200
        except OSError:
            return False

    def worker_pids(self) -> list[int]:
        return children(self.proc.pid) if self.proc is not None else []

    def kill_worker(self) -> int | None:
        """SIGKILL one worker (gunicorn's master starts another); its pid."""
        return kill_first(self.worker_pids())

    def stop(self) -> None:
        _stop_group(self.proc, timeout=30)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None


# --- the vipgate workers ------------------------------------------------------------------


@dataclass
class Workers:
    """``count`` ``vipgate worker`` processes, each started again ``restart_delay`` seconds
    after it dies (as systemd's ``Restart=always`` with ``RestartSec=1`` would)."""

    count: int
    env: dict[str, str]
    workdir: Path
    restart_delay: float = 1.0
    idle: float = 0.2  # ``vipgate worker --idle``: seconds between looks at an empty inbox
    procs: list[subprocess.Popen[bytes] | None] = field(default_factory=list)
    restarts: int = 0
    deaths: list[tuple[float, int, int]] = field(default_factory=list)  # (time, pid, code)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _spawn(self) -> subprocess.Popen[bytes]:
        out = open(self.workdir / "workers.log", "ab")  # noqa: SIM115 (the child keeps it)
        # BENCH_PROFILE_DIR: each worker runs under cProfile and writes its profile there
        # when it stops (docs/PERFORMANCE.md, "Events to applied")
        profile = os.environ.get("BENCH_PROFILE_DIR")
        run = ["-m", "cProfile", "-o",
               f"{profile}/worker-{time.time_ns()}.prof"] if profile else []
        try:
            return subprocess.Popen(
                [sys.executable, *run, "-m", "bridge", "worker", "--idle", str(self.idle)],
                cwd=self.workdir, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            out.close()

    def start(self) -> None:
        with self._lock:
            self.procs = [self._spawn() for _ in range(self.count)]
        self._thread = threading.Thread(target=self._watch, name="soak-workers", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            for i, proc in enumerate(list(self.procs)):
                if proc is not None and proc.poll() is not None:
                    self.deaths.append((time.time(), proc.pid, proc.returncode))
                    if self._stop.wait(self.restart_delay):
                        return
                    with self._lock:
                        self.procs[i] = self._spawn()
                        self.restarts += 1

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p is not None and p.poll() is None]

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until each worker has said it is draining the inbox (its imports and connections
        done), so that what comes next is not timed with their start-up."""
        log = self.workdir / "workers.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace") if log.exists() else ""
            if text.count("draining the inbox") >= self.count:
                return
            time.sleep(0.1)
        raise RuntimeError(f"the vipgate workers did not start within {timeout:.0f} s; see "
                           f"{log}")

    def kill_one(self) -> int | None:
        return kill_first(self.pids())

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for proc in self.procs:
            _stop_group(proc, timeout=20)


# --- memory -------------------------------------------------------------------------------


@dataclass
class Sampler:
    """Every ``every`` seconds, the resident memory of each process of each role."""

    roles: dict[str, Callable[[], list[int]]]
    every: float = 2.0
    samples: list[tuple[float, str, int, int]] = field(default_factory=list)  # t, role, pid, KiB
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def sample(self) -> None:
        now = time.time()
        for role, pids in self.roles.items():
            for pid in pids():
                kib = rss_kib(pid)
                if kib is not None:
                    self.samples.append((now, role, pid, kib))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


# --- a proxy in front of the bridge (the "bridge hung" fault) ---------------------------------


ANSWER_COPY_LIMIT = 1 << 20  # bytes of an answer kept (a batch of 500 answers in ~40 KiB)


class BridgeProxy:
    """A TCP proxy on ``port`` in front of gunicorn, the bridge URL the stub is given. Modes:
    ``pass`` (bytes both ways), ``slow`` (each answer held ``delay`` seconds before it goes
    back: the request is already at the bridge, the stub still waits) and ``hang`` (new
    connections are accepted and read, never answered, never forwarded: what a bridge whose
    workers are all busy, or a stuck proxy, looks like)."""

    def __init__(self, upstream_port: int, port: int | None = None) -> None:
        self.upstream_port = upstream_port
        self.port = port or free_port()
        self.mode = "pass"
        self.delay = 0.0
        self.connections = 0
        self.held = 0  # connections accepted in "hang" mode and never answered
        # Each batch answer as it went back to the stub (the ledger reads each event's
        # outcome off it: the access log sees only the batch).
        self.batch_answers: list[bytes] = []
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self._server: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(256)
        server.settimeout(0.2)
        self._server = server
        self._thread = threading.Thread(target=self._accept, name="soak-proxy", daemon=True)
        self._thread.start()

    def set_mode(self, mode: str, delay: float = 0.0) -> None:
        if mode not in ("pass", "slow", "hang"):
            raise ValueError(mode)
        with self._lock:
            self.mode, self.delay = mode, delay
            if mode != "hang":  # what was held is let go (the stub gave up on it long ago)
                for sock in self._held:
                    with contextlib.suppress(OSError):
                        sock.close()
                self._held = []

    def _accept(self) -> None:
        assert self._server is not None
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
                mode, delay = self.mode, self.delay
                if mode == "hang":
                    self.held += 1
                    self._held.append(client)
            if mode == "hang":
                threading.Thread(target=self._drain, args=(client,), daemon=True).start()
            else:
                threading.Thread(target=self._pass, args=(client, delay), daemon=True).start()

    @staticmethod
    def _drain(client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while client.recv(65536):
                pass

    def _pass(self, client: socket.socket, delay: float) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
        except OSError:  # the bridge is down (restarting): the stub sees the connection end
            client.close()
            return
        upstream.settimeout(None)
        threading.Thread(target=self._pump, args=(client, upstream, 0.0), daemon=True).start()
        answer = bytearray()
        self._pump(upstream, client, delay, answer)
        # gunicorn's sync workers answer one request per connection: this is its whole answer
        if answer.startswith(b"HTTP/1.1 200") and b'"results"' in answer:
            with self._lock:
                self.batch_answers.append(bytes(answer))

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket, delay: float,
              copy: bytearray | None = None) -> None:
        first = True
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if first and delay:
                    time.sleep(delay)
                first = False
                target.sendall(data)
                if copy is not None and len(copy) < ANSWER_COPY_LIMIT:
                    copy += data
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()

    def stop(self) -> None:
        self._stop.set()
        self.set_mode("pass")
        if self._server is not None:
            self._server.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
