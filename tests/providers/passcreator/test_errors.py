"""Auth errors, malformed bodies, unknown paths and methods, faults: always the v3 envelope."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from simulator.providers.passcreator import errors
from simulator.settings import SettingsError
from tests.conftest import AppFactory
from tests.providers.passcreator.conftest import (
    BASE,
    DAVID,
    KEY,
    PASSES,
    SEED_PROCESS,
    TEMPLATE,
)

OPERATIONS = [
    ("GET", PASSES),
    ("POST", PASSES),
    ("PATCH", PASSES),
    ("GET", f"{PASSES}/{DAVID}"),
    ("PATCH", f"{PASSES}/{DAVID}"),
    ("GET", f"/api/v3/process/{SEED_PROCESS}"),
]


def envelope_401(message: str) -> dict[str, object]:
    return {
        "statusCode": 401,
        "success": False,
        "description": "Unauthorized",
        "errors": [message],
        "count": 0,
        "responseMetaData": None,
        "data": [],
    }


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, errors.MISSING_API_KEY),
        ({"Authorization": "   "}, errors.MISSING_API_KEY),
        ({"Authorization": "not-a-key"}, errors.INVALID_API_KEY),
        ({"Authorization": KEY["Authorization"] + "x"}, errors.INVALID_API_KEY),
        ({"Authorization": f"Bearer {KEY['Authorization']}"}, errors.BEARER_PREFIX),
        ({"Authorization": f"bearer {KEY['Authorization']}"}, errors.BEARER_PREFIX),
        ({"Authorization": "Bearer nonsense"}, errors.BEARER_PREFIX),
    ],
)
def test_every_operation_without_a_valid_raw_key_returns_401(
    passcreator: TestClient, method: str, path: str, headers: dict[str, str], message: str
) -> None:
    response = passcreator.request(
        method, path, headers=headers, json={"data": {"templateId": TEMPLATE}}
    )
    assert response.status_code == 401
    assert response.json() == envelope_401(message)


def test_key_with_surrounding_whitespace_is_accepted(passcreator: TestClient) -> None:
    response = passcreator.get(
        f"/api/v3/process/{SEED_PROCESS}", headers={"Authorization": f" {KEY['Authorization']} "}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b'{"data": NaN}',
        b'{"data": {"templateId": "t", "age": Infinity}}',
        b'{"data": {"templateId": "t", "age": 1e400}}',
        b'{"data": {"templateId": "\\ud800"}}',
        b"\xff\xfe\x00",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"data": {"age": ' + b"9" * 5000 + b"}}",
    ],
)
def test_create_pass_body_that_is_not_strict_json_returns_400(
    passcreator: TestClient, raw: bytes
) -> None:
    response = passcreator.post(
        PASSES, content=raw, headers={**KEY, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [errors.INVALID_JSON]


@pytest.mark.parametrize("raw", [b"", b"  \n", b'"text"', b"null", b"[]"])
def test_create_pass_body_that_is_no_object_returns_400(
    passcreator: TestClient, raw: bytes
) -> None:
    response = passcreator.post(PASSES, content=raw, headers=KEY)
    assert response.status_code == 400
    assert response.json()["errors"][0] in (errors.DATA_MISSING, errors.BODY_NOT_OBJECT)


def test_create_pass_body_over_the_cap_returns_413(app_factory: AppFactory) -> None:
    app = app_factory(options=(("passcreator.max_body_bytes", "2048"),))
    with TestClient(app, base_url=BASE) as client:
        item = {"templateId": TEMPLATE, "note": "x" * 3000}
        response = client.post(PASSES, json={"data": item}, headers=KEY)
        assert response.status_code == 413
        assert response.json()["errors"] == ["The request body must not be larger than 2048 bytes."]

        def chunks() -> Iterator[bytes]:
            yield b'{"data": {"templateId": "' + TEMPLATE.encode() + b'", "note": "'
            yield b"x" * 3000
            yield b'"}}'

        streamed = client.post(PASSES, content=chunks(), headers=KEY)
        assert streamed.status_code == 413


def test_unknown_path_returns_404_envelope(passcreator: TestClient) -> None:
    response = passcreator.get("/api/v3/passes", headers=KEY)
    assert response.status_code == 404
    assert response.json() == {
        "statusCode": 404,
        "success": False,
        "description": "Not Found",
        "errors": ["Object not found"],
        "count": 0,
        "responseMetaData": None,
        "data": [],
    }


def test_path_with_a_newline_returns_404_envelope(passcreator: TestClient) -> None:
    response = passcreator.get("/api/v3/process/a%0Ab", headers=KEY)
    assert response.status_code == 404
    assert response.json()["errors"] == ["Object not found"]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", PASSES, "GET, HEAD, POST, PATCH"),
        ("PUT", PASSES, "GET, HEAD, POST, PATCH"),
        ("DELETE", f"{PASSES}/{DAVID}", "GET, HEAD, PATCH"),
        ("POST", f"/api/v3/process/{SEED_PROCESS}", "GET, HEAD"),
    ],
)
def test_wrong_method_returns_405_envelope_listing_the_path_methods(
    passcreator: TestClient, method: str, path: str, allow: str
) -> None:
    response = passcreator.request(method, path, headers=KEY)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.json() == {
        "statusCode": 405,
        "success": False,
        "description": "Method Not Allowed",
        "errors": ["Method Not Allowed"],
        "count": 0,
        "responseMetaData": None,
        "data": [],
    }


def test_rate_limit_fault_returns_429_envelope_with_retry_after(passcreator: TestClient) -> None:
    fault = {"provider": "passcreator", "operation": "get_process", "kind": "rate_limit"}
    scheduled = passcreator.post("http://testserver/_sim/faults", json={**fault, "retry_after": 7})
    assert scheduled.status_code == 201, scheduled.text
    response = passcreator.get(f"/api/v3/process/{SEED_PROCESS}", headers=KEY)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.json()["errors"] == ["Too many requests"]
    assert passcreator.get(f"/api/v3/process/{SEED_PROCESS}", headers=KEY).status_code == 200


@pytest.mark.parametrize(
    ("name", "status"),
    [("InvalidApiKey", 401), ("ObjectNotFound", 404), ("InternalServerError", 500)],
)
def test_error_fault_by_catalogue_name_returns_its_envelope(
    passcreator: TestClient, name: str, status: int
) -> None:
    fault = {"provider": "passcreator", "operation": "create_pass", "kind": "error", "error": name}
    assert passcreator.post("http://testserver/_sim/faults", json=fault).status_code == 201
    response = passcreator.post(PASSES, json={"data": {"templateId": TEMPLATE}}, headers=KEY)
    assert response.status_code == status
    body = response.json()
    assert (body["statusCode"], body["success"], body["data"]) == (status, False, [])


def test_status_fault_returns_the_envelope_with_the_reason(passcreator: TestClient) -> None:
    fault = {"provider": "passcreator", "operation": "list_passes", "kind": "status", "status": 503}
    assert passcreator.post("http://testserver/_sim/faults", json=fault).status_code == 201
    response = passcreator.get(PASSES, headers=KEY)
    assert response.status_code == 503
    assert response.json()["errors"] == ["Service Unavailable"]


def test_passcreator_served_alone_also_answers_at_the_root(app_factory: AppFactory) -> None:
    app = app_factory(providers=("passcreator",))
    with TestClient(app, base_url="http://testserver") as client:
        response = client.get(f"/api/v3/process/{SEED_PROCESS}", headers=KEY)
        assert response.status_code == 200
        assert client.get("/nowhere", headers=KEY).json()["errors"] == ["Object not found"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("items_per_second", "0"),
        ("max_bulk_items", "0"),
        ("page_size", "500"),
        ("max_body_bytes", "10"),
    ],
)
def test_invalid_option_refuses_to_start(app_factory: AppFactory, key: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"passcreator.{key}|passcreator: "):
        app_factory(options=((f"passcreator.{key}", value),))


def test_credentials_list_the_test_keys_and_templates(passcreator: TestClient) -> None:
    listing = passcreator.get("http://testserver/_sim/providers").json()["providers"]
    mine = next(p for p in listing if p["name"] == "passcreator")
    assert mine["credentials"]["api_key"] == KEY["Authorization"]
    assert mine["credentials"]["template_id"] == TEMPLATE
    assert mine["operations"] == [
        "list_passes",
        "create_pass",
        "update_passes",
        "get_pass",
        "update_pass",
        "get_process",
        "subscribe_webhook",
        "subscribe_template_webhook",
        "unsubscribe_webhook",
        "get_webhook_public_key",
        "list_webhook_payloads",
        "acknowledge_webhook_payloads",
    ]
    assert mine["spec_url"] == "http://testserver/passcreator/openapi.json"
    spec = passcreator.get("/openapi.json")
    assert spec.status_code == 200
    assert spec.json()["openapi"] == "3.1.0"
