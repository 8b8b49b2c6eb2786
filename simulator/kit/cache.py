"""A least-recently-used cache of rendered bytes, bounded by their total size.

For answers that can no longer change (a page of finished documents), so that reading one
again costs a lookup instead of generating it again. Entries are dropped oldest-first once
the byte budget is spent; an entry larger than the budget is never kept.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["ByteCache"]

N = TypeVar("N")


class ByteCache(Generic[N]):
    """At most ``max_bytes`` of values, least recently used dropped first; each value may
    carry a note (what the caller must know to use it, such as since when it holds)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._entries: OrderedDict[Hashable, tuple[bytes, N | None]] = OrderedDict()

    def get(self, key: Hashable) -> bytes | None:
        found = self.lookup(key)
        return None if found is None else found[0]

    def lookup(self, key: Hashable) -> tuple[bytes, N | None] | None:
        """The value under ``key`` and its note."""
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def put(self, key: Hashable, value: bytes, note: N | None = None) -> None:
        if len(value) > self.max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.size -= len(old[0])
        self._entries[key] = (value, note)
        self.size += len(value)
        while self.size > self.max_bytes:
            _, (dropped, _) = self._entries.popitem(last=False)
            self.size -= len(dropped)

    def __len__(self) -> int:
        return len(self._entries)
