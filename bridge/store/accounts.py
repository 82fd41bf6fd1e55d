"""The admin page's accounts (``admin_user``: names, password hashes, languages) and the
failed logins counted per account name (``login_throttle``). Hashing and the login rules are
``bridge.accounts``'."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from bridge.store.database import Database, utc_naive
from bridge.store.tables import admin_user, login_throttle


@dataclass(frozen=True)
class AdminAccount:
    name: str
    password_hash: str


class AccountStore(Database):
    def put_admin(self, name: str, password_hash: str, now: datetime) -> bool:
        """Create the account, or set a new hash on an existing one; either way the name's
        failed logins are forgotten. Returns whether the account existed."""
        with self.engine.begin() as conn:
            done = conn.execute(admin_user.update().where(admin_user.c.name == name)
                                .values(password_hash=password_hash)).rowcount
            if not done:
                conn.execute(admin_user.insert().values(name=name, password_hash=password_hash,
                                                        created_at=utc_naive(now)))
            conn.execute(login_throttle.delete().where(login_throttle.c.name == name.lower()))
        return bool(done)

    def admin_names(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(admin_user.c.name).order_by(admin_user.c.name))
                        .scalars())

    def admin_password_hash(self, name: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(admin_user.c.password_hash)
                                .where(admin_user.c.name == name)).scalar()

    def admin_language(self, name: str) -> str | None:
        """The language ``name`` chose for the admin page (None: ``[bridge] language``)."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(admin_user.c.language)
                                .where(admin_user.c.name == name)).scalar()

    def set_admin_language(self, name: str, language: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(admin_user.update().where(admin_user.c.name == name)
                         .values(language=language))

    def login_lookup(self, key: str) -> tuple[datetime | None, AdminAccount | None]:
        """For a login as ``key`` (a lower-case name): until when the name is locked (None:
        not locked now or ever), and the account of that name in any case (None: none)."""
        with self.engine.connect() as conn:
            throttle = conn.execute(login_throttle.select()
                                    .where(login_throttle.c.name == key)).first()
            row = conn.execute(admin_user.select().where(
                sa.func.lower(admin_user.c.name) == key)).first()
        return (None if throttle is None else throttle.locked_until,
                None if row is None else AdminAccount(row.name, row.password_hash))

    def login_succeeded(self, key: str, name: str, now: datetime) -> None:
        """Forget ``key``'s failed logins and note the account's login time."""
        with self.engine.begin() as conn:
            conn.execute(login_throttle.delete().where(login_throttle.c.name == key))
            conn.execute(admin_user.update().where(admin_user.c.name == name)
                         .values(last_login_at=utc_naive(now)))

    def count_login_failure(self, key: str, now: datetime, *, window: timedelta,
                            attempts: int) -> datetime | None:
        """Count one failure of ``key`` atomically: ``attempts`` failures within ``window``
        lock the name for ``window``. Returns the lock's end when this failure locks."""
        at = utc_naive(now)
        c = login_throttle.c
        with self.engine.begin() as conn:
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
            if failures >= attempts:
                until = at + window
                conn.execute(login_throttle.update().where(c.name == key)
                             .values(locked_until=until, failures=0, first_failure_at=None))
                return until
        return None
