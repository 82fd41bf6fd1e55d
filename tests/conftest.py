"""Fixtures: vipgate over a throw-away SQLite file and a throw-away MariaDB database.

MariaDB runs at VIPGATE_TEST_MYSQL_URL (default mysql+pymysql://root@127.0.0.1:3306). If it
cannot be reached the MariaDB tests fail, so that a missing server is never mistaken for a
pass; set VIPGATE_TEST_SKIP_MARIADB=1 to skip them on purpose.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from werkzeug.serving import make_server

from bridge.sandbox.serve import RunningSandbox, start_sandbox
from bridge.sandbox.whmcs import Sandbox
from bridge.settings import Settings, default_settings
from bridge.store import Store
from bridge.web.app import create_app
from tests.admin_helpers import AdminSession
from tests.helpers import SECRET, Clock
from tests.world import World, make_world

pytest_plugins = ["tests.php_helpers", "tests.browser"]

# Started first, so that under pytest-xdist one worker runs it while the other goes through
# the rest instead of the whole suite waiting for it at the end.
LONG_TESTS = ("tests/test_soak.py::", "tests/test_wheel.py::")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: not item.nodeid.startswith(LONG_TESTS))  # stable

@pytest.fixture(autouse=True)
def _cli_in_a_c_locale(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI speaks the language of VIPGATE_LANGUAGE or the POSIX locale: tests run in the
    C locale, as CI does (LANG=C.UTF-8), whatever the machine's, unless a test sets its own
    (the commands run in subprocesses inherit it)."""
    for variable in ("VIPGATE_LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")


MYSQL_SERVER_URL = os.environ.get("VIPGATE_TEST_MYSQL_URL",
                                  "mysql+pymysql://root@127.0.0.1:3306").rstrip("/")


@pytest.fixture(scope="session")
def mariadb_server() -> str:
    if os.environ.get("VIPGATE_TEST_SKIP_MARIADB") == "1":
        pytest.skip("VIPGATE_TEST_SKIP_MARIADB=1")
    engine = sa.create_engine(MYSQL_SERVER_URL + "/", connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"MariaDB is not reachable at {MYSQL_SERVER_URL}: {exc.orig}")
    finally:
        engine.dispose()
    return MYSQL_SERVER_URL


@pytest.fixture
def mariadb_url(mariadb_server: str) -> Iterator[str]:
    """A fresh, empty MariaDB database, dropped afterwards."""
    name = f"vipgate_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(mariadb_server + "/")
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    try:
        yield f"{mariadb_server}/{name}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def database_url(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/vipgate.db"
    return request.getfixturevalue("mariadb_url")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return default_settings().replace(bridge={"database_url": database_url},
                                      webhook={"secrets": SECRET})


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    store = Store(settings.bridge.database_url)
    store.upgrade()
    yield store
    store.dispose()


@pytest.fixture
def app(settings: Settings, store: Store, clock: Clock) -> Flask:
    return create_app(settings, store=store, clock=clock)


@pytest.fixture
def client(app: Flask):  # type: ignore[no-untyped-def]
    return app.test_client()


@dataclass
class LiveBridge:
    url: str
    app: Flask
    store: Store


@pytest.fixture
def live_bridge(settings: Settings, store: Store) -> Iterator[LiveBridge]:
    """The bridge served over real HTTP on a free loopback port, with the real clock
    (the PHP stub signs with the wall clock)."""
    app = create_app(settings, store=store)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveBridge(f"http://127.0.0.1:{server.server_port}", app, store)
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture
def served(sandbox: Sandbox) -> Iterator[RunningSandbox]:
    """The module's ``sandbox`` fixture served over HTTP."""
    running = start_sandbox(sandbox)
    yield running
    running.stop()


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[World]:
    """A whole installation (tests/world.py); modules with their own ``world`` override it."""
    with make_world(database_url, tmp_path) as w:
        yield w


@pytest.fixture
def admin(world: World) -> AdminSession:
    """The world's admin page, logged in."""
    assert world.app is not None
    return AdminSession(world.app)
