"""The migrations build exactly the tables ``bridge.store.tables`` declares: after upgrading a
fresh database, Alembic's autogenerate comparison finds nothing to change. On SQLite and on
MariaDB."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from bridge.store import Store
from bridge.store.tables import metadata


def _default_text(text: str) -> str:
    """A server default as text, without how the dialect writes it: SQLite reflects ``'0'`` and
    ``('')``, MariaDB ``0.00`` for a DECIMAL's ``0`` and ``0`` for ``false()``."""
    text = text.strip()
    while text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        text = text[1:-1]
    text = {"false": "0", "true": "1"}.get(text.lower(), text)
    try:
        return str(Decimal(text).normalize()) if text else text
    except InvalidOperation:
        return text


def _server_default_differs(_context: Any, _inspected_column: Any, _metadata_column: Any,
                            inspected: str | None, _metadata_default: Any,
                            rendered: str | None) -> bool:
    """Alembic's hook for server defaults: True when they differ in value. Alembic's own
    comparison reports every one of the spellings _default_text undoes."""
    if inspected is None or rendered is None:
        return (inspected is None) != (rendered is None)
    return _default_text(inspected) != _default_text(rendered)


@pytest.fixture
def migrated(database_url: str) -> Any:
    store = Store(database_url)
    store.upgrade()
    yield store
    store.dispose()


def test_the_migrations_build_the_declared_tables(migrated: Store) -> None:
    with migrated.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_the_server_defaults_are_the_declared_ones(migrated: Store) -> None:
    with migrated.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "compare_type": True, "compare_server_default": _server_default_differs})
        assert compare_metadata(context, metadata) == []


@pytest.mark.parametrize(("inspected", "rendered", "differs"), [
    ("'0'", "0", False), ("('')", "", False), ("''", "", False), ("0", "false", False),
    ("0.00", "0", False), ("'1'", "0", True), ("'x'", "", True), (None, "0", True),
    ("0", None, True), (None, None, False)])
def test_only_the_spelling_of_a_default_is_ignored(inspected: str | None, rendered: str | None,
                                                    differs: bool) -> None:
    assert _server_default_differs(None, None, None, inspected, None, rendered) is differs
