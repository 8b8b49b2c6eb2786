"""Caps on a table: how many records it holds, and how many bytes between them.

A count alone does not bound memory: one record may be a few hundred bytes or tens of
megabytes. Each record's size is kept in a table of sizes beside it (``<table>/sizes``), under
the same key and expiry, so that checking the caps reads two numbers (``count`` and
``total``, which the memory store keeps up as records come and go), never the records.

Two policies, chosen by the caller:

- :meth:`Budget.admit`: live work is never dropped. When one more record would pass either
  cap, the create is refused with the provider's error; room comes back as records expire
  (their retention, judged by the store on the clock).
- :meth:`Budget.evict`: the oldest records are dropped until the new ones fit; they are
  returned, so that the caller can drop what refers to them. Only what cannot fit even in
  an empty table is refused.

Save with :meth:`Budget.put` (or :meth:`Budget.put_if_absent`), in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, TypeVar

from simulator.kit.errors import ProviderError
from simulator.store import Store, Table

__all__ = ["Budget", "size_of", "sizes_of"]

R = TypeVar("R")
EVICT_PAGE = 100


@cache
def sizes_of(table: Table[Any]) -> Table[int]:
    """The table of sizes kept beside ``table``."""
    return Table(f"{table.name}/sizes", int)


def size_of(value: object) -> int:
    """A record's size in bytes, as its text: the same measure for every provider."""
    return len(repr(value).encode())


@dataclass(frozen=True, slots=True)
class Budget:
    """Hold at most ``max_records`` records of a table, and at most ``max_bytes`` between them."""

    max_records: int
    max_bytes: int

    def fits(self, count: int, total: int) -> bool:
        return count <= self.max_records and total <= self.max_bytes

    async def admit(
        self,
        store: Store,
        table: Table[Any],
        incoming: int,
        *,
        full: Callable[[], ProviderError],
        records: int = 1,
    ) -> None:
        """Raise ``full()`` unless ``records`` more records of ``incoming`` bytes fit."""
        count = await store.count(table) + records
        total = await store.total(sizes_of(table)) + incoming
        if not self.fits(count, total):
            raise full()

    async def evict(
        self,
        store: Store,
        table: Table[R],
        incoming: int,
        *,
        full: Callable[[], ProviderError],
        records: int = 1,
    ) -> list[tuple[str, R]]:
        """Drop the oldest records until ``records`` more of ``incoming`` bytes fit; what
        was dropped, oldest first. ``full()`` if they cannot fit in an empty table."""
        if not self.fits(records, incoming):
            raise full()
        sizes = sizes_of(table)
        count = await store.count(table) + records
        total = await store.total(sizes) + incoming
        dropped: list[tuple[str, R]] = []
        while not self.fits(count, total):
            page = await store.scan(sizes, limit=min(EVICT_PAGE, max(1, count - self.max_records)))
            if not page.items:
                break
            for key, size in page.items:
                await store.delete(sizes, key)
                value = await store.take(table, key)
                count -= value is not None
                total -= size
                if value is not None:
                    dropped.append((key, value))
                if self.fits(count, total):
                    break
        return dropped

    async def put(
        self,
        store: Store,
        table: Table[R],
        key: str,
        value: R,
        size: int,
        *,
        expires_at: datetime | None = None,
    ) -> None:
        """Store ``value`` and its size."""
        await store.put(table, key, value, expires_at=expires_at)
        await store.put(sizes_of(table), key, size, expires_at=expires_at)

    async def put_if_absent(
        self,
        store: Store,
        table: Table[R],
        key: str,
        value: R,
        size: int,
        *,
        expires_at: datetime | None = None,
    ) -> bool:
        """Store ``value`` and its size unless a live record holds ``key``; whether it was."""
        _, stored = await store.put_if_absent(table, key, value, expires_at=expires_at)
        if stored:
            await store.put(sizes_of(table), key, size, expires_at=expires_at)
        return stored
