"""A bulk update's query is bounded, and judging it never holds the served event loop."""

from __future__ import annotations

import httpx
from starlette.testclient import TestClient

from simulator import Settings, create_app
from simulator.server import running_in_thread
from tests.conftest import START
from tests.providers.passcreator.conftest import KEY, PASSES, TEMPLATE
from tests.providers.probing import held_loop_at_most, timed

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


def test_the_worst_allowed_bulk_update_never_holds_the_served_loop() -> None:
    """Health probes sent while the costliest query the cap allows runs over every pass wait
    no longer than a fraction of it (or a few plain updates): the loop keeps serving."""
    app = create_app(Settings(clock="manual", start=START))
    with running_in_thread(app) as origin, httpx.Client(base_url=origin, timeout=120) as client:
        items = [{"templateId": TEMPLATE, "country": f"c{n}"} for n in range(PASS_COUNT)]
        assert client.post(f"/passcreator{PASSES}", json={"data": items}, headers=KEY).is_success
        assert client.post("/_sim/clock/advance", json={"seconds": 86_400}).is_success
        plain_query = {"groups": [[{"field": "country", "operator": "equals", "value": "none"}]]}
        plain_body = {"filter": {"query": plain_query}, "data": {"country": "x"}}
        plain = min(
            timed(client, "PATCH", f"/passcreator{PASSES}", json=plain_body, headers=KEY)
            for _ in range(3)
        )
        heavy_body = {"filter": {"query": heavy_query(MAX_TERMS)}, "data": {"country": "x"}}
        heavy, probes = held_loop_at_most(
            client, plain, "PATCH", f"/passcreator{PASSES}", json=heavy_body, headers=KEY
        )
    # The heavy update is long next to a plain one: it is worth measuring against.
    assert heavy > 10 * plain
    assert max(probes) < max(10 * plain, heavy / 4), (max(probes), plain, heavy)
