"""What a source hands the resync: one client's WHMCS state at a time, in client id order."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from operator import itemgetter
from typing import Any, Protocol, runtime_checkable

from bridge.engine.plan import OpenTicket
from bridge.policy.state import ClientState, Invoice
from bridge.policy.vip import add_months
from bridge.settings import PolicySettings


@dataclass(frozen=True)
class Window:
    """The days the policy looks at: ``today`` (WHMCS time zone) and the look-back window."""

    today: date
    start: date  # add_months(today, -lookback_months): payments from here on count
    late_tolerance_days: int

    @classmethod
    def of(cls, today: date, policy: PolicySettings) -> Window:
        return cls(today, add_months(today, -policy.lookback_months),
                   policy.late_tolerance_days)


@dataclass(frozen=True)
class ClientSnapshot:
    """One client as WHMCS shows it now: its state and its active tickets (by id).

    ``language_known`` is False when the source cannot see the client's language (the API's
    bulk list has none); the standing cache then keeps the language it had."""

    client: ClientState
    tickets: tuple[OpenTicket, ...]
    language_known: bool = True


class Source(Protocol):
    """Where a resync reads WHMCS: ``WhmcsDbReader`` or ``WhmcsApiReader``."""

    name: str

    def count(self, client_ids: Sequence[int] | None = None) -> int: ...

    def scan(self, window: Window, client_ids: Iterable[int] | None = None
             ) -> Iterator[ClientSnapshot]: ...

    def invoices(self, invoice_ids: Sequence[int]) -> tuple[Invoice, ...]:
        """Some invoices as the policy reads them, whatever their status (the ones of an
        open episode a scan left out); an invoice WHMCS no longer has is left out."""
        ...

    def dispose(self) -> None: ...


@runtime_checkable
class SplitSource(Source, Protocol):
    """A source that can be split for scanning in several processes (``WhmcsDbReader``): each
    process opens its own from ``url`` and scans one range of client ids."""

    url: str

    def id_ranges(self, size: int) -> list[tuple[int, int]]: ...

    def scan(self, window: Window, client_ids: Iterable[int] | None = None, *,
             id_range: tuple[int, int] | None = None) -> Iterator[ClientSnapshot]: ...


def merge(primary: Iterable[Any], *others: Iterable[Any],
          key: Callable[[Any], int] = itemgetter(0)) -> Iterator[tuple[Any, ...]]:
    """Join streams sorted by client id: for each ``primary`` row, the rows of each of
    ``others`` with the same key (a list each). Rows of ``others`` whose client is not in
    ``primary`` (deleted clients) are skipped. Memory: one client's rows at a time."""
    cursors = [_Cursor(iter(rows), key) for rows in others]
    for row in primary:
        client_id = key(row)
        yield (row, *(cursor.take(client_id) for cursor in cursors))


class _Cursor:
    _END = object()

    def __init__(self, rows: Iterator[Any], key: Callable[[Any], int]) -> None:
        self.rows, self.key = rows, key
        self.head: Any = next(rows, self._END)

    def take(self, client_id: int) -> list[Any]:
        found = []
        while self.head is not self._END and self.key(self.head) <= client_id:
            if self.key(self.head) == client_id:
                found.append(self.head)
            self.head = next(self.rows, self._END)
        return found
