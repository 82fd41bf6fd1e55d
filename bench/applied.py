"""Events to applied (issue 17 target: p99 <= 2 s at a steady 50 events/s with the bridge up):
per event, the time from WHMCS's hook call returning to the bridge having it (the inbox row's
``received_at``) and to a ``vipgate worker`` having finished it (``finished_at``).

What runs (all on 127.0.0.1):

- the sandbox WHMCS (bench/soak's: a dataset of ``--clients`` clients from bench/gen_whmcs.py,
  SQLite, its API served over HTTP for the workers), whose invoices really change: the load is
  the soak's billing actions (payments in the admin area and by the API's AddInvoicePayment,
  some partial; new invoices, some already overdue; invoices cancelled, refunded, reopened), so
  each event changes what a worker finds in WHMCS;
- ``--php`` long-lived ``php`` processes playing PHP-FPM's workers: each takes one WHMCS request
  at a time (the hooks one action fired: AddInvoicePayment then InvoicePaid, say), runs the
  real stub (``whmcs_php_stub/vipgate.php`` as ``vipgate install-stub`` writes it) for each
  hook, answers (the response has gone), then runs the stub's end-of-request delivery
  (``vipgate_deliver_after_response``, what its shutdown function runs) before taking the next
  request. A hook called by the bridge's own writes through the API (ClientEdit after a group
  change) is a request of its own, as in WHMCS;
- the outbox ``mod_vipgate_spool`` on MariaDB, in a database of its own (made and dropped as
  bench/stub_overhead.py's helper does); a trigger copies each new row's webhook id to a
  bench table with the connection that wrote it, so each php process learns the id of the
  event its hook call wrote (the stub makes it up inside); the same database holds a copy of
  WHMCS's ``tblinvoices`` (id, userid), where the stub reads each invoice event's client when
  it sends it (a request that created an invoice adds its row before its hooks run);
- the bridge under gunicorn (``--gunicorn-workers`` sync workers) and ``--vipgate-workers``
  ``vipgate worker`` processes (``--idle``, the CLI's default unless given), as the soak
  starts them (bench/soak/procs.py), on MariaDB (another throw-away database).

The load is open loop: actions are started on a fixed schedule so that WHMCS fires ``--rate``
events a second (every forwarded hook counts, the bridge's own included), whatever the answers
take; a request waits for a free php process as it would for a free FPM worker (that wait is
reported, and is not in the figures: "fired" is when the hook call returned). After
``--duration`` seconds the load stops; what is still waiting in the outbox is delivered by one
more request, and the bench waits (``--settle``) until every event is settled in the inbox.

Reported besides the times: WHMCS API calls per event, the invoice events that reached the
bridge naming their client, and CPU seconds per role (the bench's own process split into the
sandbox WHMCS's API, counted per request, and the rest).

Checks (exit 1 when one fails): every event a hook wrote is in the inbox once (lost 0), every
one applied (``done``), the outbox empty, the schedule kept (at least 90% of the rate offered).
The target (p99 fired -> applied <= 2 s) is reported as met or MISSED, not a check.

Usage: python bench/applied.py [--rate 50] [--duration 60] [--php 4] [--json]
Smoke: python bench/applied.py --rate 10 --duration 4 --clients 40 --json
       (tests/test_bench_applied.py)
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import queue
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE / "soak"), str(HERE), str(REPO)]

import load as soak_load  # noqa: E402  (bench/soak/load.py)
import sqlalchemy as sa  # noqa: E402
from ledger import epoch, lag_by_backlog, percentile  # noqa: E402  (bench/soak/ledger.py)
from procs import Gunicorn, Workers, free_port  # noqa: E402  (bench/soak/procs.py)
from stub_overhead import DEFAULT_MARIADB, mariadb_database, run_with_php  # noqa: E402

from bridge.cli.main import WORKER_IDLE_SECONDS  # noqa: E402
from bridge.payloads import whitelist  # noqa: E402
from bridge.sandbox.forwarder import PAGE_HOOKS, PHP_DIR  # noqa: E402
from bridge.store import Store  # noqa: E402
from bridge.store.meta import new_webhook_secret  # noqa: E402
from bridge.whmcs.schema import tblinvoices  # noqa: E402
from bridge.whmcs.stub_install import install_stub  # noqa: E402

# Hooks the stub writes to its outbox (PreCronJob and the AfterCronJob heartbeat are sent at
# once, the synchronous ones wait for an answer): the events measured here.
OUTBOX_HOOKS = frozenset(whitelist()) - {*PAGE_HOOKS, "TicketOpenValidation", "PreCronJob",
                                         "AfterCronJob", "DailyCronJob"}
INVOICE_HOOKS = frozenset(hook for hook, keys in whitelist().items() if "invoiceid" in keys)
# The soak's actions that change invoices (and so what a worker finds in WHMCS), weights as
# in the soak.
ACTIONS: tuple[tuple[Callable[[soak_load.Whmcs, random.Random], str], int], ...] = (
    (soak_load.pay, 6), (soak_load.bill, 5), (soak_load.invoice_status, 2))
TARGET_P99_S = 2.0
SETTLED = ("done", "dead", "discarded")
WHMCS_TIMEOUT = 5.0  # [whmcs] timeout_seconds, as in the soak
CLK_TCK = os.sysconf("SC_CLK_TCK")

# A PHP-FPM worker: one request per line on stdin (the hooks it fires, as JSON), one line out
# when the response has gone (the events the hooks wrote, with the time each call returned),
# then the stub's end-of-request delivery, then one line more. "setup": the outbox table, the
# bench's table of fired ids and the trigger that fills it.
FPM = r"""
require $argv[1] . '/bootstrap.php';
foreach (glob($argv[2] . '/*.php') ?: [] as $hookFile) {
    if (substr(basename($hookFile), 0, 1) !== '_') {
        require_once $hookFile;
    }
}
$pdo = WHMCS\Database\Capsule::connection()->getPdo();
if (($argv[3] ?? '') === 'setup') {
    if (!vipgate_spool_table_exists($pdo)) {
        vipgate_spool_create($pdo);
    }
    $pdo->exec('CREATE TABLE IF NOT EXISTS bench_fired (seq BIGINT NOT NULL AUTO_INCREMENT'
        . ' PRIMARY KEY, conn BIGINT NOT NULL, webhook_id VARCHAR(64) NOT NULL, KEY (conn, seq))');
    $pdo->exec('CREATE TRIGGER IF NOT EXISTS bench_fired_spool AFTER INSERT ON mod_vipgate_spool'
        . ' FOR EACH ROW INSERT INTO bench_fired (conn, webhook_id)'
        . ' VALUES (CONNECTION_ID(), NEW.webhook_id)');
    // WHMCS's own table the stub reads when it sends invoice events (their client)
    $pdo->exec('CREATE TABLE IF NOT EXISTS tblinvoices (id INT NOT NULL PRIMARY KEY,'
        . ' userid INT NOT NULL)');
    $add = $pdo->prepare('INSERT IGNORE INTO tblinvoices (id, userid) VALUES (?, ?)');
    foreach (json_decode((string) stream_get_contents(STDIN), true) ?: [] as $invoice) {
        $add->execute($invoice);
    }
    exit(0);
}
function bench_objects($value)
{
    if (!is_array($value)) {
        return $value;
    }
    if (count($value) === 1 && array_key_exists('__object__', $value)) {
        return (object) $value['__object__'];
    }
    return array_map('bench_objects', $value);
}
$mine = $pdo->prepare('SELECT seq, webhook_id FROM bench_fired WHERE conn = CONNECTION_ID()'
    . ' AND seq > ? ORDER BY seq');
