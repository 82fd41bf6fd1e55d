"""Deployment as operators run it: ``vipgate init`` (a commented config with fresh secrets,
the WHMCS credential checked against the sandbox's API), ``vipgate deploy systemd`` (verified
by systemd-analyze, gunicorn's command line checked) and ``vipgate deploy nginx`` (``nginx
-t``, then nginx serving in front of the bridge), and the bridge behind a proxy."""

from __future__ import annotations

import configparser
import getpass
import os
import select
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import requests

from bridge.deploy.config_file import GENERATED, GIVEN, example_text
from bridge.sandbox.serve import RunningSandbox
from bridge.sandbox.whmcs import Sandbox, SandboxClock
from bridge.settings import declared_keys, load_settings
from tests.admin_helpers import ADMIN, PASSWORD, csrf_token

ROOT = Path(__file__).resolve().parent.parent
API_ID = "deploy-api-id"
API_SECRET = "deploy-api-secret-0042"


def vipgate(*args: str, cwd: Path, stdin: str = "",
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("VIPGATE_")}
    environment["PYTHONPATH"] = str(ROOT)
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "bridge", *args], cwd=cwd, env=environment,
                          input=stdin, capture_output=True, text=True, timeout=60, check=False)


def one_line_error(answer: subprocess.CompletedProcess[str], code: int, expected: str) -> None:
    assert answer.returncode == code, (answer.stdout, answer.stderr)
    assert len(answer.stderr.strip().splitlines()) == 1, answer.stderr
    assert expected in answer.stderr, answer.stderr


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    sandbox = Sandbox(f"sqlite:///{tmp_path}/whmcs.db",
                      clock=SandboxClock(datetime(2026, 11, 21, 9, 0)))
    sandbox.add_api_credential(API_ID, API_SECRET)
    sandbox.add_group("Clientes")
    sandbox.add_group("VIP", susptermexempt=True)
    yield sandbox
    sandbox.dispose()


def credential(url: str, secret: str = API_SECRET) -> list[str]:
    return ["--whmcs-url", url, "--identifier", API_ID, "--secret", secret]


# --- vipgate init ---------------------------------------------------------------------------


def test_every_secret_setting_is_made_by_init_or_given_by_the_operator() -> None:
    secret = {(d.section, d.key) for d in declared_keys() if d.secret}
    assert secret == set(GENERATED) | GIVEN
    assert not set(GENERATED) & GIVEN


