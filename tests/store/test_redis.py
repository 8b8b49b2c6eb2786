"""The store contract on a real Redis, and what only a shared backend has to show.

The contract's cases are those of ``tests/store/test_store.py``, collected here a second time
with ``views`` built on a :class:`RedisStore` (the session's ``redis-server``, emptied for
each test).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
import redis

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


def test_concurrent_updates_retry_and_lose_nothing(views: Views) -> None:
    store = views.store

    def grow(t: Thing) -> Thing:
        return Thing(t.name, t.size + 1, t.at, t.tags)

    async def update() -> Thing | None:
        return await store.update(THINGS, "k", grow)

    async def scenario() -> Thing | None:
        await store.put(THINGS, "k", thing("k", 0))
        await asyncio.gather(*(update() for _ in range(32)))
        return await store.get(THINGS, "k")

    assert run(scenario()) == thing("k", 32)


def test_expiry_uses_no_redis_ttl_and_expired_records_are_deleted(
    views: Views, redis_url: str
) -> None:
    clock, store = views.clock, views.store

    async def scenario() -> None:
        for n in range(3):
            await store.put(THINGS, str(n), thing(str(n)), expires_at=START + timedelta(days=n))
        with redis.Redis.from_url(redis_url) as raw:
            names = sorted(raw.keys("bulksim:test/things#r:*"))
            assert len(names) == 3
            # Redis's own expiry runs on the wall clock: records carry none.
            assert [raw.ttl(name) for name in names] == [-1, -1, -1]
            clock.advance(timedelta(days=1))
            assert await store.count(THINGS) == 1
            assert raw.keys("bulksim:test/things#r:*") == [b"bulksim:test/things#r:2"]
            assert raw.zcard("bulksim:test/things#o") == raw.zcard("bulksim:test/things#x") == 1

    run(scenario())


def test_replies_are_parsed_by_hiredis(redis_url: str) -> None:
    """The store's connections parse Redis's replies with hiredis (C), not redis-py's
    Python parser: on a poll's round trip that is about a quarter of its CPU."""
    from redis._parsers import _AsyncHiredisParser

    store = RedisStore.from_url(redis_url)

    async def parser() -> object:
        client = await store._root.clients.get()
        pool: Any = client.connection_pool
        connection = await pool.get_connection()
        try:
            return connection._parser
        finally:
            await pool.release(connection)
            await store.aclose()

    assert isinstance(run(parser()), _AsyncHiredisParser)


def test_a_redis_that_stops_answering_is_unavailable_after_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A store call gives up on a Redis that takes the connection and never answers, at its
    deadline (one for the whole exchange, as redis-py's own per-read timeouts are not used on
    the hot path), with StoreUnavailable: the provider answers its 503, nothing hangs."""
    import simulator.store.redis as backend
    from simulator.store import StoreUnavailable

    monkeypatch.setattr(backend, "SOCKET_TIMEOUT", 0.2)

    async def scenario() -> str:
        accepted: list[asyncio.StreamWriter] = []

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.append(writer)
            await reader.read()  # reads what it is sent, answers nothing

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        store = RedisStore(f"redis://127.0.0.1:{port}/0")

        async def read() -> None:
            await store.get(THINGS, "absent")

        try:
            with pytest.raises(StoreUnavailable) as raised:
                await asyncio.wait_for(read(), 10)  # not forever, if it were wrong
            return str(raised.value)
        finally:
            await store.aclose()
            for writer in accepted:
                writer.close()
                await writer.wait_closed()
            server.close()
            await server.wait_closed()

    assert run(scenario()).startswith("redis:")
