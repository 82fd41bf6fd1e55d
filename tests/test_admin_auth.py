"""The admin page's gate: accounts, login, throttling, sessions, CSRF and security headers."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask

from bridge import accounts
from bridge.admin.common import PUBLIC_ENDPOINTS
from bridge.settings import Settings
from bridge.store import Store
from bridge.store.tables import admin_user, audit
from bridge.web.app import create_app
from tests.admin_helpers import ADMIN, PASSWORD, AdminSession, csrf_token
from tests.helpers import Clock


def _admin_rules(app: Flask) -> list[tuple[str, str, set[str]]]:
    """(path with sample arguments, endpoint, methods) of every admin route."""
    rules = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin") or rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        path = rule.rule
        for argument in rule.arguments:
            path = path.replace(f"<int:{argument}>", "1").replace(f"<{argument}>", "x")
        rules.append((path, rule.endpoint, set(rule.methods or ()) - {"HEAD", "OPTIONS"}))
    return rules


def _login(app: Flask, name: str, password: str) -> tuple[int, str]:
    client = app.test_client()
    page = client.get("/admin/login")
    answer = client.post("/admin/login", data={
        "csrf_token": csrf_token(page.get_data(as_text=True)), "name": name,
        "password": password})
    return answer.status_code, answer.get_data(as_text=True)


@pytest.fixture
def admin_app(settings: Settings, store: Store, clock: Clock) -> Flask:
    return create_app(settings, store=store, clock=clock)


def test_every_admin_route_requires_login(admin_app: Flask) -> None:
    client = admin_app.test_client()
    rules = _admin_rules(admin_app)
    assert {endpoint for _, endpoint, _ in rules} >= {
        "admin.overview", "admin.dashboard", "admin.settings", "admin.roster", "admin.clients",
        "admin.audit", "admin.inbox", "admin.promises", "admin.logout"}
    for path, _endpoint, methods in rules:
        for method in methods:
            answer = client.open(path, method=method)
            assert answer.status_code in (302, 400), (method, path)
            if answer.status_code == 302:
                assert answer.headers["Location"].startswith("/admin/login"), (method, path)


def test_every_admin_form_requires_the_csrf_token(admin_app: Flask) -> None:
    session = AdminSession(admin_app)
    posts = [(path, endpoint) for path, endpoint, methods in _admin_rules(admin_app)
             if "POST" in methods]
    assert posts
    for path, endpoint in posts:
        answer = session.client.post(path, data={})
        assert answer.status_code == 400, (path, endpoint)
        assert "CSRF" in answer.get_data(as_text=True), (path, endpoint)
        forged = session.client.post(path, data={"csrf_token": "forged"})
        assert forged.status_code == 400, (path, endpoint)


def test_login_sends_to_the_page_asked_for_and_logout_ends_the_session(
        admin_app: Flask) -> None:
    with admin_app.app_context():
        accounts.create_user(admin_app.extensions["vipgate"].store, ADMIN, PASSWORD,
                             datetime.now(UTC))
    client = admin_app.test_client()
    asked = client.get("/admin/roster?tab=pinned")
    assert asked.headers["Location"] == "/admin/login?next=/admin/roster?tab%3Dpinned"
    page = client.get(asked.headers["Location"])
    token = csrf_token(page.get_data(as_text=True))
    answer = client.post(asked.headers["Location"], data={
        "csrf_token": token, "name": ADMIN, "password": PASSWORD})
    assert answer.status_code == 302 and answer.headers["Location"] == "/admin/roster?tab=pinned"
    overview = client.get("/admin/")
    assert overview.status_code == 200 and ADMIN in overview.get_data(as_text=True)
    out = client.post("/admin/logout", data={
        "csrf_token": csrf_token(overview.get_data(as_text=True))})
    assert out.status_code == 302
    assert client.get("/admin/").status_code == 302


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/admin",
                                    "/hooks/whmcs", "javascript:alert(1)"])
def test_login_never_redirects_off_the_admin_page(admin_app: Flask, target: str) -> None:
    with admin_app.app_context():
        accounts.create_user(admin_app.extensions["vipgate"].store, ADMIN, PASSWORD,
                             datetime.now(UTC))
    client = admin_app.test_client()
    token = csrf_token(client.get("/admin/login").get_data(as_text=True))
    answer = client.post("/admin/login", query_string={"next": target}, data={
        "csrf_token": token, "name": ADMIN, "password": PASSWORD})
    assert answer.headers["Location"] == "/admin/"


def test_wrong_password_and_unknown_account_get_the_same_answer(admin_app: Flask) -> None:
    with admin_app.app_context():
        accounts.create_user(admin_app.extensions["vipgate"].store, ADMIN, PASSWORD,
                             datetime.now(UTC))
    wrong = _login(admin_app, ADMIN, "not the password")
    unknown = _login(admin_app, "mallory", "not the password")
    assert wrong[0] == unknown[0] == 401
    # Before logging in, the page is in [bridge] language (pt_BR unless configured).
    assert "Conta ou senha incorreta." in wrong[1]
    assert "Conta ou senha incorreta." in unknown[1]


def test_failed_logins_lock_the_account_across_workers(settings: Settings, store: Store,
                                                       clock: Clock) -> None:
    """Two apps over one database stand for two gunicorn workers: failures add up."""
    settings = settings.replace(admin={"login_attempts": 3, "lockout_minutes": 10})
    first = create_app(settings, store=store, clock=clock)
    second = create_app(settings, store=store, clock=clock)
    accounts.create_user(store, ADMIN, PASSWORD, clock())
    assert _login(first, ADMIN, "wrong 1")[0] == 401
    assert _login(second, ADMIN, "wrong 2")[0] == 401
    status, page = _login(first, ADMIN, "wrong 3")
    assert status == 429 and "Muitas tentativas de entrada com falha" in page
    status, page = _login(second, ADMIN, PASSWORD)  # locked: even the right password waits
    assert status == 429 and "tente de novo em 10 minutos" in page
    clock.advance(minutes=10, seconds=1)
    assert _login(second, ADMIN, PASSWORD)[0] == 302
    with store.engine.connect() as conn:
        actions = [r.action for r in conn.execute(audit.select())]
    assert actions == ["admin_login"]


def test_failures_outside_the_window_do_not_add_up(settings: Settings, store: Store,
                                                   clock: Clock) -> None:
    settings = settings.replace(admin={"login_attempts": 2, "lockout_minutes": 5})
    app = create_app(settings, store=store, clock=clock)
    accounts.create_user(store, ADMIN, PASSWORD, clock())
    assert _login(app, ADMIN, "wrong")[0] == 401
    clock.advance(minutes=6)
    assert _login(app, ADMIN, "wrong")[0] == 401  # the first failure is too old to count
    assert _login(app, ADMIN, PASSWORD)[0] == 302


def test_unknown_account_names_are_throttled_too(settings: Settings, store: Store,
                                                 clock: Clock) -> None:
    app = create_app(settings.replace(admin={"login_attempts": 2}), store=store, clock=clock)
    assert _login(app, "nobody", "x")[0] == 401
    assert _login(app, "NoBody", "x")[0] == 429  # names are counted case-insensitively


def test_login_starts_a_new_session(admin_app: Flask) -> None:
    """The cookie a visitor had before logging in never becomes a logged-in session."""
    with admin_app.app_context():
        accounts.create_user(admin_app.extensions["vipgate"].store, ADMIN, PASSWORD,
                             datetime.now(UTC))
    client = admin_app.test_client()
    page = client.get("/admin/login")
    before = client.get_cookie("vipgate_session").value
    client.post("/admin/login", data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                      "name": ADMIN, "password": PASSWORD})
    after = client.get_cookie("vipgate_session").value
    assert before != after
    stale = admin_app.test_client()
    stale.set_cookie("vipgate_session", before)
    assert stale.get("/admin/").status_code == 302


def test_a_new_password_ends_existing_sessions(admin_app: Flask) -> None:
    session = AdminSession(admin_app)
    assert session.get("/admin/").status_code == 200
    with admin_app.app_context():
        accounts.create_user(admin_app.extensions["vipgate"].store, ADMIN, "a brand new password",
                             datetime.now(UTC))
    assert session.get("/admin/").status_code == 302


def test_session_cookie_flags_and_security_headers(admin_app: Flask) -> None:
    session = AdminSession(admin_app)
    answer = session.get("/admin/")
    for header, value in [("X-Frame-Options", "DENY"), ("X-Content-Type-Options", "nosniff"),
                          ("Referrer-Policy", "same-origin"), ("Cache-Control", "no-store")]:
        assert answer.headers[header] == value
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
    assert "script-src 'self'" in answer.headers["Content-Security-Policy"]
    assert "Strict-Transport-Security" in answer.headers
    login_page = admin_app.test_client().get("/admin/login")
    cookie = login_page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


def test_secure_cookies_can_be_turned_off_for_plain_http(settings: Settings, store: Store,
                                                         clock: Clock) -> None:
    app = create_app(settings.replace(admin={"secure_cookies": "off"}), store=store,
                     clock=clock)
    cookie = app.test_client().get("/admin/login").headers["Set-Cookie"]
    assert "Secure" not in cookie and "HttpOnly" in cookie
    assert "Strict-Transport-Security" not in app.test_client().get("/admin/login").headers


def test_admin_errors_are_html_pages_and_the_webhook_keeps_json(admin_app: Flask) -> None:
    session = AdminSession(admin_app)
    missing = session.get("/admin/no-such-page")
    assert missing.status_code == 404 and missing.mimetype == "text/html"
    hook = admin_app.test_client().post("/hooks/whmcs", data=b"{}",
                                        content_type="application/json")
    assert hook.status_code == 401 and hook.is_json  # the webhook is signed, never CSRF-checked


def test_the_session_key_is_generated_once_and_kept(settings: Settings, store: Store,
                                                    clock: Clock) -> None:
    first = create_app(settings, store=store, clock=clock)
    second = create_app(settings, store=store, clock=clock)
    assert first.secret_key and first.secret_key == second.secret_key
    configured = create_app(settings.replace(admin={"secret_key": "k" * 40}), store=store,
                            clock=clock)
    assert configured.secret_key == "k" * 40


def test_passwords_are_stored_as_argon2id_hashes(store: Store) -> None:
    accounts.create_user(store, ADMIN, PASSWORD, datetime.now(UTC))
    with store.engine.connect() as conn:
        stored = conn.execute(admin_user.select()).one().password_hash
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$") and PASSWORD not in stored


# --- vipgate admin create-user ---------------------------------------------------------------


def _create_user(tmp_path: Path, name: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bridge", "admin", "create-user", name],
                          input=stdin, capture_output=True, text=True, cwd=tmp_path,
                          timeout=60)


def test_create_user_reads_the_password_from_stdin(tmp_path: Path) -> None:
    made = _create_user(tmp_path, "owner", "a long enough password\n")
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == "vipgate: admin account owner created"
    store = Store(f"sqlite:///{tmp_path}/vipgate.db")
    try:
        assert accounts.users(store) == ["owner"]
        assert accounts.login(store, "owner", "a long enough password",
                              _admin_settings(), datetime.now(UTC)).ok
    finally:
        store.dispose()
    again = _create_user(tmp_path, "owner", "another long password\n")
    assert again.returncode == 0
    assert "password changed" in again.stdout


@pytest.mark.parametrize(("name", "stdin", "message"), [
    ("bad name", "a long enough password\n", "NAME 'bad name': expected an account name"),
    (".x", "a long enough password\n", "expected an account name"),
    ("a" * 65, "a long enough password\n", "expected an account name of 1 to 64"),
    ("owner", "short\n", "password: expected a password of at least 10 characters"),
    ("owner", "", "password: expected a password of at least 10 characters"),
])
def test_create_user_refuses_bad_input_in_one_line(tmp_path: Path, name: str, stdin: str,
                                                   message: str) -> None:
    made = _create_user(tmp_path, name, stdin)
    assert made.returncode == 2
    assert message in made.stderr and len(made.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "vipgate.db").exists() or not _users(tmp_path)


def _users(tmp_path: Path) -> list[str]:
    store = Store(f"sqlite:///{tmp_path}/vipgate.db")
    try:
        return accounts.users(store)
    finally:
        store.dispose()


def _admin_settings():  # type: ignore[no-untyped-def]
    from bridge.settings import default_settings

    return default_settings().admin


def test_throttle_window_uses_the_service_clock(store: Store) -> None:
    settings = _admin_settings()
    start = datetime(2026, 11, 21, 12, tzinfo=UTC)
    for i in range(settings.login_attempts):
        result = accounts.login(store, "ghost", "x", settings, start + timedelta(seconds=i))
    assert result.locked_until == (start + timedelta(seconds=settings.login_attempts - 1,
                                                     minutes=settings.lockout_minutes)
                                   ).replace(tzinfo=None)
