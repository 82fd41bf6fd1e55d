"""The cron bench's smoke (bench/cron_outbox.py --events 200): the real php runs the installed
stub as WHMCS's cron with the outbox on MariaDB, the bridge hung, then the next cron run with
the real bridge (gunicorn) back. Checks what the bench checks (every event waits while the
bridge is hung, the breaker opens, then every event is delivered once, none lost, the outbox
empty), so that the bench cannot rot. Its figures (10,000 events): docs/PERFORMANCE.md, "Cron
with the bridge hung".
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "cron_outbox.py"


@pytest.mark.php
@pytest.mark.mariadb
def test_cron_bench_smoke_delivers_every_event_once(php: str, mariadb_server: str) -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--events", "200", "--workers", "2",
                           "--mariadb", mariadb_server, "--json"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    results = json.loads(done.stdout)
    assert results["checks"] == []
    hung = results["phase1"]
    assert hung["outbox_waiting"] == 200 and hung["breaker_open"]
    # the flush tried the hung bridge once (one batch timeout, 2 s), not once per batch
    assert hung["stub"]["after_cron_s"] < 5
    back = results["phase2"]
    assert back["inbox"] == back["inbox_distinct"] == 200
    assert back["lost"] == back["twice"] == back["unexpected"] == 0
    assert back["outbox_waiting"] == back["outbox_rejected"] == 0


def test_cron_bench_refuses_a_bad_event_count() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--events", "0"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 2 and "--events must be at least 1" in done.stderr