def test_init_writes_the_commented_example_with_fresh_secrets_and_the_checked_credential(
        served: RunningSandbox, tmp_path: Path) -> None:
    answer = vipgate("init", *credential(served.url), "--public-url", "https://vg.example.com",
                     cwd=tmp_path)
    assert answer.returncode == 0, answer.stderr
    assert f"whmcs: ok ({served.url}; client groups: 1 Clientes, 2 VIP)" in answer.stdout
    for step in ("db upgrade", "install-stub --addon", "Setup > Addon Modules > vipgate",
                 "admin create-user", "deploy systemd"):
        assert step in answer.stdout
    written = tmp_path / "vipgate.ini"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    settings = load_settings(written, environ={})
    assert (settings.whmcs.url, settings.whmcs.identifier, settings.whmcs.secret) == (
        served.url, API_ID, API_SECRET)
    assert settings.bridge.public_url == "https://vg.example.com"
    assert len(settings.webhook.secrets) == 1 and len(settings.admin.secret_key) >= 64
    # the example's text, line for line, but for the header and the values init set
    example = example_text().splitlines()
    lines = written.read_text().splitlines()
    body = example[example.index(""):]
    assert len(lines[lines.index(""):]) == len(body)
    changed = [(a, b) for a, b in zip(body, lines[lines.index(""):], strict=True) if a != b]
    assert sorted(b.partition(" =")[0] for a, b in changed) == [
        "identifier", "public_url", "secret", "secret_key", "secrets", "url"]
    assert all(a.partition(" =")[0] == b.partition(" =")[0] for a, b in changed)
    # another run, another secret
    again = vipgate("init", "--config", "b.ini", *credential(served.url), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    other = load_settings(tmp_path / "b.ini", environ={})
    assert other.webhook.secrets != settings.webhook.secrets
    assert other.admin.secret_key != settings.admin.secret_key


def test_init_asks_for_what_its_options_do_not_give(served: RunningSandbox,
                                                    tmp_path: Path) -> None:
    answer = vipgate("--config", "asked.ini", "init", cwd=tmp_path,
                     stdin=f"{served.url}/\n{API_ID}\n{API_SECRET}\n")
    assert answer.returncode == 0, answer.stderr
    settings = load_settings(tmp_path / "asked.ini", environ={})
    assert (settings.whmcs.url, settings.whmcs.secret) == (served.url, API_SECRET)
    assert API_SECRET not in answer.stdout + answer.stderr


def test_init_refuses_an_existing_file_and_keeps_a_backup_with_force(tmp_path: Path) -> None:
    target = tmp_path / "vipgate.ini"
    target.write_text("[policy]\ngrace_days = 4\n")
    args = ["init", *credential("http://127.0.0.1:9"), "--no-check"]
    one_line_error(vipgate(*args, cwd=tmp_path), 2, "exists; pass --force")
    assert target.read_text() == "[policy]\ngrace_days = 4\n"
    answer = vipgate(*args, "--force", cwd=tmp_path)
    assert answer.returncode == 0, answer.stderr
    backups = list(tmp_path.glob("vipgate.ini.bak-*"))
    assert [b.read_text() for b in backups] == ["[policy]\ngrace_days = 4\n"]
    assert f"kept the old file as {backups[0].name}" in answer.stdout
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert load_settings(target, environ={}).whmcs.identifier == API_ID


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(("make_args", "code", "expected"), [
    (lambda url: credential("whmcs.example.com"), 2,
     "--whmcs-url 'whmcs.example.com': expected an URL starting with http:// or https://"),
    (lambda url: credential(f"http://127.0.0.1:{free_port()}"), 1, "did not answer the API"),
    (lambda url: credential(url, secret="wrong-secret"), 1,
     "refused the API credential (Invalid or missing credentials): check --identifier"),
    (lambda url: credential(url + "/includes/api.php"), 2, "without /includes/api.php"),
    (lambda url: ["--whmcs-url", url, "--identifier", " ", "--secret", "x"], 2,
     "--identifier is empty"),
    (lambda url: [*credential(url), "--database-url", "postgres://u:pw@x"], 2,
     "--database-url: expected sqlite:///PATH or mysql+pymysql://"),  # may hold a password
    (lambda url: ["--whmcs-url", url], 2, "no answer for WHMCS API identifier: pass "
     "--identifier"),
])
def test_init_bad_input_is_one_line_and_writes_nothing(served: RunningSandbox, tmp_path: Path,
                                                       make_args, code, expected) -> None:
    answer = vipgate("init", *make_args(served.url), cwd=tmp_path)
    one_line_error(answer, code, expected)
    assert "wrong-secret" not in answer.stderr and "pw@" not in answer.stderr
    assert list(tmp_path.glob("*.ini")) == []


def test_init_says_when_the_folder_is_missing(tmp_path: Path) -> None:
    answer = vipgate("init", "--config", str(tmp_path / "etc" / "vipgate.ini"),
                     *credential("http://127.0.0.1:9"), "--no-check", cwd=tmp_path)
    one_line_error(answer, 2, f"folder {tmp_path / 'etc'} does not exist")


# --- systemd units ----------------------------------------------------------------------------


def exec_start(text: str) -> list[str]:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return shlex.split(parser["Service"]["ExecStart"])


def units(tmp_path: Path, *args: str) -> dict[str, str]:
    out = tmp_path / "units"
    out.mkdir(exist_ok=True)
    answer = vipgate("deploy", "systemd", "--venv", sys.prefix, *args, "--output-dir",
                     str(out), cwd=tmp_path)
    assert answer.returncode == 0, answer.stderr
    return {p.name: p.read_text() for p in sorted(out.iterdir())}


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    written = units(tmp_path)
    assert sorted(written) == ["vipgate-web.service", "vipgate-worker.service"]
    verify = subprocess.run(["systemd-analyze", "verify",
                             *(str(tmp_path / "units" / n) for n in written)],
                            capture_output=True, text=True, timeout=60, check=False)
    # no warning either (an unknown key or a bad value is only a warning)
    assert (verify.returncode, verify.stdout + verify.stderr) == (0, "")


def test_the_units_run_vipgate_from_the_venv_and_follow_the_config(tmp_path: Path) -> None:
    config = tmp_path / "vipgate.ini"
    config.write_text("[bridge]\ndatabase_url = sqlite:////srv/data/vipgate.db\n"
                      "precron_wait_seconds = 60\n")
    written = units(tmp_path, "--config", str(config), "--user", "vg", "--workers", "3")
    web, worker = written["vipgate-web.service"], written["vipgate-worker.service"]
    for text in (web, worker):
        assert f"Environment=VIPGATE_CONFIG={config}\n" in text
        assert "User=vg\nGroup=vg\n" in text and "Restart=on-failure\n" in text
        assert "ProtectSystem=strict\n" in text and "NoNewPrivileges=yes\n" in text
        assert "ReadWritePaths=/srv/data\n" in text
        assert "EnvironmentFile=-/etc/vipgate/vipgate.env\n" in text
        assert "${" not in text
    assert exec_start(worker) == [f"{sys.prefix}/bin/vipgate", "worker"]
    command = exec_start(web)
    assert command[0] == f"{sys.prefix}/bin/gunicorn" and Path(command[0]).exists()
    assert command[-1] == "bridge.web.app:create_app()"
    assert command[command.index("--timeout") + 1] == "90"  # precron_wait_seconds + 30
    assert command[command.index("--workers") + 1] == "3"
    # the default database is in the state folder; MariaDB writes nothing locally
    config.write_text("[bridge]\nprecron_wait_seconds = 60\n")
    assert "ReadWritePaths=/var/lib/vipgate\n" in units(tmp_path, "--config", str(config))[
        "vipgate-web.service"]
    config.write_text("[bridge]\ndatabase_url = mysql+pymysql://vg:pw@db:3306/vg\n")
    assert "ReadWritePaths" not in "".join(
        line for line in units(tmp_path, "--config", str(config))["vipgate-web.service"]
        .splitlines() if not line.startswith("#"))


def test_the_web_units_gunicorn_command_loads_the_app(tmp_path: Path) -> None:
    """gunicorn --check-config with the unit's own arguments, on a config init wrote."""
    assert vipgate("init", "--database-url", f"sqlite:///{tmp_path}/v.db",
                   *credential("http://127.0.0.1:9"), "--no-check", cwd=tmp_path
                   ).returncode == 0
    command = exec_start(units(tmp_path, "--config", str(tmp_path / "vipgate.ini"))[
        "vipgate-web.service"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIPGATE_")}
    checked = subprocess.run([*command[:-1], "--check-config", command[-1]], cwd=tmp_path,
                             env={**env, "PYTHONPATH": str(ROOT),
                                  "VIPGATE_CONFIG": str(tmp_path / "vipgate.ini")},
                             capture_output=True, text=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert (tmp_path / "v.db").exists()  # the app was built: SQLite migrated at start


def test_deploy_systemd_refuses_relative_paths(tmp_path: Path) -> None:
    one_line_error(vipgate("deploy", "systemd", "--venv", "venv", cwd=tmp_path), 2,
                   "--venv 'venv': expected an absolute path")


# --- nginx ------------------------------------------------------------------------------------


def nginx_site(tmp_path: Path, *args: str) -> str:
    answer = vipgate("deploy", "nginx", "--server-name", "vipgate.example.com", *args,
                     cwd=tmp_path)
    assert answer.returncode == 0, answer.stderr
    return answer.stdout


def test_the_nginx_site_takes_batches_and_waits_for_precron(tmp_path: Path) -> None:
    config = tmp_path / "vipgate.ini"
    config.write_text("[webhook]\nmax_batch_bytes = 10000000\n[bridge]\n"
                      "precron_wait_seconds = 115\n")
    site = nginx_site(tmp_path, "--config", str(config))
    assert "client_max_body_size 11m;" in site  # 10,000,000 bytes is 9.5 MiB
    assert "proxy_read_timeout 145s;" in site
    default = nginx_site(tmp_path)
    assert "client_max_body_size 5m;" in default and "proxy_read_timeout 130s;" in default
    assert "/etc/letsencrypt/live/vipgate.example.com/fullchain.pem" in default
    one_line_error(vipgate("deploy", "nginx", "--server-name", "a b;", cwd=tmp_path), 2,
                   "expected a host name")


# Workers as this user: they write request bodies into the test's own folder.
NGINX_MAIN = """\
user {user};
pid {d}/nginx.pid;
error_log {d}/error.log;
daemon off;
events {{}}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    include {d}/vipgate.conf;
}}
"""


@pytest.fixture
def nginx_prefix(tmp_path: Path) -> Path:
    if shutil.which("nginx") is None:
        pytest.skip("nginx is not installed (Debian: apt-get install nginx)")
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                           "-keyout", str(prefix / "key.pem"), "-out", str(prefix / "cert.pem"),
                           "-days", "1", "-subj", "/CN=vipgate.example.com",
                           "-addext", "subjectAltName=IP:127.0.0.1"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert made.returncode == 0, made.stderr
    (prefix / "nginx.conf").write_text(NGINX_MAIN.format(d=prefix, user=getpass.getuser()))
    return prefix


def test_nginx_accepts_the_site(nginx_prefix: Path, tmp_path: Path) -> None:
    site = nginx_site(tmp_path, "--certificate", str(nginx_prefix / "cert.pem"),
                      "--certificate-key", str(nginx_prefix / "key.pem"))
    (nginx_prefix / "vipgate.conf").write_text(site)
    tested = subprocess.run(["nginx", "-t", "-p", str(nginx_prefix), "-c",
                             str(nginx_prefix / "nginx.conf")],
                            capture_output=True, text=True, timeout=60, check=False)
    assert tested.returncode == 0, tested.stderr
    assert "test is successful" in tested.stderr


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_nginx_in_front_of_the_bridge(nginx_prefix: Path, live_bridge, tmp_path: Path) -> None:
    """The site served by nginx (its ports moved for the test) in front of a live bridge:
    the hooks and the admin page pass over TLS, big batches reach the bridge's own limit,
    other paths end at nginx, plain http is sent to https."""
    upstream = live_bridge.url.removeprefix("http://")
    site = nginx_site(tmp_path, "--upstream", upstream,
                      "--certificate", str(nginx_prefix / "cert.pem"),
                      "--certificate-key", str(nginx_prefix / "key.pem"))
    http_port, https_port = free_port(), free_port()
    site = (site.replace("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;")
            .replace("listen 80;", f"listen 127.0.0.1:{http_port};")
            .replace("listen [::]:443 ssl;\n", "").replace("listen [::]:80;\n", ""))
    (nginx_prefix / "vipgate.conf").write_text(site)
    server = subprocess.Popen(["nginx", "-p", str(nginx_prefix), "-c",
                               str(nginx_prefix / "nginx.conf")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"https://127.0.0.1:{https_port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", https_port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                time.sleep(0.05)
        session = requests.Session()
        session.trust_env = False  # REQUESTS_CA_BUNDLE would win over verify
        session.verify = str(nginx_prefix / "cert.pem")
        # a 3 MB body passes nginx (its default limit is 1 MB) and the bridge answers it
        big = session.post(f"{base}/hooks/whmcs/batch", data=b"x" * 3_000_000,
                           headers={"Content-Type": "application/json"}, timeout=30)
        assert big.status_code == 401 and big.json()["error"] == "missing_signature"
        # beyond [webhook] max_batch_bytes it is the bridge that refuses, in JSON
        huge = session.post(f"{base}/hooks/whmcs/batch", data=b"x" * 4_300_000,
                            headers={"Content-Type": "application/json"}, timeout=30)
        assert huge.status_code == 413 and huge.json()["error"]
        assert session.get(f"{base}/admin/login", timeout=10).status_code == 200
        assert session.get(f"{base}/healthz", timeout=10).json()["status"]
        assert session.get(f"{base}/something-else", timeout=10).status_code == 404
        plain = session.get(f"http://127.0.0.1:{http_port}/admin/login", timeout=10,
                            allow_redirects=False)
        assert plain.status_code == 301
        assert plain.headers["Location"].startswith("https://")
    finally:
        server.send_signal(signal.SIGQUIT)
        server.wait(timeout=10)


# --- behind a proxy ---------------------------------------------------------------------------


def login_audit(settings, store, forwarded_for: str) -> str:  # type: ignore[no-untyped-def]
    from bridge import accounts
    from bridge.web.app import create_app

    app = create_app(settings, store=store)
    accounts.create_user(store, ADMIN, PASSWORD, datetime.now().astimezone())
    client = app.test_client()
    page = client.get("/admin/login")
    answer = client.post("/admin/login", headers={"X-Forwarded-For": forwarded_for},
                         data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                               "name": ADMIN, "password": PASSWORD})
    assert answer.status_code == 302
    (entry,) = store.audit_log(action="admin_login")
    return " ".join(entry.reasons)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_client_address_comes_from_the_proxy_only_when_told(settings, store) -> None:
    assert login_audit(settings, store, "203.0.113.7") == "logged in from 127.0.0.1"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_behind_one_proxy_the_audit_names_the_browser(settings, store) -> None:
    behind = settings.replace(bridge={"proxy_count": 1})
    assert login_audit(behind, store, "198.51.100.1, 203.0.113.7") == \
        "logged in from 203.0.113.7"


def test_init_prompts_on_a_terminal_and_hides_the_secret(served: RunningSandbox,
                                                         tmp_path: Path) -> None:
    import pty

    pid, terminal = pty.fork()
    if pid == 0:  # the child: vipgate init on the terminal
        os.chdir(tmp_path)
        os.environ["PYTHONPATH"] = str(ROOT)
        os.execv(sys.executable, [sys.executable, "-m", "bridge", "init"])  # noqa: S606
    seen = b""

    def read() -> bytes:
        """What the child wrote next, within 20 s; b"" once it closed the terminal."""
        assert select.select([terminal], [], [], 20)[0], seen.decode()
        try:
            return os.read(terminal, 4096)
        except OSError:
            return b""

    for prompt, answer in ((b"WHMCS URL", served.url), (b"identifier: ", API_ID),
                           (b"secret: ", API_SECRET)):
        while prompt not in seen:
            chunk = read()
            assert chunk, seen.decode()
            seen += chunk
        os.write(terminal, answer.encode() + b"\n")
    while chunk := read():
        seen += chunk
    assert os.waitpid(pid, 0)[1] == 0, seen.decode()
    assert API_SECRET.encode() not in seen  # not echoed
    assert b"whmcs: ok" in seen
    assert load_settings(tmp_path / "vipgate.ini", environ={}).whmcs.secret == API_SECRET
