"""Two app instances on one store: one sequence of batch ids, one set of batches, one token key.

This is what running several workers (or replicas) of one simulator needs; it is tested here
with two apps built in one process, handed the same ``MemoryStore`` and the same seed. Each
app keeps its own cache of finished pages, which must never answer for a batch the store no
longer holds.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from simulator import ManualClock, MemoryStore
from tests.conftest import START
from tests.providers import shared_store
from tests.providers.helloatlas.conftest import (
    BASE,
    SEED_BATCH,
    advance,
    auth,
    extracts,
    files,
    upload,
)

EXTRACTS = "/v1/bulk/extracts"
ALL_DONE = 30  # max_processing_seconds


@pytest.fixture
def pair(clock: ManualClock) -> Iterator[list[TestClient]]:
    """Two apps with the same seed on one store."""
    with shared_store.pair(BASE, clock) as both:
        yield both


def page(client: TestClient, headers: dict[str, str], batch_id: str) -> bytes:
    response = client.get(EXTRACTS, params={"batch_id": batch_id}, headers=headers)
    assert response.status_code == 200, response.text
    return response.content


def test_a_token_from_one_app_is_accepted_by_the_other(pair: list[TestClient]) -> None:
    one, two = pair
    assert extracts(two, auth(one), SEED_BATCH)["total_items"] == 1


def test_a_token_from_an_app_on_another_store_is_refused(clock: ManualClock) -> None:
    with shared_store.clients(BASE, clock, MemoryStore(), MemoryStore()) as (one, two):
        response = two.get(EXTRACTS, params={"batch_id": SEED_BATCH}, headers=auth(one))
    assert response.status_code == 401
    assert response.json() == {
        "error_code": "401",
        "error_message": "Authentication Error: Invalid Token",
    }


def test_a_batch_uploaded_to_one_app_is_read_on_the_other(pair: list[TestClient]) -> None:
    one, two = pair
    headers = auth(one)
    batch_id = upload(one, headers, files("aadhaar.jpg", "pan.jpg", "gst_fail.pdf"))
    advance(two, ALL_DONE)
    assert page(two, headers, batch_id) == page(one, headers, batch_id)
    assert extracts(two, headers, batch_id)["total_items"] == 3


def test_two_apps_on_one_store_hand_out_one_sequence_of_batch_ids(
    pair: list[TestClient], clock: ManualClock
) -> None:
    one, two = pair
    headers = auth(one)
    shared = [upload(client, headers, files("a.jpg")) for client in (one, two, two, one)]
    assert len(set(shared)) == 4
    # The same seed alone hands out the same ids in the same order.
    with shared_store.clients(BASE, clock, MemoryStore()) as (alone,):
        headers = auth(alone)
        assert [upload(alone, headers, files("a.jpg")) for _ in range(4)] == shared


def test_a_cached_page_never_answers_for_another_batch_under_the_same_id(
    pair: list[TestClient],
) -> None:
    one, two = pair
    first = upload(one, auth(one), files("aadhaar_1.jpg", "aadhaar_2.jpg"))
    advance(one, ALL_DONE)
    before = page(one, auth(one), first)  # finished: now in one's cache of pages
    # The other app resets the store and, at the same instant, gets the same batch id for
    # other files.
    assert two.post("http://testserver/_sim/reset?provider=helloatlas").status_code == 200
    set_clock = two.post("http://testserver/_sim/clock/set", json={"now": START.isoformat()})
    assert set_clock.status_code == 200
    second = upload(two, auth(two), files("pan_1.jpg", "passport_2.jpg"))
    assert second == first
    advance(two, ALL_DONE)
    after = page(one, auth(one), second)
    assert after != before
    assert after == page(two, auth(two), second)
    assert b"PASSPORT" in after