$invoiceRow = $pdo->prepare('INSERT IGNORE INTO tblinvoices (id, userid) VALUES (?, ?)');
$last = 0;
while (($line = fgets(STDIN)) !== false) {
    $events = [];
    $request = json_decode($line, true);
    foreach ($request['invoices'] as $invoice) {
        $invoiceRow->execute($invoice); // WHMCS wrote the new invoice before its hooks ran
    }
    foreach ($request['hooks'] as $fired) {
        list($hook, $vars) = $fired;
        $admin = isset($vars['__admin__']) ? (string) $vars['__admin__'] : '';
        $GLOBALS['vipgate_test_admin'] = $admin; // the admin behind the request, if any
        unset($vars['__admin__']);
        $started = microtime(true);
        vipgate_test_run_hook($hook, bench_objects($vars));
        $returned = microtime(true);
        $mine->execute([$last]);
        foreach ($mine->fetchAll(PDO::FETCH_NUM) as $row) {
            $last = (int) $row[0];
            $events[] = ['id' => $row[1], 'hook' => $hook, 'fired' => $returned,
                'call_ms' => ($returned - $started) * 1000];
        }
    }
    echo json_encode(['events' => $events]), "\n"; // the response has gone
    fflush(STDOUT);
    $started = microtime(true);
    vipgate_deliver_after_response(); // what the stub's shutdown function runs
    echo json_encode(['delivery_ms' => (microtime(true) - $started) * 1000]), "\n";
    fflush(STDOUT);
}
"""


@dataclass
class Fired:
    webhook_id: str
    hook: str
    fired: float  # epoch seconds, when the hook call returned (php's microtime)
    call_ms: float
    waited_s: float  # the request's wait for a free php process


@dataclass
class PhpWorkers:
    """``count`` php processes taking WHMCS requests from one queue (PHP-FPM's pool)."""

    php: str
    hook_dir: Path
    env: dict[str, str]
    count: int
    log_dir: Path  # each process's stderr, php-N.err (a pipe could fill and block php)
    fired: list[Fired] = field(default_factory=list)
    deliveries_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    hooks: Counter[str] = field(default_factory=Counter)
    accepting: bool = False
    # a new invoice's client (WHMCS's tblinvoices row, which the php side's copy gains before
    # the request's hooks run: the stub reads it when it sends the events)
    owner_of: Callable[[int], int] = field(default=lambda invoice_id: 0)
    _requests: queue.Queue[tuple[float, list[tuple[str, dict[str, Any]]]] | None] = field(
        default_factory=queue.Queue)
    _procs: list[subprocess.Popen[str]] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)
    _collecting: threading.local = field(default_factory=threading.local)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def command(self, *extra: str) -> list[str]:
        return [self.php, "-r", FPM, "--", str(PHP_DIR), str(self.hook_dir), *extra]

    def setup(self, invoices: list[tuple[int, int]]) -> None:
        """The outbox, the bench's table of fired ids, and the copy of WHMCS's tblinvoices
        (id, userid) in the outbox's database, where the stub reads it."""
        subprocess.run(self.command("setup"), env=self.env, check=True, capture_output=True,
                       text=True, timeout=60, input=json.dumps(invoices))

    def start(self) -> None:
        for n in range(self.count):
            with open(self.log_dir / f"php-{n}.err", "wb") as err:
                proc = subprocess.Popen(self.command(), env=self.env, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=err, text=True,
                                        bufsize=1, start_new_session=True)
            self._procs.append(proc)
            thread = threading.Thread(target=self._serve, args=(proc,), name=f"php-{n}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        while (item := self._requests.get()) is not None:
            queued, hooks = item
            taken = time.time()
            invoices = [[int(v["invoiceid"]), self.owner_of(int(v["invoiceid"]))]
                        for hook, v in hooks if hook == "InvoiceCreated"]
            try:
                proc.stdin.write(json.dumps({"hooks": hooks, "invoices": invoices}) + "\n")
                proc.stdin.flush()
                answered = json.loads(proc.stdout.readline())
                delivered = json.loads(proc.stdout.readline())
            except (OSError, ValueError) as exc:
                with self._lock:
                    self.errors.append(f"php {proc.pid}: {type(exc).__name__}: {exc}")
                self._requests.task_done()
                return
            with self._lock:
                self.fired += [Fired(e["id"], e["hook"], float(e["fired"]), float(e["call_ms"]),
                                     taken - queued) for e in answered["events"]]
                self.deliveries_ms.append(float(delivered["delivery_ms"]))
            self._requests.task_done()

    # --- WHMCS's side: the sandbox's hook points ----------------------------------------

    def fire(self, hook: str, variables: dict[str, Any]) -> list[Any]:
        """The sandbox's ``fire``: a hook of the action being run joins its request; one fired
        by another thread (the sandbox's API serving a worker) is a request of its own."""
        if not self.accepting or hook not in OUTBOX_HOOKS:
            return []
        with self._lock:
            self.hooks[hook] += 1
        collecting = getattr(self._collecting, "hooks", None)
        if collecting is not None:
            collecting.append((hook, variables))
        else:
            self.submit([(hook, variables)])
        return []

    def request(self, action: Callable[[], Any]) -> None:
        """Run ``action`` as one WHMCS request: the hooks it fires go to one php process."""
        self._collecting.hooks = []
        try:
            action()
        finally:
            hooks, self._collecting.hooks = self._collecting.hooks, None
            if hooks:
                self.submit(hooks)

    def submit(self, hooks: list[tuple[str, dict[str, Any]]]) -> None:
        self._requests.put((time.time(), hooks))

    def pids(self) -> list[int]:
        return [proc.pid for proc in self._procs if proc.poll() is None]

    @property
    def events_fired(self) -> int:
        with self._lock:
            return sum(self.hooks.values())

    def drain(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._requests.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.05)
        return not self._requests.unfinished_tasks

    def stop(self) -> None:
        for _ in self._threads:
            self._requests.put(None)
        for thread in self._threads:
            thread.join(timeout=10)
        for proc in self._procs:
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        for n, proc in enumerate(self._procs):
            said = (self.log_dir / f"php-{n}.err").read_text(errors="replace").strip()
            if proc.returncode or said:  # a warning or notice of the stub's is a failure too
                self.errors.append(f"php {proc.pid} exited {proc.returncode}: {said[-500:]}")


def owner(whmcs: soak_load.Whmcs, invoice_id: int) -> int:
    """The client of a sandbox invoice (0 when there is none)."""
    with whmcs.sandbox.engine.connect() as conn:
        return int(conn.execute(sa.select(tblinvoices.c.userid).where(
            tblinvoices.c.id == invoice_id)).scalar() or 0)


@dataclass
class ApiCpu:
    """CPU seconds of the sandbox's HTTP server threads answering requests (each request,
    from reading it to its answer sent), counted with ``time.thread_time``."""

    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def count(cls, whmcs: soak_load.Whmcs) -> ApiCpu:
        counted = cls()
        assert whmcs.served is not None
        server = whmcs.served.server
        handler: type[Any] = server.RequestHandlerClass

        class Timed(handler):
            def handle_one_request(self) -> None:
                started = time.thread_time()
                try:
                    super().handle_one_request()
                finally:
                    with counted._lock:
                        counted.seconds += time.thread_time() - started

        server.RequestHandlerClass = Timed
        return counted


def drive(whmcs: soak_load.Whmcs, pool: PhpWorkers, rate: float, duration: float,
          seed: int) -> dict[str, Any]:
    """Open loop: the next action starts when the events fired so far are due, so WHMCS fires
    ``rate`` events a second however long the actions and answers take."""
    rng = random.Random(seed)
    actions, weights = zip(*ACTIONS, strict=True)
    done: Counter[str] = Counter()
    skipped = failed = 0
    late: list[float] = []
    started = time.monotonic()
    fired0 = pool.events_fired
    while (now := time.monotonic()) < started + duration:
        due = started + (pool.events_fired - fired0) / rate
        if due > now:
            time.sleep(min(due - now, started + duration - now))
            continue
        late.append(now - due)
        action = rng.choices(actions, weights)[0]
        try:
            pool.request(lambda a=action: done.update([a(whmcs, rng)]))
        except soak_load.Skip:
            skipped += 1
        except Exception:  # WHMCS refusing (an invoice paid meanwhile): as the soak counts it
            failed += 1
    elapsed = time.monotonic() - started
    return {"actions": dict(done), "skipped": skipped, "failed": failed,
            "seconds": round(elapsed, 3),
            "events": pool.events_fired - fired0,
            "schedule_late_p99_s": round(percentile(late, 99) or 0.0, 3)}


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds of ``pids`` (all their threads), from /proc."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


def mariadb_pids() -> list[int]:
    return [int(p.parent.name) for p in Path("/proc").glob("[0-9]*/comm")
            if p.exists() and p.read_text().strip() in ("mariadbd", "mysqld")]


def cpu_by_role(roles: dict[str, Callable[[], list[int]]]) -> dict[str, float]:
    return {role: cpu_seconds(pids()) for role, pids in roles.items()}


def inbox_rows(url: str) -> dict[str, Any]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT webhook_id, hook, client_id, state, attempts, received_at, finished_at"
                " FROM inbox"
            )).all()
    finally:
        engine.dispose()
    return {r.webhook_id: r for r in rows}


