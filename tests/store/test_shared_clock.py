"""The clock several processes on one store share, under concurrent requests: a change is
applied once, however the requests of each process interleave with their reads of it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from simulator import ManualClock, Settings, create_app
from simulator.clock import parse_iso
from simulator.providers.passcreator.models import TEST_ACCOUNTS
from tests.conftest import START, store_url_maker

PROCESS = "/passcreator/api/v3/process/627d21f7-e1a0-4085-84cb-130906cd097c"
HEADERS = {"Authorization": TEST_ACCOUNTS[0].api_key}
SHARED = ["sqlite:///{tmp}/state.db", "redis"]
ROUNDS = 4


@pytest.mark.parametrize("kind", SHARED)
def test_an_advance_is_applied_once_however_requests_interleave(
    kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Two processes on one store, 32 polls at once on each after each advance of a minute
    (made on each process in turn): every poll is answered on the clock as it was once
    the advance was answered, never one moved twice (or back), and both end on it."""
    url = store_url_maker(kind, request, tmp_path_factory)()
    apps = [create_app(Settings(seed=7, store=url), clock=ManualClock(START)) for _ in range(2)]

    async def scenario() -> tuple[list[set[timedelta]], list[str]]:
        clients = [
            httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://sim")
            for app in apps
        ]
        seen: list[set[timedelta]] = []
        try:
            for client in clients:
                assert (await client.get(PROCESS, headers=HEADERS)).status_code == 200
            for round_ in range(ROUNDS):
                advanced = await clients[round_ % 2].post(
                    "/_sim/clock/advance", json={"seconds": 60}
                )
                assert advanced.status_code == 200, advanced.text
                answers = await asyncio.gather(
                    *(c.get(PROCESS, headers=HEADERS) for c in clients for _ in range(32))
                )
                assert {a.status_code for a in answers} == {200}
                seen.append({parsedate_to_datetime(a.headers["date"]) - START for a in answers})
            return seen, [(await c.get("/_sim/clock")).json()["now"] for c in clients]
        finally:
            for client in clients:
                await client.aclose()

    seen, ends = asyncio.run(scenario())
    for round_, dates in enumerate(seen):
        assert dates == {timedelta(minutes=round_ + 1)}, dates
    assert [parse_iso(now) - START for now in ends] == [timedelta(minutes=ROUNDS)] * 2


@pytest.mark.parametrize("kind", SHARED)
def test_a_record_read_before_one_applied_is_not_applied_after_it(
    kind: str,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A poll whose read of the shared record comes back late (here: held back), after a
    later poll of the same process read and applied a newer record (an advance made by
    another process), does not apply the older one: the process stays on the advanced
    clock, and the late poll is answered all the same."""
    url = store_url_maker(kind, request, tmp_path_factory)()
    here, there = (create_app(Settings(seed=7, store=url), clock=ManualClock(START)) for _ in "ab")
    sim = here.state.sim
    view = sim._view
    read = view.read_ahead
    gate = asyncio.Event()
    held_back: list[object] = []

    async def late(table: Any, key: str, request: str) -> Any:
        value = await read(table, key, request)
        if not held_back:  # the first read alone
            held_back.append(value)
            await gate.wait()
        return value

    async def scenario() -> list[httpx.Response]:
        one = httpx.AsyncClient(transport=httpx.ASGITransport(here), base_url="http://a")
        two = httpx.AsyncClient(transport=httpx.ASGITransport(there), base_url="http://b")
        async with one, two:
            for client in (one, two):
                assert (await client.get(PROCESS, headers=HEADERS)).status_code == 200
            monkeypatch.setattr(view, "read_ahead", late)
            slow = asyncio.ensure_future(one.get(PROCESS, headers=HEADERS))
            while not held_back:
                await asyncio.sleep(0)  # until its read is made (and held back)
            advanced = await two.post("/_sim/clock/advance", json={"seconds": 3600})
            assert advanced.status_code == 200, advanced.text
            fresh = await one.get(PROCESS, headers=HEADERS)
            gate.set()
            return [fresh, await slow]

    fresh, slow = asyncio.run(scenario())
    assert fresh.status_code == slow.status_code == 200
    assert parsedate_to_datetime(fresh.headers["date"]) - START == timedelta(hours=1)
    assert sim.clock.now() - START >= timedelta(hours=1)
