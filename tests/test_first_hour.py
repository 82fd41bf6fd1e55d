"""The operator's first hour (issue 18, item 5): what a new user meets on a production-like
set-up. A busy port is one line naming it, before anything is created; ``vipgate check`` fails
on a VIP group WHMCS does not have and on an empty API secret, and warns about a config file
others can read and about cookies sent without HTTPS; the demo leaves no folder behind and
prints no address of a server that has stopped; product output speaks of the product only."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from bridge.cli.main import cli
from tests.php_helpers import SECRET, Whmcs
from tests.world import make_world


def vipgate(*args: str, cwd: Path, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("VIPGATE_")}
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "bridge", *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port another process listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


def demo_folders(where: Path) -> list[Path]:
    return sorted(where.glob("vipgate-demo-*"))


# --- a busy port ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", [("serve",), ("demo", "--no-wait"), ("sandbox",)])
def test_a_busy_port_is_one_line_naming_it_and_nothing_is_created(
        tmp_path: Path, busy_port: int, command: tuple[str, ...]) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    done = vipgate(*command, "--port", str(busy_port), cwd=tmp_path,
                   env={"TMPDIR": str(tmp), "VIPGATE_WEBHOOK_SECRETS": ""})
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stdout == ""  # no "serving on …", no banner, no story
    assert done.stderr.strip().splitlines() == [
        f"vipgate: cannot serve on 127.0.0.1:{busy_port}: port {busy_port} is already in use "
        "(another process listens there; stop it or choose another --port)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tmp"]  # no database, no sandbox
    assert demo_folders(tmp) == []


# --- vipgate check -------------------------------------------------------------------------


def check_env(w, **overrides: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"VIPGATE_BRIDGE_DATABASE_URL": w.settings.bridge.database_url,
            "VIPGATE_WHMCS_URL": w.settings.whmcs.url,
            "VIPGATE_WHMCS_IDENTIFIER": w.settings.whmcs.identifier,
            "VIPGATE_WHMCS_SECRET": w.settings.whmcs.secret,
            "VIPGATE_POLICY_VIP_GROUP_ID": str(w.vip),
            "VIPGATE_POLICY_DEFAULT_GROUP_ID": str(w.regular), **overrides}


def test_check_fails_on_a_group_whmcs_does_not_have_and_on_an_empty_secret(
        tmp_path: Path) -> None:
    with make_world(f"sqlite:///{tmp_path}/vipgate.db", tmp_path) as w:
        good = vipgate("check", cwd=tmp_path, env=check_env(w))
        assert good.returncode == 0, good.stdout + good.stderr
        assert "whmcs: ok" in good.stdout and "check: ok" in good.stdout

        bad_group = vipgate("check", cwd=tmp_path,
                            env=check_env(w, VIPGATE_POLICY_VIP_GROUP_ID="99"))
        assert bad_group.returncode == 1, bad_group.stdout
        assert (f"whmcs: [policy] vip_group_id = 99: WHMCS has no such client group (groups: "
                f"{w.vip} VIP, {w.regular} Clientes)") in bad_group.stdout
        assert "check: ok" not in bad_group.stdout and "whmcs: ok" not in bad_group.stdout
        assert "vip_group_id = 99" not in bad_group.stdout.split("warning:", 1)[-1]  # once
        assert bad_group.stderr.strip() == "vipgate: check failed: 1 problem"

        empty = vipgate("check", cwd=tmp_path, env=check_env(w, VIPGATE_WHMCS_SECRET=""))
        assert empty.returncode == 1
        assert "whmcs: [whmcs] secret is empty: set the API credential's secret" in empty.stdout
        assert "Invalid or missing credentials" not in empty.stdout  # WHMCS was not asked


def test_check_warns_about_a_config_file_others_read_and_insecure_cookies(
        tmp_path: Path) -> None:
    config = tmp_path / "vipgate.ini"
    config.write_text("[admin]\nsecure_cookies = off\n")
    assert vipgate("db", "upgrade", cwd=tmp_path).returncode == 0
    config.chmod(0o644)
    loose = vipgate("check", cwd=tmp_path)
    assert (f"warning: {config.name} is readable by other users (mode 0644): it holds WHMCS's "
            f"API secret and the webhook secrets; chmod 600 {config.name}") in loose.stdout
    assert "warning: [admin] secure_cookies is off" in loose.stdout
    config.write_text("[bridge]\n")
    config.chmod(0o600)
    tight = vipgate("check", cwd=tmp_path)
    assert "readable by other users" not in tight.stdout
    assert "secure_cookies" not in tight.stdout


# --- the demo's throw-away folder ----------------------------------------------------------


def test_the_demo_folder_is_kept_only_with_keep(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    import tempfile

    import bridge.demo.story

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the demo's mkdtemp lands here

    def crash(self: bridge.demo.story.Story) -> None:
        raise RuntimeError("the sandbox fell over")

    monkeypatch.setattr(bridge.demo.story.Story, "seed", crash)  # a short, failing run
    lines: list[str] = []
    assert bridge.demo.story.run_demo(out=lines.append, use_php=False) == 1
    assert demo_folders(tmp_path) == [] and not any("kept the demo" in line for line in lines)
    assert bridge.demo.story.run_demo(out=lines.append, use_php=False, keep=True) == 1
    [kept] = demo_folders(tmp_path)
    assert lines[-1] == ("kept the demo's folder (databases, secrets, admin account): "
                         f"{kept}")
    assert (kept / "vipgate.db").exists() and (kept / "whmcs.db").exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_the_demo_folder_is_removed_when_the_demo_is_stopped(tmp_path: Path,
                                                             signum: int) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("VIPGATE_")}
    process = subprocess.Popen([sys.executable, "-m", "bridge", "demo"], cwd=tmp_path,
                               env={**environment, "TMPDIR": str(tmp_path)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("Ctrl-C to stop."):
                break
        assert len(demo_folders(tmp_path)) == 1  # while it runs, the folder is there
        process.send_signal(signum)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == (0 if signum == signal.SIGINT else 128 + signum), out + err
    assert "Traceback" not in err and "kept the demo's folder" not in out
    assert demo_folders(tmp_path) == []


# --- product output speaks of the product --------------------------------------------------

INTERNAL = re.compile(r"\bissues? #?\d", re.IGNORECASE)


def test_no_internal_issue_numbers_in_the_demo_or_the_help(tmp_path: Path) -> None:
    import tempfile

    from bridge.demo.story import run_demo

    lines: list[str] = []
    saved = tempfile.tempdir
    tempfile.tempdir = str(tmp_path)
    try:
        assert run_demo(out=lines.append, use_php=False) == 0
    finally:
        tempfile.tempdir = saved
    assert [line for line in lines if INTERNAL.search(line)] == []
    helps = []

    def walk(command: click.Command, path: list[str]) -> None:
        result = CliRunner().invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        helps.append(result.output)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(cli, [])
    assert len(helps) > 10
    assert [h for h in helps if INTERNAL.search(h)] == []


# --- the worker tells what it changed ------------------------------------------------------


def overdue_vip(w, name: str) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """A VIP client whose invoice is overdue past the grace, with an open ticket; a ClientEdit
    (a hint to look at the client) waits in the inbox."""
    with w.sandbox.quiet():
        client = w.sandbox.add_client(name, "Silva", groupid=w.vip, datecreated="2020-01-15")
        service = w.sandbox.add_service(client, "2026-10-20", "Monthly", "89.90")
        invoice = w.sandbox.add_invoice(client, "2026-10-20",
                                        [("Hosting", service, "Plano", "89.90")])
    w.sandbox.update_client(client, firstname=f"{name} Maria")
    return client, invoice


def test_the_worker_logs_one_line_per_change_it_applies(tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    import logging

    with make_world(f"sqlite:///{tmp_path}/vipgate.db", tmp_path) as w:
        ana, invoice = overdue_vip(w, "Ana")
        ticket = w.sandbox.open_ticket(ana, w.support, "Site lento", "Medium").ticket_id
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="vipgate.engine"):
            w.drain()
        assert w.group(ana) == w.regular
    lines = [r.getMessage() for r in caplog.records
             if r.name == "vipgate.engine" and r.levelno == logging.INFO
             and r.getMessage().startswith(f"client {ana}: ")]
    moved = [line for line in lines if f"group {w.vip} -> {w.regular}" in line]
    assert len(moved) == 1, lines
    assert f"invoice #{invoice}" in moved[0] and "> grace 3" in moved[0]  # why
    assert "[event " in moved[0]
    lowered = [line for line in lines if f"ticket #{ticket} priority Medium -> Low" in line]
    noted = [line for line in lines if f"ticket #{ticket} staff note" in line]
    assert len(lowered) == 1 and len(noted) == 1, lines
    assert all(line.endswith("]") and " (" in line for line in lines), lines


def test_vipgate_worker_prints_those_lines(tmp_path: Path) -> None:
    with make_world(f"sqlite:///{tmp_path}/vipgate.db", tmp_path) as w:
        ana, invoice = overdue_vip(w, "Ana")
        done = vipgate("worker", "--once", cwd=tmp_path, env={
            **check_env(w), "VIPGATE_POLICY_GRACE_DAYS": "3",
            "VIPGATE_POLICY_MIN_TENURE_MONTHS": "0"})
        assert done.returncode == 0, done.stdout + done.stderr
        assert w.group(ana) == w.regular
    assert re.search(rf"INFO vipgate\.engine: client {ana}: group {w.vip} -> {w.regular} "
                     rf"\(.*invoice #{invoice}.*\) \[event ", done.stderr), done.stderr


# --- uninstall-stub ------------------------------------------------------------------------


def spooled_stub(whmcs: Whmcs, closed_url: str) -> None:
    """The stub installed and one event spooled in WHMCS's database (the bridge is down)."""
    whmcs.install(closed_url)
    (whmcs.hook_dir / "other_module.php").write_text("<?php\n")  # not vipgate's
    whmcs.fire("ClientEdit", {"userid": 7})
    assert len(whmcs.spool()) == 1


def tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return {t for t in sa.inspect(engine).get_table_names() if t.startswith("mod_vipgate")}
    finally:
        engine.dispose()


def test_uninstall_stub_removes_its_files_and_prints_the_sql_for_its_tables(
        whmcs_any_db: Whmcs, closed_url: str) -> None:
    whmcs = whmcs_any_db
    spooled_stub(whmcs, closed_url)
    result = CliRunner().invoke(cli, ["uninstall-stub", str(whmcs.root)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in whmcs.hook_dir.iterdir()) == ["other_module.php"]
    assert f"vipgate: removed {whmcs.hook_dir / 'vipgate.php'}" in result.output
    assert f"vipgate: removed {whmcs.hook_dir / '_vipgate_config.php'}" in result.output
    assert "mod_vipgate_spool: the outbox" in result.output
    assert tables(whmcs.spool_url) >= {"mod_vipgate_spool"}  # nothing dropped by default
    printed = [line.strip() for line in result.output.splitlines()
               if line.strip().startswith("DROP TABLE")]
    assert printed == ["DROP TABLE IF EXISTS mod_vipgate_spool;",
                       "DROP TABLE IF EXISTS mod_vipgate_state;"]
    whmcs.execute(*printed)  # the printed SQL does what it says
    assert tables(whmcs.spool_url) == set()
    again = CliRunner().invoke(cli, ["uninstall-stub", str(whmcs.root)])
    assert again.exit_code == 0 and "vipgate.php was not there" in again.output


def test_uninstall_stub_drops_the_tables_only_when_asked_and_nothing_is_waiting(
        whmcs_any_db: Whmcs, closed_url: str) -> None:
    whmcs = whmcs_any_db
    spooled_stub(whmcs, closed_url)
    args = ["uninstall-stub", str(whmcs.root), "--drop-tables", "--database-url",
            whmcs.spool_url]
    refused = CliRunner().invoke(cli, args)
    assert refused.exit_code == 1
    assert ("mod_vipgate_spool holds 1 event(s) not delivered to the bridge yet"
            in refused.output)
    assert "mod_vipgate_spool" in tables(whmcs.spool_url) and len(whmcs.spool()) == 1
    dropped = CliRunner().invoke(cli, [*args, "--force"])
    assert dropped.exit_code == 0, dropped.output
    assert "vipgate: dropped mod_vipgate_spool (1 row)" in dropped.output
    assert tables(whmcs.spool_url) == set()


@pytest.mark.parametrize(("args", "expected"), [
    (("--drop-tables",), "--drop-tables needs --database-url"),
    (("--database-url", "sqlite:///x.db"), "--database-url is only used with --drop-tables"),
    (("--force",), "--force is only used with --drop-tables"),
    (("--drop-tables", "--database-url", "whmcs"), "--database-url is not a database URL"),
    ((), "is not a WHMCS folder: it has no includes/ folder"),
])
def test_uninstall_stub_bad_input_is_one_line(tmp_path: Path, args: tuple[str, ...],
                                              expected: str) -> None:
    done = vipgate("uninstall-stub", str(tmp_path), *args, cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert expected in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_missing_group_names_at_most_ten_of_whmcs_groups() -> None:
    from bridge.checks import missing_groups
    from bridge.settings import default_settings
    from bridge.whmcs import ClientGroup

    policy = default_settings().replace(policy={"vip_group_id": 99, "default_group_id": 2}
                                        ).policy
    many = tuple(ClientGroup(i, f"G{i}", False) for i in range(1, 13))
    assert missing_groups(policy, many) == [
        "[policy] vip_group_id = 99: WHMCS has no such client group (groups: "
        + ", ".join(f"{i} G{i}" for i in range(1, 11)) + ", and 2 more)"]
    assert missing_groups(policy, ()) == [
        "[policy] vip_group_id = 99: WHMCS has no such client group (groups: none)",
        "[policy] default_group_id = 2: WHMCS has no such client group (groups: none)"]


def test_uninstall_stub_removes_both_installs_loaded_file_first(tmp_path: Path) -> None:
    """The addon module and the includes/hooks install beside it (as after a move): every file
    either wrote is removed, the file WHMCS loads before the stub it requires."""
    from bridge.whmcs.stub_install import ADDON_INSTALL, HOOKS_INSTALL, install_addon, install_stub

    (tmp_path / "includes" / "hooks").mkdir(parents=True)
    install_stub(tmp_path, "http://127.0.0.1:9", SECRET)
    install_addon(tmp_path)
    result = CliRunner().invoke(cli, ["uninstall-stub", str(tmp_path)])
    assert result.exit_code == 0, result.output
    removed = [line.removeprefix("vipgate: removed ") for line in result.output.splitlines()
               if line.startswith("vipgate: removed ")]
    assert removed == [str(tmp_path / f.path) for files in (HOOKS_INSTALL, ADDON_INSTALL)
                       for f in reversed(files)]
    assert not (tmp_path / "modules" / "addons" / "vipgate").exists()
    assert "deactivate vipgate in Setup > Addon Modules" in result.output
    assert sorted(p.name for p in (tmp_path / "includes" / "hooks").iterdir()) == []
