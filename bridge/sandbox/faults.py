"""A test-only fault switch for the sandbox API: the next calls fail the ways a real WHMCS
behind a real web server fails (HTTP 500, a slow answer, an HTML error page).

    sandbox.faults.push("http_error", times=2)            # next 2 calls: HTTP 500
    sandbox.faults.push("slow", seconds=3)                # next call: answers after 3 s
    sandbox.faults.push("html", action="UpdateClient")    # next UpdateClient: an HTML page

Faults are taken in the order pushed; one with ``action`` waits for a call of that action.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

FaultKind = Literal["http_error", "slow", "html"]
KINDS = ("http_error", "slow", "html")


@dataclass
class Fault:
    kind: FaultKind
    times: int = 1
    seconds: float = 0.0
    status: int = 500  # http_error: this status; html: 200 unless given
    action: str | None = None  # only calls of this action (case-insensitive)


class Faults:
    def __init__(self, sleep: Callable[[float], None] = time.sleep) -> None:
        self.sleep = sleep  # tests may swap in a fake sleep
        self._queue: list[Fault] = []
        self._lock = threading.Lock()

    def push(self, kind: FaultKind, *, times: int = 1, seconds: float = 0.0,
             status: int | None = None, action: str | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {', '.join(KINDS)}")
        if times < 1:
            raise ValueError("times must be at least 1")
        default_status = 200 if kind == "html" else 500
        with self._lock:
            self._queue.append(Fault(kind, times, seconds, status or default_status,
                                     action.lower() if action else None))

    def take(self, action: str) -> Fault | None:
        """The fault for this call, if one is due (consumes one of its ``times``)."""
        with self._lock:
            for fault in self._queue:
                if fault.action is None or fault.action == action.lower():
                    fault.times -= 1
                    if fault.times == 0:
                        self._queue.remove(fault)
                    return fault
        return None

    def pending(self) -> int:
        with self._lock:
            return sum(f.times for f in self._queue)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