def outbox_waiting(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(
                "SELECT COUNT(*) FROM mod_vipgate_spool WHERE rejected_at IS NULL")).scalar() or 0)
    finally:
        engine.dispose()


def settle(url: str, ids: set[str], timeout: float) -> float:
    """Seconds until every id is in the inbox and settled (or ``timeout``)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        rows = inbox_rows(url)
        if all(i in rows and rows[i].state in SETTLED for i in ids):
            break
        time.sleep(0.5)
    return round(time.monotonic() - started, 1)


def summary(values: Sequence[float]) -> dict[str, Any]:
    return {"count": len(values),
            **{f"p{q}": None if not values else round(percentile(values, q) or 0.0, 3)
               for q in (50, 95, 99)},
            "max": round(max(values), 3) if values else None}


def measure(fired: Sequence[Fired], inbox: dict[str, Any]) -> dict[str, Any]:
    """Per event: fired -> received, received -> applied, fired -> applied (seconds)."""
    to_received, to_applied, lag = [], [], []
    moments: list[tuple[float, float]] = []
    for event in fired:
        row = inbox.get(event.webhook_id)
        if row is None:
            continue
        received = epoch(row.received_at)
        assert received is not None
        to_received.append(received - event.fired)
        finished = epoch(row.finished_at)
        if row.state == "done" and finished is not None:
            to_applied.append(finished - event.fired)
            lag.append(finished - received)
            moments.append((received, finished))
    by_hook: dict[str, list[float]] = {}
    for event in fired:
        row = inbox.get(event.webhook_id)
        if row is not None and row.state == "done" and row.finished_at is not None:
            by_hook.setdefault(event.hook, []).append((epoch(row.finished_at) or 0.0)
                                                      - event.fired)
    return {"fired_to_received_s": summary(to_received),
            "received_to_applied_s": summary(lag),
            "fired_to_applied_s": summary(to_applied),
            "received_to_applied_by_backlog_s": lag_by_backlog(moments),
            "fired_to_applied_by_hook_s": {hook: summary(values)
                                           for hook, values in sorted(by_hook.items())}}


def run(args: argparse.Namespace, php: str) -> dict[str, Any]:
    secret = new_webhook_secret()
    results: dict[str, Any] = {"rate": args.rate, "duration": args.duration, "php": args.php,
                               "gunicorn_workers": args.gunicorn_workers,
                               "vipgate_workers": args.vipgate_workers, "idle": args.idle,
                               "clients": args.clients, "checks": []}
    checks: list[str] = results["checks"]
    with tempfile.TemporaryDirectory(prefix="vipgate-bench-applied-") as tmp, \
            mariadb_database(args.mariadb) as outbox_db, \
            mariadb_database(args.mariadb) as bridge_db:
        work = Path(tmp)
        env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
               "VIPGATE_SANDBOX_LOG": str(work / "module-log.jsonl"),
               **{k: v for k, v in outbox_db.items() if k != "url"}}
        server_env = {k: v for k, v in os.environ.items() if not k.startswith("VIPGATE_")}
        server_env["VIPGATE_CONFIG"] = str(work / "vipgate.ini")
        server_env["PYTHONPATH"] = os.pathsep.join(  # this tree's bridge, wherever run from
            [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
        gunicorn = Gunicorn(work, free_port(), args.gunicorn_workers, server_env)
        (work / "whmcs" / "includes" / "hooks").mkdir(parents=True)
        hook_dir = install_stub(work / "whmcs", f"http://127.0.0.1:{gunicorn.port}",
                                secret)[0].parent
        pool = PhpWorkers(php, hook_dir, env, args.php, work)
        whmcs = soak_load.make_whmcs(work / "whmcs.db", args.clients, free_port(), args.seed,
                                     fire=pool.fire)
        workers = Workers(args.vipgate_workers, server_env, work, idle=args.idle)
        store = Store(bridge_db["url"])
        store.upgrade()
        store.dispose()
        soak_load.write_config(work / "vipgate.ini", bridge_db["url"], whmcs.url, secret,
                               WHMCS_TIMEOUT)
        try:
            whmcs.serve()
            api_cpu = ApiCpu.count(whmcs)
            gunicorn.start()
            # the installation day's resync (hooks it makes WHMCS fire are not the bench's)
            first = subprocess.run([sys.executable, "-m", "bridge", "resync", "--yes", "--json"],
                                   cwd=work, env=server_env, capture_output=True, text=True,
                                   timeout=600, check=False)
            if first.returncode:
                raise RuntimeError(f"first resync: {first.stderr.strip()[-500:]}")
            with whmcs.sandbox.engine.connect() as conn:
                invoices = [(int(r.id), int(r.userid)) for r in conn.execute(
                    sa.select(tblinvoices.c.id, tblinvoices.c.userid))]
            pool.owner_of = functools.partial(owner, whmcs)
            pool.setup(invoices)
            pool.start()
            workers.start()
            workers.wait_ready()
            results["load_before"] = round(os.getloadavg()[0], 2)
            roles: dict[str, Callable[[], list[int]]] = {
                "vipgate workers": workers.pids,
                "gunicorn": lambda: [gunicorn.pid, *gunicorn.worker_pids()]
                if gunicorn.pid else [],
                "php": pool.pids,
                "bench (sandbox WHMCS, load)": lambda: [os.getpid()],
                "mariadbd (the machine's)": mariadb_pids}
            cpu_before = cpu_by_role(roles)
            api_before = api_cpu.seconds
            whmcs.sandbox.api_log = deque()  # every call of the run, not the last 2000
            pool.accepting = True
            results["load"] = drive(whmcs, pool, args.rate, args.duration, args.seed)
            results["load_after"] = round(os.getloadavg()[0], 2)
            pool.drain(60)
            pool.accepting = False  # the bridge's writes from here on are not measured
            pool.drain(60)
            left = outbox_waiting(outbox_db["url"])
            if left:  # the next WHMCS request delivers them
                pool.submit([])
                pool.drain(60)
            results["outbox_left_after_load"] = left
            ids = {f.webhook_id for f in pool.fired}
            results["settle_s"] = settle(bridge_db["url"], ids, args.settle)
            cpu_after = cpu_by_role(roles)
            results["cpu_s"] = {role: round(cpu_after[role] - cpu_before[role], 2)
                                for role in roles}
            # the bench's process, split: the sandbox WHMCS answering the workers' API calls
            # (its server's request threads), and the rest (the load, the php pool's threads)
            bench = results["cpu_s"].pop("bench (sandbox WHMCS, load)")
            api = round(api_cpu.seconds - api_before, 2)
            results["cpu_s"]["sandbox WHMCS API (bench)"] = api
            results["cpu_s"]["load + php pool (bench)"] = round(bench - api, 2)
            results["whmcs_api_calls"] = dict(Counter(
                entry["action"] for entry in whmcs.sandbox.api_log).most_common())
        finally:
            pool.accepting = False
            pool.stop()
            workers.stop()
            gunicorn.stop()
            whmcs.down()
            whmcs.sandbox.dispose()
        inbox = inbox_rows(bridge_db["url"])
        waiting = outbox_waiting(outbox_db["url"])
    fired = pool.fired
    ids = [f.webhook_id for f in fired]
    lost = [i for i in ids if i not in inbox]
    unsettled = Counter(inbox[i].state for i in ids if i in inbox and inbox[i].state != "done")
    results.update(measure(fired, inbox))
    results["events"] = {
        "fired": len(fired), "distinct": len(set(ids)), "hooks": dict(sorted(pool.hooks.items())),
        "lost": len(lost), "not_applied": dict(unsettled), "outbox_waiting": waiting,
        "attempts_over_1": sum(1 for i in ids if i in inbox and inbox[i].attempts > 1),
        # invoice events the stub sent naming the invoice's client (no owner look-up then)
        "invoice_events": sum(1 for f in fired if f.hook in INVOICE_HOOKS),
        "invoice_events_naming_client": sum(
            1 for f in fired if f.hook in INVOICE_HOOKS and f.webhook_id in inbox
            and inbox[f.webhook_id].client_id),
        "rate_offered": round(len(fired) / max(results["load"]["seconds"], 1e-9), 1)}
    results["php_call_ms"] = summary([f.call_ms for f in fired])
    results["request_wait_s"] = summary([f.waited_s for f in fired])
    results["delivery_ms"] = summary(pool.deliveries_ms)
    e = results["events"]
    if pool.errors:
        checks.append(f"php: {'; '.join(pool.errors[:3])}")
    if e["fired"] != sum(pool.hooks.values()):
        checks.append(f"{sum(pool.hooks.values())} hook call(s) handed to the stub, "
                      f"{e['fired']} outbox row(s) written")
    if e["fired"] == 0:
        checks.append("no event was fired")
    if lost:
        checks.append(f"{len(lost)} event(s) lost (not in the inbox), e.g. {lost[:3]}")
    if e["distinct"] != e["fired"]:
        checks.append(f"{e['fired'] - e['distinct']} webhook id(s) fired twice")
    if unsettled:
        checks.append(f"events not applied: {dict(unsettled)}")
    if waiting:
        checks.append(f"{waiting} event(s) still waiting in the outbox")
    if e["rate_offered"] < 0.9 * args.rate:
        checks.append(f"the schedule was not kept: {e['rate_offered']} events/s offered, "
                      f"{args.rate} asked")
    p99 = results["fired_to_applied_s"]["p99"]
    results["target_p99_le_2s"] = p99 is not None and p99 <= TARGET_P99_S
    return results


def _row(name: str, s: dict[str, Any], unit: float = 1.0) -> str:
    def cell(v: float | None) -> str:
        return "–" if v is None else f"{v * unit:.3f}"
    return (f"  {name:<26}{s['count']:>7}{cell(s['p50']):>10}{cell(s.get('p95')):>10}"
            f"{cell(s['p99']):>10}{cell(s['max']):>10}")


def report(r: dict[str, Any], php_version: str) -> str:
    e, load = r["events"], r["load"]
    lines = [f"events to applied: {r['rate']} events/s asked for {r['duration']} s "
             f"({e['rate_offered']} offered), {r['php']} php processes (php {php_version}), "
             f"outbox on MariaDB, bridge: {r['gunicorn_workers']} gunicorn workers, "
             f"{r['vipgate_workers']} vipgate workers (--idle {r['idle']}), MariaDB; "
             f"{r['clients']} clients; load average {r['load_before']} before, "
             f"{r['load_after']} after",
             "", f"  {'seconds':<26}{'count':>7}{'p50':>10}{'p95':>10}{'p99':>10}{'max':>10}",
             _row("fired -> received", r["fired_to_received_s"]),
             _row("received -> applied", r["received_to_applied_s"]),
             _row("fired -> applied", r["fired_to_applied_s"]),
             *(_row(f"  {hook}", values)
               for hook, values in r["fired_to_applied_by_hook_s"].items()),
             *(_row(f"  joined a backlog of {bucket}", values)
               for bucket, values in r["received_to_applied_by_backlog_s"].items()
               if bucket != "max_backlog"),
             _row("request wait for php", r["request_wait_s"]),
             _row("hook call (ms)", r["php_call_ms"]),
             _row("delivery after resp. (ms)", r["delivery_ms"]),
             "",
             f"target p99 fired -> applied <= {TARGET_P99_S:g} s: "
             f"{'met' if r['target_p99_le_2s'] else 'MISSED'}",
             f"events fired {e['fired']} ({e['hooks']}), lost {e['lost']}, not applied "
             f"{e['not_applied']}, retried {e['attempts_over_1']}; invoice events naming "
             f"their client {e['invoice_events_naming_client']} of {e['invoice_events']}; "
             f"outbox waiting "
             f"{e['outbox_waiting']} (left after the load for one more request: "
             f"{r['outbox_left_after_load']}); settled {r['settle_s']} s after the load",
             f"actions {load['actions']}, skipped {load['skipped']}, failed {load['failed']}; "
             f"schedule p99 late {load['schedule_late_p99_s']} s",
             "CPU seconds from the load's start to settled (ms per event): " + ", ".join(
                 f"{role} {sec:.1f} ({sec * 1000 / max(1, e['fired']):.0f})"
                 for role, sec in r["cpu_s"].items()),
             f"WHMCS API calls: {sum(r['whmcs_api_calls'].values())} "
             f"({sum(r['whmcs_api_calls'].values()) / max(1, e['fired']):.1f} per event): "
             f"{r['whmcs_api_calls']}",
             "", "checks: " + ("all ok" if not r["checks"] else "; ".join(r["checks"]))]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="events a second (50)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (60)")
    parser.add_argument("--php", type=int, default=4, help="php processes (FPM workers) (4)")
    parser.add_argument("--gunicorn-workers", type=int, default=3)
    parser.add_argument("--vipgate-workers", type=int, default=2)
    parser.add_argument("--idle", type=float, default=WORKER_IDLE_SECONDS,
                        help=f"vipgate worker --idle (the CLI's default, {WORKER_IDLE_SECONDS})")
    parser.add_argument("--clients", type=int, default=300, help="clients in WHMCS (300)")
    parser.add_argument("--settle", type=float, default=120.0,
                        help="longest wait for the inbox to settle after the load")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mariadb", default=DEFAULT_MARIADB, help="MariaDB server URL")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    for name in ("rate", "duration", "idle"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} must be above 0")
    for name in ("php", "gunicorn_workers", "vipgate_workers", "clients"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return run_with_php(args, run, report, version_key="php_version")


if __name__ == "__main__":
    sys.exit(main())
