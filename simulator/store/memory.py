"""The in-memory backend: dicts in this process, values kept as they are (they are frozen).

Views made with :meth:`MemoryStore.scoped` share one set of dicts and one lock, so two apps
handed the same ``MemoryStore`` see the same records. A single call never awaits anything,
so on one event loop it is atomic by itself; the lock (reentrant) makes compound calls and
transactions atomic across threads too (two apps served from two threads).

Each table's rows keep, beside them, a heap of their expiry instants and the sum of their
integer values, both kept up as rows come and go: ``count`` and ``total`` pop only what has
expired since the last call, and never walk the rows, so a create that checks a cap first
costs the same with ten records stored or a hundred thousand.
"""

from __future__ import annotations

import heapq
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any, TypeVar

from simulator.clock import parse_iso
from simulator.store.base import Page, Snapshot, Store, Table

__all__ = ["MemoryStore"]

R = TypeVar("R")
# A record and the instant it expires at (None: never).
Entry = tuple[Any, datetime | None]


def _never() -> datetime:
    return datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class _Restored:
    """A value restored from a snapshot, decoded by its table's codec when first read."""

    data: Any


def _weight(value: Any) -> int:
    """What a value adds to its table's total: itself if it is an int, else nothing."""
    if type(value) is _Restored:
        value = value.data
    return value if type(value) is int else 0


_ABSENT: Any = object()


class _Rows(dict[str, Entry]):
    """A table's rows in insertion order, with a heap of ``(expires_at, key)`` and the sum of
    their integer values (:func:`_weight`), kept up by every change of the rows.

    The heap may hold stale pairs (a row deleted, or stored again with another expiry): one
    is skipped when it comes up, and the heap is rebuilt from the rows when stale pairs
    outnumber live ones, so it stays within twice the rows.
    """

    __slots__ = ("expiries", "total")

    def __init__(self) -> None:
        super().__init__()
        self.expiries: list[tuple[datetime, str]] = []
        self.total = 0

    def __setitem__(self, key: str, entry: Entry) -> None:
        old = dict.get(self, key)
        if old is not None:
            self.total -= _weight(old[0])
        dict.__setitem__(self, key, entry)
        self.total += _weight(entry[0])
        at = entry[1]
        if at is not None and (old is None or old[1] != at):
            heapq.heappush(self.expiries, (at, key))
            if len(self.expiries) > 2 * len(self) + 64:
                self.expiries = [(t, k) for k, (_, t) in self.items() if t is not None]
                heapq.heapify(self.expiries)

    def __delitem__(self, key: str) -> None:
        self.total -= _weight(dict.__getitem__(self, key)[0])
        dict.__delitem__(self, key)

    def pop(self, key: str, default: Any = _ABSENT) -> Any:
        if key in self:
            entry = dict.__getitem__(self, key)
            del self[key]
            return entry
        if default is _ABSENT:
            raise KeyError(key)
        return default

    def clear(self) -> None:
        dict.clear(self)
        self.expiries.clear()
        self.total = 0

    def sweep(self, now: datetime) -> None:
        """Delete the rows expired at ``now``: only those, popped off the heap."""
        heap = self.expiries
        while heap and heap[0][0] <= now:
            _, key = heapq.heappop(heap)
            entry = dict.get(self, key)
            if entry is not None and entry[1] is not None and entry[1] <= now:
                del self[key]


