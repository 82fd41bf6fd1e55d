"""Policy warnings that need WHMCS's own settings (``vipgate check``; the admin overview).

``whmcs_warnings`` is pure: it compares vipgate's policy with what WHMCS reports — its
automatic suspension settings and its client groups.
"""

from __future__ import annotations

from collections.abc import Sequence

from bridge.settings import PolicySettings
from bridge.whmcs import ClientGroup, WhmcsClient


def whmcs_warnings(policy: PolicySettings, groups: Sequence[ClientGroup],
                   auto_suspension: str, auto_suspension_days: str) -> list[str]:
    """What makes vipgate's rule come too late or not matter, given WHMCS's settings."""
    found = []
    by_id = {g.id: g for g in groups}
    vip = by_id.get(policy.vip_group_id)
    if policy.vip_group_id and vip is None:
        found.append(f"[policy] vip_group_id = {policy.vip_group_id}: WHMCS has no such client "
                     f"group (groups: {', '.join(f'{g.id} {g.name}' for g in groups) or 'none'})")
    elif vip is not None and not vip.susptermexempt:
        found.append(f"VIP group {vip.id} ({vip.name}) is not exempt from suspension in WHMCS: "
                     "leaving it changes nothing for the cron")
    if policy.default_group_id and policy.default_group_id not in by_id:
        found.append(f"[policy] default_group_id = {policy.default_group_id}: WHMCS has no "
                     "such client group")
    if auto_suspension != "on":
        found.append("WHMCS's automatic suspension (AutoSuspension) is off: clients who leave "
                     "VIP are not suspended by the cron")
    elif auto_suspension_days.strip().isdigit():
        days = int(auto_suspension_days)
        if policy.grace_days >= days:
            found.append(f"[policy] grace_days = {policy.grace_days} >= WHMCS's "
                         f"AutoSuspensionDays {days}: a client leaves VIP only after the cron "
                         "would have suspended it; make grace_days smaller")
    return found


def check_whmcs(client: WhmcsClient, policy: PolicySettings) -> list[str]:
    """Read WHMCS's settings and groups through the API and return the warnings."""
    return whmcs_warnings(policy, client.get_client_groups(),
                          client.get_configuration_value("AutoSuspension"),
                          client.get_configuration_value("AutoSuspensionDays"))
