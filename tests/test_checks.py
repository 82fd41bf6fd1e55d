"""Policy warnings from WHMCS's own settings: pure table, then ``vipgate check`` against the
sandbox WHMCS over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.checks import whmcs_warnings
from bridge.settings import default_settings
from bridge.whmcs import ClientGroup
from tests.world import make_world

GROUPS = (ClientGroup(1, "VIP", True), ClientGroup(2, "Clientes", False))


@pytest.mark.parametrize(("overrides", "groups", "suspension", "days", "expected"), [
    ({}, GROUPS, "on", "5", []),
    ({"grace_days": 5}, GROUPS, "on", "5", ["grace_days = 5 >= WHMCS's AutoSuspensionDays 5"]),
    ({"grace_days": 9}, GROUPS, "on", "5", ["AutoSuspensionDays 5"]),
    ({}, GROUPS, "", "5", ["AutoSuspension) is off"]),
    ({}, (ClientGroup(1, "VIP", False), GROUPS[1]), "on", "5", ["not exempt from suspension"]),
    ({"vip_group_id": 7}, GROUPS, "on", "5", ["vip_group_id = 7: WHMCS has no such client"]),
    ({"default_group_id": 8}, GROUPS, "on", "5", ["default_group_id = 8"]),
    ({}, GROUPS, "on", "", []),  # no value: nothing to compare
    # None: WHMCS answered "Invalid name for parameter setting" (whmcs-reference §6)
    ({"grace_days": 9}, GROUPS, "on", None, ["does not know the setting AutoSuspensionDays"]),
    ({}, GROUPS, None, "5", ["does not know the setting AutoSuspension "]),
    ({}, GROUPS, None, None, ["AutoSuspension ", "AutoSuspensionDays"]),
])
def test_whmcs_warnings(overrides, groups, suspension, days, expected) -> None:  # type: ignore[no-untyped-def]
    policy = default_settings().replace(policy={**{"vip_group_id": 1, "default_group_id": 2,
                                                   "grace_days": 3}, **overrides}).policy
    found = whmcs_warnings(policy, groups, suspension, days)
    assert len(found) == len(expected)
    for text, part in zip(found, expected, strict=True):
        assert part in text


def test_vipgate_check_reads_whmcs_settings_through_the_api(tmp_path: Path) -> None:
    with make_world(f"sqlite:///{tmp_path}/vipgate.db", tmp_path) as w:
        w.sandbox.configure(AutoSuspensionDays=3)
        assert w.api().get_configuration_value("AutoSuspensionDays") == "3"
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("VIPGATE_")},
               "VIPGATE_BRIDGE_DATABASE_URL": w.settings.bridge.database_url,
               "VIPGATE_WHMCS_URL": w.settings.whmcs.url,
               "VIPGATE_WHMCS_IDENTIFIER": w.settings.whmcs.identifier,
               "VIPGATE_WHMCS_SECRET": w.settings.whmcs.secret,
               "VIPGATE_POLICY_VIP_GROUP_ID": str(w.vip),
               "VIPGATE_POLICY_GRACE_DAYS": "3"}
        done = subprocess.run([sys.executable, "-m", "bridge", "check"], env=env,
                              capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "whmcs: ok" in done.stdout
        assert "grace_days = 3 >= WHMCS's AutoSuspensionDays 3" in done.stdout
        env["VIPGATE_WHMCS_SECRET"] = "wrong"
        bad = subprocess.run([sys.executable, "-m", "bridge", "check"], env=env,
                             capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert bad.returncode == 1
        assert "Invalid or missing credentials" in bad.stdout and "check failed" in bad.stderr


def test_vipgate_check_names_a_setting_whmcs_does_not_know(tmp_path: Path) -> None:
    import sqlalchemy as sa

    from bridge.whmcs.schema import tblconfiguration

    with make_world(f"sqlite:///{tmp_path}/vipgate.db", tmp_path) as w:
        with w.sandbox.transaction() as conn:  # a WHMCS without the setting
            conn.execute(sa.delete(tblconfiguration).where(
                tblconfiguration.c.setting == "AutoSuspensionDays"))
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("VIPGATE_")},
               "VIPGATE_BRIDGE_DATABASE_URL": w.settings.bridge.database_url,
               "VIPGATE_WHMCS_URL": w.settings.whmcs.url,
               "VIPGATE_WHMCS_IDENTIFIER": w.settings.whmcs.identifier,
               "VIPGATE_WHMCS_SECRET": w.settings.whmcs.secret,
               "VIPGATE_POLICY_VIP_GROUP_ID": str(w.vip), "VIPGATE_POLICY_GRACE_DAYS": "9"}
        done = subprocess.run([sys.executable, "-m", "bridge", "check"], env=env,
                              capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "whmcs: ok" in done.stdout and "Traceback" not in done.stderr
    assert ("warning: WHMCS does not know the setting AutoSuspensionDays (GetConfigurationValue "
            "answers \"Invalid name for parameter setting\")") in done.stdout
    assert "AutoSuspensionDays 5" not in done.stdout
