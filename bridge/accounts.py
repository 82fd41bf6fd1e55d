"""Admin accounts: argon2id password hashes and per-account login throttling in the database.

Hashes use argon2-cffi with OWASP's minimum for argon2id (19 MiB, 2 iterations, 1 lane).
Failed logins are counted per account name in ``login_throttle`` (names that do not exist
too, so the answer never tells which names exist); ``login_attempts`` failures within
``lockout_minutes`` lock the name for ``lockout_minutes``. The count lives in the database, so
it holds across gunicorn workers and restarts.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from bridge.settings import AdminSettings
from bridge.store import Store, admin_user, login_throttle, utc_naive

HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD = 10
# Checked against when the name is unknown, so that both answers take as long.
_DUMMY_HASH = HASHER.hash("vipgate: no such account")


class AccountError(ValueError):
    """A name or password that cannot be used; the message says why."""


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise AccountError("expected an account name of 1 to 64 letters, digits or . _ @ -, "
                           "starting with a letter or digit")
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"expected a password of at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise AccountError("expected a password of at most 1024 characters")
    return password


def create_user(store: Store, name: str, password: str, now: datetime) -> Literal[
        "created", "updated"]:
    """Create the account, or set a new password on an existing one (which also ends its
    sessions: they carry a fingerprint of the hash)."""
    check_name(name)
    hashed = HASHER.hash(check_password(password))
    with store.engine.begin() as conn:
        done = conn.execute(admin_user.update().where(admin_user.c.name == name)
                            .values(password_hash=hashed)).rowcount
        if not done:
            conn.execute(admin_user.insert().values(name=name, password_hash=hashed,
                                                    created_at=utc_naive(now)))
        conn.execute(login_throttle.delete().where(login_throttle.c.name == name.lower()))
    return "updated" if done else "created"


def users(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(admin_user.c.name).order_by(admin_user.c.name))
                    .scalars())


def fingerprint(password_hash: str) -> str:
    """What a session carries to prove it was opened with the current password."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:32]


def session_valid(store: Store, name: str, print_: str) -> bool:
    with store.engine.connect() as conn:
        hashed = conn.execute(sa.select(admin_user.c.password_hash)
                              .where(admin_user.c.name == name)).scalar()
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
    with store.engine.connect() as conn:
        throttle = conn.execute(login_throttle.select()
                                .where(login_throttle.c.name == key)).first()
        row = conn.execute(admin_user.select().where(
            sa.func.lower(admin_user.c.name) == key)).first()
    if throttle is not None and throttle.locked_until is not None and throttle.locked_until > at:
        return LoginResult(False, locked_until=throttle.locked_until)
    try:
        HASHER.verify(row.password_hash if row is not None else _DUMMY_HASH, password)
        good = row is not None
    except (VerificationError, InvalidHashError):
        good = False
    if good:
        with store.engine.begin() as conn:
            conn.execute(login_throttle.delete().where(login_throttle.c.name == key))
            conn.execute(admin_user.update().where(admin_user.c.name == row.name)
                         .values(last_login_at=at))
        return LoginResult(True, row.name, fingerprint(row.password_hash))
    return LoginResult(False, locked_until=_count_failure(store, key, settings, at))


def _count_failure(store: Store, key: str, settings: AdminSettings,
                   at: datetime) -> datetime | None:
    """Count one failure atomically; returns the lock's end when this failure locks."""
    window = timedelta(minutes=settings.lockout_minutes)
    c = login_throttle.c
    with store.engine.begin() as conn:
        # Reset a stale window first, then add one in a single UPDATE (no lost counts when
        # two workers fail the same name at once).
        conn.execute(login_throttle.update().where(
            c.name == key, sa.or_(c.first_failure_at.is_(None),
                                  c.first_failure_at < at - window)).values(
            failures=0, first_failure_at=at, locked_until=None))
        if not conn.execute(login_throttle.update().where(c.name == key)
                            .values(failures=c.failures + 1)).rowcount:
            try:
                with conn.begin_nested():
                    conn.execute(login_throttle.insert().values(
                        name=key, failures=1, first_failure_at=at))
            except sa.exc.IntegrityError:
                conn.execute(login_throttle.update().where(c.name == key)
                             .values(failures=c.failures + 1))
        failures = conn.execute(sa.select(c.failures).where(c.name == key)).scalar() or 0
        if failures >= settings.login_attempts:
            until = at + window
            conn.execute(login_throttle.update().where(c.name == key)
                         .values(locked_until=until, failures=0, first_failure_at=None))
            return until
    return None
