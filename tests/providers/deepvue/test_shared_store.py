"""Two app instances on one store: one sequence of ids, one set of records, one token key.

This is what running several workers (or replicas) of one simulator needs; it is tested here
with two apps built in one process and the same seed, on each backend: handed the same
``MemoryStore``, or each opening the same SQLite file on its own (as two processes do).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from starlette.testclient import TestClient

from simulator import ManualClock, MemoryStore, Store, open_store
from tests.providers.deepvue.conftest import BASE, advance, auth
from tests.providers.deepvue.test_batches import STATUS, status, submit
from tests.providers.shared_store import clients

CSV = b"vpa\nrahul@okaxis\n"


def one_store_twice(url: str) -> tuple[Store, Store]:
    """The store ``url`` names, as two apps get it: a memory one handed to both; a shared one
    opened by each on its own."""
    first = open_store(url)
    return (first, first) if isinstance(first, MemoryStore) else (first, open_store(url))


@pytest.fixture
def pair(clock: ManualClock, store_url: str) -> Iterator[list[TestClient]]:
    """Two apps with the same seed on one store."""
    with clients(BASE, clock, *one_store_twice(store_url)) as both:
        yield both


@pytest.fixture
def strangers(clock: ManualClock, new_store_url: Callable[[], str]) -> Iterator[list[TestClient]]:
    """Two apps with the same seed, each on a store of its own."""
    with clients(BASE, clock, open_store(new_store_url()), open_store(new_store_url())) as both:
        yield both


def test_a_token_from_one_app_is_accepted_by_the_other(pair: list[TestClient]) -> None:
    one, two = pair
    headers = auth(one)
    assert status(two, headers, "06d0d7c340ed460d96103aaa0b26f0de")["status"] == 200


def test_a_token_from_an_app_on_another_store_is_refused(strangers: list[TestClient]) -> None:
    one, two = strangers
    response = two.get(STATUS, params={"request_id": "x"}, headers=auth(one))
    assert response.status_code == 401
    assert response.json() == {"detail": "Could not validate credentials"}


def test_a_batch_submitted_to_one_app_is_seen_by_the_other(pair: list[TestClient]) -> None:
    one, two = pair
    headers = auth(one)
    request_id = str(submit(one, headers, CSV)["request_id"])
    assert status(two, headers, request_id)["status"] == 201
    advance(two, 3600)
    done = status(two, headers, request_id)
    assert done["status"] == 200
    url = str(done["batch_output_file_url"])
    assert one.get(url).text == two.get(url).text


def test_two_apps_on_one_store_hand_out_one_sequence_of_ids(
    pair: list[TestClient], clock: ManualClock, new_store_url: Callable[[], str]
) -> None:
    one, two = pair
    headers = auth(one)
    shared = [str(submit(client, headers, CSV)["request_id"]) for client in (one, two, two, one)]
    assert len(set(shared)) == 4
    # The same seed alone hands out the same ids in the same order.
    with clients(BASE, clock, open_store(new_store_url())) as (alone,):
        headers = auth(alone)
        assert [str(submit(alone, headers, CSV)["request_id"]) for _ in range(4)] == shared
    # Two apps on stores of their own repeat each other's ids (as two workers did).
    with clients(BASE, clock, open_store(new_store_url()), open_store(new_store_url())) as (
        first,
        second,
    ):
        ids = [str(submit(c, auth(c), CSV)["request_id"]) for c in (first, second)]
        assert ids[0] == ids[1]
