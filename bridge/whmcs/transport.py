"""The one place where vipgate speaks HTTP to WHMCS: a form POST to ``<url>/includes/api.php``.

Every call: identifier/secret (+ accesskey) and ``responsetype=json`` in the POST body (never in
the URL), a ``(connect, read)`` timeout, TLS verified, redirects not followed, the body read up
to a cap. Connection errors, timeouts, 429 and 5xx are retried a few times with full jitter
(reliability-security §3: "a few quick retries (e.g. 3) with full jitter and a cap of a few
seconds"), then :class:`WhmcsUnavailable` hands the item back to the engine's slow schedule.
``result=error`` (or ``status=error`` without ``result``) is never retried: no WHMCS message is
documented as transient.

A write that is not idempotent (AddTicketNote, AddTicketReply: a second call adds a second
note or e-mails the client twice) is retried only when the request surely never left
(connection refused, connect timeout); otherwise the error says ``maybe_applied``.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError

from bridge.settings import WhmcsSettings
from bridge.whmcs.errors import (
    WhmcsConfigError,
    WhmcsResponseError,
    WhmcsUnavailable,
    api_error,
)

log = logging.getLogger("bridge.whmcs")

API_PATH = "/includes/api.php"
ATTEMPTS = 3
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 4.0
CONNECT_TIMEOUT_CAP_SECONDS = 5.0
MAX_BODY_BYTES = 16 * 1024 * 1024
# Writes that set a value: sending one twice leaves WHMCS as sending it once.
IDEMPOTENT_WRITES = frozenset({"UpdateClient", "UpdateTicket", "UpdateClientProduct"})
RESERVED = frozenset({"action", "identifier", "secret", "accesskey", "responsetype",
                      "username", "password"})
_ACTION = re.compile(r"[A-Za-z][A-Za-z0-9]{1,63}")
_MEDIA_TYPE = re.compile(r"[\w.+-]{1,40}/[\w.+-]{1,60}")


def endpoint(url: str) -> str:
    """``<url>/includes/api.php`` from the configured base URL, which must be plain."""
    parts = urlsplit(url.strip())
    if not url.strip():
        raise WhmcsConfigError("[whmcs] url is not set")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WhmcsConfigError("[whmcs] url must start with https:// (or http://) and a host")
    if "@" in parts.netloc or parts.query or parts.fragment:
        raise WhmcsConfigError("[whmcs] url must not hold a user, password, query or fragment")
    path = parts.path.rstrip("/")
    if path.endswith(API_PATH):
        raise WhmcsConfigError("[whmcs] url is the WHMCS base URL, without /includes/api.php")
    return f"{parts.scheme}://{parts.netloc}{path}{API_PATH}"


def idempotent(action: str) -> bool:
    return action.startswith("Get") or action in IDEMPOTENT_WRITES


def form_value(value: Any) -> str:
    """A request parameter as PHP's http_build_query would send it."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | Decimal | str):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot send a {type(value).__name__} to WHMCS")


