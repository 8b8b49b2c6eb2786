"""Apps handed stores for the two-apps-on-one-store tests of each provider."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from starlette.testclient import TestClient

from simulator import ManualClock, MemoryStore, Settings, Store, create_app


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
