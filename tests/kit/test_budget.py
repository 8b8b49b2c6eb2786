from __future__ import annotations

import asyncio

from simulator.kit.budget import Budget, sizes_of
from simulator.store import MemoryStore, Table

RECORDS = Table("records", str)


def kept(store: MemoryStore) -> list[str]:
    async def keys() -> list[str]:
        return [key for key, _ in (await store.scan(RECORDS)).items]

    return asyncio.run(keys())


def add(store: MemoryStore, budget: Budget, key: str, size: int) -> bool:
    async def insert() -> bool:
        async with store.transaction() as tx:
            await budget.make_room(tx, RECORDS, incoming=size)
            return await budget.put_if_absent(tx, RECORDS, key, key, size)

    return asyncio.run(insert())


def test_the_oldest_records_go_once_their_bytes_pass_the_budget() -> None:
    store = MemoryStore().scoped("p")
    budget = Budget(max_records=100, max_bytes=10)
    for key, size in (("a", 4), ("b", 4), ("c", 4), ("d", 1), ("e", 5)):
        add(store, budget, key, size)
        assert sum(size for _, size in asyncio.run(store.scan(sizes_of(RECORDS))).items) <= 10
    assert kept(store) == ["c", "d", "e"]


def test_the_count_cap_holds_beside_the_byte_budget() -> None:
    store = MemoryStore().scoped("p")
    budget = Budget(max_records=2, max_bytes=1000)
    for key in "abcd":
        add(store, budget, key, 1)
    assert kept(store) == ["c", "d"]
    assert [key for key, _ in asyncio.run(store.scan(sizes_of(RECORDS))).items] == ["c", "d"]


def test_a_record_larger_than_the_budget_is_kept_alone() -> None:
    store = MemoryStore().scoped("p")
    budget = Budget(max_records=10, max_bytes=10)
    add(store, budget, "a", 3)
    add(store, budget, "big", 50)
    assert kept(store) == ["big"]


def test_a_key_held_already_is_not_stored_again_nor_its_size() -> None:
    store = MemoryStore().scoped("p")
    budget = Budget(max_records=10, max_bytes=100)
    assert add(store, budget, "a", 3)
    assert not add(store, budget, "a", 90)

    async def size() -> int | None:
        return await store.get(sizes_of(RECORDS), "a")

    assert asyncio.run(size()) == 3
