"""A cap on the bytes a table's records hold, beside the cap on their number.

For records whose size varies by orders of magnitude (one batch's metadata may be a few
hundred bytes or tens of megabytes), a count alone does not bound memory. Each record's size
is kept in a table of sizes beside it (``<table>/sizes``), under the same key and expiry, so
that making room reads small numbers, never the records themselves. Insert with
:meth:`Budget.put_if_absent`; before it, :meth:`Budget.make_room` drops the oldest records
until one more of ``incoming`` bytes fits. Run both in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, TypeVar

from simulator.store import Store, Table

__all__ = ["Budget", "sizes_of"]

R = TypeVar("R")
SCAN_PAGE = 1000


@cache
def sizes_of(table: Table[Any]) -> Table[int]:
    """The table of sizes kept beside ``table``."""
    return Table(f"{table.name}/sizes", int)


@dataclass(frozen=True, slots=True)
class Budget:
    """Hold at most ``max_records`` records of a table, and at most ``max_bytes`` between them.

    A record larger than ``max_bytes`` by itself is still stored (alone).
    """

    max_records: int
    max_bytes: int

    async def make_room(self, store: Store, table: Table[Any], incoming: int) -> None:
        """Drop the oldest records until one more, of ``incoming`` bytes, fits both caps."""
        sizes = sizes_of(table)
        held: list[tuple[str, int]] = []
        after: str | None = None
        while True:
            page = await store.scan(sizes, after=after, limit=SCAN_PAGE)
            held += page.items
            if page.next is None:
                break
            after = page.next
        count = len(held) + 1
        total = sum(size for _, size in held) + incoming
        for key, size in held:
            if count <= self.max_records and total <= self.max_bytes:
                break
            await store.delete(table, key)
            await store.delete(sizes, key)
            count -= 1
            total -= size

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
