"""Standard Webhooks signatures (HMAC-SHA256, ``v1,``), over raw bytes, with a given clock.

We sign and verify ourselves rather than through the ``standardwebhooks`` package because that
package fixes the window at five minutes, reads the wall clock, decodes the body as UTF-8 before
signing, and raises ValueError on malformed headers. The package is used in the tests as the
interop oracle: what it signs verifies here and what we sign verifies there.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Protocol

from bridge.settings import check_webhook_secret

_ID = re.compile(r"^[A-Za-z0-9_\-:]{1,255}$")
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
WEBHOOK_ID_FORM = "1 to 255 characters of letters, digits, '_', '-' or ':'"


def valid_webhook_id(text: str) -> bool:
    """Whether ``text`` has the form of a webhook id (the ``webhook-id`` header, a batched
    event's ``id``): WEBHOOK_ID_FORM. The signature check uses the same pattern."""
    return _ID.fullmatch(text) is not None


class SignatureError(Exception):
    """The request is not signed as it should be; ``code`` is the public error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Verified:
    msg_id: str
    timestamp: int
    secret: str = field(default="", repr=False)  # the one that matched: answers are signed with it


# The HMAC key of each secret, decoded once (a handful of secrets per process; an invalid one
# raises ValueError every time, lru_cache keeps no exceptions).
_key = functools.lru_cache(maxsize=32)(check_webhook_secret)


def _digest(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    return hmac.digest(key, b"%s.%d.%s" % (msg_id.encode(), timestamp, body), hashlib.sha256)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for one secret: ``v1,<base64 HMAC>``."""
    return "v1," + base64.b64encode(_digest(_key(secret), msg_id, timestamp, body)).decode()


def signed_headers(secrets: Iterable[str], msg_id: str, timestamp: int,
                   body: bytes) -> dict[str, str]:
    """All three headers, one signature per secret (several during a rotation)."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, msg_id, timestamp, body) for s in secrets),
    }


class HeaderLookup(Protocol):
    """What ``verify`` reads of the headers: werkzeug's and requests' headers, or a dict."""

    def get(self, key: str, /) -> str | None: ...


def verify(secrets: Iterable[str], headers: HeaderLookup, body: bytes, now: float,
           tolerance: int) -> Verified:
    """Check the headers against ``body`` with any of ``secrets``; raise SignatureError.

    ``headers`` must be case-insensitive (werkzeug's are) or lower-case.
    """
    msg_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    signature = headers.get("webhook-signature")
    missing = [name for name, value in (("webhook-id", msg_id), ("webhook-timestamp", stamp),
                                        ("webhook-signature", signature)) if not value]
    if missing:
        raise SignatureError("missing_signature", "missing header " + ", ".join(missing))
    assert msg_id is not None and stamp is not None and signature is not None
    if not _ID.match(msg_id):
        raise SignatureError("invalid_signature", f"webhook-id must be {WEBHOOK_ID_FORM}")
    if not _TIMESTAMP.match(stamp):
        raise SignatureError("invalid_signature",
                             "webhook-timestamp must be whole seconds since 1970")
    timestamp = int(stamp)
    if timestamp < now - tolerance:
        raise SignatureError("stale_timestamp", f"webhook-timestamp is more than {tolerance} "
                                                "seconds old")
    if timestamp > now + tolerance:
        raise SignatureError("stale_timestamp", f"webhook-timestamp is more than {tolerance} "
                                                "seconds in the future")
    offered = []
    for item in signature.split(" "):
        version, _, value = item.partition(",")
        if version != "v1" or not value:
            continue
        try:
            offered.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    if not offered:
        raise SignatureError("invalid_signature", "webhook-signature has no v1 signature")
    for secret in secrets:
        expected = _digest(_key(secret), msg_id, timestamp, body)
        # compare against every offered signature, constant time each
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return Verified(msg_id, timestamp, secret)
    raise SignatureError("invalid_signature", "webhook-signature does not match the body")


# --- the trust unlock's form token ------------------------------------------------------------

TRUST_TOKEN_CONTEXT = "vipgate-trust-unlock"  # noqa: S105  (a domain separator, not a secret)


def trust_token(secret: str, client_id: int, day: date) -> str:
    """The token the banner's unlock form carries: HMAC-SHA256 with the stub and bridge's
    shared secret over the client id and the day (WHMCS's), base64url. A synchronizer token: a
    form made on another site cannot know it, and it is good for that client and day only."""
    key = check_webhook_secret(secret)
    message = f"{TRUST_TOKEN_CONTEXT}.{client_id}.{day.isoformat()}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def check_trust_token(secrets: Iterable[str], client_id: int, token: str | None,
                      today: date) -> bool:
    """Whether ``token`` is the client's for today or yesterday (a page shown just before
    midnight), by any of the secrets (one being rotated in)."""
    if not token or client_id <= 0 or len(token) > 100:
        return False
    for secret in secrets:
        for day in (today, today - timedelta(days=1)):
            if hmac.compare_digest(trust_token(secret, client_id, day), token):
                return True
    return False
