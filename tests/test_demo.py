"""``vipgate demo`` plays the seed story end to end and checks it: through the CLI with the
real PHP stub, and through the stub's Python emulation.

Without ``php`` (with curl and pdo_sqlite) the PHP test fails; set VIPGATE_TEST_SKIP_PHP=1 to
skip it on purpose.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

import bridge.demo.installation
import bridge.demo.story
from bridge.cli.main import cli
from bridge.demo.installation import Narrator
from bridge.demo.story import run_demo
from bridge.sandbox.forwarder import php_available


@pytest.fixture(autouse=True)
def _throwaway_in_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the demo's mkdtemp lands here


def assert_the_story(text: str) -> None:
    """The key facts of the seed story, as the demo prints them."""
    assert "✗" not in text, "\n".join(line for line in text.splitlines() if "✗" in line)
    assert re.search(r"all \d+ checks passed", text)
    # 1. adoption (groups by the names vipgate read from WHMCS)
    assert len(re.findall(r"^    \w+: \"in VIP group VIP \(#1\) when vipgate first saw the "
                          r"client: adopted as pinned", text, re.MULTILINE)) == 5
    # 2. removal before the cron's suspension step, with the reasons, to the home group
    assert re.search(r"Carla: left VIP for Clientes — \"standing overdue: invoice #3 "
                     r"R\$ 1,200\.00 overdue 13 days > grace 3; invoice #4 R\$ 450\.00 overdue "
                     r"7 days > grace 3\"", text)
    assert "Bruno: left VIP for Clientes — \"standing overdue: invoice #2 R$ 59.90 overdue " \
           "4 days > grace 3\"" in text
    assert "Fábio: left VIP for Revendas" in text
    assert "during PreCronJob, so the cron's suspension step no longer saw her" in text
    # 3. suspensions
    assert "cron: suspended service #3 (Carla), service #4 (Carla)" in text
    assert "cron: suspended service #2 (Bruno)" in text
    # 4. and 5. payment restores VIP at once; a partial payment does not
    assert "Diego: back in VIP (from Clientes) — standing current" in text
    assert "Bruno: back in VIP (from Clientes) — standing current" in text
    assert "✓ her overdue balance is R$ 250.00" in text
    assert "Carla: back in VIP (from Clientes) — standing current" in text
    # 6. low priority, staff note, the gate's message with the invoice, Financeiro open; the
    # installation speaks the demo's language (staff notes, panels, the clients' WHMCS)
    assert "Bruno: ticket #3 priority Medium → Low" in text
    assert "| - Invoice #2: R$ 59.90, due 2026-11-03 (4 days overdue)" in text
    assert ("WHMCS shows him:\n      | Your account has overdue invoices (#2; total R$ 59.90). "
            "Until they are paid, tickets can only be opened in the billing department.") in text
    assert "✓ accepted: Financeiro is a billing department" in text
    # 6. …and WHMCS's own pages show it: the ticket badge and the client summary
    # for staff, only the billing department with the reason for the client
    assert "| vipgate · Suspended · 6 days · R$ 59.90 · 1 invoice" in text
    assert "| Overdue invoices: 1 invoice · R$ 59.90" in text
    assert ("✓ staff see Bruno's standing on the ticket (R$ 59.90) and on the client summary "
            "(invoice #2)") in text
    assert "Bruno opens Open Ticket in the client area: offered Financeiro, and told:" in text
    assert "✓ Bruno is offered only Financeiro and told why: invoice #2, R$ 59.90" in text
    # 7. the priority they had comes back
    assert "Diego: ticket #2 priority Low → High" in text
    assert "Bruno: ticket #3 priority Low → Medium" in text
    # 8. the end: what was recovered, in money and days, and the seed's phenomenon
    assert "✓ Carla's episode: R$ 1,650.00 recovered in 9 days (paid in three parts)" in text
    assert ("✓ Bruno's episode: R$ 59.90 recovered in 3 days, 2 days after WHMCS suspended "
            "him") in text
    assert ("✓ the seed's phenomenon: of the 3 clients WHMCS suspended (Carla, Bruno, Fábio), "
            "1 paid within 7 days of the suspension (Bruno): 33.3%") in text
    # 8. staff overrides are followed
    assert "✓ vipgate leaves the staff's High alone" in text
    assert ("Eva: staff decision followed — \"staff moved the client out of VIP to group "
            "Clientes (#2): unpinned and excluded\"") in text
    assert "✓ Eva stays in Clientes after the cron's full reconcile" in text
    # reliability: spooled while the bridge was down, flushed, none lost; forgery refused
    assert "spooled 3 events in mod_vipgate_spool" in text
    assert "✓ spool empty, all 3 events in the inbox under their ids, none lost" in text
    assert "HTTP 401 invalid_signature" in text
    assert re.search(r"Fábio Nunes +Revendas +pinned +suspended \(R\$ 299\.00\)", text)
    # one money format, one date format: the English ones
    assert not re.search(r"R\$ [\d.]*\d,\d\d\b|\b\d\d/\d\d/20\d\d\b", text)


def assert_the_addresses(text: str) -> None:
    """The servers' addresses, printed only while they stay up."""
    assert "/includes/api.php" in text and "/healthz" in text and "/metrics" in text
    assert re.search(r"^pages   http://\S+/admin/clientssummary\.php\?userid=6 .*"
                     r"/submitticket\.php\?uid=6", text, re.MULTILINE)
    assert "/admin/supporttickets.php?action=view&id=3" in text