@dataclass
class _Data:
    tables: dict[str, _Rows] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    rings: dict[str, tuple[deque[tuple[int, Any]], list[int]]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    # The table (and so the codec) each full name was used with, for snapshots.
    kinds: dict[str, Table[Any]] = field(default_factory=dict)


def _decoded(table: Table[Any], value: Any) -> Any:
    return table.codec.load(value.data) if type(value) is _Restored else value


class MemoryStore:
    """A :class:`~simulator.store.Store` in this process's memory."""

    def __init__(
        self,
        prefix: str = "",
        *,
        now: Callable[[], datetime] = _never,
        _data: _Data | None = None,
    ) -> None:
        self._prefix = prefix
        self._now = now
        self._data = _data or _Data()
        self._lock = self._data.lock
        self._rows_of: dict[str, _Rows] = {}

    @property
    def prefix(self) -> str:
        return self._prefix

    def scoped(self, prefix: str, *, now: Callable[[], datetime] | None = None) -> MemoryStore:
        return MemoryStore(f"{self._prefix}{prefix}/", now=now or self._now, _data=self._data)

    def mark(self, table: Table[Any]) -> None:
        return None  # nothing to save: a read is a dict lookup

    async def read_ahead(self, table: Table[R], key: str, request: str) -> R | None:
        return await self.get(table, key)

    def read_behind(self) -> None:
        pass

    def _rows(self, table: Table[Any]) -> _Rows:
        try:
            return self._rows_of[table.name]
        except KeyError:
            name = self._prefix + table.name
            rows = self._data.tables.setdefault(name, _Rows())
            self._data.kinds.setdefault(name, table)
            self._rows_of[table.name] = rows
            return rows

    def _live(self, rows: _Rows, key: str, table: Table[Any]) -> Entry | None:
        entry = rows.get(key)
        if entry is not None and entry[1] is not None and entry[1] <= self._now():
            del rows[key]
            return None
        if entry is not None and type(entry[0]) is _Restored:
            entry = rows[key] = (_decoded(table, entry[0]), entry[1])
        return entry

    # -- tables ----------------------------------------------------------------------------

    async def get(self, table: Table[R], key: str) -> R | None:
        entry = self._rows(table).get(key)
        if entry is None:
            return None
        if entry[1] is not None and entry[1] <= self._now():
            with self._lock:
                self._live(self._rows(table), key, table)
            return None
        value: R = entry[0]
        if type(value) is _Restored:
            with self._lock:
                live = self._live(self._rows(table), key, table)
            return None if live is None else live[0]
        return value

    async def put(
        self, table: Table[R], key: str, value: R, *, expires_at: datetime | None = None
    ) -> None:
        rows = self._rows(table)
        with self._lock:  # the rows' heap and total change with them
            rows[key] = (value, expires_at)

    async def put_if_absent(
        self, table: Table[R], key: str, value: R, *, expires_at: datetime | None = None
    ) -> tuple[R, bool]:
        rows = self._rows(table)
        with self._lock:
            entry = self._live(rows, key, table)
            if entry is not None:
                held: R = entry[0]
                return held, False
            rows[key] = (value, expires_at)
            return value, True

    async def update(self, table: Table[R], key: str, change: Callable[[R], R]) -> R | None:
        rows = self._rows(table)
        with self._lock:
            entry = self._live(rows, key, table)
            if entry is None:
                return None
            value = change(entry[0])
            rows[key] = (value, entry[1])
            return value

    async def take(self, table: Table[R], key: str) -> R | None:
        rows = self._rows(table)
        with self._lock:
            entry = self._live(rows, key, table)
            if entry is None:
                return None
            del rows[key]
            value: R = entry[0]
            return value

    async def delete(self, table: Table[R], key: str) -> bool:
        rows = self._rows(table)
        with self._lock:
            return self._live(rows, key, table) is not None and rows.pop(key, None) is not None

    async def scan(self, table: Table[R], *, after: str | None = None, limit: int = 100) -> Page[R]:
        rows = self._rows(table)
        with self._lock:
            rows.sweep(self._now())
            keys = iter(rows)
            if after is not None:
                for key in keys:
                    if key == after:
                        break
            chosen = list(islice(keys, limit + 1))
            items = [
                (key, entry[0])
                for key in chosen[:limit]
                if (entry := self._live(rows, key, table)) is not None
            ]
            return Page(items, items[-1][0] if len(chosen) > limit and items else None)

    async def count(self, table: Table[R]) -> int:
        rows = self._rows(table)
        with self._lock:
            rows.sweep(self._now())
            return len(rows)

    async def total(self, table: Table[int]) -> int:
        rows = self._rows(table)
        with self._lock:
            rows.sweep(self._now())
            return rows.total

    async def add(
        self, table: Table[int], key: str, by: int = 1, *, expires_at: datetime | None = None
    ) -> int:
        rows = self._rows(table)
        with self._lock:
            entry = self._live(rows, key, table)
            if entry is None:  # a new window: the table's expired ones go first
                rows.sweep(self._now())
                rows[key] = (by, expires_at)
                return by
            old = entry[0]
            value: int = old + by
            if type(old) is int:
                # Its expiry stays and its weight in the total moves by ``by``: kept up here,
                # without the general bookkeeping of a row stored again.
                dict.__setitem__(rows, key, (value, entry[1]))
                rows.total += by
            else:
                rows[key] = (value, entry[1])
            return value

    # -- counters and rings ----------------------------------------------------------------

    async def incr(self, counter: str, by: int = 1) -> int:
        name = self._prefix + counter
        counters = self._data.counters
        with self._lock:
            value = counters[name] = counters.get(name, 0) + by
            return value

    async def push(self, ring: Table[R], value: R, *, size: int) -> int:
        name = self._prefix + ring.name
        with self._lock:
            self._data.kinds.setdefault(name, ring)
            values, last = self._data.rings.setdefault(name, (deque(), [0]))
            last[0] += 1
            values.append((last[0], value))
            while len(values) > max(1, size):
                values.popleft()
            return last[0]

    async def recent(self, ring: Table[R], *, after: int = 0) -> list[tuple[int, R]]:
        with self._lock:
            values, _ = self._data.rings.get(self._prefix + ring.name, (deque(), [0]))
            return [(number, _decoded(ring, value)) for number, value in values if number > after]

    # -- the whole view --------------------------------------------------------------------

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Store]:
        with self._lock:
            yield self

    async def clear(self) -> None:
        prefix = self._prefix
        with self._lock:
            for name, rows in self._data.tables.items():
                if name.startswith(prefix):
                    rows.clear()
            for mapping in (self._data.counters, self._data.rings):
                for name in [n for n in mapping if n.startswith(prefix)]:
                    del mapping[name]

    async def snapshot(self) -> Snapshot:
        prefix = self._prefix
        with self._lock:
            records = [
                [name[len(prefix) :], key, _dumped(self._data.kinds.get(name), value), _iso(at)]
                for name, rows in self._data.tables.items()
                if name.startswith(prefix)
                for key, (value, at) in rows.items()
                if at is None or at > self._now()
            ]
            counters = {
                n[len(prefix) :]: v for n, v in self._data.counters.items() if n.startswith(prefix)
            }
            rings = {
                name[len(prefix) :]: {
                    "last": last[0],
                    "values": [[n, _dumped(self._data.kinds.get(name), v)] for n, v in values],
                }
                for name, (values, last) in self._data.rings.items()
                if name.startswith(prefix)
            }
        return {"records": records, "counters": counters, "rings": rings}

    async def restore(self, data: Snapshot) -> None:
        prefix = self._prefix
        with self._lock:
            await self.clear()
            for table, key, value, at in data.get("records", []):
                rows = self._data.tables.setdefault(prefix + table, _Rows())
                rows[key] = (_Restored(value), None if at is None else parse_iso(at))
            for name, value in data.get("counters", {}).items():
                self._data.counters[prefix + name] = int(value)
            for name, ring in data.get("rings", {}).items():
                values = deque((int(n), _Restored(v)) for n, v in ring["values"])
                self._data.rings[prefix + name] = (values, [int(ring["last"])])


def _dumped(table: Table[Any] | None, value: Any) -> Any:
    if type(value) is _Restored:
        return value.data
    assert table is not None  # a value stored by a call names its table
    return table.codec.dump(value)


def _iso(instant: datetime | None) -> str | None:
    return None if instant is None else instant.isoformat()
