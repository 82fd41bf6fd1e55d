"""The pure layers stay light: importing the policy and the hook registry loads no web
framework, no database toolkit and no HTTP client (README, "Development": what each package may
import; the import-linter contracts in pyproject.toml check the rest statically)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("flask", "sqlalchemy", "requests", "pymysql")


@pytest.mark.parametrize("statement", ["import bridge", "import bridge.policy, hooks"])
def test_policy_and_hooks_load_no_io_library(statement: str) -> None:
    code = f"{statement}; import json, sys; print(json.dumps(sorted(sys.modules)))"
    # a fresh interpreter: this one has loaded everything already
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=60, check=True)
    loaded = set(json.loads(done.stdout))
    assert "hooks" in loaded or statement == "import bridge"
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert heavy == [], f"{statement!r} loads {heavy}"
