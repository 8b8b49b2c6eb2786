"""Every request is checked against the provider's spec; violations land in the journal."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.conftest import AppFactory
from tests.providers.deepvue.conftest import CLIENT

STATUS = "/deepvue/v1/verification/batch-processing-status"


def violations(client: TestClient) -> list[tuple[str, list[str]]]:
    entries = client.get("/_sim/journal?provider=deepvue").json()["entries"]
    return [(e["operation"], e["violations"]) for e in entries]


def conformant_calls(client: TestClient) -> None:
    token = client.post(
        "/deepvue/v1/authorize",
        data={"client_id": CLIENT.client_id, "client_secret": CLIENT.client_secret},
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "x-api-key": CLIENT.client_secret}
    client.post(
        "/deepvue/v1/verification/upi-basic/batch",
        headers=headers,
        files={"batch_file": ("vpas.csv", b"vpa\nx@okaxis\n", "text/csv")},
    )
    client.get(STATUS, params={"request_id": "06d0d7c340ed460d96103aaa0b26f0de"}, headers=headers)


def test_conformant_client_has_no_violations(client: TestClient) -> None:
    conformant_calls(client)
    assert violations(client) == [
        ("authorize", []),
        ("submit_upi_basic_batch", []),
        ("get_batch_processing_status", []),
    ]


def test_violations_name_what_the_request_got_wrong(client: TestClient) -> None:
    client.post("/deepvue/v1/authorize", json={"client_id": CLIENT.client_id})
    client.post("/deepvue/v1/authorize", data={"client_id": CLIENT.client_id})
    client.get(STATUS, headers={"x-api-key": "k"})
    client.get(STATUS, params={"request_id": "x"}, headers={"Authorization": "Bearer a.b.c"})
    client.get("/deepvue/v1/verification/status")
    found = violations(client)
    assert found[0] == (
        "authorize",
        [
            "body: content type not in the spec: Content for the following mimetype not found: "
            "application/json. Valid mimetypes: "
            "['multipart/form-data', 'application/x-www-form-urlencoded']"
        ],
    )
    assert found[1] == ("authorize", ["body: 'client_secret' is a required property"])
    # Security is judged first: a request without credentials is told that before anything else.
    assert (
        found[2]
        == found[3]
        == (
            "get_batch_processing_status",
            ["security: no credentials the spec accepts (missing or malformed auth headers)"],
        )
    )
    assert found[4] == (
        "unknown",
        ["path: Path not found for http://provider.invalid/v1/verification/status"],
    )


def test_violations_do_not_change_the_answer(client: TestClient) -> None:
    response = client.post("/deepvue/v1/authorize", json={"client_id": CLIENT.client_id})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "client_id"]


def test_validation_can_be_switched_off(app_factory: AppFactory) -> None:
    with TestClient(app_factory(validate_requests=False)) as client:
        client.get("/deepvue/nowhere")
        assert violations(client) == [("unknown", [])]


def test_a_body_that_is_not_utf8_is_a_violation_not_a_crash(client: TestClient) -> None:
    client.post(
        "/deepvue/v1/authorize",
        content=b"client_id=\xff\xfe&client_secret=\xc3",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    response = client.get("/_sim/journal")
    assert response.status_code == 200
    assert response.json()["entries"][0]["violations"] == ["body: not valid UTF-8"]
