"""Commands of concurrent callers go to Redis together: one write, one pipeline (no MULTI),
each caller handed its own replies (and its own error reply), on a real ``redis-server``.

Round trips are counted as ``tests/store/test_round_trips.py`` counts them: one per write
of commands on a connection.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.exceptions import ResponseError

from simulator import ManualClock, Settings, create_app
from simulator.store import Store, StoreUnavailable, Table, open_store
from simulator.store.redis import RedisStore
from tests.redis_server import MISSING, REDIS_SERVER, running_redis
from tests.store.test_round_trips import BUDGET, POLLS, Counter, counted
from tests.store.test_store import START, THINGS, Thing, thing

CONCURRENT = 64
# The records of THINGS read as numbers: adding to one that is not makes its script fail.
NUMBERS: Table[int] = Table(THINGS.name, int)


@pytest.mark.parametrize("provider", POLLS)
def test_concurrent_polls_share_their_round_trips(
    redis_url: str, provider: str, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """64 polls at once take far fewer round trips than 64 polls one after another (each
    within the poll's budget), and each is answered as a poll alone is."""
    from starlette.testclient import TestClient

    store = open_store(redis_url)
    app = create_app(Settings(seed=7), clock=clock, store=store)
    with TestClient(app) as client:
        path, headers = POLLS[provider](client)
        alone = client.get(path, headers=headers)
        assert alone.status_code == 200, alone.text
        alone_body = alone.json()

    async def polls(counter: Counter) -> list[httpx.Response]:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            # A first round opens this loop's connections and reads each poll's records once.
            await asyncio.gather(*(c.get(path, headers=headers) for _ in range(CONCURRENT)))
            counter.count = 0
            return list(
                await asyncio.gather(*(c.get(path, headers=headers) for _ in range(CONCURRENT)))
            )

    with counted(store, monkeypatch) as counter:
        answers = asyncio.run(polls(counter))
    assert [a.status_code for a in answers] == [200] * CONCURRENT, answers[0].text
    bodies = [a.json() for a in answers]
    if provider == "deepvue":  # each answer has a transaction id of its own
        ids = [body.pop("transaction_id") for body in [alone_body, *bodies]]
        assert len(set(ids)) == CONCURRENT + 1
    assert all(body == alone_body for body in bodies)
    # One after another they would take CONCURRENT times the budget, at least CONCURRENT times
    # the fewest round trips a poll makes (2).
    sequential = CONCURRENT * BUDGET["redis"][provider]
    assert 0 < counter.count <= sequential // 8, (counter.count, sequential)


def test_an_error_reply_fails_its_own_caller_alone(redis_url: str) -> None:
    """Calls made while a round trip is in flight share the next one; a script that fails in
    Redis (adding to a record that is not a number) raises its error reply to its caller
    alone, and every other caller of that round trip gets its own answer."""
    clock = ManualClock(START)
    root = RedisStore.from_url(redis_url)
    store: Store = root.scoped("test", now=clock.now)

    async def get(key: str) -> Thing | None:
        return await store.get(THINGS, key)

    async def take(key: str) -> Thing | None:
        return await store.take(THINGS, key)

    async def scenario() -> list[Any]:
        await store.put(THINGS, "thing", thing("thing"))
        for n in range(8):
            await store.put(THINGS, str(n), thing(str(n), n))
        # Each script once, so that Redis has them all (a first call loads its script).
        await store.take(THINGS, "absent")
        await store.add(NUMBERS, "number")
        await store.count(THINGS)
        counter.count = 0
        gets = [get(str(n)) for n in range(4)]
        fails = store.add(NUMBERS, "thing")  # {"name": ...} + 1: an error reply
        takes = [take(str(n)) for n in range(4, 8)]
        try:
            return list(
                await asyncio.gather(
                    *gets, fails, *takes, store.count(THINGS), return_exceptions=True
                )
            )
        finally:
            await root.aclose()

    with pytest.MonkeyPatch.context() as monkeypatch, counted(store, monkeypatch) as counter:
        results = asyncio.run(scenario())
    assert results[:4] == [thing(str(n), n) for n in range(4)]
    assert isinstance(results[4], ResponseError), results[4]
    assert results[5:9] == [thing(str(n), n) for n in range(4, 8)]
    assert results[9] == 6  # the other five, and the number
    assert counter.count == 2  # the first call at once, the nine made meanwhile together


def test_a_lost_redis_fails_every_caller_of_the_exchange_and_the_next_call_reconnects(
    tmp_path: Path,
) -> None:
    if REDIS_SERVER is None:
        pytest.skip(MISSING)
    clock = ManualClock(START)
    with running_redis(tmp_path) as server:
        root = RedisStore.from_url(server.url)
        store: Store = root.scoped("test", now=clock.now)

        async def get(key: str) -> Thing | None:
            return await store.get(THINGS, key)

        async def scenario() -> tuple[list[Any], Thing | None]:
            try:
                await store.put(THINGS, "kept", thing("kept"))
                server.stop()
                gets = [get("kept") for _ in range(8)]
                lost = await asyncio.gather(*gets, return_exceptions=True)
                server.start()  # empty again: it keeps nothing on disk
                await store.put(THINGS, "again", thing("again"))
                return list(lost), await get("again")
            finally:
                await root.aclose()

        lost, again = asyncio.run(scenario())
    assert [type(failed) for failed in lost] == [StoreUnavailable] * 8
    assert all(str(failed).startswith("redis: ") for failed in lost)
    assert again == thing("again")


def test_callers_cancelled_in_flight_or_waiting_leave_the_others_answered(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caller cancelled while its exchange is in flight closes that connection; one
    cancelled while it waits is left out of the next exchange; every other caller is
    answered, and later calls are served as before."""
    import redis.asyncio.connection as wire

    clock = ManualClock(START)
    root = RedisStore.from_url(redis_url)
    store: Store = root.scoped("test", now=clock.now)
    send = wire.AbstractConnection.send_packed_command
    started, gate = asyncio.Event(), asyncio.Event()

    async def sending(self: Any, command: Any, check_health: bool = True) -> None:
        if not gate.is_set():  # the first exchange waits here
            started.set()
            await gate.wait()
        await send(self, command, check_health)

    async def get(key: str) -> Thing | None:
        return await store.get(THINGS, key)

    async def scenario() -> tuple[list[Any], Thing | None]:
        try:
            for n in range(8):
                await store.put(THINGS, str(n), thing(str(n), n))
            monkeypatch.setattr(wire.AbstractConnection, "send_packed_command", sending)
            tasks = [asyncio.create_task(get(str(n))) for n in range(8)]
            await started.wait()  # the first call is in flight, the seven others wait
            tasks[0].cancel()
            tasks[3].cancel()
            gate.set()
            answered = asyncio.gather(*tasks, return_exceptions=True)
            results = await asyncio.wait_for(answered, 10)  # not forever, if it were wrong
            return list(results), await get("5")
        finally:
            await root.aclose()

    results, later = asyncio.run(scenario())
    assert isinstance(results[0], asyncio.CancelledError)
    assert isinstance(results[3], asyncio.CancelledError)
    assert [results[n] for n in (1, 2, 4, 5, 6, 7)] == [
        thing(str(n), n) for n in (1, 2, 4, 5, 6, 7)
    ]
    assert later == thing("5", 5)
