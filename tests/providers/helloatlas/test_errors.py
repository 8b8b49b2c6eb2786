"""HelloAtlas's envelope for unknown paths, wrong methods and faults asked through /_sim."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from simulator.kit.errors import ProviderError
from simulator.providers.helloatlas import errors
from tests.conftest import AppFactory
from tests.providers.helloatlas.conftest import SEED_BATCH, auth, fixture

EXTRACTS = f"/v1/bulk/extracts?batch_id={SEED_BATCH}"


@pytest.mark.parametrize(
    "path", ["/v1/bulk/nothing", "/v1/bulk/extracts/", "/v2/bulk/extracts", "/"]
)
def test_unknown_path_returns_helloatlas_404(helloatlas: TestClient, path: str) -> None:
    response = helloatlas.get(path)
    assert response.status_code == 404
    assert response.json() == fixture("errors/not_found.json")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/v1/bulk/extracts", "GET, HEAD"),
        ("POST", "/v1/bulk/extracts", "GET, HEAD"),
        ("GET", "/v1/bulk/multiupload", "POST"),
        ("PUT", "/v1/bulk/authtoken", "POST"),
    ],
)
def test_wrong_method_returns_helloatlas_405_with_allow(
    helloatlas: TestClient, method: str, path: str, allow: str
) -> None:
    response = helloatlas.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.json() == fixture("errors/method_not_allowed.json")


def test_helloatlas_served_alone_answers_at_the_root_too(app_factory: AppFactory) -> None:
    app = app_factory(providers=("helloatlas",))
    with TestClient(app, base_url="http://testserver") as client:
        assert client.get(EXTRACTS, headers=auth(client)).status_code == 200
        assert client.get("/elsewhere").json() == fixture("errors/not_found.json")


def schedule(client: TestClient, **fault: object) -> None:
    response = client.post(
        "http://testserver/_sim/faults", json={"provider": "helloatlas", **fault}
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("error", errors.CATALOGUE, ids=lambda e: e.__name__)
def test_fault_by_catalogue_name_answers_that_error(
    helloatlas: TestClient, error: type[ProviderError]
) -> None:
    headers = auth(helloatlas)
    schedule(helloatlas, operation="get_bulk_extracts", kind="error", error=error.__name__)
    response = helloatlas.get(EXTRACTS, headers=headers)
    assert response.status_code == error.status_code
    body = response.json()
    assert set(body) == {"error_code", "error_message"}
    assert body["error_code"] == str(error.status_code)
    assert helloatlas.get(EXTRACTS, headers=headers).status_code == 200


def test_rate_limit_fault_answers_429_with_retry_after(helloatlas: TestClient) -> None:
    headers = auth(helloatlas)
    schedule(helloatlas, operation="bulk_multiupload", kind="rate_limit", retry_after=12)
    response = helloatlas.post("/v1/bulk/multiupload", json={}, headers=headers)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "12"
    assert response.json() == {
        "error_code": "429",
        "error_message": "Too Many Requests: Rate limit exceeded",
    }


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (503, "Service Unavailable: A downstream service is unavailable"),
        (500, "Internal Server Error: An unexpected error occurred"),
        (502, "Bad Gateway: Bad Gateway"),
    ],
)
def test_status_fault_uses_the_envelope(helloatlas: TestClient, status: int, message: str) -> None:
    schedule(helloatlas, operation="generate_bulk_auth_token", kind="status", status=status)
    response = helloatlas.post("/v1/bulk/authtoken")
    assert response.status_code == status
    assert response.json() == {"error_code": str(status), "error_message": message}
