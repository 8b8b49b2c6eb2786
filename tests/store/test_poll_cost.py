"""What a request costs on a shared store beyond its round trips: counted, not timed.

Each of these counts work done on the serving path of a poll (building values that are
thrown away, reading what nothing changed) and checks that what the store holds and what a
client reads back are what they were before that work was spared.
"""

from __future__ import annotations

import asyncio
import sys
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from types import FrameType
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from simulator import ManualClock, Settings, create_app
from simulator.clock import parse_iso
from simulator.journal import Recorded
from simulator.providers.passcreator.models import TEST_ACCOUNTS
from simulator.state import Shared, SimulatorState
from simulator.store import open_store
from simulator.store import redis as redis_module
from simulator.store.redis import RedisStore
from tests.conftest import START, store_url_maker
from tests.store.test_round_trips import POLLS

CONCURRENT = 64

SHARED = ["sqlite:///{tmp}/state.db", "redis"]
PROCESS = "/passcreator/api/v3/process/627d21f7-e1a0-4085-84cb-130906cd097c"
# A credential in a header, one in the query and one in a body (each masked when read back),
# and a header that is not ASCII.
SENT = {
    b"Authorization": TEST_ACCOUNTS[0].api_key.encode(),
    b"X-Trace": "caf\xe9".encode("latin-1"),
}


@contextmanager
def simulator(store: str) -> Iterator[TestClient]:
    app = create_app(Settings(seed=7, store=store), clock=ManualClock(START))
    with TestClient(app, base_url="http://testserver") as client:
        yield client
    assert not app.state.sim.crashes, list(app.state.sim.crashes)


def listed(client: TestClient) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = client.get("/_sim/journal").json()["entries"]
    for entry in found:
        assert isinstance(entry.pop("duration_ms"), float)  # timed by the process serving it
        entry.pop("seq")  # numbered by the ring, or by the process
    return found


def traffic(client: TestClient) -> None:
    assert client.get(PROCESS, headers=SENT).status_code == 200
    assert client.get(PROCESS + "?api_key=abcdefghijklmnop", headers=SENT).status_code == 200
    posted = client.post(
        "/passcreator/api/v3/pass",
        headers={**SENT, b"Content-Type": b"application/json"},
        content=b'{"password": "hunter2hunter2", "pass": "caf\xc3\xa9"}',
    )
    assert posted.status_code == 400


