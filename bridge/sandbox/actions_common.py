"""What the sandbox API actions share: the action registry, request parameters, and WHMCS's
response quirks (numbers as strings, ``""`` for an empty nested list, zero dates,
pre-formatted money)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bridge.sandbox.core import WhmcsError
from bridge.whmcs.schema import DATETIME_FORMAT, ZERO_DATE, ZERO_DATETIME, tblcurrencies

if TYPE_CHECKING:
    from bridge.sandbox.whmcs import Sandbox

Handler = Callable[["Sandbox", "Params"], dict[str, Any]]
ACTIONS: dict[str, tuple[str, Handler]] = {}  # lower-cased name → (WHMCS's spelling, handler)
DEFAULT_LIMIT = 25
TIE_MODULUS = 1_000_003  # a prime: ``id * k % p`` permutes ids below it


class StatusError(WhmcsError):
    """An error WHMCS 8 answers as ``{"status": "error", "message": ...}``, without the
    ``result`` key (GetInvoice for a missing id; whmcs-reference §6)."""


def action(name: str) -> Callable[[Handler], Handler]:
    """Register ``handler`` as API action ``name`` (matched case-insensitively)."""
    def register(handler: Handler) -> Handler:
        if name.lower() in ACTIONS:
            raise ValueError(f"API action {name} registered twice")
        ACTIONS[name.lower()] = (name, handler)
        return handler
    return register


def registered_actions() -> list[str]:
    """Every action the sandbox API answers, in WHMCS's spelling."""
    from bridge.sandbox import actions_billing, actions_clients, actions_tickets  # noqa: F401

    return sorted(name for name, _ in ACTIONS.values())


class Params:
    """The POSTed form fields (first value of each); WHMCS-style booleans."""

    def __init__(self, form: Mapping[str, Any]) -> None:
        self._form = form

    def get(self, name: str, default: str = "") -> str:
        value = self._form.get(name)
        return default if value is None else str(value)

    def has(self, name: str) -> bool:
        return self.get(name) != ""

    def int(self, name: str, default: int = 0) -> int:
        try:
            return int(self.get(name).strip())
        except ValueError:
            return default

    def flag(self, name: str) -> bool:
        return self.get(name).strip().lower() in ("1", "true", "on", "yes")

    def optional(self, name: str) -> str | None:
        return self.get(name) if self.has(name) else None

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._form.keys()))

    def public(self) -> dict[str, str]:
        """The fields minus credentials, for the API log."""
        hidden = {"identifier", "secret", "username", "password", "accesskey"}
        return {k: str(v) for k, v in self._form.items() if k not in hidden}


def s(value: Any) -> str:
    """A value as WHMCS's JSON shows it: a string."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, datetime):
        return value.strftime(DATETIME_FORMAT)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def d0(value: date | None) -> str:
    """A date column, '0000-00-00' when empty."""
    return value.isoformat() if value is not None else ZERO_DATE


def dt0(value: datetime | None) -> str:
    """A datetime column, '0000-00-00 00:00:00' when empty."""
    return value.strftime(DATETIME_FORMAT) if value is not None else ZERO_DATETIME


def checkbox(value: Any) -> str:
    """A tinyint flag as the API shows it: '1' or ''."""
    return "1" if value else ""


def nest(key: str, items: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]] | str:
    """``{"client": [...]}`` — or ``""`` when there is nothing, as WHMCS answers."""
    return {key: items} if items else ""


def page(conn: Connection, query: sa.Select[Any], params: Params,
         order_by: list[Any]) -> tuple[int, int, list[dict[str, Any]]]:
    """(totalresults, startnumber, rows) for limitstart / limitnum (default 25)."""
    total = conn.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar() or 0
    start = max(0, params.int("limitstart", 0))
    limit = params.int("limitnum", DEFAULT_LIMIT)
    limit = DEFAULT_LIMIT if limit <= 0 else limit
    rows = [dict(r) for r in conn.execute(query.order_by(*order_by).limit(limit).offset(start))
            .mappings()]
    return int(total), start, rows


def unstable_ties(sb: Sandbox, id_column: Any) -> Any:
    """An ORDER BY term that puts rows tied on the real order keys in a different order at
    each call, as MySQL does under LIMIT (whmcs-reference §6): the id scrambled by a
    multiplier drawn from the sandbox's seeded random source (deterministic for a seed,
    different from one call, so one page, to the next)."""
    return (id_column * sb.tie_random.randrange(1, TIE_MODULUS)) % TIE_MODULUS


def currency_row(conn: Connection, currency_id: int) -> dict[str, Any]:
    row = conn.execute(sa.select(tblcurrencies).where(tblcurrencies.c.id == currency_id)
                       ).mappings().first()
    if row is None:
        row = conn.execute(sa.select(tblcurrencies).order_by(
            tblcurrencies.c.default.desc(), tblcurrencies.c.id)).mappings().first()
    return dict(row) if row is not None else {"id": 1, "code": "USD", "prefix": "$",
                                              "suffix": " USD"}


def formatted(amount: Decimal, currency: Mapping[str, Any]) -> str:
    """Money as GetClientsDetails stats show it: '$2645.80 USD'."""
    return f"{currency['prefix']}{amount:.2f}{currency['suffix']}"
