"""The sandbox's plumbing: database, clock, configuration, hook firing, activity log.

Hooks fire only after the transaction that caused them has committed and released the write
lock, as in WHMCS (hooks run after the change): a hook that calls back into the API (the
bridge's synchronous ``PreCronJob`` reconcile does) then sees the change and never waits on a
lock the caller holds.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, CursorResult

from bridge.sandbox.clock import SandboxClock
from bridge.sandbox.faults import Faults
from bridge.sandbox.schema import create_schema, make_whmcs_engine
from bridge.whmcs.schema import DATETIME_FORMAT, tblactivitylog, tblconfiguration

FireCallable = Callable[[str, dict[str, Any]], list[Any]]


# A setting's value (read on every API call: the IP allow-list), as text: built once.
_SETTING = sa.text("SELECT value FROM tblconfiguration WHERE setting = :name")


class WhmcsError(Exception):
    """A failure WHMCS reports with this exact message (the API answers result=error)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class FiredHook:
    hook: str
    vars: dict[str, Any]
    returns: list[Any] = field(default_factory=list)
    admin: str | None = None  # the admin behind the request that fired it


def jsonable(value: Any) -> Any:
    """Hook vars as JSON-safe values (the PHP stub receives them JSON-encoded)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, datetime):
        return value.strftime(DATETIME_FORMAT)
    if isinstance(value, date):
        return value.isoformat()
    return value


def as_date(value: date | datetime | str | None) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def as_datetime(value: date | datetime | str | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.replace(microsecond=0)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    text = str(value).replace("T", " ")
    if len(text) >= 19:
        return datetime.strptime(text[:19], DATETIME_FORMAT)
    day = date.fromisoformat(text[:10])
    return datetime(day.year, day.month, day.day)


def inserted_id(result: CursorResult[Any]) -> int:
    """The id the database gave the row a single-row INSERT added."""
    key = result.inserted_primary_key
    if key is None:
        raise RuntimeError("the INSERT added no row")
    return int(key[0])


def money(value: Any) -> Decimal:
    """A WHMCS amount as Decimal with 2 places (SQLite hands sums back as floats)."""
    return Decimal(str(value if value is not None else 0)).quantize(Decimal("0.01"))


class SandboxCore:
    """State shared by the behaviour mixins; see :class:`bridge.sandbox.whmcs.Sandbox`."""

    def __init__(self, database_url: str = "sqlite:///whmcs-sandbox.db",
                 fire: FireCallable | None = None,
                 clock: SandboxClock | datetime | Callable[[], datetime] | None = None, *,
                 timezone: str = "UTC", accesskey: str | None = None,
                 update_ticket_fires_hooks: bool = True, seed: int | None = None) -> None:
        self.database_url = database_url
        self.engine = make_whmcs_engine(database_url)
        create_schema(self.engine)
        if isinstance(clock, SandboxClock):
            self.clock = clock
        elif isinstance(clock, datetime):
            self.clock = SandboxClock(clock, timezone=timezone)
        else:
            self.clock = SandboxClock(timezone=timezone, source=clock)
        self.fire = fire  # the hook forwarder's fire(hook, vars); None = hooks go nowhere
        self.fired: list[FiredHook] = []
        self.accesskey = accesskey  # $api_access_key in configuration.php; None = not set
        # Whether UpdateTicket through the API fires TicketPriorityChange / TicketStatusChange
        # / TicketDepartmentChange (unconfirmed for real WHMCS, whmcs-reference §0.7).
        self.update_ticket_fires_hooks = update_ticket_fires_hooks
        self.faults = Faults()
        self.api_log: deque[dict[str, Any]] = deque(maxlen=2000)
        self.random = random.Random(seed)
        # Draws the order of rows tied under a list's ORDER BY (actions_common.unstable_ties),
        # apart from ``random`` so that listing does not change the ids and codes it makes.
        self.tie_random = random.Random(None if seed is None else f"ties {seed}")
        self._write_lock = threading.RLock()
        self._quiet = 0
        self._acting = threading.local()  # the admin behind the request this thread serves

    # --- time --------------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        return self.clock.now

    @property
    def today(self) -> date:
        return self.clock.today

    def advance(self, **delta: float) -> datetime:
        """Move the sandbox clock, e.g. ``advance(days=1)``."""
        return self.clock.advance(**delta)

    # --- database ----------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction; writers are serialised (never fire hooks inside)."""
        with self._write_lock, self.engine.begin() as conn:
            yield conn

    def get_row(self, conn: Connection, table: sa.Table, row_id: Any) -> dict[str, Any] | None:
        try:
            key = int(row_id)
        except (TypeError, ValueError):
            return None
        row = conn.execute(sa.select(table).where(table.c.id == key)).mappings().first()
        return dict(row) if row is not None else None

    def _require(self, conn: Connection, table: sa.Table, row_id: Any,
                 message: str) -> dict[str, Any]:
        row = self.get_row(conn, table, row_id)
        if row is None:
            raise WhmcsError(message)
        return row

    def dispose(self) -> None:
        self.engine.dispose()

    # --- configuration -----------------------------------------------------------------

    def setting(self, name: str, conn: Connection | None = None) -> str:
        if conn is not None:
            return str(conn.execute(_SETTING, {"name": name}).scalar() or "")
        with self.engine.connect() as own:
            return str(own.execute(_SETTING, {"name": name}).scalar() or "")

    def has_setting(self, name: str) -> bool:
        """Whether tblconfiguration has a row for ``name``."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(tblconfiguration.c.setting).where(
                tblconfiguration.c.setting == name)).first() is not None

    def setting_on(self, name: str, conn: Connection | None = None) -> bool:
        return self.setting(name, conn) == "on"

    def configure(self, **settings: str | bool | int) -> None:
        """Set tblconfiguration values: ``configure(ContinuousInvoiceGeneration=True,
        AutoSuspensionDays=3)``; booleans become 'on' / ''."""
        with self.transaction() as conn:
            for name, raw in settings.items():
                value = ("on" if raw else "") if isinstance(raw, bool) else str(raw)
                updated = conn.execute(tblconfiguration.update().where(
                    tblconfiguration.c.setting == name).values(value=value, updated_at=self.now))
                if updated.rowcount == 0:
                    conn.execute(tblconfiguration.insert().values(
                        setting=name, value=value, created_at=self.now, updated_at=self.now))

    # --- activity log ------------------------------------------------------------------

    def log_activity(self, conn: Connection, description: str, userid: int = 0,
                     user: str = "System") -> None:
        conn.execute(tblactivitylog.insert().values(
            date=self.now, description=description, user=user, userid=userid, ipaddr=""))

    def activity(self, userid: int | None = None) -> list[str]:
        """Activity log descriptions, oldest first (optionally for one client)."""
        query = sa.select(tblactivitylog.c.description).order_by(tblactivitylog.c.id)
        if userid is not None:
            query = query.where(tblactivitylog.c.userid == userid)
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    # --- hooks -------------------------------------------------------------------------

    def current_admin(self) -> str | None:
        """The admin behind the running request, as WHMCS's CurrentUser reports it: an admin
        area action (:meth:`as_admin`) or an API call (its credential's admin); None outside
        one (the cron, the client area)."""
        return getattr(self._acting, "admin", None)

    @contextmanager
    def as_admin(self, username: str | None) -> Iterator[None]:
        """Run what follows as ``username``'s request (staff in the admin area)."""
        before = self.current_admin()
        self._acting.admin = username
        try:
            yield
        finally:
            self._acting.admin = before

    def run_hook(self, hook: str, variables: Mapping[str, Any]) -> list[Any]:
        """Run WHMCS hook point ``hook``: hand ``variables`` to ``fire`` and return what the
        hook functions returned; the forwarder learns the admin behind the request from a
        top-level ``__admin__`` (as it learns a client's session from ``__session__``).
        Never call this inside :meth:`transaction`."""
        if self._quiet:
            return []
        payload = jsonable(variables)
        admin = self.current_admin()
        fired = FiredHook(hook, payload, admin=admin)
        self.fired.append(fired)  # before running it: hooks fired by its functions come after
        if self.fire is not None:
            fired.returns.extend(self.fire(hook, {**payload, "__admin__": admin}
                                           if admin else payload))
        return list(fired.returns)

    def run_hooks(self, pending: list[tuple[str, dict[str, Any]]]) -> None:
        for hook, variables in pending:
            self.run_hook(hook, variables)

    @contextmanager
    def quiet(self) -> Iterator[None]:
        """Seed without firing hooks: ``with sandbox.quiet(): sandbox.add_client(...)``."""
        self._quiet += 1
        try:
            yield
        finally:
            self._quiet -= 1

    def hooks(self, name: str | None = None) -> list[FiredHook]:
        """Hooks fired so far (optionally only ``name``), oldest first."""
        return [f for f in self.fired if name is None or f.hook == name]