def decode(action: str, status: int, content_type: str, body: bytes) -> dict[str, Any]:
    """The JSON object of a non-3xx, non-5xx answer, or the typed error it stands for."""
    try:
        data = json.loads(body.decode("utf-8-sig"), parse_float=Decimal,
                          parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        media = content_type.split(";")[0].strip().lower()
        kind = media if _MEDIA_TYPE.fullmatch(media) else "no usable content type"
        raise WhmcsUnavailable(action, f"HTTP {status}: the response is not JSON ({kind}, "
                               f"{len(body)} bytes)") from None
    if isinstance(data, dict) and error_answer(data):
        raise api_error(action, data.get("message", ""))
    if status >= 400:
        raise WhmcsUnavailable(action, f"HTTP {status} without a WHMCS error message")
    if not isinstance(data, dict):
        raise WhmcsResponseError(action, "unexpected response: not a JSON object")
    if str(data.get("result", "")).lower() != "success":
        raise WhmcsResponseError(action, "unexpected response: no result=success")
    return data


def error_answer(data: dict[str, Any]) -> bool:
    """``result=error``, or WHMCS 8's ``{"status": "error", "message": ...}`` without a
    ``result`` key (GetInvoice for a missing id, whmcs-reference §6). A success answer may
    carry its own ``status`` (an invoice's, a client's), never with ``result`` missing."""
    if "result" in data:
        return str(data["result"]).lower() == "error"
    return str(data.get("status", "")).lower() == "error"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class Transport:
    """Posts one action to WHMCS and returns the decoded ``result=success`` object."""

    def __init__(self, settings: WhmcsSettings, *, session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 rng: Callable[[], float] = random.random, attempts: int = ATTEMPTS) -> None:
        self.endpoint = endpoint(settings.url)
        self._credentials = {"identifier": settings.identifier, "secret": settings.secret}
        if settings.accesskey:
            self._credentials["accesskey"] = settings.accesskey
        read = float(settings.timeout_seconds)
        self.timeout = (min(read, CONNECT_TIMEOUT_CAP_SECONDS), read)
        self._own_session = session is None
        self._session = session if session is not None else _session(self.endpoint)
        # TLS verification: True, or the CA bundle the environment named when the session was
        # made (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE)
        self._verify: bool | str = getattr(self._session, "vipgate_verify", True)
        self._sleep, self._rng = sleep, rng
        self.attempts = max(1, attempts)

    def __repr__(self) -> str:
        return f"Transport({self.endpoint!r})"

    def close(self) -> None:
        if self._own_session:
            self._session.close()

    def call(self, action: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        if not _ACTION.fullmatch(action):
            raise ValueError(f"not a WHMCS API action name: {action!r}")
        form = self._form(action, params or {})
        safe_to_repeat = idempotent(action)
        for attempt in range(1, self.attempts + 1):
            started = time.monotonic()
            try:
                status, content_type, body = self._post(action, form)
            except requests.RequestException as exc:
                unsent = _never_sent(exc)
                reason = self._describe(exc, unsent)
                final = (attempt == self.attempts or isinstance(exc, requests.exceptions.SSLError)
                         or not (unsent or safe_to_repeat))
                if final:
                    raise WhmcsUnavailable(action, reason, attempts=attempt,
                                           maybe_applied=not (unsent or safe_to_repeat)) \
                        from exc
                self._backoff(action, attempt, reason)
                continue
            if 300 <= status < 400:
                raise WhmcsUnavailable(action, f"HTTP {status}: redirect not followed; "
                                       "check [whmcs] url", attempts=attempt)
            if status >= 500 or status == 429:
                reason = f"HTTP {status}"
                if attempt == self.attempts or not safe_to_repeat:
                    raise WhmcsUnavailable(action, reason, attempts=attempt,
                                           maybe_applied=not safe_to_repeat)
                self._backoff(action, attempt, reason)
                continue
            data = decode(action, status, content_type, body)
            log.debug("WHMCS %s answered in %.0f ms", action,
                      (time.monotonic() - started) * 1000)
            return data
        raise AssertionError("unreachable")  # pragma: no cover

    def _form(self, action: str, params: Mapping[str, Any]) -> dict[str, str]:
        clash = RESERVED.intersection(params)
        if clash:
            raise ValueError(f"reserved WHMCS parameter(s): {', '.join(sorted(clash))}")
        form = {"action": action, **self._credentials, "responsetype": "json"}
        form.update({k: form_value(v) for k, v in params.items() if v is not None})
        return form

    def _post(self, action: str, form: dict[str, str]) -> tuple[int, str, bytes]:
        with self._session.post(self.endpoint, data=form, timeout=self.timeout,
                                verify=self._verify,
                                allow_redirects=False, stream=True,
                                headers={"Accept": "application/json",
                                         "User-Agent": "vipgate"}) as response:
            chunks, size = [], 0
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise WhmcsUnavailable(action, f"HTTP {response.status_code}: response "
                                           f"larger than {MAX_BODY_BYTES} bytes")
                chunks.append(chunk)
            return response.status_code, response.headers.get("Content-Type", ""), \
                b"".join(chunks)

    def _backoff(self, action: str, attempt: int, reason: str) -> None:
        delay = self._rng() * min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** attempt)
        log.warning("WHMCS %s attempt %d/%d failed (%s); retrying in %.2f s",
                    action, attempt, self.attempts, reason, delay)
        self._sleep(delay)

    def _describe(self, exc: requests.RequestException, unsent: bool) -> str:
        """Why a request failed, without the URL (it may carry a path worth hiding) or body."""
        host = urlsplit(self.endpoint).netloc
        if isinstance(exc, requests.exceptions.SSLError):
            return f"TLS handshake with {host} failed (certificate not trusted?)"
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return f"no connection to {host} within {self.timeout[0]:g} s"
        if isinstance(exc, requests.exceptions.ReadTimeout):
            return f"no answer from {host} within {self.timeout[1]:g} s"
        if unsent:
            return f"cannot connect to {host}"
        return f"connection to {host} broken ({type(exc).__name__})"


class _Session(requests.Session):
    vipgate_verify: bool | str = True


def _session(url: str) -> requests.Session:
    """A session that reads the environment once, not on every call: the proxies
    (``HTTPS_PROXY``, ``NO_PROXY``...), the CA bundle (``REQUESTS_CA_BUNDLE``,
    ``CURL_CA_BUNDLE``) and a ``.netrc`` login for WHMCS's host, as requests would on each
    call. requests scans the whole environment for proxies on every request (about a
    millisecond each, issue 17's profile); a running process's environment does not change."""
    session = _Session()
    found = session.merge_environment_settings(url, {}, None, True, None)
    session.trust_env = False
    session.proxies.update(found["proxies"])
    bundle = found["verify"]
    session.vipgate_verify = bundle if isinstance(bundle, str) else True
    session.auth = requests.utils.get_netrc_auth(url)
    return session


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the request cannot have reached WHMCS (it failed while connecting)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.SSLError):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError) and exc.args:
        cause = exc.args[0]
        reason = cause.reason if isinstance(cause, MaxRetryError) else cause
        return isinstance(reason, ConnectTimeoutError)  # includes NewConnectionError
    return False
