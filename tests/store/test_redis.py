"""The store contract on a real Redis, and what only a shared backend has to show.

The contract's cases are those of ``tests/store/test_store.py``, collected here a second time
with ``views`` built on a :class:`RedisStore` (the session's ``redis-server``, emptied for
each test).
"""

from __future__ import annotations

import asyncio

import pytest

from simulator.clock import ManualClock
from simulator.store.redis import RedisStore
from tests.store.test_store import (
    START,
    THINGS,
    Thing,
    Views,
    run,
    test_a_transaction_is_one_unit,
    test_counters_rings_and_namespaces,
    test_expiry_is_judged_on_the_clock,
    test_get_put_delete,
    test_put_if_absent_keeps_the_first,
    test_scan_pages_in_insertion_order,
    test_take_gives_a_record_once,
    test_update_is_atomic_and_a_raising_change_writes_nothing,
    thing,
)

__all__ = [
    "test_a_transaction_is_one_unit",
    "test_counters_rings_and_namespaces",
    "test_expiry_is_judged_on_the_clock",
    "test_get_put_delete",
    "test_put_if_absent_keeps_the_first",
    "test_scan_pages_in_insertion_order",
    "test_take_gives_a_record_once",
    "test_update_is_atomic_and_a_raising_change_writes_nothing",
]


@pytest.fixture
def views(redis_url: str) -> Views:
    clock = ManualClock(START)
    root = RedisStore.from_url(redis_url)
    return Views(clock, root.scoped("test", now=clock.now), root.scoped("other", now=clock.now))


def test_of_64_concurrent_takers_exactly_one_gets_the_record(views: Views) -> None:
    store = views.store

    async def take() -> Thing | None:
        return await store.take(THINGS, "file")

    async def scenario() -> list[Thing | None]:
        await store.put(THINGS, "file", thing("file"))
        return list(await asyncio.gather(*(take() for _ in range(64))))

    taken = run(scenario())
    assert taken.count(thing("file")) == 1
    assert taken.count(None) == 63
