"""The soak's WHMCS: the sandbox on a generated dataset, served over HTTP on a fixed port (so
that it can be stopped and started again at the same URL), its hooks fired through the real
PHP stub (one ``php`` process per hook, as WHMCS runs them), and the actors that keep it busy.

Each actor is a thread doing what WHMCS's users do, one action at a time, at a steady rate:
payments (admin area and the API's AddInvoicePayment), new invoices (some already overdue),
invoice status changes, client edits (admin area and the API's UpdateClient), new clients,
tickets opened and replied to, priorities changed, services suspended and unsuspended, and the
pages vipgate answers on (client summary, ticket view, client area home, submit ticket). A
cron thread runs WHMCS's cron (PreCronJob, invoices, suspensions, DailyCronJob, AfterCronJob,
which flushes the stub's spool) every ``cron_every`` seconds.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import secrets
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

from bridge.sandbox.forwarder import PHP_DIR, PhpForwarder
from bridge.sandbox.serve import RunningSandbox, start_sandbox
from bridge.sandbox.whmcs import Sandbox, SandboxClock, WhmcsError
from bridge.whmcs.schema import tblclients, tblhosting, tblinvoices, tbltickets
from bridge.whmcs.stub_install import install_stub

API_ID = "soak-api-identifier"
API_SECRET = "soak-api-secret-0123456789abcdef"
VIP_GROUP, DEFAULT_GROUP = 2, 1  # as bench/gen_whmcs.py writes them
SUPPORT_DEPT, BILLING_DEPT = 1, 2


@dataclass
class Whmcs:
    """The sandbox, its HTTP server (restartable on the same port) and the stub."""

    sandbox: Sandbox
    port: int
    forwarder: KillablePhpForwarder | None = None
    served: RunningSandbox | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def serve(self) -> None:
        with self._lock:
            self.served = start_sandbox(self.sandbox, port=self.port)

    def down(self) -> None:
        """Stop answering: connections to the port are refused until :meth:`serve`."""
        with self._lock:
            if self.served is not None:
                self.served.stop()
                self.served = None

    @property
    def up(self) -> bool:
        return self.served is not None

    def install_stub(self, folder: Path, bridge_url: str, secret: str, log_path: Path,
                     spool_db: Path) -> None:
        (folder / "includes" / "hooks").mkdir(parents=True, exist_ok=True)
        hooks_dir = install_stub(folder, bridge_url, secret)[0].parent
        self.forwarder = KillablePhpForwarder(hooks_dir, spool_db, log_path)

    def fire(self, hook: str, variables: dict[str, Any]) -> list[Any]:
        if self.forwarder is None:
            return []
        return self.forwarder.fire(hook, variables)


@dataclass
class KillablePhpForwarder(PhpForwarder):
    """The real stub, as :class:`PhpForwarder` runs it, under PHP-FPM's
    ``fastcgi_finish_request()`` (the sandbox's stand-in prints ``finish_request`` when the page
    has gone): while :meth:`arm` is in force, a ``php`` process whose hook wrote to the outbox
    is SIGKILLed once its page has gone, during its delivery after the response (the "PHP
    killed mid-request" fault). What it had claimed waits for the claim to expire (a minute);
    the next request or cron sends it."""

    kills_left: int = 0
    kill_delay: tuple[float, float] = (0.0, 0.3)
    killed: list[tuple[float, str, int]] = field(default_factory=list)  # (time, hook, pid)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _rng: random.Random = field(default_factory=lambda: random.Random(7))

    def arm(self, kills: int, delay: tuple[float, float] = (0.0, 0.3)) -> None:
        with self._lock:
            self.kills_left, self.kill_delay = kills, delay

    def disarm(self) -> None:
        self.arm(0)

    def _take_kill(self) -> float | None:
        with self._lock:
            if self.kills_left <= 0:
                return None
            self.kills_left -= 1
            return self._rng.uniform(*self.kill_delay)

    def fire(self, hook: str, variables: dict[str, Any]) -> list[Any]:
        env = {**os.environ, "VIPGATE_SANDBOX_PDO_DSN": f"sqlite:{self.spool_db}",
               "VIPGATE_SANDBOX_LOG": str(self.log_path), "VIPGATE_SANDBOX_FINISH_REQUEST": "1"}
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(
                ["php", str(PHP_DIR / "fire.php"), str(self.hooks_dir), hook,
                 json.dumps(variables)], stdout=subprocess.PIPE, stderr=err,
                stdin=subprocess.DEVNULL, env=env, text=True)
            assert proc.stdout is not None
            answer: list[Any] | None = None
            killed = False
            try:
                for line in proc.stdout:
                    if answer is None and line.startswith("{"):
                        answer = list(json.loads(line)["returns"])  # the hook returned
                    elif line.startswith("finish_request") and answer is not None:
                        delay = self._take_kill()  # the page has gone: delivery starts
                        if delay is not None:
                            time.sleep(delay)
                            if proc.poll() is None:
                                proc.kill()
                                killed = True
                                self.killed.append((time.time(), hook, proc.pid))
                code = proc.wait(timeout=180)
            except BaseException:
                proc.kill()
                proc.wait()
                raise
            if (code != 0 and not killed) or answer is None:
                err.seek(0)
                raise RuntimeError(f"php fire.php {hook} failed ({code}): "
                                   f"{err.read().decode(errors='replace').strip()[:500]}")
        return answer


def make_whmcs(db_path: Path, clients: int, port: int, seed: int,
               fire: Callable[[str, dict[str, Any]], list[Any]] | None = None) -> Whmcs:
    """Generate the dataset (bench/gen_whmcs.py, as of today) and open the sandbox on it. Its
    hooks go to ``fire`` when given (bench/applied.py's PHP workers), else to the stub
    installed by :meth:`Whmcs.install_stub`, one ``php`` per hook."""
    from gen_whmcs import generate  # bench/ is on sys.path (run.py puts it there)

    url = f"sqlite:///{db_path}"
    generate(url, clients, seed=seed, today=date.today())
    holder: dict[str, Whmcs] = {}
    sandbox = Sandbox(url, clock=SandboxClock(timezone="UTC"), seed=seed,
                      fire=fire or (lambda hook, variables: holder["w"].fire(hook, variables)))
    sandbox.add_api_credential(API_ID, API_SECRET, description="vipgate soak")
    holder["w"] = Whmcs(sandbox, port)
    return holder["w"]


def write_config(path: Path, database_url: str, whmcs_url: str, secret: str,
                 whmcs_timeout: float) -> None:
    """The vipgate.ini of the bridge and its workers: this sandbox's API credentials and
    groups, ``run_worker = off`` (the workers are processes of their own)."""
    path.write_text(f"""[bridge]
database_url = {database_url}
timezone = UTC
language = pt_BR
run_worker = off

[webhook]
secrets = {secret}

[whmcs]
url = {whmcs_url}
identifier = {API_ID}
secret = {API_SECRET}
timeout_seconds = {whmcs_timeout:g}

[policy]
vip_group_id = {VIP_GROUP}
default_group_id = {DEFAULT_GROUP}
grace_days = 3

[tickets]
billing_departments = {BILLING_DEPT}

[admin]
secret_key = {secrets.token_hex(32)}
secure_cookies = off
""")


# --- what the actors do ---------------------------------------------------------------------


class Skip(Exception):
    """Nothing to act on (no unpaid invoice, say): not an error."""


def _pick(whmcs: Whmcs, query: sa.Select) -> Any:
    with whmcs.sandbox.engine.connect() as conn:
        value = conn.execute(query.order_by(sa.func.random()).limit(1)).scalar()
    if value is None:
        raise Skip
    return value


def _client(w: Whmcs) -> int:
    return int(_pick(w, sa.select(tblclients.c.id).where(tblclients.c.status == "Active")))


def _unpaid_invoice(w: Whmcs) -> int:
    return int(_pick(w, sa.select(tblinvoices.c.id).where(tblinvoices.c.status == "Unpaid")))


def _open_ticket(w: Whmcs) -> int:
    return int(_pick(w, sa.select(tbltickets.c.id).where(tbltickets.c.status != "Closed",
                                                         tbltickets.c.userid > 0)))


def _service(w: Whmcs, status: str) -> int:
    return int(_pick(w, sa.select(tblhosting.c.id).where(tblhosting.c.domainstatus == status)))


def api(w: Whmcs, action: str, **params: Any) -> dict[str, Any]:
    """One call of WHMCS's API, as an outside integration (a payment gateway callback, a
    reseller panel) makes it."""
    answer = requests.post(f"{w.url}/includes/api.php", data={
        "identifier": API_ID, "secret": API_SECRET, "action": action,
        "responsetype": "json", **params}, timeout=30)
    answer.raise_for_status()
    body = answer.json()
    if body.get("result") != "success":
        raise WhmcsError(str(body.get("message")))
    return body


def pay(w: Whmcs, rng: random.Random) -> str:
    invoice = _unpaid_invoice(w)
    if rng.random() < 0.5:
        balance = w.sandbox.balance(invoice)
        amount = (balance / 2).quantize(balance) if rng.random() < 0.3 else None
        w.sandbox.add_payment(invoice, amount, transid=f"soak-{rng.getrandbits(40):x}")
        return "pay"
    api(w, "AddInvoicePayment", invoiceid=invoice, transid=f"soak-{rng.getrandbits(40):x}",
        gateway="mailin")
    return "pay_api"


def bill(w: Whmcs, rng: random.Random) -> str:
    service = _service(w, "Active")
    row = w.sandbox.service(service)
    assert row is not None
    due = date.today() - timedelta(days=rng.choice((0, 2, 6, 12)))
    w.sandbox.create_invoice(int(row["userid"]), [("Hosting", service, "Soak extra", "49.90")],
                             duedate=due, date=due - timedelta(days=14))
    return "bill"


def invoice_status(w: Whmcs, rng: random.Random) -> str:
    status = rng.choice(("Cancelled", "Cancelled", "Refunded", "Unpaid"))
    if status == "Unpaid":
        invoice = int(_pick(w, sa.select(tblinvoices.c.id).where(
            tblinvoices.c.status == "Cancelled")))
    elif status == "Refunded":
        invoice = int(_pick(w, sa.select(tblinvoices.c.id).where(
            tblinvoices.c.status == "Paid")))
    else:
        invoice = _unpaid_invoice(w)
    w.sandbox.set_invoice_status(invoice, status)
    return "invoice_" + status.lower()


def edit(w: Whmcs, rng: random.Random) -> str:
    client = _client(w)
    phone = f"+55.11{rng.randrange(10**8, 10**9)}"
    if rng.random() < 0.5:
        w.sandbox.update_client(client, phonenumber=phone)
        return "edit"
    api(w, "UpdateClient", clientid=client, phonenumber=phone)
    return "edit_api"


def add_client(w: Whmcs, rng: random.Random) -> str:
    n = rng.getrandbits(32)
    w.sandbox.add_client("Soak", f"Client {n:x}", f"soak-{n:x}@example.com",
                         groupid=rng.choice((DEFAULT_GROUP, VIP_GROUP, 0)))
    return "add_client"


TICKET_WAYS = itertools.cycle(("client", "staff", "client", "mail"))


def ticket(w: Whmcs, rng: random.Random) -> str:
    """A client opens a ticket (the gate runs), staff open one for a client
    (TicketOpenAdmin), or one is piped in by e-mail (TicketOpen without the gate)."""
    client = _client(w)
    dept = rng.choice((SUPPORT_DEPT, SUPPORT_DEPT, BILLING_DEPT))
    subject = f"Soak question {rng.getrandbits(24):x}"
    way = next(TICKET_WAYS)  # in turn, so that even a one-minute soak fires each hook
    if way == "staff":
        w.sandbox.open_ticket(client, dept, subject, "Medium", admin=True)
        return "ticket_staff"
    if way == "mail":
        email = _pick(w, sa.select(tblclients.c.email).where(tblclients.c.id == client))
        w.sandbox.pipe_ticket(str(email), dept, subject)
        return "ticket_mail"
    w.sandbox.open_ticket(client, dept, subject, rng.choice(("Low", "Medium", "High")))
    return "ticket"


def reply(w: Whmcs, rng: random.Random) -> str:
    w.sandbox.client_reply(_open_ticket(w), "Any news? (soak)")
    return "reply"


def priority(w: Whmcs, rng: random.Random) -> str:
    w.sandbox.update_ticket(_open_ticket(w), priority=rng.choice(("Low", "Medium", "High")))
    return "priority"


def suspend(w: Whmcs, rng: random.Random) -> str:
    if rng.random() < 0.5:
        w.sandbox.suspend_service(_service(w, "Active"), "Soak: abuse report")
        return "suspend"
    w.sandbox.unsuspend_service(_service(w, "Suspended"))
    return "unsuspend"


def page(w: Whmcs, rng: random.Random) -> str:
    """A staff member or a client opens a page vipgate answers on (the sandbox's stand-ins)."""
    kind = rng.choice(("summary", "ticket", "home", "submit"))
    if kind == "ticket":
        path = f"/admin/supporttickets.php?action=view&id={_open_ticket(w)}"
    else:
        client = _client(w)
        path = {"summary": f"/admin/clientssummary.php?userid={client}",
                "home": f"/clientarea.php?uid={client}",
                "submit": f"/submitticket.php?uid={client}"}[kind]
    requests.get(w.url + path, timeout=30).raise_for_status()
    return "page_" + kind


# (action, weight)
ACTIONS: tuple[tuple[Callable[[Whmcs, random.Random], str], int], ...] = (
    (pay, 6), (bill, 5), (invoice_status, 2), (edit, 4), (add_client, 1), (ticket, 4),
    (reply, 3), (priority, 2), (suspend, 2), (page, 4))


@dataclass
class Load:
    """``actors`` threads doing :data:`ACTIONS` at ``rate`` actions per second in all, and a
    cron every ``cron_every`` seconds."""

    whmcs: Whmcs
    actors: int
    rate: float
    cron_every: float
    seed: int
    done: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    crons: list[tuple[float, float]] = field(default_factory=list)  # (started, seconds)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        for n in range(self.actors):
            thread = threading.Thread(target=self._actor, args=(n,), name=f"soak-actor-{n}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        cron = threading.Thread(target=self._cron, name="soak-cron", daemon=True)
        cron.start()
        self._threads.append(cron)

    def _actor(self, n: int) -> None:
        rng = random.Random(self.seed * 1000 + n)
        actions, weights = zip(*ACTIONS, strict=True)
        interval = self.actors / self.rate
        next_at = time.monotonic() + rng.random() * interval
        while not self._stop.is_set():
            if self._stop.wait(max(0.0, next_at - time.monotonic())):
                return
            next_at = max(next_at + interval, time.monotonic())
            action = rng.choices(actions, weights)[0]
            self.act(action, rng)

    def act(self, action: Callable[[Whmcs, random.Random], str], rng: random.Random) -> None:
        name = action.__name__
        try:
            name = action(self.whmcs, rng)
        except Skip:
            with self._lock:
                self.skipped[name] += 1
            return
        except (WhmcsError, requests.RequestException, sa.exc.OperationalError) as exc:
            # WHMCS refusing (an invoice paid meanwhile), or its API down during a fault
            with self._lock:
                self.failed[name] += 1
                if len(self.failures) < 50:
                    self.failures.append(f"{name}: {type(exc).__name__}: {exc}"[:300])
            return
        with self._lock:
            self.done[name] += 1

    def _cron(self) -> None:
        while not self._stop.wait(self.cron_every):
            self.cron()

    def cron(self) -> None:
        started = time.time()
        self.whmcs.sandbox.run_cron()
        with self._lock:
            self.crons.append((started, time.time() - started))

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=200)
