"""Batch records round-trip through their table's codec (JSON), as a shared backend keeps them."""

from __future__ import annotations

import asyncio
import json

import pytest
from starlette.testclient import TestClient

from simulator import ManualClock, MemoryStore, Settings, create_app
from simulator.providers.helloatlas.models import BATCHES, Batch
from tests.providers.helloatlas.conftest import BASE, auth, files, upload

SHAPES = {
    "counted ids, one URL pattern": files(*(f"scan_{n}.jpg" for n in range(1, 6))),
    "packed ids, one byte of traits each": [
        {"document_id": f"dé-{n}", "file_url": f"https://cdn.example.com/{name}"}
        for n, name in enumerate(["pan.jpg", "aadhaar_blurry.png", "x_fail.pdf", "slow_gst.jpg"])
    ],
}


@pytest.mark.parametrize("shape", SHAPES)
def test_an_uploaded_batch_round_trips_through_json(clock: ManualClock, shape: str) -> None:
    store = MemoryStore()
    with TestClient(create_app(Settings(seed=5), clock=clock, store=store), base_url=BASE) as c:
        batch_id = upload(c, auth(c), SHAPES[shape])
    view = store.scoped("helloatlas")

    async def load() -> Batch | None:
        return await view.get(BATCHES, batch_id)

    batch = asyncio.run(load())
    assert isinstance(batch, Batch)
    text = json.dumps(BATCHES.codec.dump(batch))
    again = BATCHES.codec.load(json.loads(text))
    assert again == batch
    assert [again.documents.document_id(i) for i in range(again.count)] == [
        entry["document_id"] for entry in SHAPES[shape]
    ]
    assert [again.documents.traits(i) for i in range(again.count)] == [
        batch.documents.traits(i) for i in range(batch.count)
    ]
