"""The events-to-applied bench's smoke (bench/applied.py at 10 events/s for 4 s): the real php
runs the installed stub as PHP-FPM's workers would, the outbox on MariaDB, the bridge under
gunicorn with two ``vipgate worker`` processes against the sandbox WHMCS, whose invoices the
load really changes. Checks what the bench checks (every event fired is in the inbox once and
applied, nothing left in the outbox) and that its figures are measured per event, so that the
bench cannot rot. Its figures (50 events/s): docs/PERFORMANCE.md, "Events to applied".
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "applied.py"


@pytest.mark.php
@pytest.mark.mariadb
def test_applied_bench_smoke_applies_every_event_once(php: str, mariadb_server: str) -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--rate", "10", "--duration", "4",
                           "--clients", "40", "--php", "2", "--gunicorn-workers", "2",
                           "--idle", "0.2", "--mariadb", mariadb_server, "--json"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    results = json.loads(done.stdout)
    assert results["checks"] == []
    events = results["events"]
    assert events["fired"] == events["distinct"] >= 30  # about 40: 10 a second for 4 s
    assert events["lost"] == 0 and events["not_applied"] == {} and events["outbox_waiting"] == 0
    assert sum(events["hooks"].values()) == events["fired"]
    # every event measured, from its hook call to the bridge and to its worker; the times add up
    for leg in ("fired_to_received_s", "received_to_applied_s", "fired_to_applied_s"):
        assert results[leg]["count"] == events["fired"]
    assert 0 <= results["fired_to_received_s"]["p50"] < results["fired_to_applied_s"]["p50"]
    assert results["fired_to_applied_s"]["max"] >= results["received_to_applied_s"]["max"]
    # every invoice event named its client: the stub read tblinvoices when it sent them
    assert events["invoice_events_naming_client"] == events["invoice_events"] > 0
    # the workers had real work: they read WHMCS (a payment's two events share one read)
    assert sum(results["whmcs_api_calls"].values()) >= events["fired"] / 2
    # CPU per role, the bench's own process split into the sandbox's API and the rest
    cpu = results["cpu_s"]
    assert {"vipgate workers", "gunicorn", "php", "sandbox WHMCS API (bench)",
            "load + php pool (bench)"} <= set(cpu)
    assert cpu["sandbox WHMCS API (bench)"] > 0 and cpu["load + php pool (bench)"] > 0


def test_applied_bench_refuses_a_bad_rate() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--rate", "0"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 2 and "--rate must be above 0" in done.stderr
