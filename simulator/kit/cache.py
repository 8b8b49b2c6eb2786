"""A least-recently-used cache of rendered bytes, bounded by their total size.

For answers that can no longer change (a page of finished documents), so that reading one
again costs a lookup instead of generating it again. Entries are dropped oldest-first once
the byte budget is spent; an entry larger than the budget is never kept.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

__all__ = ["ByteCache"]


class ByteCache:
    """At most ``max_bytes`` of values, least recently used dropped first."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()

    def get(self, key: Hashable) -> bytes | None:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: Hashable, value: bytes) -> None:
        if len(value) > self.max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.size -= len(old)
        self._entries[key] = value
        self.size += len(value)
        while self.size > self.max_bytes:
            _, dropped = self._entries.popitem(last=False)
            self.size -= len(dropped)

    def __len__(self) -> int:
        return len(self._entries)
