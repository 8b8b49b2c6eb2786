"""A fileId is consumed atomically: of many concurrent creates, exactly one makes a batch."""

from __future__ import annotations

import asyncio
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.providers.check.conftest import BASE, auth, fixture

CREATES = 50


async def _race(app: Starlette) -> tuple[list[httpx.Response], httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        upload = await client.post(
            "/v1/batch/upload",
            headers=auth("enterprise"),
            files={"file": ("claims.csv", fixture("claims.csv"), "text/csv")},
        )
        assert upload.status_code == 200, upload.text
        body = {"fileId": upload.json()["fileId"], "methods": {"reasoning": 1}}
        responses = await asyncio.gather(
            *(
                client.post("/v1/batch", headers=auth("enterprise"), json=body)
                for _ in range(CREATES)
            )
        )
        listing = await client.get("/v1/batch", headers=auth("enterprise"))
    return list(responses), listing


def test_create_batch_concurrent_creates_with_one_file_make_exactly_one_batch(
    app: Starlette,
) -> None:
    responses, listing = asyncio.run(_race(app))
    assert Counter(r.status_code for r in responses) == {202: 1, 409: CREATES - 1}
    refusals = {r.text for r in responses if r.status_code == 409}
    assert len(refusals) == 1
    assert httpx.Response(409, content=refusals.pop()).json()["error"]["code"] == "conflict"
    winner = next(r.json() for r in responses if r.status_code == 202)
    batches = listing.json()["data"]
    assert [b["id"] for b in batches] == [winner["id"]]
    assert batches[0]["totalItems"] == 87


def test_create_batch_creates_from_threads_with_one_file_make_exactly_one_batch(
    app: Starlette,
) -> None:
    # Without entering the client, each request runs on its own event loop thread, as a
    # threaded server would run them: the store's lock is what keeps consumption atomic.
    client = TestClient(app, base_url=BASE)
    upload = client.post(
        "/v1/batch/upload",
        headers=auth("enterprise"),
        files={"file": ("claims.csv", fixture("claims.csv"), "text/csv")},
    )
    body = {"fileId": upload.json()["fileId"]}

    def create(_: int) -> int:
        return client.post("/v1/batch", headers=auth("enterprise"), json=body).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = Counter(pool.map(create, range(CREATES)))
    assert statuses == {202: 1, 409: CREATES - 1}
    listing = client.get("/v1/batch", headers=auth("enterprise")).json()
    assert listing["pagination"]["total"] == 1
    client.close()
