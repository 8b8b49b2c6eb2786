from __future__ import annotations

import asyncio
from datetime import timedelta

from simulator.clock import ManualClock
from simulator.kit.retention import Retention
from simulator.store import MemoryStore, Table
from tests.conftest import START

RECORDS = Table("records", int)


def test_records_expire_after_retention_and_the_oldest_make_room() -> None:
    clock = ManualClock(START)
    store = MemoryStore().scoped("p", now=clock.now)
    retention = Retention(timedelta(days=1), max_records=3)

    async def scenario() -> list[str]:
        for n in range(5):
            await retention.make_room(store, RECORDS)
            await store.put(RECORDS, str(n), n, expires_at=retention.expires_at(clock.now()))
        kept = [key for key, _ in (await store.scan(RECORDS)).items]
        clock.advance(timedelta(days=1))
        assert await store.count(RECORDS) == 0
        return kept

    assert asyncio.run(scenario()) == ["2", "3", "4"]
