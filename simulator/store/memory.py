"""The in-memory backend: dicts in this process, values kept as they are (they are frozen).

Views made with :meth:`MemoryStore.scoped` share one set of dicts and one lock, so two apps
handed the same ``MemoryStore`` see the same records. A single call never awaits anything,
so on one event loop it is atomic by itself; the lock (reentrant) makes compound calls and
transactions atomic across threads too (two apps served from two threads).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any, TypeVar

from simulator.store.base import Page, Store, Table

__all__ = ["MemoryStore"]

R = TypeVar("R")
# A record and the instant it expires at (None: never).
Entry = tuple[Any, datetime | None]


def _never() -> datetime:
    return datetime.min.replace(tzinfo=UTC)


@dataclass
class _Data:
    tables: dict[str, dict[str, Entry]] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    rings: dict[str, tuple[deque[tuple[int, Any]], list[int]]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)


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
        self._rows_of: dict[str, dict[str, Entry]] = {}

    @property
    def prefix(self) -> str:
        return self._prefix

    def scoped(self, prefix: str, *, now: Callable[[], datetime] | None = None) -> MemoryStore:
        return MemoryStore(f"{self._prefix}{prefix}/", now=now or self._now, _data=self._data)

    def _rows(self, table: Table[Any]) -> dict[str, Entry]:
        try:
            return self._rows_of[table.name]
        except KeyError:
            rows = self._data.tables.setdefault(self._prefix + table.name, {})
            self._rows_of[table.name] = rows
            return rows

    def _live(self, rows: dict[str, Entry], key: str) -> Entry | None:
        entry = rows.get(key)
        if entry is not None and entry[1] is not None and entry[1] <= self._now():
            del rows[key]
            return None
        return entry

    # -- tables ----------------------------------------------------------------------------

    async def get(self, table: Table[R], key: str) -> R | None:
        entry = self._rows(table).get(key)
        if entry is None:
            return None
        if entry[1] is not None and entry[1] <= self._now():
            with self._lock:
                self._live(self._rows(table), key)
            return None
        value: R = entry[0]
        return value

    async def put(
        self, table: Table[R], key: str, value: R, *, expires_at: datetime | None = None
    ) -> None:
        self._rows(table)[key] = (value, expires_at)

    async def put_if_absent(
        self, table: Table[R], key: str, value: R, *, expires_at: datetime | None = None
    ) -> tuple[R, bool]:
        rows = self._rows(table)
        with self._lock:
            entry = self._live(rows, key)
            if entry is not None:
                held: R = entry[0]
                return held, False
            rows[key] = (value, expires_at)
            return value, True

    async def update(self, table: Table[R], key: str, change: Callable[[R], R]) -> R | None:
        rows = self._rows(table)
        with self._lock:
            entry = self._live(rows, key)
            if entry is None:
                return None
            value = change(entry[0])
            rows[key] = (value, entry[1])
            return value

    async def take(self, table: Table[R], key: str) -> R | None:
        rows = self._rows(table)
        with self._lock:
            entry = self._live(rows, key)
            if entry is None:
                return None
            del rows[key]
            value: R = entry[0]
            return value

    async def delete(self, table: Table[R], key: str) -> bool:
        rows = self._rows(table)
        with self._lock:
            return self._live(rows, key) is not None and rows.pop(key, None) is not None

    async def scan(self, table: Table[R], *, after: str | None = None, limit: int = 100) -> Page[R]:
        rows = self._rows(table)
        with self._lock:
            self._sweep(rows)
            keys = iter(list(rows))
            if after is not None:
                for key in keys:
                    if key == after:
                        break
            chosen = list(islice(keys, limit + 1))
            items = [(key, rows[key][0]) for key in chosen[:limit]]
            return Page(items, items[-1][0] if len(chosen) > limit else None)

    async def count(self, table: Table[R]) -> int:
        rows = self._rows(table)
        with self._lock:
            self._sweep(rows)
            return len(rows)

    def _sweep(self, rows: dict[str, Entry]) -> None:
        now = self._now()
        for key in [k for k, (_, at) in rows.items() if at is not None and at <= now]:
            del rows[key]

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
            values, last = self._data.rings.setdefault(name, (deque(), [0]))
            last[0] += 1
            values.append((last[0], value))
            while len(values) > max(1, size):
                values.popleft()
            return last[0]

    async def recent(self, ring: Table[R], *, after: int = 0) -> list[tuple[int, R]]:
        with self._lock:
            values, _ = self._data.rings.get(self._prefix + ring.name, (deque(), [0]))
            return [(number, value) for number, value in values if number > after]

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
