"""``GET /healthz`` and WHMCS: reachability through the real WhmcsClient against a served
sandbox WHMCS, "degraded" (HTTP 200) when WHMCS is down, the 30-second cache."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

import bridge
from bridge.sandbox.serve import RunningSandbox
from bridge.sandbox.whmcs import Sandbox, SandboxClock
from bridge.settings import Settings
from bridge.store import Store
from bridge.web.app import create_app
from bridge.whmcs import WhmcsClient, probe
from tests.helpers import Clock

API_ID = "vipgate-health"
API_SECRET = "health-api-secret-0042"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """vipgate's own database: the WHMCS check does not depend on its dialect."""
    return f"sqlite:///{tmp_path}/vipgate.db"


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    sandbox = Sandbox(f"sqlite:///{tmp_path}/whmcs.db",
                      clock=SandboxClock(datetime(2026, 11, 21, 9, 0)))
    sandbox.add_api_credential(API_ID, API_SECRET)
    sandbox.add_group("VIP", susptermexempt=True)
    yield sandbox
    sandbox.dispose()


AppFactory = Callable[..., Flask]


@pytest.fixture
def make_app(settings: Settings, store: Store, clock: Clock) -> AppFactory:
    def make(**whmcs: Any) -> Flask:
        return create_app(settings.replace(whmcs=whmcs), store=store, clock=clock)
    return make


def healthz(app: Flask) -> tuple[int, dict[str, Any]]:
    response = app.test_client().get("/healthz")
    return response.status_code, response.json


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_reachable_whmcs_is_ok(make_app: AppFactory, served: RunningSandbox,
                               sandbox: Sandbox, clock: Clock) -> None:
    status, body = healthz(make_app(url=served.url, identifier=API_ID, secret=API_SECRET))
    assert status == 200 and body["status"] == "ok"
    assert body["whmcs"] == {"configured": True, "ok": True, "error": "",
                             "checked_at": clock.now.isoformat(timespec="seconds")}
    assert [entry["action"] for entry in sandbox.api_log] == ["GetClientGroups"]


def test_healthz_names_the_bridge_version(make_app: AppFactory, served: RunningSandbox) -> None:
    """The addon module's page inside WHMCS shows it beside the stub's version."""
    status, body = healthz(make_app(url=served.url, identifier=API_ID, secret=API_SECRET))
    assert status == 200 and body["version"] == bridge.__version__


def test_wrong_secret_is_degraded_with_whmcs_message_and_no_secret(
        make_app: AppFactory, served: RunningSandbox) -> None:
    response = make_app(url=served.url, identifier=API_ID, secret="wrong-secret-4711"
                        ).test_client().get("/healthz")
    body = response.json
    assert response.status_code == 200 and body["status"] == "degraded"
    assert body["database"]["ok"] is True
    assert body["whmcs"]["ok"] is False
    assert body["whmcs"]["error"] == "WHMCS GetClientGroups: Invalid or missing credentials"
    assert "wrong-secret-4711" not in response.get_data(as_text=True)


def test_unreachable_whmcs_is_degraded_not_503(make_app: AppFactory) -> None:
    port = free_port()
    status, body = healthz(make_app(url=f"http://127.0.0.1:{port}", identifier=API_ID,
                                    secret=API_SECRET))
    assert status == 200 and body["status"] == "degraded"
    assert body["whmcs"]["ok"] is False
    assert body["whmcs"]["error"] == f"WHMCS GetClientGroups: cannot connect to 127.0.0.1:{port}"


def test_one_attempt_only_so_a_single_http_500_shows(make_app: AppFactory,
                                                     served: RunningSandbox,
                                                     sandbox: Sandbox) -> None:
    sandbox.faults.push("http_error")
    _, body = healthz(make_app(url=served.url, identifier=API_ID, secret=API_SECRET))
    assert body["whmcs"]["ok"] is False and body["whmcs"]["error"].endswith("HTTP 500")
    assert sandbox.faults.pending() == 0 and len(sandbox.api_log) == 1


def test_short_timeout_and_one_attempt(make_app: AppFactory, served: RunningSandbox,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[tuple[float, float], int]] = []

    class Spy(WhmcsClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            seen.append((self.transport.timeout, self.transport.attempts))

    monkeypatch.setattr(probe, "WhmcsClient", Spy)
    healthz(make_app(url=served.url, identifier=API_ID, secret=API_SECRET, timeout_seconds=10))
    healthz(make_app(url=served.url, identifier=API_ID, secret=API_SECRET, timeout_seconds=2))
    assert seen == [((3.0, 3.0), 1), ((2.0, 2.0), 1)]


def test_result_is_cached_for_30_seconds_then_checked_again(
        make_app: AppFactory, served: RunningSandbox, sandbox: Sandbox, clock: Clock) -> None:
    app = make_app(url=served.url, identifier=API_ID, secret=API_SECRET)
    first = healthz(app)[1]["whmcs"]
    served.stop()  # WHMCS goes down: the cached answer stands for 30 s
    clock.advance(seconds=29)
    assert healthz(app)[1]["whmcs"] == first and len(sandbox.api_log) == 1
    clock.advance(seconds=1)
    status, body = healthz(app)
    assert status == 200 and body["status"] == "degraded" and body["whmcs"]["ok"] is False
    assert body["whmcs"]["checked_at"] == clock.now.isoformat(timespec="seconds")
    assert first["checked_at"] != body["whmcs"]["checked_at"]


def test_the_cache_is_per_app(make_app: AppFactory, served: RunningSandbox,
                              sandbox: Sandbox) -> None:
    for app in (make_app(url=served.url, identifier=API_ID, secret=API_SECRET),
                make_app(url=served.url, identifier=API_ID, secret="wrong")):
        healthz(app)
        healthz(app)
    assert [entry["result"] for entry in sandbox.api_log] == ["success", "error"]


def test_not_configured_makes_no_call(client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json["status"] == "ok"
    assert response.json["whmcs"] == {"configured": False}


def test_database_down_is_503_whatever_whmcs_says(make_app: AppFactory, served: RunningSandbox,
                                                  store: Store,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise sa.exc.OperationalError("SELECT 1", {}, Exception("gone"))

    monkeypatch.setattr(store, "ping", broken)
    status, body = healthz(make_app(url=served.url, identifier=API_ID, secret=API_SECRET))
    assert status == 503 and body["database"]["ok"] is False and body["whmcs"]["ok"] is True


def test_unexpected_errors_are_reported_by_type_only(monkeypatch: pytest.MonkeyPatch,
                                                      make_app: AppFactory) -> None:
    class Boom(WhmcsClient):
        def call(self, action: str, params: Any = None) -> dict[str, Any]:
            raise RuntimeError("secret=health-api-secret-0042 leaked")

    monkeypatch.setattr(probe, "WhmcsClient", Boom)
    _, body = healthz(make_app(url="http://127.0.0.1:9", identifier=API_ID, secret=API_SECRET))
    assert body["whmcs"]["error"] == "unexpected error (RuntimeError)"
