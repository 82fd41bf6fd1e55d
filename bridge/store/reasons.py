"""The engine's reasons as JSON: each ``bridge.model.Reason`` as its English text, message and
values (amounts with their currency, days, moments, groups, support departments, ticket
priorities, nested reasons), so that it can be shown in the reader's language; a plain string
(English text written before the reasons were kept as messages) is kept and read back as it
is."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from bridge.model import DepartmentRef, GroupRef, Money, Priority, Reason, ReasonValue


def _value(value: ReasonValue) -> Any:
    if isinstance(value, Reason):
        return {"reason": _reason(value)}
    if isinstance(value, tuple):
        return {"reasons": [_reason(r) for r in value]}
    if isinstance(value, Money):
        return {"money": str(value.amount), "prefix": value.prefix, "suffix": value.suffix}
    if isinstance(value, GroupRef):
        return {"group": value.id}
    if isinstance(value, DepartmentRef):
        return {"department": value.id}
    if isinstance(value, Priority):
        return {"priority": value.name}
    if isinstance(value, datetime):
        return {"moment": value.isoformat()}
    if isinstance(value, date):
        return {"day": value.isoformat()}
    if isinstance(value, (str, int)):
        return value
    raise TypeError(f"a reason's value cannot be stored: {value!r}")


def _reason(reason: str) -> Any:
    if not isinstance(reason, Reason):
        return str(reason)
    stored = {"text": str(reason), "msgid": reason.msgid,
              "values": {k: _value(v) for k, v in reason.values.items()}}
    if reason.plural is not None:
        stored["plural"] = reason.plural
    return stored


def _read_value(stored: Any) -> ReasonValue:
    if not isinstance(stored, dict):
        return stored
    if "reason" in stored:
        return _message(stored["reason"])
    if "reasons" in stored:
        return tuple(_message(r) for r in stored["reasons"])
    if "money" in stored:
        return Money(Decimal(stored["money"]), stored["prefix"], stored["suffix"])
    if "group" in stored:
        return GroupRef(int(stored["group"]))
    if "department" in stored:
        return DepartmentRef(int(stored["department"]))
    if "priority" in stored:
        return Priority(str(stored["priority"]))
    if "moment" in stored:
        return datetime.fromisoformat(stored["moment"])
    if "day" in stored:
        return date.fromisoformat(stored["day"])
    raise ValueError(f"a stored reason's value is not understood: {stored!r}")


def _read_reason(stored: Any) -> str:
    return _message(stored) if isinstance(stored, dict) else str(stored)


def _message(stored: dict[str, Any]) -> Reason:
    return Reason(stored["text"], stored["msgid"],
                  {k: _read_value(v) for k, v in stored["values"].items()},
                  stored.get("plural"))


def dump_reasons(reasons: Iterable[str]) -> str:
    """The JSON list kept in a text column."""
    return json.dumps([_reason(r) for r in reasons], ensure_ascii=False)


def load_reasons(text: str | None) -> tuple[str, ...]:
    """What :func:`dump_reasons` wrote (or a list of plain sentences; ``()`` for NULL)."""
    return tuple(_read_reason(r) for r in json.loads(text)) if text else ()
