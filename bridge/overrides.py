"""Settings saved from the admin page: validated like the file, versioned, live everywhere.

The ``[policy]`` and ``[tickets]`` keys can be changed on the page. A saved value overrides the
file and the environment; every change is recorded (who, when, old -> new) in
``setting_change``, whose highest id is the settings version. :class:`LiveSettings` gives each
process the settings in force: it compares the version at most every ``ttl`` seconds and
rebuilds when it moved, so a change takes effect in every gunicorn worker and every
``vipgate worker`` without a restart.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from marshmallow import ValidationError
from marshmallow import fields as mf

from bridge.i18n import why
from bridge.settings import (
    SECTIONS,
    ConfigError,
    Settings,
    _Bool,
    _Choice,
    _IdList,
    _Int,
    _Money,
    _Template,
    _unparse,
)
from bridge.store import Store
from bridge.store.overrides import Saved, SettingChange, SettingWrite

log = logging.getLogger("vipgate.settings")

EDITABLE_SECTIONS = ("policy", "tickets", "panels", "trust")
# What a block message template is tried with before it is accepted (see parse).
_SAMPLE_FILL = {"invoices": "#1042, #1057", "total": "R$ 189,80", "days": 12,
                "link": "https://whmcs.example.com/viewinvoice.php?id=1042"}


def editable_keys() -> list[tuple[str, str]]:
    """(section, key) of every setting the page can change, in the file's order."""
    return list(_editable())


@functools.cache
def _editable() -> tuple[tuple[str, str], ...]:
    return tuple((section, f.name) for section in EDITABLE_SECTIONS
                 for f in fields(SECTIONS[section].dataclass))


@functools.cache
def _field(section: str, key: str) -> mf.Field:
    return SECTIONS[section]().fields[key]


@dataclass(frozen=True)
class KeyInfo:
    """What kind of value a key takes, for a form to offer the right input."""

    kind: str  # int | money | bool | choice | ids | template | text
    choices: tuple[str, ...] = ()
    lo: int | None = None
    hi: int | None = None


def key_info(section: str, key: str) -> KeyInfo:
    field = _field(section, key)
    if isinstance(field, _Int):
        return KeyInfo("int", lo=field.lo, hi=field.hi)
    if isinstance(field, _Choice):
        return KeyInfo("choice", choices=field.choices)
    for kind, type_ in (("money", _Money), ("bool", _Bool), ("ids", _IdList),
                        ("template", _Template)):
        if isinstance(field, type_):
            return KeyInfo(kind)
    return KeyInfo("text")


def _canonical(section: str, key: str, value: Any) -> str:
    """The text the page stores and compares for a value (``Decimal("0")`` and ``0.00`` are
    the same amount: both become ``0.00``)."""
    text = _unparse(value)
    try:
        return _unparse(_field(section, key).deserialize(text))
    except ValidationError:
        return text


def text_of(settings: Settings, section: str, key: str) -> str:
    """A setting's value in the form the file and the page use (``on``, ``1,4``, ``89.90``)."""
    return _canonical(section, key, getattr(getattr(settings, section), key))


def parse(section: str, key: str, value: str) -> str:
    """``value`` checked like the file would be, in canonical text; ValueError says what is
    expected (the wording of the config error for that key; :func:`problem` gives it as a
    ``bridge.model.Reason``, for the reader's language)."""
    if (section, key) not in _editable():
        raise ValueError(why.gettext("[%(section)s] %(key)s cannot be changed from the admin "
                                     "page", section=section, key=key))
    field = _field(section, key)
    try:
        parsed = field.deserialize(value)
    except ValidationError as exc:
        messages = exc.messages
        raise ValueError(messages[0] if isinstance(messages, list) else str(messages)) from None
    if isinstance(field, _Template):  # a format spec like {total:d} would fail at the gate
        try:
            parsed.format(**_SAMPLE_FILL)
        except (ValueError, TypeError, IndexError, KeyError, AttributeError) as exc:
            raise ValueError(why.gettext("a placeholder cannot be filled (%(error)s); write "
                                         "each one plainly, like {total}",
                                         error=str(exc))) from None
    return _unparse(parsed)


