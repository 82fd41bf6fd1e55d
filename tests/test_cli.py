"""The vipgate command: one line and a non-zero exit for anything the operator must fix."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bridge.store import Store
from tests.helpers import SECRET


def run(*args: str, cwd, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    import os

    environment = {k: v for k, v in os.environ.items() if not k.startswith("VIPGATE_")}
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "bridge", *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=60)


def test_db_upgrade_then_check_on_embedded_defaults(tmp_path) -> None:
    result = run("db", "upgrade", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    head = Store(f"sqlite:///{tmp_path}/head.db").head()  # the newest migration
    assert f"revision {head}\n" in result.stdout and (tmp_path / "vipgate.db").exists()
    result = run("check", cwd=tmp_path)
    assert result.returncode == 0 and "check: ok" in result.stdout


def test_db_upgrade_on_mariadb(mariadb_url, tmp_path) -> None:
    result = run("db", "upgrade", cwd=tmp_path, env={"VIPGATE_BRIDGE_DATABASE_URL": mariadb_url})
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("args", "env", "code", "expected"), [
    (("nope",), {}, 2, "No such command 'nope'"),
    (("serve", "--port", "0"), {}, 2, "--port"),
    (("check",), {"VIPGATE_POLICY_GRACE_DAYS": "x"}, 2, "[policy] grace_days"),
    (("--config", "missing.ini", "check"), {}, 2, "does not exist"),
    (("install-stub", "whmcs"), {}, 2, "no bridge URL"),
    (("db", "upgrade"), {"VIPGATE_BRIDGE_DATABASE_URL":
                         "mysql+pymysql://root:pw@127.0.0.1:1/x"}, 1, "database error"),
    (("check",), {}, 1, "check failed"),
])
def test_errors_are_one_line_with_exit_code(tmp_path, args, env, code, expected) -> None:
    result = run(*args, cwd=tmp_path, env=env)
    assert result.returncode == code, (result.stdout, result.stderr)
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "pw@" not in result.stderr


def test_serve_refuses_an_unmigrated_mariadb(mariadb_url, tmp_path) -> None:
    result = run("serve", cwd=tmp_path, env={"VIPGATE_BRIDGE_DATABASE_URL": mariadb_url,
                                             "VIPGATE_WEBHOOK_SECRETS": SECRET})
    assert result.returncode == 2 and "vipgate db upgrade" in result.stderr


def test_check_warns_that_a_zero_min_spend_promotes_every_old_paying_client() -> None:
    from bridge.checks import config_warnings as warnings
    from bridge.settings import default_settings

    assert not any("min_spend" in w for w in warnings(default_settings().replace(
        policy={"vip_group_id": 4})))  # promote_by_rules is off by default: nobody promoted
    base = default_settings().replace(policy={"vip_group_id": 4, "promote_by_rules": True})
    assert any("min_spend is 0" in w for w in warnings(base))
    narrowed = base.replace(policy={"min_spend": "500"})
    assert not any("min_spend" in w for w in warnings(narrowed))


def test_check_reaches_the_read_only_whmcs_database(tmp_path) -> None:
    from bridge.sandbox.whmcs import Sandbox

    sandbox = Sandbox(f"sqlite:///{tmp_path}/whmcs.db")
    with sandbox.quiet():
        sandbox.add_client("Ana", "Lima")
    sandbox.dispose()
    assert run("db", "upgrade", cwd=tmp_path).returncode == 0
    url = f"sqlite:///{tmp_path}/whmcs.db"
    result = run("check", cwd=tmp_path, env={"VIPGATE_WHMCS_DATABASE_URL": url})
    assert "whmcs database: ok (sqlite:///" in result.stdout
    assert "1 client, read-only session" in result.stdout
    result = run("check", cwd=tmp_path, env={
        "VIPGATE_WHMCS_DATABASE_URL": "mysql+pymysql://ro:secretpw@127.0.0.1:1/whmcs"})
    assert result.returncode == 1 and "whmcs database: database error at" in result.stdout
    assert "secretpw" not in result.stdout + result.stderr


def test_the_worker_looks_at_an_empty_inbox_every_fifth_of_a_second(tmp_path) -> None:
    """An event stored while the workers wait is picked up within their idle time: 0.2 s by
    default (1 s cost events half a second at p99 in bench/applied.py)."""
    from bridge.cli.main import WORKER_IDLE_SECONDS, cli

    idle = next(p for p in cli.commands["worker"].params if p.name == "idle")
    assert idle.default == WORKER_IDLE_SECONDS == 0.2
    result = run("worker", "--help", cwd=tmp_path)
    assert "[default: 0.2;" in result.stdout
