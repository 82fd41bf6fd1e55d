"""Issue 7, item 3: nobody forges an event, nobody gets in, no secret leaks, no request steers
vipgate's calls elsewhere. End to end over a whole installation (tests/world.py).

Where the rest of the item is proven (kept there, next to the code it checks):
- forged, stale, future and replayed signatures, wrong content type, body size limits:
  the bad-input table in tests/test_webhook.py (each leaves the inbox unchanged);
- forged or misaddressed *answers* to the PHP stub: tests/test_php_panels.py;
- admin routes without a session, CSRF missing or forged on every form, login brute force
  throttled across workers, session fixation, password change ends sessions:
  tests/test_admin_auth.py;
- the WHMCS API secret in the client's logs and errors: tests/test_whmcs_client.py.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest
import requests

from bridge.web.app import create_app
from tests.admin_helpers import PASSWORD, AdminSession, csrf_token
from tests.helpers import OTHER_SECRET, SECRET, envelope, post_signed
from tests.world import API_SECRET, World, make_world, wall

ACCESSKEY = "accesskey-that-must-stay-secret"
SESSION_KEY = "admin-session-signing-key-that-must-stay-secret"


@pytest.fixture
def world(database_url: str, tmp_path) -> Any:
    with make_world(database_url, tmp_path, whmcs={"accesskey": ACCESSKEY},
                    admin={"secret_key": SESSION_KEY, "secure_cookies": "off"}) as w:
        yield w


def _now() -> int:
    return int(wall().timestamp())


def _secrets_in(text: str) -> list[str]:
    key = SECRET[len("whsec_"):]
    found = [name for name, value in (
        ("webhook secret", SECRET), ("webhook secret key (base64)", key),
        ("webhook secret key (raw)", base64.b64decode(key).decode("latin-1")),
        ("other webhook secret", OTHER_SECRET), ("WHMCS API secret", API_SECRET),
        ("WHMCS access key", ACCESSKEY), ("admin password", PASSWORD),
        ("session signing key", SESSION_KEY)) if value in text]
    return found


def test_secret_rotation_overlap_then_removal(world: World) -> None:
    """Both secrets verify during the overlap; after the old one is removed it is refused and
    nothing it signed is stored."""
    during = create_app(world.settings.replace(webhook={"secrets": f"{OTHER_SECRET},{SECRET}"}),
                        store=world.store, clock=wall).test_client()
    for n, secret in enumerate((OTHER_SECRET, SECRET)):
        answer = post_signed(during, envelope("InvoicePaid", {"invoiceid": 1}), secret=secret,
                             msg_id=f"msg_rotation_{n}", timestamp=_now())
        assert answer.status_code == 202, answer.json
    after = create_app(world.settings.replace(webhook={"secrets": OTHER_SECRET}),
                       store=world.store, clock=wall).test_client()
    before = world.store.inbox_fingerprint()
    refused = post_signed(after, envelope("InvoicePaid", {"invoiceid": 1}), secret=SECRET,
                          msg_id="msg_rotation_old", timestamp=_now())
    assert (refused.status_code, refused.json["error"]) == (401, "invalid_signature")
    assert world.store.inbox_fingerprint() == before


def test_no_secret_in_logs_error_pages_or_metrics(world: World,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    assert world.app is not None
    hooks = world.app.test_client()
    seen: list[str] = []

    def keep(answer: Any) -> Any:
        seen.append(f"{answer.status_code} {dict(answer.headers)} "
                    f"{answer.get_data(as_text=True)}")
        return answer

    # events: accepted, replayed, forged, stale, signed with a secret not configured
    body = envelope("ClientEdit", {"userid": 1, "groupid": 2})
    keep(post_signed(hooks, body, msg_id="msg_sec_1", timestamp=_now()))
    keep(post_signed(hooks, body, msg_id="msg_sec_1", timestamp=_now()))
    keep(post_signed(hooks, body, secret=OTHER_SECRET, timestamp=_now()))
    keep(post_signed(hooks, body, timestamp=_now() - 3600))
    keep(hooks.post("/hooks/whmcs", data=b"{", content_type="application/json",
                    headers={"webhook-id": "x", "webhook-timestamp": str(_now()),
                             "webhook-signature": f"v1,{SECRET}"}))
    keep(post_signed(hooks, b"not json", timestamp=_now()))
    keep(post_signed(hooks, envelope("AdminAreaClientSummaryPage", {"userid": 1}),
                     timestamp=_now()))
    # the admin page: a wrong password, then the right one, pages, settings, errors
    page = hooks.get("/admin/login")
    keep(hooks.post("/admin/login", data={"csrf_token": csrf_token(page.get_data(
        as_text=True)), "name": "alice", "password": PASSWORD + "x"}))
    admin = AdminSession(world.app)
    for path in ("/admin/", "/admin/settings", "/admin/inbox", "/admin/clients/1",
                 "/admin/no-such-page", "/healthz", "/metrics", "/no-such-path"):
        keep(admin.get(path))
    # WHMCS failing while the worker reconciles: the errors are logged
    world.sandbox.faults.push("http_error", times=10)
    world.sandbox.faults.push("html", times=10)
    world.drain()
    keep(admin.get("/admin/inbox"))
    shown = caplog.text + "\n".join(seen)
    assert "ClientEdit" in caplog.text and "rejected" in caplog.text  # the logs were captured
    assert _secrets_in(shown) == []


def test_whmcs_is_called_at_the_configured_url_only(world: World,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """No request (headers, vars, query) can make vipgate call another host."""
    called: list[str] = []
    real_send = requests.Session.send

    def spy(self: requests.Session, request: requests.PreparedRequest, **kw: Any) -> Any:
        called.append(str(request.url))
        return real_send(self, request, **kw)

    monkeypatch.setattr(requests.Session, "send", spy)
    assert world.app is not None
    hooks = world.app.test_client()
    steering = {"Host": "evil.example", "X-Forwarded-Host": "evil.example",
                "X-Forwarded-Proto": "https", "Forwarded": "host=evil.example"}
    with world.sandbox.quiet():
        client = world.sandbox.add_client("Ana", "Silva", groupid=world.vip)
    answer = post_signed(hooks, envelope("ClientEdit", {"userid": client}), timestamp=_now(),
                         extra_headers=steering)
    assert answer.status_code == 202
    world.drain()
    admin = AdminSession(world.app)
    admin.get(f"/admin/clients/{client}?url=http://evil.example/", headers=steering)
    admin.post(f"/admin/clients/{client}/reconcile", headers=steering)
    admin.get("/admin/settings", headers=steering)
    admin.get("/admin/", headers=steering)
    assert called, "nothing reached WHMCS: the spy saw no call"
    expected = world.settings.whmcs.url + "/includes/api.php"
    assert {url for url in called} == {expected}
