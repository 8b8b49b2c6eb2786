"""GET /v1/batch/{id} (read from the stored head) agrees with the batch's own items, on the
clock: its counts and status are what the results pages say of each item."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.providers.check.conftest import Body, advance, auth, created, get_json

SIZE = 230  # three stored chunks


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
