"""marshmallow fields for WHMCS's quirks, and the list-container reader.

Numbers as strings, ``""`` or ``null`` for "nothing", ``0000-00-00`` dates, ``"on"``/``""``
flags, lists nested as ``{"invoices": {"invoice": [...]}}`` or given as ``""``. A value they
cannot read raises ``ValidationError`` with a message naming what was expected, never the value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from marshmallow import Schema, ValidationError, missing
from marshmallow import fields as mf

_INDEX = re.compile(r"[0-9]{1,9}")
_INT = re.compile(r"[+-]?[0-9]{1,18}")
_DECIMAL = re.compile(r"[+-]?[0-9]{1,15}(\.[0-9]{1,10})?")
_DATE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[ T]([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?)?")
_TRUE = {"on", "1", "true", "yes"}
_FALSE = {"off", "0", "false", "no", ""}


def rows(value: Any, item: str) -> list[Any]:
    """The items of a WHMCS list container, e.g. ``rows(data["invoices"], "invoice")``.

    Accepts ``{"invoice": [...]}``, a bare list, ``""``/``null``/``[]``/``{}`` for none, a single
    item given as an object, and PHP arrays that JSON-encoded as ``{"0": {...}, "1": {...}}``.
    """
    if value is None or value == "" or value is missing:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, Mapping):
        if not value:
            return []
        if item in value:
            inner = value[item]
            if isinstance(inner, Mapping) and inner and not _numbered(inner):
                return [inner]  # a single item, not wrapped in a list
            return rows(inner, item)
        if _numbered(value):
            return [value[k] for k in sorted(value, key=int)]
    raise ValidationError(f"expected a list of {item}")


def _numbered(value: Mapping[Any, Any]) -> bool:
    return bool(value) and all(isinstance(k, str) and _INDEX.fullmatch(k) for k in value)


class _Quirky(mf.Field):
    """Missing, ``null`` and ``""`` all mean "no value": the default, or an error if required."""

    def __init__(self, default: Any = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.empty = default

    def deserialize(self, value: Any, attr: str | None = None,
                    data: Mapping[str, Any] | None = None, **kw: Any) -> Any:
        if value is missing or value is None or (isinstance(value, str) and not value.strip()):
            if self.required:
                raise ValidationError("missing")
            return self.empty
        return self._deserialize(value, attr, data, **kw)


class Int(_Quirky):
    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> int:
        if isinstance(value, bool):
            raise ValidationError("expected a whole number")
        if isinstance(value, int) and abs(value) < 10**18:
            return value
        # adjusted() first: no arithmetic on 1E+999999999, which would overflow the context.
        if isinstance(value, Decimal) and value.is_finite() and value.adjusted() < 18 \
                and value == value.to_integral_value():
            return int(value)
        if isinstance(value, str) and _INT.fullmatch(value.strip()):
            return int(value.strip())
        raise ValidationError("expected a whole number")


class Money(_Quirky):
    def __init__(self, **kw: Any) -> None:
        super().__init__(default=Decimal("0.00"), **kw)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> Decimal:
        if isinstance(value, bool):
            raise ValidationError("expected an amount")
        text = str(value).strip() if isinstance(value, int | str | Decimal | float) else ""
        if not _DECIMAL.fullmatch(text):
            raise ValidationError("expected an amount")
        try:
            return Decimal(text)
        except InvalidOperation:  # pragma: no cover - the regex admits only valid numbers
            raise ValidationError("expected an amount") from None


def _moment(value: Any) -> datetime | None:
    """``YYYY-MM-DD[ HH:MM[:SS]]``; WHMCS's all-zero dates are None."""
    if not isinstance(value, str):
        raise ValidationError("expected a date")
    found = _DATE.fullmatch(value.strip())
    if not found:
        raise ValidationError("expected a date")
    year, month, day, hour, minute, second = (int(g or 0) for g in found.groups())
    if year == 0 or month == 0 or day == 0:
        return None
    try:
        return datetime(year, month, day, hour, minute, second)  # naive: WHMCS time
    except ValueError:
        raise ValidationError("expected a date") from None


class Date(_Quirky):
    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> date | None:
        moment = _moment(value)
        return None if moment is None else moment.date()


class DateTime(_Quirky):
    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> datetime | None:
        return _moment(value)


class Flag(_Quirky):
    def __init__(self, **kw: Any) -> None:
        super().__init__(default=False, **kw)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> bool:
        text = str(value).strip().lower() if isinstance(value, str | int) else None
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValidationError("expected on or empty")


class Text(_Quirky):
    def __init__(self, default: str | None = "", **kw: Any) -> None:
        super().__init__(default=default, **kw)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            raise ValidationError("expected text")
        return str(value)


class Rows(_Quirky):
    """A nested WHMCS list container, each item read with ``schema``."""

    def __init__(self, schema: type[Schema], item: str, **kw: Any) -> None:
        super().__init__(default=(), **kw)
        self.schema, self.item = schema, item

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> tuple[Any, ...]:
        found = rows(value, self.item)
        if not found:
            return ()
        schema = self.schema()
        return tuple(schema.load(row) for row in found)


def count(value: Any) -> int | None:
    """``totalresults``/``numreturned``: an int, or None when absent or unreadable."""
    try:
        number = Int().deserialize(value)
    except ValidationError:
        return None
    return number if isinstance(number, int) and number >= 0 else None


