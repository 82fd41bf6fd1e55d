"""WHMCS's client group and support department names, kept in vipgate's database so that
the admin page and the panels inside WHMCS show names where vipgate stores ids, without
asking WHMCS while a page waits. The worker refreshes them (:data:`REFRESH`); pages that read
the lists from WHMCS anyway store what they read."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from bridge.model import WhmcsNames
from bridge.store import Store
from bridge.whmcs import ClientGroup, Department, WhmcsClient, WhmcsError

log = logging.getLogger("vipgate.worker")

REFRESH = timedelta(hours=1)  # how often the worker reads the names again
RETRY = timedelta(minutes=5)  # after WHMCS could not answer


def save_names(store: Store, groups: Iterable[ClientGroup], departments: Iterable[Department],
               now: datetime) -> WhmcsNames:
    """Store the lists just read from WHMCS; return them as names."""
    store.put_whmcs_names({g.id: g.name for g in groups}, {d.id: d.name for d in departments},
                          now)
    return store.whmcs_names()


def refresh_names(store: Store, whmcs: WhmcsClient, now: datetime) -> bool:
    """Read the names from WHMCS (GetClientGroups, GetSupportDepartments) and store them;
    False when WHMCS could not answer (the names stored before stay)."""
    try:
        groups, departments = whmcs.get_client_groups(), whmcs.get_support_departments()
    except WhmcsError as exc:
        log.info("WHMCS's group and department names not refreshed: %s", exc)
        return False
    save_names(store, groups, departments, now)
    return True
