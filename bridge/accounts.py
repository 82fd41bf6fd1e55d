"""Admin accounts: argon2id password hashes and per-account login throttling.

Hashes use argon2-cffi with OWASP's minimum for argon2id (19 MiB, 2 iterations, 1 lane).
Failed logins are counted per account name in ``login_throttle`` (names that do not exist
too, so the answer never tells which names exist); ``login_attempts`` failures within
``lockout_minutes`` lock the name for ``lockout_minutes``. The count lives in the database, so
it holds across gunicorn workers and restarts. The statements are ``bridge.store.accounts``'.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from bridge.i18n import why
from bridge.settings import AdminSettings
from bridge.store import Store
from bridge.store.database import utc_naive

HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD = 10
# Checked against when the name is unknown, so that both answers take as long.
_DUMMY_HASH = HASHER.hash("vipgate: no such account")


class AccountError(ValueError):
    """A name or password that cannot be used; the message says why."""


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise AccountError(why.gettext("expected an account name of 1 to 64 letters, digits or "
                                       ". _ @ -, starting with a letter or digit"))
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError(why.gettext("expected a password of at least %(num)s characters",
                                       num=MIN_PASSWORD))
    if len(password) > 1024:
        raise AccountError(why.gettext("expected a password of at most %(num)s characters",
                                       num=1024))
    return password


def create_user(store: Store, name: str, password: str, now: datetime) -> Literal[
        "created", "updated"]:
    """Create the account, or set a new password on an existing one (which also ends its
    sessions: they carry a fingerprint of the hash)."""
    check_name(name)
    hashed = HASHER.hash(check_password(password))
    return "updated" if store.put_admin(name, hashed, now) else "created"


def users(store: Store) -> list[str]:
    return store.admin_names()


def fingerprint(password_hash: str) -> str:
    """What a session carries to prove it was opened with the current password."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:32]


def session_valid(store: Store, name: str, print_: str) -> bool:
    hashed = store.admin_password_hash(name)
    return hashed is not None and hmac.compare_digest(fingerprint(hashed), print_)


@dataclass(frozen=True)
class LoginResult:
    ok: bool
    name: str = ""
    fingerprint: str = ""
    locked_until: datetime | None = None  # set when the account name is locked


def login(store: Store, name: str, password: str, settings: AdminSettings,
          now: datetime) -> LoginResult:
    """Check a login, counting failures per name; a locked name is refused even with the
    right password until the lock ends."""
    key = name.strip().lower()[:64]
    at = utc_naive(now)
    locked_until, account = store.login_lookup(key)
    if locked_until is not None and locked_until > at:
        return LoginResult(False, locked_until=locked_until)
    try:
        HASHER.verify(account.password_hash if account is not None else _DUMMY_HASH, password)
        good = account is not None
    except (VerificationError, InvalidHashError):
        good = False
    if good and account is not None:
        store.login_succeeded(key, account.name, at)
        return LoginResult(True, account.name, fingerprint(account.password_hash))
    return LoginResult(False, locked_until=store.count_login_failure(
        key, at, window=timedelta(minutes=settings.lockout_minutes),
        attempts=settings.login_attempts))
