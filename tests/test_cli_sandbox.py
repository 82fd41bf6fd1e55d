"""``vipgate sandbox``: the set-up (seed once, credentials, hook forwarding) and the command
(banner, one-line errors, Ctrl-C), with the sandbox's API read through the real WhmcsClient."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from bridge.demo.sandbox import SandboxSetup, SandboxSetupError, prepare_sandbox
from bridge.sandbox.serve import start_sandbox
from bridge.settings import WhmcsSettings
from bridge.whmcs import WhmcsClient, schema
from tests.helpers import SECRET


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """vipgate's own database (for ``live_bridge``): SQLite is enough here."""
    return f"sqlite:///{tmp_path}/vipgate.db"


def whmcs_client(url: str, setup: SandboxSetup) -> WhmcsClient:
    return WhmcsClient(WhmcsSettings(url, setup.identifier, setup.secret, "", 5.0), attempts=1)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[SandboxSetup]:
    setup = prepare_sandbox(f"sqlite:///{tmp_path}/whmcs.db")
    yield setup
    setup.sandbox.dispose()


def test_a_new_database_is_seeded_and_served_to_the_whmcs_client(setup: SandboxSetup) -> None:
    assert setup.credential == "generated" and len(setup.identifier) == 32
    assert setup.seeded and setup.forwarder is None
    running = start_sandbox(setup.sandbox)
    try:
        with whmcs_client(running.url, setup) as whmcs:
            groups = {g.name: g for g in whmcs.get_client_groups()}
            clients = list(whmcs.iter_clients())
            invoices = list(whmcs.iter_invoices())
            overdue = list(whmcs.iter_invoices(status="Overdue"))
            tickets = list(whmcs.iter_tickets(status="Open"))
            departments = [d.name for d in whmcs.get_support_departments()]
            bruno = next(c for c in clients if c.firstname == "Bruno")
            details = whmcs.get_client(bruno.id)
    finally:
        running.stop()
    assert set(groups) == {"VIP", "Clientes"}
    assert groups["VIP"].susptermexempt and not groups["Clientes"].susptermexempt
    assert len(clients) == 5
    assert sum(c.groupid == groups["VIP"].id for c in clients) == 2
    assert departments == ["Suporte", "Financeiro"]
    statuses = [i.status for i in invoices]
    assert statuses.count("Paid") >= 5 and statuses.count("Payment Pending") == 1
    assert [i.userid for i in overdue] == [bruno.id]
    assert details.currency_code == "BRL" and {i.currency_prefix for i in invoices} == {"R$ "}
    assert [(t.userid, t.subject) for t in tickets] == [(bruno.id, "Site fora do ar")]
    assert setup.sandbox.fired == []  # seeding is the starting state, not events


def test_the_seed_happens_once_and_not_with_no_seed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/whmcs.db"
    first = prepare_sandbox(url)
    first.sandbox.dispose()
    again = prepare_sandbox(url)
    try:
        assert first.seeded and again.seeded == []
        assert again.identifier != first.identifier  # a fresh credential each start...
        assert again.sandbox.authenticate(first.identifier, first.secret)  # ...old ones stay
        with again.sandbox.engine.connect() as conn:
            counts = [conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()
                      for table in (schema.tblclients, schema.tblclientgroups,
                                    schema.tblticketdepartments, schema.tbltickets,
                                    schema.tblcurrencies)]
        assert counts == [5, 2, 2, 1, 2]
    finally:
        again.sandbox.dispose()
    empty = prepare_sandbox(f"sqlite:///{tmp_path}/empty.db", seed=False)
    try:
        assert empty.seeded == [] and empty.sandbox.client(1) is None
    finally:
        empty.sandbox.dispose()


