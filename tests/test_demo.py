"""The quick-start demo runs end to end, through the real stub and through the emulation."""

from __future__ import annotations

import pytest

import bridge.demo
from bridge.demo import run_demo


@pytest.mark.parametrize("through", ["php", "python"])
def test_demo_loses_nothing_and_refuses_forgeries(monkeypatch, tmp_path, through) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    if through == "python":
        monkeypatch.setattr(bridge.demo, "php_available", lambda: False)
    lines: list[str] = []
    assert run_demo(out=lines.append) == 0
    text = "\n".join(lines)
    assert ("real PHP stub" in text) is (through == "php")
    assert "spooled in WHMCS's database: 3 event(s)" in text
    assert "spool now 0; lost 0; same ids as spooled: True" in text
    assert "HTTP 401" in text and "'status': 'duplicate'" in text
    assert "never sent" not in text and "'secret'" not in text and "'password'" not in text


def test_python_forwarder_ignores_hooks_the_stub_does_not_register(tmp_path) -> None:
    from bridge.sandbox.forwarder import PythonForwarder

    # nothing listens on port 9: a forwarded hook would be spooled
    forwarder = PythonForwarder("http://127.0.0.1:9/hooks/whmcs", "whsec_x", tmp_path / "s.db")
    assert forwarder.fire("TicketAdminReply", {"ticketid": 1}) == []
    assert forwarder.spooled() == []
