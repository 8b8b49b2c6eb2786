"""Two app instances on one store: one set of files, batches and rate windows, one sequence
of ids; and every record Check stores round-trips through its table's codec as JSON."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from simulator import ManualClock, MemoryStore, Settings, Store, create_app
from simulator.providers.check.models import BATCHES, SEED_COPIES, WINDOWS, start
from simulator.store import Table
from tests.providers.check.conftest import BASE, auth, create, created, error, file_id, fixture
from tests.providers.check.test_batches import SEED_RUNNING, items, results


@contextmanager
def clients(clock: ManualClock, *stores: Store, seed: int = 7) -> Iterator[list[TestClient]]:
    with ExitStack() as stack:
        apps = [create_app(Settings(seed=seed), clock=clock, store=store) for store in stores]
        yield [stack.enter_context(TestClient(app, base_url=BASE)) for app in apps]


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def pair(clock: ManualClock, store: MemoryStore) -> Iterator[list[TestClient]]:
    """Two apps with the same seed on one store."""
    with clients(clock, store, store) as both:
        yield both


def test_a_file_uploaded_to_one_app_is_used_once_through_the_other(
    pair: list[TestClient],
) -> None:
    one, two = pair
    fid = file_id(one, fixture("claims.csv"))
    batch = created(two, {"fileId": fid})
    assert batch["totalItems"] == 87
    assert error(create(one, {"fileId": fid}), 409)["error"]["code"] == "conflict"


def test_a_batch_made_on_one_app_is_seen_and_cancelled_through_the_other(
    pair: list[TestClient],
) -> None:
    one, two = pair
    batch = created(one, {"items": items("a", "b")})["id"]
    assert results(two, batch)["batch"]["totalItems"] == 2
    listed = [b["id"] for b in two.get("/v1/batch", headers=auth()).json()["data"]]
    assert listed[0] == batch
    assert two.post(f"/v1/batch/{batch}/cancel", headers=auth()).status_code == 200
    assert one.get(f"/v1/batch/{batch}", headers=auth()).json()["status"] == "cancelled"


def test_a_seeded_batch_cancelled_on_one_app_is_cancelled_on_the_other(
    pair: list[TestClient],
) -> None:
    one, two = pair
    assert one.post(f"/v1/batch/{SEED_RUNNING}/cancel", headers=auth()).status_code == 200
    assert two.get(f"/v1/batch/{SEED_RUNNING}", headers=auth()).json()["status"] == "cancelled"
    again = two.post(f"/v1/batch/{SEED_RUNNING}/cancel", headers=auth())
    assert error(again, 400)["error"]["code"] == "CANNOT_CANCEL"


def test_the_rate_window_is_counted_across_both_apps(pair: list[TestClient]) -> None:
    one, two = pair
    remaining = [
        client.get("/v1/batch", headers=auth("free")).headers["x-ratelimit-remaining"]
        for client in (one, two, one)
    ]
    assert remaining == ["19", "18", "17"]


def test_two_apps_on_one_store_hand_out_one_sequence_of_ids(pair: list[TestClient]) -> None:
    one, two = pair
    made = [created(client, {"items": items("a")})["id"] for client in (one, two, two, one)]
    assert len(set(made)) == 4
    files = [file_id(client, fixture("claims.csv")) for client in (one, two)]
    assert files[0] != files[1]


async def _race(store: Store, clock: ManualClock, creates: int) -> list[int]:
    apps = [create_app(Settings(seed=7), clock=clock, store=store) for _ in range(2)]
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=apps[0]), base_url=BASE) as one,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=apps[1]), base_url=BASE) as two,
    ):
        upload = await one.post(
            "/v1/batch/upload",
            headers=auth(),
            files={"file": ("claims.csv", fixture("claims.csv"), "text/csv")},
        )
        body = {"fileId": upload.json()["fileId"]}
        responses = await asyncio.gather(
            *(
                (one, two)[n % 2].post("/v1/batch", headers=auth(), json=body)
                for n in range(creates)
            )
        )
    return [response.status_code for response in responses]


def test_concurrent_creates_on_two_apps_with_one_file_make_exactly_one_batch(
    store: MemoryStore, clock: ManualClock
) -> None:
    statuses = asyncio.run(_race(store, clock, 50))
    assert Counter(statuses) == {202: 1, 409: 49}


def test_every_stored_record_round_trips_through_its_codec_as_json(
    pair: list[TestClient], store: MemoryStore
) -> None:
    one, two = pair
    fid = file_id(one, fixture("claims.csv"))
    file_id(one, fixture("claims.json"), name="c.json")
    created(one, {"fileId": fid, "methods": {"reasoning": 1, "tool": 0.5}})
    body = {"items": [{"content": "x", "context": {"n": [1, 2.5, {"k": None}]}}]}
    created(two, {**body, "options": {"minConfidence": 0.5, "retryOnLowConfidence": True}})
    two.post(f"/v1/batch/{SEED_RUNNING}/cancel", headers=auth())
    view = store.scoped("check")
    services = start(one.app.state.sim.runtimes["check"].context)  # type: ignore[attr-defined]
    tables: list[Table[Any]] = [
        BATCHES,
        SEED_COPIES,
        WINDOWS,
        services.files.refs,
        services.files.payloads,
    ]
    seen = 0
    for table in tables:
        page = asyncio.run(view.scan(table))
        assert page.items, table.name
        for _, record in page.items:
            data = json.loads(json.dumps(table.codec.dump(record)))
            assert table.codec.load(data) == record
            seen += 1
    assert seen == 7