def test_a_given_credential_is_created_then_reused_and_another_secret_refused(
        tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/whmcs.db"
    created = prepare_sandbox(url, identifier="vipgate", api_secret="pw-1")
    created.sandbox.dispose()
    reused = prepare_sandbox(url, identifier="vipgate", api_secret="pw-1")
    reused.sandbox.dispose()
    assert (created.credential, reused.credential) == ("created", "existing")
    with pytest.raises(SandboxSetupError, match="already exists"):
        prepare_sandbox(url, identifier="vipgate", api_secret="pw-2")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"bridge_url": "http://127.0.0.1:8080", "webhook_secret": "nope"}, "--secret is not"),
    ({"webhook_secret": SECRET}, "go together"),
    ({"bridge_url": "http://127.0.0.1:8080"}, "go together"),
    ({"bridge_url": "ftp://x", "webhook_secret": SECRET}, "--bridge-url must"),
    ({"identifier": "only"}, "--identifier and --secret-key"),
])
def test_bad_input_is_refused_before_anything_is_written(tmp_path: Path, kwargs: dict[str, str],
                                                         message: str) -> None:
    with pytest.raises(SandboxSetupError, match=message):
        prepare_sandbox(f"sqlite:///{tmp_path}/whmcs.db", **kwargs)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("php", [False, True], ids=["python", "php"])
def test_hooks_are_forwarded_to_the_bridge(tmp_path: Path, live_bridge, php: bool) -> None:
    if php and shutil.which("php") is None:
        if os.environ.get("VIPGATE_TEST_SKIP_PHP") == "1":
            pytest.skip("VIPGATE_TEST_SKIP_PHP=1")
        pytest.fail("php is not on PATH (or set VIPGATE_TEST_SKIP_PHP=1)")
    setup = prepare_sandbox(f"sqlite:///{tmp_path}/whmcs.db", bridge_url=live_bridge.url + "/",
                            webhook_secret=SECRET, use_php=php)
    try:
        assert setup.forwarder is not None and setup.forwarder.kind == ("php" if php
                                                                        else "python")
        assert live_bridge.store.events() == []  # the seed fired nothing
        setup.sandbox.update_client(1, notes="called about the invoice")
    finally:
        setup.sandbox.dispose()
    assert [(e.hook, e.vars["userid"]) for e in live_bridge.store.events()] == [("ClientEdit", 1)]
    stub = tmp_path / "whmcs-php" / "includes" / "hooks" / "vipgate.php"
    assert stub.exists() == php


# --- the command ---------------------------------------------------------------------------


def vipgate(*args: str, cwd: Path, **kwargs: object) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIPGATE_")}
    return subprocess.Popen([sys.executable, "-m", "bridge", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **kwargs)  # type: ignore[call-overload]


@pytest.mark.parametrize(("args", "expected"), [
    (("--bridge-url", "http://127.0.0.1:8080", "--secret", "whsec_tooShort"),
     "--secret is not a webhook secret"),
    (("--secret", "not-a-webhook-secret"), "--secret is not a webhook secret"),
    (("--bridge-url", "http://127.0.0.1:8080"), "--bridge-url and --secret go together"),
    (("--secret-key", "pw"), "--identifier and --secret-key go together"),
    (("--database-url", "nonsense"), "--database-url is not a database URL"),
    (("--port", "70000"), "--port"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: tuple[str, ...],
                                          expected: str) -> None:
    process = vipgate("sandbox", *args, cwd=tmp_path)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 2, (out, err)
    assert expected in err and len(err.strip().splitlines()) == 1, err
    assert "not-a-webhook-secret" not in err and "tooShort" not in err
    assert not (tmp_path / "whmcs-sandbox.db").exists()


def test_the_command_prints_the_api_and_ini_lines_serves_and_stops_on_ctrl_c(
        tmp_path: Path) -> None:
    process = vipgate("sandbox", "--port", "0", cwd=tmp_path)
    lines: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("Ctrl-C"):
                break
        ini = dict(line.split(" = ", 1) for line in lines if " = " in line)
        assert lines[0] == f"vipgate sandbox: WHMCS API at {ini['url']}/includes/api.php"
        assert "  seeded a new database:" in lines and "[whmcs]" in lines
        settings = WhmcsSettings(ini["url"], ini["identifier"], ini["secret"], "", 5.0)
        with WhmcsClient(settings, attempts=1) as whmcs:
            assert {g.name for g in whmcs.get_client_groups()} == {"VIP", "Clientes"}
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert out.strip().endswith("vipgate sandbox: stopped")
    assert (tmp_path / "whmcs-sandbox.db").exists()
