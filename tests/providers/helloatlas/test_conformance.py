"""A client that follows HelloAtlas's docs leaves no spec violation in the journal."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.providers.helloatlas.conftest import (
    CLIENT,
    SEED_BATCH,
    advance,
    auth,
    fixture,
)


def violations(client: TestClient) -> list[tuple[str, list[str]]]:
    entries = client.get("http://testserver/_sim/journal?provider=helloatlas").json()["entries"]
    return [(e["operation"], e["violations"]) for e in entries]


def test_documented_flow_has_no_violations(helloatlas: TestClient) -> None:
    headers = auth(helloatlas)
    created = helloatlas.post(
        "/v1/bulk/multiupload", json=fixture("payloads/multiupload_request.json"), headers=headers
    )
    advance(helloatlas, 30)
    for batch_id in (SEED_BATCH, created.json()[0]["batch_id"]):
        helloatlas.get(
            "/v1/bulk/extracts",
            params={"batch_id": batch_id, "page": 1, "per_page": 50},
            headers=headers,
        )
    assert violations(helloatlas) == [
        ("generate_bulk_auth_token", []),
        ("bulk_multiupload", []),
        ("get_bulk_extracts", []),
        ("get_bulk_extracts", []),
    ]


def test_violations_name_what_the_request_got_wrong(helloatlas: TestClient) -> None:
    helloatlas.post("/v1/bulk/authtoken", headers={"Client-Id": CLIENT.client_id})
    headers = auth(helloatlas)
    helloatlas.post("/v1/bulk/multiupload", json={"product_type": "P"}, headers=headers)
    helloatlas.get("/v1/bulk/extracts", params={"batch_id": SEED_BATCH, "page": 0}, headers=headers)
    helloatlas.get("/v1/bulk/extracts", params={"batch_id": SEED_BATCH})
    assert violations(helloatlas) == [
        (
            "generate_bulk_auth_token",
            ["parameters: Missing required header parameter: Client-Secret"],
        ),
        ("generate_bulk_auth_token", []),
        ("bulk_multiupload", ["body: 'file_urls' is a required property"]),
        ("get_bulk_extracts", ["parameters: 0 is less than the minimum of 1"]),
        (
            "get_bulk_extracts",
            ["security: no credentials the spec accepts (missing or malformed auth headers)"],
        ),
    ]
