"""A bulk update's query is bounded, and judging it lets the event loop serve meanwhile."""

from __future__ import annotations

import asyncio
from itertools import pairwise
from types import SimpleNamespace

import httpx
import pytest
from starlette.testclient import TestClient

from simulator import Settings, create_app
from simulator.providers.passcreator import routes
from tests.conftest import START
from tests.providers.passcreator.conftest import KEY, PASSES, TEMPLATE

PASS_COUNT = 2000
# simulator.providers.passcreator.query.MAX_TERMS, as documented.
MAX_TERMS = 1000


def heavy_query(terms: int) -> dict[str, object]:
    """Groups of one ``contains`` condition of 100 values that no pass holds: every value of
    every group is compared, for every pass."""
    groups = [
        [{"field": "country", "operator": "contains", "value": [f"zz{g}-{v}" for v in range(100)]}]
        for g in range(terms // 100)
    ]
    return {"groups": groups}


def test_a_query_over_the_cap_is_passcreators_invalid_query(passcreator: TestClient) -> None:
    over = heavy_query(MAX_TERMS + 100)
    body = {"filter": {"query": over}, "data": {"country": "x"}}
    response = passcreator.patch(PASSES, json=body, headers=KEY)
    assert response.status_code == 400
    assert response.json()["errors"] == [
        f"Invalid query: a query can compare at most {MAX_TERMS} values in all"
    ]
    at_cap = {"filter": {"query": heavy_query(MAX_TERMS)}, "data": {"country": "x"}}
    assert passcreator.patch(PASSES, json=at_cap, headers=KEY).status_code == 200


def test_the_worst_allowed_bulk_update_lets_the_loop_turn_while_it_judges_every_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The costliest query the cap allows, judged over every pass, lets the event loop serve
    other requests at least every ``SLICE_SECONDS``. Counted, not timed: on a clock that
    moves 1 ms each time the query reads it (once a pass), a coroutine beside the request
    notes the clock at each turn of the loop; no two turns are more than a slice apart (its
    five passes, and the readings that start a slice and a pass over the passes). How long
    a heavy request holds the loop in real time is the bench's to measure (``--only
    stalls``)."""
    reads = 0

    def perf_counter() -> float:
        nonlocal reads
        reads += 1
        return reads / 1000

    monkeypatch.setattr(routes, "time", SimpleNamespace(perf_counter=perf_counter))
    slice_reads = round(routes.SLICE_SECONDS * 1000)
    app = create_app(Settings(clock="manual", start=START))

    async def scenario() -> tuple[httpx.Response, list[int]]:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
            items = [{"templateId": TEMPLATE, "country": f"c{n}"} for n in range(PASS_COUNT)]
            made = await client.post(f"/passcreator{PASSES}", json={"data": items}, headers=KEY)
            assert made.is_success, made.text
            assert (await client.post("/_sim/clock/advance", json={"seconds": 86_400})).is_success
            heavy = {"filter": {"query": heavy_query(MAX_TERMS)}, "data": {"country": "x"}}
            update = asyncio.ensure_future(
                client.patch(f"/passcreator{PASSES}", json=heavy, headers=KEY)
            )
            turns: list[int] = []
            while not update.done():
                turns.append(reads)
                await asyncio.sleep(0)
            turns.append(reads)  # where it ended
            return await update, turns

    response, turns = asyncio.run(scenario())
    assert response.status_code == 200, response.text
    assert reads >= PASS_COUNT  # every pass was judged
    assert max(b - a for a, b in pairwise(turns)) <= slice_reads + 2
