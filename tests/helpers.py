"""Small helpers shared by the tests: fixed secrets, a settable clock, signed requests."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bridge.signing import signed_headers

SECRET = "whsec_" + base64.b64encode(b"vipgate-test-secret-0123456789ab").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"another-secret-for-rotation-0000").decode()
FIXED_NOW = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)


@dataclass
class Clock:
    """A clock the tests move by hand."""

    now: datetime = FIXED_NOW

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def envelope(hook: str, variables: dict[str, Any] | None = None,
             occurred_at: str = "2026-11-21T11:59:00+00:00") -> bytes:
    return json.dumps({"hook": hook, "vars": variables or {}, "occurred_at": occurred_at}
                      ).encode()


def post_signed(client: Any, body: bytes, *, secret: str = SECRET, msg_id: str | None = None,
                timestamp: int | None = None, content_type: str = "application/json",
                extra_headers: dict[str, str] | None = None) -> Any:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    stamp = int(FIXED_NOW.timestamp()) if timestamp is None else timestamp
    headers = signed_headers([secret], msg_id, stamp, body)
    headers.update(extra_headers or {})
    return client.post("/hooks/whmcs", data=body, headers=headers, content_type=content_type)


@dataclass
class Recorder:
    """A ``fire`` that records hooks and answers with what a test set in ``answers``; like a
    forwarder it takes the admin behind the request (``__admin__``) out of the vars, into
    ``admins``."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    answers: dict[str, Callable[[dict[str, Any]], list[Any]]] = field(default_factory=dict)
    admins: list[str | None] = field(default_factory=list)

    def __call__(self, hook: str, variables: dict[str, Any]) -> list[Any]:
        json.dumps(variables)  # the PHP stub receives them JSON-encoded
        variables = dict(variables)
        self.admins.append(variables.pop("__admin__", None))
        self.calls.append((hook, variables))
        answer = self.answers.get(hook)
        return answer(variables) if answer else []

    def names(self) -> list[str]:
        return [hook for hook, _ in self.calls]

    def vars(self, hook: str) -> list[dict[str, Any]]:
        return [v for h, v in self.calls if h == hook]
