"""Retention and a cap on records, kept by the store on the simulator's clock.

A record kept for a while after it finishes is stored with ``expires_at`` (from
:meth:`Retention.expires_at`): the store itself stops answering for it from then on. Before a
new record is added, :meth:`Retention.make_room` drops the oldest beyond the cap (for
records no client waits on; live work is capped by :meth:`~simulator.kit.budget.Budget.admit`,
which refuses instead). Seeded examples are not in the store (see ARCHITECTURE.md), so they
are never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from simulator.store import Store, Table

__all__ = ["Retention"]


@dataclass(frozen=True, slots=True)
class Retention:
    """Keep a record ``keep_for`` past its end; hold at most ``max_records`` of a table."""

    keep_for: timedelta
    max_records: int

    def expires_at(self, ended: datetime) -> datetime:
        return ended + self.keep_for

    async def make_room(self, store: Store, table: Table[Any]) -> None:
        """Drop the oldest records until one more fits under the cap."""
        excess = await store.count(table) - max(0, self.max_records - 1)
        if excess > 0:
            page = await store.scan(table, limit=excess)
            for key, _ in page.items:
                await store.delete(table, key)
