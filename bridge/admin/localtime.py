"""Times on the admin page: stored naive UTC, shown in WHMCS's time zone
(``[bridge] timezone``); dates typed by an admin are days in that zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bridge.admin.common import rt
from bridge.admin.language import current


def zone() -> ZoneInfo:
    return ZoneInfo(rt().settings.bridge.timezone)


def to_local(moment: datetime | None) -> datetime | None:
    """``moment`` (naive means UTC) in WHMCS's time zone."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone())


def shown(moment: datetime | None, seconds: bool = False) -> str:
    """``2026-11-21 09:00`` (``21/11/2026 09:00`` in pt_BR) in WHMCS's time zone, the day
    written in the page's language; empty for None."""
    local = to_local(moment)
    if local is None:
        return ""
    text = current().moment(local)
    return text + local.strftime(":%S") if seconds else text


def day_start_utc(day: date) -> datetime:
    """The naive UTC instant a day begins in WHMCS's time zone."""
    return datetime.combine(day, time(0), tzinfo=zone()).astimezone(UTC).replace(tzinfo=None)


def day_end_utc(day: date) -> datetime:
    """The naive UTC instant the day after ``day`` begins (an exclusive end)."""
    return day_start_utc(day + timedelta(days=1))
