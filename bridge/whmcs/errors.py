"""Typed errors of the WHMCS API client.

Permanent vs temporary, in the manner of kopf: :class:`WhmcsApiError` (WHMCS answered
``result=error``) will not go away by asking again; :class:`WhmcsUnavailable` (network, timeout,
5xx, a body that is not JSON) may, so the engine retries the item later. Messages are short and
never hold a request parameter or a response body, so they are safe to log and to store as an
inbox row's ``last_error``.
"""

from __future__ import annotations

import re

_MAX_MESSAGE = 300
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")

# Prefixes of WHMCS's own messages for credential, IP allow-list and API-role failures
# (whmcs-reference §2.1 and §6: "Authentication Failed" before WHMCS 8, "Invalid or missing
# credentials" since; "Invalid Access Key" is the accesskey variant).
_AUTH_PREFIXES = ("authentication failed", "invalid or missing credentials", "invalid ip",
                  "forbidden ip", "invalid permissions", "invalid access key",
                  "administrator account disabled", "access denied")


def clean_message(text: object) -> str:
    """One line, control characters removed, at most a few hundred characters."""
    line = _CONTROL.sub(" ", str(text)).strip()
    return line if len(line) <= _MAX_MESSAGE else line[:_MAX_MESSAGE - 1] + "…"


class WhmcsError(Exception):
    """Base of every error the WHMCS client raises."""

    def __init__(self, action: str, message: str) -> None:
        self.action = action
        self.message = clean_message(message)
        super().__init__(action, self.message)

    def __str__(self) -> str:
        return f"WHMCS {self.action}: {self.message}" if self.action else self.message


class WhmcsConfigError(WhmcsError):
    """The ``[whmcs]`` settings cannot make a client (no URL, URL with a query...)."""

    def __init__(self, message: str) -> None:
        super().__init__("", message)


class WhmcsApiError(WhmcsError):
    """WHMCS answered ``result=error`` (often with HTTP 200), or ``status=error`` without a
    ``result`` key; ``message`` is WHMCS's own.

    Permanent: asking again gives the same answer ("Client Not Found").
    """


class WhmcsNotFound(WhmcsApiError):
    """``result=error`` saying the object does not exist ("Ticket ID Not Found")."""


class WhmcsAuthError(WhmcsApiError):
    """Credentials, IP allow-list or API role refused: an operator must fix the settings."""


class WhmcsUnavailable(WhmcsError):
    """WHMCS could not be reached or answered garbage, after the quick retries.

    ``maybe_applied`` is True when a non-idempotent write (AddTicketNote, AddTicketReply) was
    sent and its outcome is unknown: check before sending it again.
    """

    def __init__(self, action: str, message: str, *, attempts: int = 1,
                 maybe_applied: bool = False) -> None:
        super().__init__(action, message)
        self.attempts = attempts
        self.maybe_applied = maybe_applied


class WhmcsResponseError(WhmcsError):
    """WHMCS answered ``result=success`` JSON of a shape the client cannot read."""


def api_error(action: str, message: object) -> WhmcsApiError:
    """The right :class:`WhmcsApiError` subclass for a ``result=error`` message."""
    text = clean_message(message) or "result=error without a message"
    lowered = text.lower()
    if lowered.startswith(_AUTH_PREFIXES):
        return WhmcsAuthError(action, text)
    if "not found" in lowered:
        return WhmcsNotFound(action, text)
    return WhmcsApiError(action, text)
