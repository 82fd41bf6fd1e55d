"""A first full reconcile that cannot hurt.

An installation that has never applied a full reconcile does not apply one by itself: until an
owner has seen the plan and confirmed it (``vipgate resync`` asks, or takes ``--yes``; the
admin overview has a button), WHMCS's PreCronJob and DailyCronJob only plan it, and the plan's
summary waits on the overview. An installation that already applied a full reconcile (before
this rule existed) counts as confirmed.

Kept in vipgate's meta table: ``first_reconcile_confirmed`` (who and when) and
``first_reconcile_plan`` (the last plan waiting, as ``ResyncResult.summary()`` gives it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bridge.i18n import why
from bridge.store import Store
from bridge.store.snapshots import last_full_reconcile

CONFIRMED = "first_reconcile_confirmed"
WAITING = "first_reconcile_plan"


@dataclass(frozen=True)
class Confirmation:
    by: str
    at: datetime  # aware UTC


@dataclass(frozen=True)
class WaitingPlan:
    at: datetime  # when it was planned, aware UTC
    summary: dict[str, Any]  # ResyncResult.summary()

    @property
    def vip_in(self) -> int:
        return int(self.summary.get("changes", {}).get("vip_in", 0))

    @property
    def vip_out(self) -> int:
        return int(self.summary.get("changes", {}).get("vip_out", 0))


def _utc(moment: datetime) -> datetime:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).replace(microsecond=0)


def _read(store: Store, key: str) -> dict[str, Any] | None:
    text = store.meta_get(key)
    if text is None:
        return None
    try:
        value = json.loads(text)
        value["at"] = _utc(datetime.fromisoformat(str(value["at"])))
    except (ValueError, TypeError, KeyError):
        raise ValueError(f"unreadable (meta {key} = {text[:80]!r})") from None
    return value


def confirmation(store: Store) -> Confirmation | None:
    """Who confirmed the first full reconcile and when; None when nobody did yet."""
    value = _read(store, CONFIRMED)
    if value is not None:
        return Confirmation(str(value.get("by", "")), value["at"])
    applied = last_full_reconcile(store)
    if applied is not None:  # an installation from before the rule: it applied one already
        return Confirmation("a full reconcile applied before", applied["at"])
    return None


def confirmed(store: Store) -> bool:
    return confirmation(store) is not None


def confirm(store: Store, *, by: str, at: datetime) -> None:
    """From now on full reconciles apply (the waiting plan is dropped: the next run re-plans
    from what WHMCS holds then)."""
    store.meta_put(CONFIRMED, json.dumps({"by": by, "at": _utc(at).isoformat()}))


def record_plan(store: Store, summary: dict[str, Any], at: datetime) -> None:
    """Keep the summary of a full reconcile that was only planned, for the overview."""
    store.meta_put(WAITING, json.dumps({"at": _utc(at).isoformat(), "summary": summary}))


def waiting_plan(store: Store) -> WaitingPlan | None:
    """The last plan waiting for confirmation; None once confirmed, or before any plan."""
    if confirmed(store):
        return None
    value = _read(store, WAITING)
    if value is None:
        return None
    summary = value.get("summary")
    return WaitingPlan(value["at"], summary if isinstance(summary, dict) else {})


def describe(summary: dict[str, Any]) -> str:
    """``120 clients: 3 group changes (0 into VIP, 3 out of VIP), 2 ticket priority, 1 staff
    note``: the plan in one line."""
    changes = summary.get("changes", {})
    return why.gettext(  # a message: the admin page shows it in the reader's language
        "%(clients)s clients: %(groups)s group changes (%(vip_in)s into VIP, %(vip_out)s out "
        "of VIP), %(priorities)s ticket priority, %(notes)s staff note",
        clients=summary.get("clients", 0), groups=changes.get("group", 0),
        vip_in=changes.get("vip_in", 0), vip_out=changes.get("vip_out", 0),
        priorities=changes.get("ticket_priority", 0), notes=changes.get("ticket_note", 0))
