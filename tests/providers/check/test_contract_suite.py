"""contracts.suites.check: its behaviour description finds a wrong client's mistakes by name."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from contracts.checks import check_entries
from contracts.suites import check as suite
from tests.providers.check.conftest import advance, auth, created, file_id, fixture, get_json


def findings(client: TestClient) -> list[str]:
    journal = client.get("http://testserver/_sim/journal", params={"provider": "check"})
    entries: list[dict[str, Any]] = journal.json()["entries"]
    return [f.check for f in check_entries(entries, {"check": suite.BEHAVIOUR})]


def start(client: TestClient) -> str:
    fid = file_id(client, fixture("claims.csv"))
    batch_id: str = created(client, {"fileId": fid})["id"]
    return batch_id


def poll(client: TestClient, batch_id: str) -> None:
    while get_json(client, f"/v1/batch/{batch_id}")["status"] == "processing":
        advance(client, 5)


def test_suite_correct_client_has_no_findings(check: TestClient) -> None:
    batch_id = start(check)
    poll(check, batch_id)
    offset = 0
    while True:
        # 20 a page: each page fits the journal's 16 KiB a body, so every check can judge it
        page = get_json(check, f"/v1/batch/{batch_id}/results", limit=20, offset=offset)
        offset += len(page["items"])
        if not page["pagination"]["hasMore"]:
            break
    assert offset == 87
    assert findings(check) == []


def test_suite_second_use_of_a_file_is_reused_one_shot(check: TestClient) -> None:
    fid = file_id(check, fixture("claims.csv"))
    created(check, {"fileId": fid})
    check.post("/v1/batch", headers=auth(), json={"fileId": fid})
    assert findings(check) == ["reused-one-shot"]


def test_suite_client_that_stops_early_is_found(check: TestClient) -> None:
    batch_id = start(check)
    get_json(check, f"/v1/batch/{batch_id}")
    advance(check, 60)
    get_json(check, f"/v1/batch/{batch_id}/results")
    assert findings(check) == ["stopped-polling", "stopped-paging"]


def test_suite_hot_poll_is_found(check: TestClient) -> None:
    batch_id = start(check)
    get_json(check, f"/v1/batch/{batch_id}")
    get_json(check, f"/v1/batch/{batch_id}")
    poll(check, batch_id)
    assert findings(check) == ["hot-poll"]
