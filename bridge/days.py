"""Days as WHMCS counts them: in its time zone (``[bridge] timezone``), against the naive UTC
datetimes vipgate stores."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def day_bounds(day: date, timezone: str) -> tuple[datetime, datetime]:
    """``day`` in ``timezone`` as a half-open range of naive UTC datetimes (the audit's)."""
    zone = ZoneInfo(timezone)
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return (start.astimezone(UTC).replace(tzinfo=None),
            end.astimezone(UTC).replace(tzinfo=None))


def business_day(moment: datetime, timezone: str) -> date:
    """The calendar day of ``moment`` (naive = UTC) in ``timezone``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(ZoneInfo(timezone)).date()
