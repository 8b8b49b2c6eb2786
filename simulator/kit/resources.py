"""What a provider can tell of its live batches, processes and files, for the dashboard.

Each provider answers one hook, ``Provider.resources(ctx, services, limit)``: its newest
``limit`` resources (stored ones and the seeds it starts with), each a :class:`Resource`
whose status and progress are what a client's poll would be told at ``ctx.now()``, computed
by the provider's own rules. Links are paths under the provider's base URL: the calls a
client would make to read the resource or its results.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from simulator.kit.context import ProviderContext
from simulator.store import Store, Table

__all__ = ["Resource", "ResourcesHook", "newest", "timeline"]

R = TypeVar("R")

# Points kept of a resource's progress over simulated time: enough for a small line.
TIMELINE_POINTS = 24
# Records read per store call while looking for the newest ones.
SCAN_PAGE = 500


@dataclass(frozen=True, slots=True)
class Resource:
    """One batch, process or file, as its provider's poll would describe it now.

    ``current``/``total``: items done out of all (None: the provider does not count them);
    ``ready_at``: when the last item is done (None: not known ahead); ``expires_at``: when the
    provider forgets it (None: never, as the seeds); ``timeline``: (instant, items done) from
    creation to ``ready_at``, as the provider's rules schedule it.
    """

    provider: str
    kind: str  # "batch", "process" or "file"
    id: str
    status: str
    current: int | None = None
    total: int | None = None
    ready_at: datetime | None = None
    created_at: datetime | None = None
    expires_at: datetime | None = None
    links: Mapping[str, str] = field(default_factory=dict)
    finished: bool = False
    timeline: tuple[tuple[datetime, int], ...] = ()

    @property
    def percent(self) -> int | None:
        if self.current is None or not self.total:
            return None
        return min(100, round(100 * self.current / self.total))


ResourcesHook = Callable[[ProviderContext[Any], Any, int], Awaitable[list[Resource]]]
"""``(ctx, services, limit)``: the provider's newest ``limit`` resources, newest first."""


async def newest(store: Store, table: Table[R], limit: int) -> list[tuple[str, R]]:
    """The newest ``limit`` live records of ``table``, newest first.

    The store scans oldest first; this reads the table in pages and keeps only the last
    ``limit`` seen, so what is held stays bounded whatever the table's size.
    """
    if limit <= 0:
        return []
    kept: deque[tuple[str, R]] = deque(maxlen=limit)
    after = None
    while True:
        page = await store.scan(table, after=after, limit=max(limit, SCAN_PAGE))
        kept.extend(page.items)
        if page.next is None:
            return list(reversed(kept))
        after = page.next


def timeline(
    created_at: datetime, finishes: Iterable[datetime], points: int = TIMELINE_POINTS
) -> tuple[tuple[datetime, int], ...]:
    """(instant, items done) from ``created_at`` through each item's finish, at most
    ``points`` of them (evenly spaced among the items, always the last)."""
    ends = sorted(finishes)
    if not ends:
        return ()
    count = len(ends)
    step = max(1, -(-count // max(1, points - 1)))
    marks = list(range(step - 1, count, step))
    if marks[-1] != count - 1:
        marks.append(count - 1)
    return ((created_at, 0), *((ends[i], i + 1) for i in marks))
