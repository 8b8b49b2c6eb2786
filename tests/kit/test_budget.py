from __future__ import annotations

import asyncio

import pytest

from simulator.kit.budget import Budget, sizes_of
from simulator.kit.errors import ProviderError
from simulator.store import MemoryStore, Table

RECORDS = Table("records", str)


class Full(ProviderError):
    status_code = 429


def kept(store: MemoryStore) -> list[str]:
    async def keys() -> list[str]:
        return [key for key, _ in (await store.scan(RECORDS)).items]

    return asyncio.run(keys())


def add(store: MemoryStore, budget: Budget, key: str, size: int, *, evict: bool = True) -> bool:
    async def insert() -> bool:
        async with store.transaction() as tx:
            if evict:
                await budget.evict(tx, RECORDS, size, full=Full)
            else:
                await budget.admit(tx, RECORDS, size, full=Full)
            return await budget.put_if_absent(tx, RECORDS, key, key, size)

    return asyncio.run(insert())


def test_evict_drops_the_oldest_records_once_their_bytes_pass_the_budget() -> None:
    store = MemoryStore().scoped("p")
    budget = Budget(max_records=100, max_bytes=10)
    for key, size in (("a", 4), ("b", 4), ("c", 4), ("d", 1), ("e", 5)):
        add(store, budget, key, size)
        assert asyncio.run(store.total(sizes_of(RECORDS))) <= 10
    assert kept(store) == ["c", "d", "e"]


def test_evict_holds_the_count_cap_beside_the_byte_budget_and_says_what_went() -> None:
    store = MemoryStore().scoped("p")
    budget = Budget(max_records=2, max_bytes=1000)
    for key in "abc":
        add(store, budget, key, 1)
    assert kept(store) == ["b", "c"]
    dropped = asyncio.run(budget.evict(store, RECORDS, 1, full=Full, records=2))
    assert dropped == [("b", "b"), ("c", "c")]
    assert asyncio.run(store.count(sizes_of(RECORDS))) == 0


def test_a_record_larger_than_the_budget_is_refused_and_nothing_dropped() -> None:
    store = MemoryStore().scoped("p")
    budget = Budget(max_records=10, max_bytes=10)
    add(store, budget, "a", 3)
    with pytest.raises(Full):
        add(store, budget, "big", 50)
    assert kept(store) == ["a"]


def test_admit_refuses_at_either_cap_and_drops_nothing() -> None:
    store = MemoryStore().scoped("p")
    by_count, by_bytes = Budget(max_records=2, max_bytes=1000), Budget(max_records=9, max_bytes=5)
    add(store, by_count, "a", 1, evict=False)
    add(store, by_count, "b", 1, evict=False)
    with pytest.raises(Full):
        add(store, by_count, "c", 1, evict=False)
    with pytest.raises(Full):
        add(store, by_bytes, "c", 4, evict=False)
    assert kept(store) == ["a", "b"]


def test_a_key_held_already_is_not_stored_again_nor_its_size() -> None:
    store = MemoryStore().scoped("p")
    budget = Budget(max_records=10, max_bytes=100)
    assert add(store, budget, "a", 3)
    assert not add(store, budget, "a", 90)

    async def size() -> int | None:
        return await store.get(sizes_of(RECORDS), "a")

    assert asyncio.run(size()) == 3
