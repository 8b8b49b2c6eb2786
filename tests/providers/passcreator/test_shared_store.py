"""Two app instances on one store: one sequence of ids, one set of passes and processes.

Also: every Passcreator record survives the trip through its table's codec and JSON, as it
will in a backend that keeps records outside the process.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

import pytest
from starlette.testclient import TestClient

from simulator import ManualClock, MemoryStore
from tests.providers.passcreator.conftest import (
    BASE,
    DAVID,
    KEY,
    PASSES,
    TEMPLATE,
    advance,
    bulk_create,
    bulk_update,
    by_user_id,
    listed,
    process,
    where,
)
from tests.providers.shared_store import JsonStore, clients

R = TypeVar("R")


@pytest.fixture
def pair(clock: ManualClock) -> Iterator[list[TestClient]]:
    """Two apps with the same seed on one store."""
    store = MemoryStore()
    with clients(BASE, clock, store, store) as both:
        yield both


def items(*user_ids: str) -> list[object]:
    return [{"templateId": TEMPLATE, "userProvidedId": u, "batch": "shared"} for u in user_ids]


def test_a_bulk_submitted_to_one_app_is_polled_and_listed_on_the_other(
    pair: list[TestClient],
) -> None:
    one, two = pair
    identifier = bulk_create(one, items("a", "b", "c"))
    assert process(two, identifier)["status"] == "in progress"
    advance(two, 60)
    assert process(one, identifier)["status"] == "finished"
    shared = where("batch", "equals", "shared")
    assert [p["userProvidedId"] for p in listed(two, shared)] == ["a", "b", "c"]
    assert listed(one, shared) == listed(two, shared)


def test_a_bulk_update_through_one_app_changes_the_passes_the_other_made(
    pair: list[TestClient],
) -> None:
    one, two = pair
    bulk_create(one, items("a", "b"))
    advance(one, 60)
    updated = bulk_update(two, where("batch", "equals", "shared"), {"tier": "gold"})
    advance(one, 60)
    assert process(one, updated)["total"] == 2
    assert {p["tier"] for p in listed(one, where("batch", "equals", "shared"))} == {"gold"}


def test_a_seeded_pass_changed_through_one_app_reads_changed_on_the_other(
    pair: list[TestClient],
) -> None:
    one, two = pair
    response = one.patch(f"{PASSES}/{DAVID}", json={"data": {"firstname": "Dave"}}, headers=KEY)
    assert response.status_code == 200, response.text
    assert two.get(f"{PASSES}/{DAVID}", headers=KEY).json()["data"]["firstname"] == "Dave"
    assert by_user_id(two, "member-0001")[0]["firstname"] == "Dave"


def test_a_user_provided_id_taken_on_one_app_is_taken_on_the_other(
    pair: list[TestClient],
) -> None:
    one, two = pair
    bulk_create(one, items("only-once"))
    again = {"templateId": TEMPLATE, "userProvidedId": "only-once"}
    response = two.post(
        PASSES, json={"data": {**again, "enforceUniqueUserProvidedId": True}}, headers=KEY
    )
    assert response.status_code == 400
    assert response.json()["errors"] == ["userProvidedId only-once is already in use."]


def test_two_apps_on_one_store_hand_out_one_sequence_of_ids(
    pair: list[TestClient], clock: ManualClock
) -> None:
    one, two = pair
    shared = [bulk_create(client, items("x", "y")) for client in (one, two, two, one)]
    assert len(set(shared)) == 4
    advance(one, 60)
    passes = [p["identifier"] for p in listed(two, where("batch", "equals", "shared"))]
    assert len(set(passes)) == 8
    # The same seed alone hands out the same ids in the same order.
    with clients(BASE, clock, MemoryStore()) as (alone,):
        assert [bulk_create(alone, items("x", "y")) for _ in range(4)] == shared
        advance(alone, 60)
        assert [p["identifier"] for p in listed(alone, where("batch", "equals", "shared"))] == (
            passes
        )


# -- records through the codec ---------------------------------------------------------------


def a_day_of_passcreator(client: TestClient) -> list[str]:
    """Every kind of record Passcreator keeps, made and changed, and each answer's text."""
    answers: list[str] = []

    def call(method: str, url: str, body: object = None) -> str:
        response = client.request(method, url, json=body, headers=KEY)
        answers.append(response.text)
        data: Any = response.json()["data"]
        return str(data.get("identifier")) if isinstance(data, dict) else ""

    mixed = [
        {"templateId": TEMPLATE, "userProvidedId": "m-1", "age": 30, "score": 1.0, "vip": True},
        {"templateId": TEMPLATE, "barcodeValue": "fail:printed", "userProvidedId": "m-2"},
        {"templateId": TEMPLATE, "note": None, "ratio": 0.25},
        {"templateId": TEMPLATE, "userProvidedId": "locked:no", "voided": True},
    ]
    made = call("POST", PASSES, {"data": mixed})
    call("POST", PASSES, {"data": {"templateId": TEMPLATE, "userProvidedId": "one"}})
    advance(client, 5)
    call("GET", f"/api/v3/process/{made}")
    updated = call(
        "PATCH",
        PASSES,
        {"filter": {"query": {"templateId": TEMPLATE}}, "data": {"tier": "gold", "level": 2}},
    )
    call("PATCH", f"{PASSES}/{DAVID}", {"data": {"vip": False, "score": 2.0}})
    advance(client, 5)
    call("GET", f"/api/v3/process/{updated}")
    call("GET", PASSES)
    taken = {"templateId": TEMPLATE, "userProvidedId": "m-1", "enforceUniqueUserProvidedId": True}
    call("POST", PASSES, {"data": taken})
    return answers


def test_every_record_round_trips_through_its_codec_and_json(clock: ManualClock) -> None:
    start = clock.now()
    with clients(BASE, clock, MemoryStore()) as (plain,):
        expected = a_day_of_passcreator(plain)
    clock.set(start)
    with clients(BASE, clock, JsonStore()) as (stored,):
        assert a_day_of_passcreator(stored) == expected
    assert '"score":1.0' in expected[-2]
    assert '"vip":false' in expected[-2]
