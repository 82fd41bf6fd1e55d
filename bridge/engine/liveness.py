"""How a worker keeps what it holds, and how it waits out a WHMCS outage.

:class:`Heartbeat` renews a worker's leases from a thread of its own while the worker is busy
with one event, so leases can be short: a worker that dies stops renewing and its rows and
clients are free again once its lease runs out. :func:`next_pause` is the pure backoff of a
worker that found WHMCS down (:func:`probe_whmcs`): 1 s, doubling, capped at 30 s.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType

from bridge.whmcs import WhmcsClient, WhmcsError, WhmcsUnavailable

log = logging.getLogger("vipgate.worker")

FIRST_PAUSE = timedelta(seconds=1)
MAX_PAUSE = timedelta(seconds=30)
# How long the end of a ``with Heartbeat`` waits for a beat in flight (a beat is one or two
# short UPDATEs; a hung database is not waited for here).
JOIN_SECONDS = 5.0


class Heartbeat:
    """``with Heartbeat(beat, every, name):`` calls ``beat`` every ``every`` seconds in a
    daemon thread until the block ends. The first beat comes after ``every`` seconds, so a
    quick block costs no beat. A failing beat is logged at WARNING and tried again at the next
    one; it never reaches the block."""

    def __init__(self, beat: Callable[[], object], every: float, name: str) -> None:
        self.beat, self.every, self.name = beat, every, name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{name}",
                                        daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(JOIN_SECONDS)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.beat()
            except Exception as exc:  # the database may be away; the next beat tries again
                log.warning("worker %s: heartbeat failed: %s: %s", self.name,
                            type(exc).__name__, exc)


@dataclass(frozen=True)
class Pause:
    """WHMCS was found down at ``since``: claim nothing before ``until``; ``delay`` is the
    current step of the backoff (also how long a deferred event waits)."""

    since: datetime
    delay: timedelta
    until: datetime


def next_pause(pause: Pause | None, now: datetime) -> Pause:
    """The pause after a failed probe at ``now``: the first is :data:`FIRST_PAUSE`, each next
    one twice the last, at most :data:`MAX_PAUSE`."""
    if pause is None:
        return Pause(now, FIRST_PAUSE, now + FIRST_PAUSE)
    delay = min(pause.delay * 2, MAX_PAUSE)
    return Pause(pause.since, delay, now + delay)


def probe_whmcs(whmcs: WhmcsClient, worker: str) -> str | None:
    """One cheap read (``GetClientGroups``, with the client's quick retries): None when WHMCS
    answers, even with ``result=error``; else why it is unavailable."""
    try:
        whmcs.get_client_groups()
    except WhmcsUnavailable as exc:
        return str(exc)
    except WhmcsError:
        return None
    except Exception:  # not an outage: the event's failure is counted as usual
        log.exception("worker %s: probing WHMCS failed unexpectedly", worker)
    return None