@pytest.mark.parametrize("kind", SHARED)
def test_publishing_an_entry_builds_no_recorded_value_and_reads_back_the_same(
    kind: str,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The entry goes to the ring encoded straight from what was recorded: no ``Recorded``
    is built for it on the serving path, and the journal a client reads back is the one a
    simulator on a store of its own shows for the same traffic."""
    with simulator("memory") as alone:
        traffic(alone)
        expected = listed(alone)
    built: list[Recorded] = []
    real = Recorded.of

    def counting(entry: Any) -> Recorded:
        built.append(real(entry))
        return built[-1]

    url = store_url_maker(kind, request, tmp_path_factory)()
    with simulator(url) as client:
        monkeypatch.setattr(Recorded, "of", staticmethod(counting))
        traffic(client)
        monkeypatch.undo()
        assert built == []
        assert listed(client) == expected
    with simulator(url) as other:  # another process on the store reads the same ring
        assert listed(other) == expected


class Lookups(weakref.WeakKeyDictionary[Any, Any]):
    """A weak mapping that counts its lookups."""

    count = 0

    def get(self, key: Any, default: Any = None) -> Any:
        Lookups.count += 1
        return super().get(key, default)

    def __getitem__(self, key: Any) -> Any:
        Lookups.count += 1
        return super().__getitem__(key)


def test_a_redis_poll_finds_its_connections_without_a_weak_lookup_per_call(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The event loop's clients, its kept connections and its line to Redis are found again
    from the last call's, not looked up in the per-loop weak mappings at each call (three
    lookups a call cost about as much as packing the command). The polls answer as before."""
    store = open_store(redis_url)
    assert isinstance(store, RedisStore)
    clients = store._root.clients
    for name in ("by_loop", "idle_by_loop", "lines_by_loop"):
        if hasattr(clients, name):
            monkeypatch.setattr(clients, name, Lookups(getattr(clients, name)))
    app = create_app(Settings(seed=7), clock=ManualClock(START), store=store)
    with TestClient(app) as client:
        first = client.get(PROCESS, headers=SENT)
        assert first.status_code == 200
        Lookups.count = 0
        for _ in range(3):
            again = client.get(PROCESS, headers=SENT)
            assert again.status_code == 200
            assert again.json() == first.json()
        assert Lookups.count == 0
        assert len(client.get("/_sim/journal").json()["entries"]) == 4


@pytest.mark.parametrize("kind", SHARED)
def test_a_poll_applies_the_shared_state_only_when_it_changed(
    kind: str,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Read before each request, the shared record (clock, options) is applied again only
    when the store holds another one: a poll that finds the one it applied last does no
    more (nor does one that reads it again because another process wrote to the store). A
    change another process makes is seen by the next request all the same."""
    applied: list[Shared] = []
    real = SimulatorState._apply

    def counting(self: SimulatorState, held: Shared) -> None:
        applied.append(held)
        real(self, held)

    monkeypatch.setattr(SimulatorState, "_apply", counting)
    url = store_url_maker(kind, request, tmp_path_factory)()
    with simulator(url) as client, simulator(url) as other:
        first = client.get(PROCESS, headers=SENT)
        assert first.status_code == 200
        assert client.get(PROCESS, headers=SENT).status_code == 200
        assert other.get(PROCESS, headers=SENT).status_code == 200
        applied.clear()
        for _ in range(3):
            # The other process's request is a write to the store (its journal entry): on
            # SQLite this process then reads the shared record again, and finds it unchanged.
            assert other.get(PROCESS, headers=SENT).status_code == 200
            assert client.get(PROCESS, headers=SENT).json() == first.json()
        assert applied == []
        before = client.get("/_sim/clock").json()["now"]
        assert other.post("/_sim/clock/advance", json={"seconds": 3600}).status_code == 200
        applied.clear()
        after = client.get("/_sim/clock").json()["now"]
        assert parse_iso(after) - parse_iso(before) == timedelta(hours=1)
        assert len(applied) == 1
        applied.clear()
        assert client.get(PROCESS, headers=SENT).status_code == 200
        assert applied == []


# The most times a poll enters the Redis store's Python code (each call of a function, each
# resumption of a coroutine) when 64 are answered at once: its calls' own, and their share
# of the exchanges that serve them all.
FRAMES = {"deepvue": 26, "passcreator": 18, "helloatlas": 21, "check": 36}


@pytest.mark.parametrize("provider", POLLS)
def test_concurrent_redis_polls_wait_for_their_replies_without_coroutines_of_the_store(
    redis_url: str, provider: str
) -> None:
    """A call made while an exchange is in flight is handed the future its reply goes to:
    no coroutine of the store's per call to create and resume (a wrapper turning a lost
    Redis into ``StoreUnavailable``, ``call`` around ``call_many`` around the future). The
    polls answer as one alone does."""
    store = open_store(redis_url)
    app = create_app(Settings(seed=7), clock=ManualClock(START), store=store)
    with TestClient(app) as client:
        path, headers = POLLS[provider](client)
        alone = client.get(path, headers=headers)
        assert alone.status_code == 200, alone.text
    entered = 0

    def profile(frame: FrameType, event: str, arg: object) -> None:
        nonlocal entered
        if event == "call" and frame.f_code.co_filename == redis_module.__file__:
            entered += 1

    async def polls() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            # A first round opens this loop's connections and reads each poll's records once.
            await asyncio.gather(*(c.get(path, headers=headers) for _ in range(CONCURRENT)))
            sys.setprofile(profile)
            try:
                return list(
                    await asyncio.gather(*(c.get(path, headers=headers) for _ in range(CONCURRENT)))
                )
            finally:
                sys.setprofile(None)

    answers = asyncio.run(polls())
    assert [a.status_code for a in answers] == [200] * CONCURRENT, answers[0].text
    if provider != "deepvue":  # each of its answers has a transaction id of its own
        assert all(a.json() == alone.json() for a in answers)
    assert entered / CONCURRENT <= FRAMES[provider], entered / CONCURRENT
