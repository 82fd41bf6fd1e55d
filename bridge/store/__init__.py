"""vipgate's own database: the only package that speaks SQL to vipgate's tables.

One module per aggregate, each holding its statements (``tables`` holds every table
definition, ``database`` the engines and the migrations). :class:`Store` is all of them on one
database: its methods are the store's interface. The inbox's queue operations and the daily
snapshots are functions of their modules (:mod:`bridge.store.inbox`,
:mod:`bridge.store.snapshots`) that take the store.
"""

from __future__ import annotations

from bridge.store.accounts import AccountStore
from bridge.store.audit import AuditStore
from bridge.store.clients import ClientStore
from bridge.store.database import Database, DatabaseNotReady
from bridge.store.episodes import EpisodeStore
from bridge.store.inbox import InboxStore
from bridge.store.meta import MetaStore
from bridge.store.overrides import OverrideStore
from bridge.store.past_episodes import PastEpisodeStore
from bridge.store.promises import PromiseStore
from bridge.store.recovery import RecoveryStore
from bridge.store.standing import StandingStore
from bridge.store.trust import TrustStore

__all__ = ["DatabaseNotReady", "Store"]


class Store(InboxStore, MetaStore, StandingStore, ClientStore, PromiseStore, AuditStore,
            EpisodeStore, PastEpisodeStore, RecoveryStore, AccountStore, OverrideStore, TrustStore,
            Database):
    """vipgate's database at ``url``: the engines (:class:`Database`) and every aggregate's
    statements."""