def test_demo_through_the_cli_with_the_real_php_stub(tmp_path: Path) -> None:
    if not php_available():
        if os.environ.get("VIPGATE_TEST_SKIP_PHP") == "1":
            pytest.skip("VIPGATE_TEST_SKIP_PHP=1")
        pytest.fail("php with curl and pdo_sqlite is not installed (Debian: apt-get install "
                    "php-cli php-curl php-sqlite3), or set VIPGATE_TEST_SKIP_PHP=1")
    result = CliRunner().invoke(cli, ["demo", "--no-wait"])
    assert result.exit_code == 0, result.output
    assert "hooks fired through the real PHP stub" in result.output
    assert "installed as WHMCS's addon module" in result.output
    assert_the_story(result.output)
    # --no-wait: the servers have stopped, so no address (nor admin password) is printed
    assert "http://" not in result.output.split("checks passed", 1)[1]
    assert "password" not in result.output and "Ctrl-C" not in result.output
    assert list(tmp_path.glob("vipgate-demo-*")) == []  # databases, secrets: removed


def test_demo_through_the_python_emulation() -> None:
    lines: list[str] = []
    answers: list[int] = []

    def wait() -> None:  # while the demo waits, what it printed leads somewhere
        printed = "\n".join(lines).split("checks passed", 1)[1]
        for url in re.findall(r"http://\S+", printed):
            answers.append(requests.get(url, timeout=5, allow_redirects=False).status_code)

    assert run_demo(out=lines.append, use_php=False, wait=wait) == 0
    text = "\n".join(lines)
    assert "hooks fired through a Python emulation of the stub" in text
    assert_the_story(text)
    assert_the_addresses(text)
    # every address answers (POST-only /hooks/whmcs with 405), none is a dead server
    assert len(answers) == 9 and all(code < 500 for code in answers), answers


def test_demo_stub_python_through_the_cli() -> None:
    """``--stub python``: the emulation, even where php is installed."""
    result = CliRunner().invoke(cli, ["demo", "--no-wait", "--stub", "python"])
    assert result.exit_code == 0, result.output
    assert "hooks fired through a Python emulation of the stub" in result.output
    assert_the_story(result.output)


def test_demo_asked_for_the_php_stub_without_php_says_so(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bridge.demo.installation, "php_available", lambda: False)
    result = CliRunner().invoke(cli, ["demo", "--no-wait", "--stub", "php"])
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        "Error: demo: --stub php needs php with the curl and pdo_sqlite extensions (Debian: "
        "apt-get install php-cli php-curl php-sqlite3); --stub python runs the Python "
        "emulation"]


def test_a_failed_check_or_a_crash_makes_the_demo_fail(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    monkeypatch.setattr(Narrator, "priority", lambda self, ticket_id: "Medium")

    def crash(self: bridge.demo.story.Story) -> None:
        raise RuntimeError("the sandbox fell over")

    monkeypatch.setattr(bridge.demo.story.Story, "day1", crash)
    lines: list[str] = []
    assert run_demo(out=lines.append, use_php=False) == 1
    text = "\n".join(lines)
    assert "✗ Carla's open ticket was lowered to Low (found: ['Medium'])" in text
    assert "✗ the story ran to the end (found: RuntimeError: the sandbox fell over)" in text
    assert re.search(r"\d+ of \d+ checks FAILED:", text)
    assert list(tmp_path.glob("vipgate-demo-*")) == []  # removed on a failure too


def test_python_forwarder_ignores_hooks_the_stub_does_not_register(tmp_path: Path) -> None:
    from bridge.sandbox.forwarder import PythonForwarder

    # nothing listens on port 9: a forwarded hook would be spooled
    forwarder = PythonForwarder("http://127.0.0.1:9/hooks/whmcs", "whsec_x", tmp_path / "s.db")
    assert forwarder.fire("TicketAdminReply", {"ticketid": 1}) == []
    assert forwarder.spooled() == []
