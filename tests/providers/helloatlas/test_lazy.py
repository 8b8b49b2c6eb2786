"""A batch stores its documents' ids and URLs only; any page costs what the first does."""

from __future__ import annotations

import asyncio
import json

from starlette.applications import Starlette
from starlette.testclient import TestClient

from simulator.providers.helloatlas.models import BATCHES
from simulator.store import Store
from tests.providers.helloatlas.conftest import advance, auth, documents, extracts

MILLION = 1_000_000


def multiupload_body(entries: list[bytes] | None = None, count: int = 0) -> bytes:
    """A multiupload body built as bytes, without a million dicts in the test either."""
    if entries is None:
        entries = [
            b'{"file_url":"https://files.example.com/docs/scan-%d.jpg","document_id":"%d"}' % (n, n)
            for n in range(1, count + 1)
        ]
    return b'{"product_type":"POC_CDL","file_urls":[' + b",".join(entries) + b"]}"


def metadata_bytes(app: Starlette, batch_id: str) -> int:
    store: Store = app.state.sim.runtimes["helloatlas"].context.store

    async def held() -> int:
        batch = await store.get(BATCHES, batch_id)
        assert batch is not None
        return batch.documents.nbytes()

    return asyncio.run(held())


def test_million_document_batch_is_created_and_its_last_page_read(
    app: Starlette, helloatlas: TestClient
) -> None:
    headers = auth(helloatlas)
    response = helloatlas.post(
        "/v1/bulk/multiupload",
        content=multiupload_body(count=MILLION),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 201
    answer = response.content
    del response
    first = json.loads(answer[1 : answer.index(b"}") + 1])
    last = json.loads(answer[answer.rindex(b"{") : -1])
    assert answer.count(b'"batch_id"') == MILLION
    assert (first["document_id"], last["document_id"]) == ("1", str(MILLION))
    assert last["batch_id"] == first["batch_id"]
    batch_id = first["batch_id"]
    del answer

    advance(helloatlas, 30)
    page = extracts(helloatlas, headers, batch_id, page=MILLION // 50)
    assert [d["document_id"] for d in documents(page)] == [
        str(n) for n in range(MILLION - 49, MILLION + 1)
    ]
    assert all(isinstance(d["file_data"], dict) for d in documents(page))
    assert {k: v for k, v in page.items() if k != "data"} == {
        "page": 20_000,
        "per_page": 50,
        "total_pages": 20_000,
        "total_items": MILLION,
        "has_next": False,
        "has_prev": True,
    }
    assert [d["document_id"] for d in documents(extracts(helloatlas, headers, batch_id))] == [
        str(n) for n in range(1, 51)
    ]
    # Ids 1..N whose URLs differ only by the id are a range and a template: no per-document bytes.
    assert metadata_bytes(app, batch_id) < 100


def test_batch_with_irregular_ids_and_urls_keeps_ids_and_traits_and_pages_alike(
    app: Starlette, helloatlas: TestClient
) -> None:
    count = 20_000
    entries = [
        b'{"document_id":"doc-%d","file_url":"https://cdn.example.com/%d.pdf"}' % (n, 7 * n)
        for n in range(count)
    ]
    headers = auth(helloatlas)
    response = helloatlas.post(
        "/v1/bulk/multiupload",
        content=multiupload_body(entries),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 201
    batch_id = response.json()[0]["batch_id"]
    advance(helloatlas, 30)
    page = extracts(helloatlas, headers, batch_id, page=400)
    assert [d["document_id"] for d in documents(page)] == [
        f"doc-{n}" for n in range(count - 50, count)
    ]
    # The ids' own bytes and a 4-byte offset each; of each URL, one byte of traits.
    held = metadata_bytes(app, batch_id)
    ids = sum(len(f"doc-{n}") for n in range(count))
    assert held == ids + 4 * (count + 1) + count


def test_ids_that_stop_counting_switch_to_packed_without_losing_any(
    helloatlas: TestClient,
) -> None:
    ids = ["5", "6", "7", "x", "8", "9"]
    entries = [
        b'{"document_id":"%s","file_url":"https://cdn.example.com/%s.png"}'
        % (i.encode(), i.encode())
        for i in ids
    ]
    headers = auth(helloatlas)
    response = helloatlas.post(
        "/v1/bulk/multiupload",
        content=multiupload_body(entries),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 201
    page = extracts(helloatlas, headers, response.json()[0]["batch_id"])
    assert [d["document_id"] for d in documents(page)] == ids
