"""The figures bench's smoke (bench/figures.py --clients 2000): fills a throw-away store, counts
today's figures and closes a day, and checks the counts against what the filled data gives, so
that the bench cannot rot. Its figures (100,000 clients): docs/PERFORMANCE.md, "A day's
dashboard figures"."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "figures.py"


def smoke(*extra: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, str(BENCH), "--clients", "2000", "--audit-days", "3",
                           "--moves", "50", "--runs", "2", "--json", *extra],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_figures_bench_smoke_on_sqlite() -> None:
    result = smoke()
    assert result["checks"] == [] and result["database"] == "sqlite"
    assert result["clients"] == 2000 and result["delinquent"] == 240
    assert result["audit_rows"] == 3 * 50 * 4 and result["runs"] == 2


@pytest.mark.mariadb
def test_figures_bench_smoke_on_mariadb(mariadb_server: str) -> None:
    result = smoke("--mariadb", mariadb_server)
    assert result["checks"] == [] and result["database"] == "mysql+pymysql"


def test_figures_bench_refuses_bad_arguments() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--clients", "0"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "--clients" in done.stderr
