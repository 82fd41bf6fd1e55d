"""The sandbox's clock and calendar: WHMCS's local time, and its billing-cycle arithmetic.

WHMCS stores naive local times in its timezone; so does the sandbox. The clock is settable
(tests fix it, the demo moves it a day at a time), or follows another clock (a callable that
returns a datetime, e.g. the bridge's UTC clock), shifted by what ``advance`` added.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

# billingcycle → months; Free Account / One Time never recur.
CYCLE_MONTHS = {"Monthly": 1, "Quarterly": 3, "Semi-Annually": 6, "Annually": 12,
                "Biennially": 24, "Triennially": 36}
NON_RECURRING = ("Free Account", "Free", "One Time", "Onetime")


class SandboxClock:
    """``now`` (naive, WHMCS local time) and ``today``; ``advance(days=...)`` moves it.

    ``SandboxClock(datetime(2026, 11, 21, 9, 0))`` is fixed at that local time;
    ``SandboxClock(source=callable)`` follows a callable (aware results are converted to
    ``timezone``); ``SandboxClock()`` follows the wall clock.
    """

    def __init__(self, start: datetime | None = None, *, timezone: str = "UTC",
                 source: Callable[[], datetime] | None = None) -> None:
        self.tz = ZoneInfo(timezone)
        if start is not None and source is not None:
            raise ValueError("give start or source, not both")
        if start is not None:
            fixed = self._local(start)
            self._source: Callable[[], datetime] = lambda: fixed
        else:
            self._source = source or (lambda: datetime.now(self.tz))
        self._offset = timedelta()

    def _local(self, moment: datetime) -> datetime:
        if moment.tzinfo is not None:
            moment = moment.astimezone(self.tz).replace(tzinfo=None)
        return moment.replace(microsecond=0)

    @property
    def now(self) -> datetime:
        return self._local(self._source()) + self._offset

    @property
    def today(self) -> date:
        return self.now.date()

    @property
    def aware(self) -> datetime:
        """``now`` with the WHMCS timezone attached."""
        return self.now.replace(tzinfo=self.tz)

    def advance(self, **delta: float) -> datetime:
        self._offset += timedelta(**delta)
        return self.now

    def set(self, moment: datetime) -> None:
        """Jump to ``moment`` (naive = WHMCS local time)."""
        self._offset += self._local(moment) - self.now

    def __call__(self) -> datetime:
        return self.now


def add_months(day: date, months: int) -> date:
    """``day`` plus ``months`` calendar months, the day clamped to the month's end."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def next_cycle(day: date, billingcycle: str) -> date:
    """The next due date after ``day`` for a service billed ``billingcycle``."""
    months = CYCLE_MONTHS.get(billingcycle)
    return day if months is None else add_months(day, months)


def recurs(billingcycle: str) -> bool:
    return billingcycle in CYCLE_MONTHS
