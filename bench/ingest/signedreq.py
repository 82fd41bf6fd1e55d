"""Signed, unique WHMCS hook requests for the ingest benchmark, as raw HTTP/1.1 bytes.

Every request carries its own ``webhook-id`` (``<prefix>_<n>``) and the timestamp of the moment
it was generated, so requests must be used within the bridge's tolerance (300 s by default):
the benchmark generates each batch right before the phase that sends it.

The bodies rotate over four asynchronous hooks with realistic ``vars`` (all answered 202 by the
bridge); ``TicketOpenValidation`` (answered synchronously, 200) is left out on purpose.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

HOST = "127.0.0.1"
PATH = "/hooks/whmcs"
BATCH_PATH = "/hooks/whmcs/batch"


def _invoice(n: int) -> tuple[str, dict[str, Any]]:
    return "InvoicePaid", {"invoiceid": str(10_000 + n % 50_000)}


def _client_edit(n: int) -> tuple[str, dict[str, Any]]:
    client = str(1 + n % 5_000)
    return "ClientEdit", {"userid": client, "groupid": "3", "status": "Active",
                          "language": "portuguese-br",
                          "olddata": {"groupid": "1", "status": "Active"}}


def _ticket_open(n: int) -> tuple[str, dict[str, Any]]:
    return "TicketOpen", {"ticketid": str(1 + n % 90_000), "ticketmask": f"VIP-{n % 999_999:06d}",
                          "userid": str(1 + n % 5_000), "deptid": "2", "priority": "Medium"}


def _suspend(n: int) -> tuple[str, dict[str, Any]]:
    return "AfterModuleSuspend", {"serviceid": str(1 + n % 20_000), "userid": str(1 + n % 5_000),
                                  "pid": "4"}


EVENTS: tuple[Callable[[int], tuple[str, dict[str, Any]]], ...] = (
    _invoice, _client_edit, _ticket_open, _suspend)


def secret_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"), validate=True)


def body_for(n: int, occurred_at: str) -> bytes:
    hook, variables = EVENTS[n % len(EVENTS)](n)
    return json.dumps({"hook": hook, "vars": variables, "occurred_at": occurred_at},
                      separators=(",", ":")).encode()


def raw_request(key: bytes, msg_id: str, timestamp: int, body: bytes,
                path: str = PATH) -> bytes:
    digest = hmac.new(key, b"%s.%d.%s" % (msg_id.encode(), timestamp, body),
                      hashlib.sha256).digest()
    signature = "v1," + base64.b64encode(digest).decode()
    head = (f"POST {path} HTTP/1.1\r\n"
            f"Host: {HOST}\r\n"
            "User-Agent: vipgate-bench\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"webhook-id: {msg_id}\r\n"
            f"webhook-timestamp: {timestamp}\r\n"
            f"webhook-signature: {signature}\r\n"
            "\r\n")
    return head.encode() + body


def generate(secret: str, prefix: str, indices: range | list[int],
             path: str = PATH) -> Iterator[bytes]:
    """Signed requests ``<prefix>_<n>`` for each n, stamped with the current time."""
    key = secret_key(secret)
    now = time.time()
    timestamp = int(now)
    occurred_at = datetime.fromtimestamp(now - 1, UTC).isoformat(timespec="seconds")
    for n in indices:
        yield raw_request(key, f"{prefix}_{n}", timestamp, body_for(n, occurred_at), path)


def generate_batches(secret: str, prefix: str, indices: range | list[int],
                     size: int) -> Iterator[bytes]:
    """Signed batch requests (``POST /hooks/whmcs/batch``), request n holding the ``size``
    events ``<prefix>_<n * size + k>`` (bodies as :func:`body_for`), each with its own id; the
    request's own ``webhook-id`` is ``batch<prefix>_<n>``."""
    key = secret_key(secret)
    now = time.time()
    timestamp = int(now)
    occurred_at = datetime.fromtimestamp(now - 1, UTC).isoformat(timespec="seconds")
    for n in indices:
        events = []
        for k in range(n * size, (n + 1) * size):
            hook, variables = EVENTS[k % len(EVENTS)](k)
            events.append({"id": f"{prefix}_{k}", "hook": hook, "vars": variables,
                           "occurred_at": occurred_at})
        body = json.dumps({"events": events}, separators=(",", ":")).encode()
        yield raw_request(key, f"batch{prefix}_{n}", timestamp, body, BATCH_PATH)


def self_check(secret: str) -> None:
    """Verify one generated request with the bridge's own verifier (raises if it disagrees)."""
    from bridge.signing import verify

    raw = next(generate(secret, "bench_selfcheck", range(1)))
    head, _, body = raw.partition(b"\r\n\r\n")
    headers = {}
    for line in head.decode().split("\r\n")[1:]:
        name, _, value = line.partition(": ")
        headers[name.lower()] = value
    verify([secret], headers, body, time.time(), 300)
