"""The one-minute soak (bench/soak/run.py --duration 60, a lighter load than the default so
that it fits beside the rest of the suite on two cores): gunicorn, a MariaDB server of its own,
two vipgate workers and the sandbox WHMCS firing every forwarded hook through the real PHP stub,
with every fault of the schedule injected once (among them php processes SIGKILLed in their
delivery after the response, and the bridge hung: accepting connections, never answering); at
the end nothing is lost, stuck, applied twice or left in the spool, and a fresh
``resync --dry-run`` plans nothing.

The ten-minute run and its figures: docs/RELIABILITY.md, "Soak".
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[1] / "bench" / "soak" / "run.py"

pytestmark = [pytest.mark.php, pytest.mark.mariadb]


def test_one_minute_soak_with_every_fault_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    done = subprocess.run(
        [sys.executable, str(RUN), "--duration", "60", "--clients", "100", "--actors", "3",
         "--rate", "2.5", "--cron-every", "15", "--gunicorn-workers", "2",
         "--settle-timeout", "240",
         "--json", str(out)], capture_output=True, text=True, timeout=480, check=False)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr[-3000:]}"
    results = json.loads(out.read_text())
    events = results["figures"]["events"]
    assert events["sent"] > 60 and events["lost"] == 0 and events["unsettled"] == 0
    assert events["applied"] + events["dead_lettered"] == events["stored"]
    assert events["dead_lettered"] == 0 and events["applied_twice"] == 0
    assert results["figures"]["resync_dry_run_changes"] == 0
    assert [f["name"] for f in results["faults"]] == [
        "php_killed", "mariadb_restart", "whmcs_down", "whmcs_errors", "whmcs_slow",
        "gunicorn_worker_kill", "worker_kill", "bridge_restart", "bridge_hung"]
    assert results["php_killed"] and results["figures"]["events"]["batches_taken"] > 0
    # each batch's answer was read (the proxy): its events' outcomes, "sent again" among them
    assert events["batch_events_answered"] >= events["duplicates_in_batches"] >= 0
    assert events["batch_events_answered"] > 0
    assert all(r["recovery_s"] is not None for r in results["figures"]["recovery"])
    assert results["problems"] == []
