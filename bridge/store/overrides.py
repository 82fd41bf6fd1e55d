"""Settings saved from the admin page (``setting_override``) and their history
(``setting_change``, whose highest id is the settings version). Which values are valid and
which are in force is ``bridge.overrides``'."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from bridge.store.database import Database, utc_naive
from bridge.store.tables import setting_change, setting_override

Saved = Mapping[tuple[str, str], str]  # (section, key) -> the saved value


@dataclass(frozen=True)
class SettingChange:
    id: int
    at: datetime
    actor: str
    section: str
    key: str
    # The values in force before and after, as text; the rows bridge.overrides has written
    # always hold both (a change back to the file's value shows that value).
    old: str | None
    new: str | None


@dataclass(frozen=True)
class SettingWrite:
    """One change to store: ``new`` replaces ``old`` in force; ``override`` False means
    ``new`` is the file's value, so the saved value is dropped rather than written."""

    section: str
    key: str
    old: str
    new: str
    override: bool


class OverrideStore(Database):
    def setting_overrides(self) -> dict[tuple[str, str], str]:
        with self.engine.connect() as conn:
            return _saved(conn)

    def settings_version(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(setting_change.c.id))).scalar() or 0)

    def change_settings(self, plan: Callable[[Saved], list[SettingWrite]], *, actor: str,
                        now: datetime) -> list[SettingChange]:
        """In one transaction: read the saved values, ask ``plan`` what to change given them,
        store those changes and their history. Returns the history rows written."""
        at = utc_naive(now)
        changes: list[SettingChange] = []
        with self.engine.begin() as conn:
            saved = _saved(conn)
            for change in plan(saved):
                section, key = change.section, change.key
                where = (setting_override.c.section == section) & (setting_override.c.key == key)
                if not change.override:
                    conn.execute(setting_override.delete().where(where))
                elif (section, key) in saved:
                    conn.execute(setting_override.update().where(where).values(
                        value=change.new, updated_at=at, updated_by=actor[:64]))
                else:
                    conn.execute(setting_override.insert().values(
                        section=section, key=key, value=change.new, updated_at=at,
                        updated_by=actor[:64]))
                new_id = conn.execute(setting_change.insert().values(
                    at=at, actor=actor[:64], section=section, key=key, old=change.old,
                    new=change.new)).inserted_primary_key
                assert new_id is not None
                changes.append(SettingChange(int(new_id[0]), at, actor[:64], section, key,
                                             change.old, change.new))
        return changes

    def setting_history(self, *, limit: int = 50, offset: int = 0) -> list[SettingChange]:
        """Changes, newest first."""
        query = (setting_change.select().order_by(setting_change.c.id.desc())
                 .limit(limit).offset(offset))
        with self.engine.connect() as conn:
            return [SettingChange(r.id, r.at, r.actor, r.section, r.key, r.old, r.new)
                    for r in conn.execute(query)]

    def setting_history_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(setting_change))
                       .scalar() or 0)

    def settings_changed_since(self, seen_version: int) -> dict[tuple[str, str], str | None]:
        """Keys changed after ``seen_version``, each with the value it had at that version (the
        ``old`` of its first later change)."""
        query = (sa.select(setting_change.c.section, setting_change.c.key, setting_change.c.old)
                 .where(setting_change.c.id > seen_version).order_by(setting_change.c.id))
        found: dict[tuple[str, str], str | None] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                found.setdefault((row.section, row.key), row.old)
        return found


def _saved(conn: sa.Connection) -> dict[tuple[str, str], str]:
    rows = conn.execute(sa.select(setting_override.c.section, setting_override.c.key,
                                  setting_override.c.value)).all()
    return {(r.section, r.key): r.value for r in rows}
