"""GET /v1/batch/{id} (read from the stored head) agrees with the batch's own items, on the
clock: its counts and status are what the results pages say of each item."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from simulator.kit.progress import Progress
from simulator.providers.check import models, routes
from tests.providers.check.conftest import Body, advance, auth, created, get_json

SIZE = 230  # three stored chunks
ITEMS = [{"content": f"Claim {i}: water boils at 100 C."} for i in range(SIZE)]


def item_results(client: TestClient, batch_id: str) -> list[Body]:
    shown: list[Body] = []
    while len(shown) < SIZE:
        page = get_json(client, f"/v1/batch/{batch_id}/results", limit=100, offset=len(shown))
        shown.extend(page["items"])
    return shown


def expected_summary(client: TestClient, batch_id: str) -> Body:
    items = item_results(client, batch_id)
    done = [item for item in items if item["status"] in ("completed", "failed")]
    failed = [item for item in done if item["status"] == "failed"]
    header = get_json(client, f"/v1/batch/{batch_id}/results", limit=1)["batch"]
    return {
        "status": header["status"],
        "totalItems": len(items),
        "processedItems": len(done),
        "successCount": len(done) - len(failed),
        "failureCount": len(failed),
        "totalCostCents": sum(item["costCents"] for item in done),
    }


@pytest.mark.parametrize("cancel_after", [None, 3.0])
def test_summary_counts_match_the_items_results(
    check: TestClient, cancel_after: float | None
) -> None:
    items = [
        {"content": f"{'[fail] ' if i % 7 == 3 else ''}Claim {i}: water boils at 100 C."}
        for i in range(SIZE)
    ]
    batch_id = created(check, {"items": items, "methods": {"reasoning": 1.0}})["id"]
    seen_failed = seen_partial = False
    elapsed = 0.0
    for step in [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 13.0, 30.0, 120.0, 600.0, 3600.0]:
        advance(check, step)
        elapsed += step
        if cancel_after is not None and elapsed >= cancel_after:
            response = check.post(f"/v1/batch/{batch_id}/cancel", headers=auth())
            assert response.status_code in (200, 400), response.text
        summary = get_json(check, f"/v1/batch/{batch_id}")
        expected = expected_summary(check, batch_id)
        assert {key: summary[key] for key in expected} == expected
        listing = get_json(check, "/v1/batch", limit=100)["data"]
        listed = next(b for b in listing if b["id"] == batch_id)
        assert listed == {key: summary[key] for key in listed}
        seen_failed = seen_failed or summary["failureCount"] > 0
        seen_partial = seen_partial or 0 < summary["processedItems"] < SIZE
    assert seen_partial
    if cancel_after is None:
        assert seen_failed
        assert summary["status"] in ("completed", "failed")
    else:
        assert summary["status"] == "cancelled"


class Walked(tuple):  # type: ignore[type-arg]
    """A tuple that counts how often it is walked."""

    walks = 0

    def __iter__(self) -> Iterator[Any]:
        Walked.walks += 1
        return super().__iter__()


def test_a_batch_over_is_summarised_without_walking_its_items_on_every_poll(
    check: TestClient,
) -> None:
    """A stored batch's head is read on every poll; once the batch is over, what its summary
    needs of its items (their first start, last end, counts and cost) is worked out once per
    head read, not walked again by every poll of it."""
    batch_id = created(check, {"items": ITEMS, "methods": {"reasoning": 1.0}})["id"]
    advance(check, 86_400)
    before = get_json(check, f"/v1/batch/{batch_id}")
    runtime = check.app.state.sim.runtimes["check"]  # type: ignore[attr-defined]
    store = runtime.context.store

    async def rewalk() -> None:
        """The same head stored again, its per-item tuples counting their walks."""
        head = await store.get(models.BATCHES, batch_id)
        batch = head.batch
        walked = dataclasses.replace(
            batch,
            progress=Progress(batch.created_at, Walked(batch.ends)),
            starts=Walked(batch.starts),
        )
        again = models.BatchHead(walked, Walked(head.failed), Walked(head.costs))
        expires_at = batch.expires_at(runtime.context.options.max_batches)
        await store.put(models.BATCHES, batch_id, again, expires_at=expires_at)

    assert check.portal is not None
    check.portal.call(rewalk)
    # The answer kept for the settled batch is forgotten: the first poll summarises anew.
    routes._SETTLED.clear()
    Walked.walks = 0
    polls = [get_json(check, f"/v1/batch/{batch_id}") for _ in range(5)]
    assert polls == [before] * 5
    assert before["status"] == "completed"
    assert 0 < Walked.walks <= 4  # each tuple once at most, for the first poll
