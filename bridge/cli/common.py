"""What the ``vipgate`` commands share: the one-line :class:`Failure`, the settings of the
invocation and database failures in one line. The command modules import this one, never the
group (:mod:`bridge.cli.main`), so the package has no import cycle."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import IO, Any, TypeVar

import click
import sqlalchemy as sa

from bridge.settings import ConfigError, Settings, load_settings
from bridge.store import DatabaseNotReady

T = TypeVar("T")


class Failure(click.ClickException):
    """A one-line failure with its exit code."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        # click annotates exit_code as a ClassVar, but reads it from the instance (and so
        # does main()): a per-instance code is what its runtime supports.
        self.exit_code = exit_code  # type: ignore[misc]


def settings_of(ctx: click.Context) -> Settings:
    """The settings this invocation names (``--config``); a bad file is a usage failure."""
    try:
        return load_settings(ctx.obj.get("config"))
    except ConfigError as exc:
        raise Failure(str(exc), 2) from None


def database_failure(exc: sa.exc.SQLAlchemyError, url: str | None, *,
                     what: str = "database", exit_code: int = 1) -> Failure:
    """One line naming the database (password hidden; ``url`` None when it is not known)
    and the driver's reason."""
    from bridge.checks import database_error

    return Failure(database_error(exc, url, what=what), exit_code)


def opening(settings: Settings, open_: Callable[[Settings], T], *, exit_code: int = 1,
            what: str = "database") -> T:
    """``open_(settings)``, with database problems turned into one-line failures (exit 2 for
    a schema not upgraded, ``exit_code`` for a database that does not answer)."""
    try:
        return open_(settings)
    except DatabaseNotReady as exc:
        raise Failure(str(exc), 2) from None
    except sa.exc.SQLAlchemyError as exc:
        raise database_failure(exc, settings.bridge.database_url, what=what,
                               exit_code=exit_code) from None


def log_to_stderr() -> None:
    """vipgate's info lines (one per change applied to WHMCS, with its reasons) on stderr,
    for the long-running commands; nothing changes when logging is configured already (a
    host such as gunicorn, or tests)."""
    import logging

    if logging.getLogger().handlers:
        return
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in ("vipgate", "bridge"):
        logging.getLogger(name).setLevel(logging.INFO)


class Progress:
    """A tqdm bar on a terminal; otherwise a line on stderr every 10% of the clients."""

    def __init__(self, total: int, tty: bool, err: IO[str], name: str = "resync") -> None:
        self.total, self.err, self.done, self.name = total, err, 0, name
        self.bar: Any = None
        self.started = time.monotonic()
        self.step = max(1, total // 10)
        if tty:
            from tqdm import tqdm

            tqdm.monitor_interval = 0  # no monitor thread: a scan may fork its processes
            self.bar = tqdm(total=total or None, unit="client", file=err, dynamic_ncols=True,
                            desc=name, smoothing=0.1, mininterval=0.2)

    def __call__(self, count: int) -> None:
        before, self.done = self.done, self.done + count
        if self.bar is not None:
            self.bar.update(count)
        elif before // self.step != self.done // self.step:
            rate = self.done / max(time.monotonic() - self.started, 1e-6)
            self.err.write(f"vipgate: {self.name} {self.done}/{self.total} clients read "
                           f"({rate:,.0f}/s)\n")
            self.err.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