def problem(exc: ValueError) -> str:
    """What :func:`parse` refused, as it said it: a ``bridge.model.Reason`` (its string is the
    English of a config error), or the text of another ValueError."""
    message = exc.args[0] if exc.args else None
    return message if isinstance(message, str) else str(exc)


def saved_values(store: Store) -> dict[tuple[str, str], str]:
    return store.setting_overrides()


def version(store: Store) -> int:
    return store.settings_version()


def effective(base: Settings, saved: Mapping[tuple[str, str], str]) -> Settings:
    """``base`` (file and environment) with the saved values over it. A key this version does
    not know, or a value it no longer accepts, is skipped (the file's value stays in force)."""
    sections: dict[str, dict[str, str]] = {}
    for (section, key), value in saved.items():
        if (section, key) not in _editable():
            continue
        try:
            sections.setdefault(section, {})[key] = parse(section, key, value)
        except ValueError as exc:
            log.error("settings: saved [%s] %s is not valid, the file's value stays in force: "
                      "%s", section, key, exc)
    return base.replace(**sections) if sections else base


def save(store: Store, base: Settings, wanted: Mapping[tuple[str, str], str], *, actor: str,
         now: datetime) -> tuple[list[SettingChange], dict[tuple[str, str], str]]:
    """Validate every value of ``wanted``; when all are good, store the ones that differ from
    what is in force, with their history, in one transaction. Returns (changes, errors);
    nothing is stored when there are errors. A value equal to the file's drops the override.
    Each value is checked alone: the settings have no rule across keys.
    """
    errors: dict[tuple[str, str], str] = {}
    parsed: dict[tuple[str, str], str] = {}
    for (section, key), value in wanted.items():
        try:
            parsed[(section, key)] = parse(section, key, value)
        except ValueError as exc:
            errors[(section, key)] = problem(exc)
    if errors:
        return [], errors

    def plan(saved: Saved) -> list[SettingWrite]:
        in_force = effective(base, saved)
        writes = []
        for (section, key), value in parsed.items():
            old = text_of(in_force, section, key)
            if value != old:
                writes.append(SettingWrite(section, key, old, value,
                                           override=value != text_of(base, section, key)))
        return writes

    return store.change_settings(plan, actor=actor, now=now), {}


def history(store: Store, *, limit: int = 50, offset: int = 0) -> list[SettingChange]:
    """Changes, newest first."""
    return store.setting_history(limit=limit, offset=offset)


def history_count(store: Store) -> int:
    return store.setting_history_count()


def changed_since(store: Store, seen_version: int) -> dict[tuple[str, str], str | None]:
    """Keys changed after ``seen_version``, each with the value it had at that version (the
    ``old`` of its first later change): what a form rendered then showed."""
    return store.settings_changed_since(seen_version)


class LiveSettings:
    """The settings in force for this process: the file's, with the page's saved values over
    them, reloaded when another process saved a change (checked at most every ``ttl`` s).
    Calling the object returns the current :class:`Settings`."""

    def __init__(self, base: Settings, store: Store, *, ttl: float = 2.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.base, self.store, self.ttl, self.monotonic = base, store, ttl, monotonic
        self._lock = threading.Lock()
        self._version = -1
        self._checked = float("-inf")
        self._settings = base

    def __call__(self) -> Settings:
        if self.monotonic() - self._checked >= self.ttl:
            self.reload()
        return self._settings

    def reload(self) -> Settings:
        """Compare the version now and rebuild when it moved."""
        with self._lock:
            try:
                current = version(self.store)
                if current != self._version:
                    self._settings = effective(self.base, saved_values(self.store))
                    self._version = current
            except sa.exc.SQLAlchemyError as exc:  # keep what is in force; try again later
                log.warning("settings: cannot read saved settings: %s",
                            str(getattr(exc, "orig", exc)).splitlines()[0])
            except ConfigError as exc:
                log.error("settings: saved settings are not valid, using the file's: %s", exc)
                self._settings = self.base
                self._version = current
            self._checked = self.monotonic()
            return self._settings
