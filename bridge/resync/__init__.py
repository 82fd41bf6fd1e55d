"""Resync: reconcile a whole WHMCS from one bulk read (``vipgate resync``, PreCronJob,
DailyCronJob). Sources: ``source_db`` (WHMCS's database, read-only, streamed) and
``source_api`` (the API's bulk lists); ``runner`` plans and applies."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridge.resync.snapshot import ClientSnapshot, Source, Window

if TYPE_CHECKING:
    from bridge.engine.reconcile import Engine
    from bridge.settings import Settings

SOURCES = ("auto", "db", "api")


class SourceUnavailable(Exception):
    """The asked-for source is not configured."""


def source_kind(settings: Settings, source: str | None = None) -> str:
    """``db`` or ``api``: ``auto`` (``[resync] source``) is ``db`` when ``[whmcs]
    database_url`` is set."""
    kind = source or settings.resync.source
    if kind == "auto":
        kind = "db" if settings.whmcs.database_url else "api"
    return kind


def make_source(engine: Engine, source: str | None = None) -> Source:
    kind = source_kind(engine.settings, source)
    settings = engine.settings
    if kind == "db":
        if not settings.whmcs.database_url:
            raise SourceUnavailable("[whmcs] database_url is empty: the db source needs "
                                    "read-only access to WHMCS's database "
                                    "(mysql+pymysql://USER:PASSWORD@HOST:3306/whmcs)")
        from bridge.resync.source_db import WhmcsDbReader

        return WhmcsDbReader(settings.whmcs.database_url)
    from bridge.resync.source_api import WhmcsApiReader

    return WhmcsApiReader(engine.make_whmcs, concurrency=settings.resync.concurrency)


__all__ = [
    "SOURCES",
    "ClientSnapshot",
    "Source",
    "SourceUnavailable",
    "Window",
    "make_source",
    "source_kind",
]
