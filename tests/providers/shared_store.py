"""Apps that share a store, for the providers' two-apps-on-one-store tests, and a store that
keeps every record as it comes back from JSON (what a backend outside the process does)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from typing import TypeVar

from starlette.testclient import TestClient

from simulator import ManualClock, MemoryStore, Settings, Store, create_app
from simulator.store import Table

R = TypeVar("R")


@contextmanager
def clients(
    base_url: str, clock: ManualClock, *stores: Store, seed: int = 7
) -> Iterator[list[TestClient]]:
    """One app per store (the same store may be given twice), all with ``seed`` and ``clock``."""
    with ExitStack() as stack:
        apps = [create_app(Settings(seed=seed), clock=clock, store=store) for store in stores]
        yield [stack.enter_context(TestClient(app, base_url=base_url)) for app in apps]


@contextmanager
def pair(base_url: str, clock: ManualClock, seed: int = 7) -> Iterator[list[TestClient]]:
    """Two apps with the same seed on one store."""
    store = MemoryStore()
    with clients(base_url, clock, store, store, seed=seed) as both:
        yield both


class JsonStore(MemoryStore):
    """A memory store that keeps each record as it would come back from JSON."""

    def scoped(self, prefix: str, *, now: Callable[[], datetime] | None = None) -> JsonStore:
        return JsonStore(f"{self.prefix}{prefix}/", now=now or self._now, _data=self._data)

    async def put(
        self, table: Table[R], key: str, value: R, *, expires_at: datetime | None = None
    ) -> None:
        await super().put(table, key, through_json(table, value), expires_at=expires_at)

    async def put_if_absent(
        self, table: Table[R], key: str, value: R, *, expires_at: datetime | None = None
    ) -> tuple[R, bool]:
        return await super().put_if_absent(
            table, key, through_json(table, value), expires_at=expires_at
        )

    async def update(self, table: Table[R], key: str, change: Callable[[R], R]) -> R | None:
        return await super().update(table, key, lambda old: through_json(table, change(old)))


def through_json(table: Table[R], value: R) -> R:
    text = json.dumps(table.codec.dump(value))
    back = table.codec.load(json.loads(text))
    # The text too, not only ==: 1 == 1.0 == True, but a property that came back another
    # type would read differently to a client.
    assert back == value, f"{table.name}: {value!r} came back {back!r}"
    assert json.dumps(table.codec.dump(back)) == text, f"{table.name}: {text} changed"
    return back
