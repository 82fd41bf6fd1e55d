"""The PHP test bench, shared by the stub's tests: the real ``php`` running the installed stub
in a throw-away WHMCS folder (``Whmcs``), the same WHMCS database with its hooks run by the
stub's Python emulation instead (``PythonWhmcs``, for the tests both must pass: the ``site``
fixtures), and a capturing HTTP server standing in for the bridge (``CaptureServer``). Loaded
as a pytest plugin by conftest.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from standardwebhooks import Webhook

import whmcs_php_stub
from bridge.sandbox.forwarder import PHP_DIR, PythonForwarder
from bridge.whmcs.schema import tblactivitylog
from bridge.whmcs.stub_install import HOOK_PATH, install_addon, install_stub, php_string
from tests.helpers import SECRET

SECRET_KEY_B64 = SECRET[len("whsec_"):]


@pytest.fixture(scope="session")
def php() -> str:
    path = shutil.which("php")
    if path is None:
        if os.environ.get("VIPGATE_TEST_SKIP_PHP") == "1":
            pytest.skip("VIPGATE_TEST_SKIP_PHP=1")
        pytest.fail("php is not on PATH: install php-cli with the curl, sqlite3 and mysql "
                    "extensions (Debian: apt-get install php-cli php-curl php-sqlite3 "
                    "php-mysql), or set VIPGATE_TEST_SKIP_PHP=1 to skip these tests on purpose")
    return path


# --- a WHMCS folder with the stub installed ---------------------------------------------------


@dataclass
class Whmcs:
    """A throw-away WHMCS folder; ``fire`` runs one hook through the installed stub."""

    root: Path
    php: str
    log: Path
    pdo_env: dict[str, str]
    spool_url: str  # SQLAlchemy URL of the same database, to read the spool table
    # Module Debug Mode (the module log is kept only with it on). On for most tests, which
    # read the detail; off is WHMCS's default.
    module_debug: bool = True
    # Whether the stand-in for Setup > Addon Modules stores password fields encrypted (WHMCS's
    # documentation does not say which it does; bridge/sandbox/php/addon.php).
    encrypt_passwords: bool = False

    @property
    def hook_dir(self) -> Path:
        return self.root / "includes" / "hooks"

    def install(self, url: str, *, fail_open: bool = True) -> None:
        install_stub(self.root, url, SECRET, fail_open=fail_open)

    @property
    def addon_dir(self) -> Path:
        return self.root / "modules" / "addons" / "vipgate"

    def install_addon(self) -> None:
        install_addon(self.root)

    def addon(self, action: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
        """What WHMCS's Setup > Addon Modules does with vipgate (``bridge/sandbox/php/addon.php``:
        activate, configure with ``fields``, deactivate, output); php must exit 0 and print
        nothing but the result."""
        done = subprocess.run([self.php, str(PHP_DIR / "addon.php"), str(self.root), "vipgate",
                               action, json.dumps(fields or {})], capture_output=True, text=True,
                              env=self.env(), timeout=60, check=False)
        assert done.returncode == 0, done.stderr + done.stdout
        assert done.stderr == ""
        return dict(json.loads(done.stdout))

    def addon_settings(self) -> dict[str, str]:
        """vipgate's rows in tbladdonmodules, setting: value."""
        return {r["setting"]: r["value"] for r in self.query(
            "tbladdonmodules", "SELECT setting, value FROM tbladdonmodules "
            "WHERE module = 'vipgate'")}

    def whmcs_setting(self, setting: str) -> str:
        rows = self.query("tblconfiguration",
                          "SELECT value FROM tblconfiguration WHERE setting = :s", s=setting)
        return str(rows[0]["value"]) if rows else ""

    def set_config(self, key: str, value: str) -> None:
        path = self.hook_dir / "_vipgate_config.php"
        text, count = re.subn(rf"'{key}' => [^,]+,", f"'{key}' => {value},",
                              path.read_text())
        assert count == 1
        path.write_text(text)

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "VIPGATE_SANDBOX_LOG": str(self.log), **self.pdo_env,
                "VIPGATE_SANDBOX_MODULE_DEBUG": "on" if self.module_debug else "",
                "VIPGATE_SANDBOX_ENCRYPT_PASSWORDS": "1" if self.encrypt_passwords else "", **extra}

    def command(self, hook: str, variables: dict[str, Any] | None = None, *,
                repeat: int = 1) -> list[str]:
        return [self.php, str(PHP_DIR / "fire.php"), str(self.hook_dir), hook,
                json.dumps(variables or {}), str(repeat)]

    def run(self, hook: str, variables: dict[str, Any] | None = None, *,
            repeat: int = 1, **extra_env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(hook, variables, repeat=repeat),
                              capture_output=True, text=True, env=self.env(**extra_env),
                              timeout=60, check=False)

    def start(self, hook: str, variables: dict[str, Any] | None = None,
              **extra_env: str) -> subprocess.Popen[str]:
        """The hook in a php process of its own, not waited for (stdout piped, line by line)."""
        return subprocess.Popen(self.command(hook, variables), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, bufsize=1,
                                env=self.env(**extra_env))

    def fire(self, hook: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run the hook; php must exit 0 and print nothing but the result (no warnings)."""
        done = self.run(hook, variables)
        assert done.returncode == 0, done.stderr + done.stdout
        assert done.stderr == ""
        return json.loads(done.stdout)

    def eval(self, code: str) -> str:
        """Run PHP ``code`` with the stub loaded (no hook fired); what it printed."""
        script = (f"require {json.dumps(str(PHP_DIR / 'bootstrap.php'))}; "
                  f"require {json.dumps(str(self.hook_dir / 'vipgate.php'))}; {code}")
        done = subprocess.run([self.php, "-r", script], capture_output=True, text=True,
                              env=self.env(), check=False)
        assert done.returncode == 0 and done.stderr == "", done.stdout + done.stderr
        return done.stdout

    def ensure_outbox(self) -> None:
        """The outbox table as the stub makes it."""
        self.eval("vipgate_spool_ensure(vipgate_pdo());")

    def fire_and_look(self, hook: str, variables: dict[str, Any]) -> dict[str, Any]:
        """Fire the hook; right after it returned, still inside the request (before any
        shutdown function), read the outbox through a second connection: ``rows`` (webhook_id,
        attempts, claimed_by), ``hook_ms``, ``returned_at`` (time.time())."""
        script = self.root / "after_hook.php"
        script.write_text(AFTER_HOOK.format(
            bootstrap=json.dumps(str(PHP_DIR / "bootstrap.php")),
            hook_dir=json.dumps(str(self.hook_dir)), hook=php_string(hook),
            vars=php_string(json.dumps(variables))))
        done = subprocess.run([self.php, str(script)], capture_output=True, text=True,
                              env=self.env(), timeout=60, check=False)
        assert done.returncode == 0 and done.stderr == "", done.stdout + done.stderr
        return dict(json.loads(done.stdout))

    def logged(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def spool(self, *, rejected: bool = False) -> list[dict[str, Any]]:
        """The spooled events waiting to be sent (or, ``rejected``, those the bridge refused)."""
        rows = self.query("mod_vipgate_spool",
                          "SELECT id, webhook_id, hook, body, created_at, attempts, last_error, "
                          "rejected_at FROM mod_vipgate_spool ORDER BY id")
        return [r for r in rows if (r["rejected_at"] is not None) == rejected]

    def activity(self) -> list[str]:
        """The System Activity Log (tblactivitylog), oldest first."""
        return [r["description"] for r in self.query(
            "tblactivitylog", "SELECT description FROM tblactivitylog ORDER BY id")]

    def execute(self, *statements: str) -> None:
        """Run ``statements`` on the WHMCS database, in one transaction (WHMCS's own tables
        a test needs: tblconfiguration, tblinvoices, ...)."""
        engine = sa.create_engine(self.spool_url)
        try:
            with engine.begin() as conn:
                for sql in statements:
                    conn.execute(sa.text(sql))
        finally:
            engine.dispose()

    def query(self, table: str, sql: str, **params: Any) -> list[dict[str, Any]]:
        """Rows of ``sql`` on the WHMCS database ([] when ``table`` does not exist yet)."""
        engine = sa.create_engine(self.spool_url)
        try:
            if not sa.inspect(engine).has_table(table):
                return []
            with engine.begin() as conn:
                result = conn.execute(sa.text(sql), params)
                return [dict(r._mapping) for r in result] if result.returns_rows else []
        finally:
            engine.dispose()


# Fires one hook as WHMCS would, then, still inside the request (before any shutdown
# function), reads the outbox through a second connection of its own: what it sees was
# committed when the hook returned.
AFTER_HOOK = """<?php
require {bootstrap};
foreach (glob({hook_dir} . '/*.php') as $file) {{
    if (substr(basename($file), 0, 1) !== '_') {{
        require_once $file;
    }}
}}
$started = microtime(true);
vipgate_test_run_hook({hook}, json_decode({vars}, true));
$returned = microtime(true);
$user = getenv('VIPGATE_SANDBOX_PDO_USER');
$password = getenv('VIPGATE_SANDBOX_PDO_PASSWORD');
$other = new PDO(getenv('VIPGATE_SANDBOX_PDO_DSN'), $user === false ? null : $user,
    $password === false ? null : $password, [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
$rows = $other->query('SELECT webhook_id, attempts, claimed_by FROM mod_vipgate_spool')
    ->fetchAll(PDO::FETCH_ASSOC);
echo json_encode(['hook_ms' => ($returned - $started) * 1000, 'returned_at' => $returned,
    'rows' => $rows]), "\\n";
"""


@dataclass
class PythonWhmcs(Whmcs):
    """The same throw-away WHMCS database, its hooks run by the stub's Python emulation
    (``PythonForwarder``) instead of php; ``install``, ``set_config``, ``fire`` and the
    readers as ``Whmcs``'s, so one test runs against both."""

    database: Path = Path()
    forwarder: PythonForwarder | None = None

    def install(self, url: str, *, fail_open: bool = True) -> None:
        """As install-stub does: the stub's default settings, this URL and fail_open."""
        self.forwarder = PythonForwarder(url.rstrip("/") + HOOK_PATH, SECRET, self.database,
                                         fail_open=fail_open)

    def set_config(self, key: str, value: str) -> None:
        assert self.forwarder is not None
        self.forwarder.settings[key] = int(value)

    def _installed(self) -> PythonForwarder:
        assert self.forwarder is not None, "install() first"
        self.forwarder.module_log = self.log if self.module_debug else None
        return self.forwarder

    def ensure_outbox(self) -> None:
        self._installed().outbox.ensure()

    def fire(self, hook: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """One request: the hook (timed, as fire.php times it), then the delivery."""
        forwarder = self._installed()
        started = time.perf_counter()
        returns, wrote = forwarder.run_hook(hook, variables or {})
        elapsed_ms = (time.perf_counter() - started) * 1000
        if wrote:
            forwarder.deliver_after_response()
        return {"returns": returns, "calls_ms": [elapsed_ms], "elapsed_ms": elapsed_ms}

    def fire_and_look(self, hook: str, variables: dict[str, Any]) -> dict[str, Any]:
        forwarder = self._installed()
        started = time.perf_counter()
        _returns, wrote = forwarder.run_hook(hook, variables)
        hook_ms, returned_at = (time.perf_counter() - started) * 1000, time.time()
        rows = self.query("mod_vipgate_spool", "SELECT webhook_id, attempts, claimed_by "
                          "FROM mod_vipgate_spool")
        if wrote:
            forwarder.deliver_after_response()
        return {"hook_ms": hook_ms, "returned_at": returned_at, "rows": rows}


def whmcs_folder(tmp_path: Path) -> Path:
    root = tmp_path / "whmcs"
    (root / "includes").mkdir(parents=True)
    return root


@pytest.fixture
def whmcs(tmp_path: Path, php: str) -> Iterator[Whmcs]:
    db = tmp_path / "whmcs.db"
    site = Whmcs(whmcs_folder(tmp_path), php, tmp_path / "module-log.jsonl",
                 {"VIPGATE_SANDBOX_PDO_DSN": f"sqlite:{db}"}, f"sqlite:///{db}")
    yield site
    # whatever a test did, the secret never reaches the module log
    text = site.log.read_text() if site.log.exists() else ""
    assert SECRET not in text and SECRET_KEY_B64 not in text


@pytest.fixture
def whmcs_on_mariadb(whmcs: Whmcs, mariadb_url: str) -> Whmcs:
    """The same WHMCS folder, its database a throw-away MariaDB database (mysql PDO)."""
    url = sa.engine.make_url(mariadb_url)
    whmcs.pdo_env = {
        "VIPGATE_SANDBOX_PDO_DSN": f"mysql:host={url.host};port={url.port or 3306};"
                                f"dbname={url.database};charset=utf8mb4",
        "VIPGATE_SANDBOX_PDO_USER": url.username or "",
        "VIPGATE_SANDBOX_PDO_PASSWORD": url.password or "",
    }
    whmcs.spool_url = mariadb_url
    return whmcs


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def whmcs_any_db(request: pytest.FixtureRequest, whmcs: Whmcs) -> Whmcs:
    if request.param == "mariadb":
        return request.getfixturevalue("whmcs_on_mariadb")
    return whmcs


@pytest.fixture
def python_whmcs(tmp_path: Path) -> Iterator[PythonWhmcs]:
    """A WHMCS database (SQLite, with WHMCS's tblactivitylog) whose hooks the Python
    emulation of the stub runs."""
    db = tmp_path / "whmcs.db"
    site = PythonWhmcs(whmcs_folder(tmp_path), "", tmp_path / "module-log.jsonl", {},
                       f"sqlite:///{db}", database=db)
    engine = sa.create_engine(site.spool_url)
    tblactivitylog.create(engine)
    engine.dispose()
    yield site
    text = site.log.read_text() if site.log.exists() else ""
    assert SECRET not in text and SECRET_KEY_B64 not in text


PHP = pytest.param("php", marks=pytest.mark.php)


@pytest.fixture(params=[PHP, "python"])
def site(request: pytest.FixtureRequest) -> Whmcs:
    """The stub's path run by the real php stub, then by its Python emulation (SQLite)."""
    return request.getfixturevalue("whmcs" if request.param == "php" else "python_whmcs")


@pytest.fixture(params=[PHP, pytest.param("php-mariadb", marks=[pytest.mark.php,
                                                                pytest.mark.mariadb]),
                        "python"])
def site_any_db(request: pytest.FixtureRequest) -> Whmcs:
    """As ``site``, and the php stub also on MariaDB (the emulation keeps a SQLite file)."""
    return request.getfixturevalue({"php": "whmcs", "php-mariadb": "whmcs_on_mariadb",
                                    "python": "python_whmcs"}[request.param])


def fill_outbox(site: Whmcs, server_url: str, count: int) -> list[str]:
    """``count`` waiting InvoicePaid rows (invoice 0, 1, ...), in the table the stub makes."""
    site.install(server_url)
    ids = [f"msg_{i:032x}" for i in range(count)]
    site.ensure_outbox()
    at = datetime.now(UTC).replace(tzinfo=None)
    rows = [{"id": webhook_id, "at": at, "body": json.dumps(
        {"hook": "InvoicePaid", "vars": {"invoiceid": i},
         "occurred_at": "2026-01-01T00:00:00+00:00"}, separators=(",", ":"))}
        for i, webhook_id in enumerate(ids)]
    engine = sa.create_engine(site.spool_url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO mod_vipgate_spool (webhook_id, hook, body, "
                             "created_at, attempts) VALUES (:id, 'InvoicePaid', :body, :at, 0)"),
                     rows)
    engine.dispose()
    return ids


@pytest.fixture
def closed_url() -> Iterator[str]:
    """A loopback port that refuses connections (bound, never listening)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


# --- a capturing HTTP server --------------------------------------------------------------------


@dataclass
class Captured:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


def batch_answer(request: Captured, status_of: Callable[[dict[str, Any]], str] | None = None,
                 ) -> bytes:
    """The bridge's 200 answer to a batch (the contract in docs/openapi.yaml): one result per
    event, ``status_of(event)`` each (default queued; "rejected" gets an error)."""
    results = []
    for i, event in enumerate(json.loads(request.body)["events"]):
        status = status_of(event) if status_of else "queued"
        result: dict[str, Any] = {"index": i, "id": event.get("id"), "status": status}
        if status == "rejected":
            result["error"] = {"code": "invalid_payload", "message": "refused by the test",
                               "fields": ["vars.invoiceid"]}
        results.append(result)
    counts = {s: sum(r["status"] == s for r in results)
              for s in ("queued", "duplicate", "rejected")}
    return json.dumps({"results": results, **counts}).encode()


@dataclass
class CaptureServer:
    """Records raw requests; answers ``status`` with ``answer``, or never (``hang``). A batch
    (``.../batch``) answered 2xx gets the batch contract's answer: ``batch`` makes it from the
    request, by default every event queued."""

    status: int = 202
    answer: bytes = b'{"id": "x", "status": "queued"}'
    hang: bool = False
    delay: float = 0.0  # seconds before answering
    batch: Callable[[Captured], bytes] | None = None
    # extra answer headers, made from the request (e.g. a signature, forged or not)
    answer_headers: Callable[[Captured], dict[str, str]] | None = None
    requests: list[Captured] = field(default_factory=list)
    # GETs (PreCronJob's "does the bridge answer at all?"): answered 405, or never (hang)
    probes: list[Captured] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def delivered(self) -> list[tuple[str, dict[str, Any]]]:
        """(webhook id, event) of every event received, singly or in a batch, in order."""
        events: list[tuple[str, dict[str, Any]]] = []
        for request in list(self.requests):
            if request.path.endswith("/batch"):
                for event in json.loads(request.body)["events"]:
                    events.append((event["id"], {k: v for k, v in event.items() if k != "id"}))
            else:
                events.append((request.headers["webhook-id"], json.loads(request.body)))
        return events

    def batches(self) -> list[Captured]:
        return [r for r in self.requests if r.path.endswith("/batch")]

    def start(self) -> ThreadingHTTPServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                owner.probes.append(Captured(self.path, {k.lower(): v for k, v in
                                                         self.headers.items()}, b"", time.time()))
                if owner.hang:
                    owner.release.wait(15)
                    self.close_connection = True
                    return
                answer = b'{"error": "method_not_allowed"}'
                self.send_response(405)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                captured = Captured(self.path, {k.lower(): v for k, v in self.headers.items()},
                                    body, time.time())
                owner.requests.append(captured)
                if owner.hang:
                    owner.release.wait(15)
                    self.close_connection = True
                    return
                if owner.delay:
                    time.sleep(owner.delay)
                status, answer = owner.status, owner.answer
                if self.path.endswith("/batch") and 200 <= status < 300:
                    status = 200
                    answer = (owner.batch or batch_answer)(captured)
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/hooks/elsewhere")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                if owner.answer_headers is not None:
                    for name, value in owner.answer_headers(captured).items():
                        self.send_header(name, value)
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        self.url = f"http://127.0.0.1:{server.server_port}"
        return server


@pytest.fixture
def capture() -> Iterator[Callable[..., CaptureServer]]:
    started: list[tuple[CaptureServer, ThreadingHTTPServer]] = []

    def make(**kw: Any) -> CaptureServer:
        box = CaptureServer(**kw)
        started.append((box, box.start()))
        return box

    yield make
    for box, server in started:
        box.release.set()
        server.shutdown()
        server.server_close()


def verified(request: Captured) -> dict[str, Any]:
    """The request's body, after checking its signature with the standardwebhooks package."""
    return Webhook(SECRET).verify(request.body, request.headers)


def addon_words(php: str, language: str) -> dict[str, str]:
    """The $_ADDONLANG of the package's addon/lang/LANGUAGE.php, read by php."""
    path = Path(whmcs_php_stub.__file__).parent / "addon" / "lang" / f"{language}.php"
    done = subprocess.run([php, "-r", f"define('WHMCS', 1); include {json.dumps(str(path))};"
                           " echo json_encode($_ADDONLANG);"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0 and done.stderr == "", done.stderr + done.stdout
    return dict(json.loads(done.stdout))
