"""POST /v1/bulk/authtoken and the Token header of every protected HelloAtlas call."""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest
from starlette.testclient import TestClient

from simulator import ManualClock
from tests.conftest import AppFactory
from tests.providers.helloatlas.conftest import (
    BASE,
    CLIENT,
    SEED_BATCH,
    advance,
    auth,
    fixture,
    token,
)

EXTRACTS = f"/v1/bulk/extracts?batch_id={SEED_BATCH}"


def test_authtoken_with_credential_headers_returns_201_and_one_hour_jwt(
    helloatlas: TestClient, clock: ManualClock
) -> None:
    response = helloatlas.post(
        "/v1/bulk/authtoken",
        headers={"Client-Id": CLIENT.client_id, "Client-Secret": CLIENT.client_secret},
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"access_token", "expires_in"}
    assert body["expires_in"] == 3600
    assert jwt.get_unverified_header(body["access_token"])["alg"] == "HS256"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == CLIENT.client_id
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["iat"] == int(clock.now().timestamp())


@pytest.mark.parametrize(
    "headers",
    [{}, {"Client-Id": CLIENT.client_id}, {"Client-Secret": CLIENT.client_secret}],
    ids=["none", "no-secret", "no-id"],
)
def test_authtoken_missing_header_returns_400(
    helloatlas: TestClient, headers: dict[str, str]
) -> None:
    response = helloatlas.post("/v1/bulk/authtoken", headers=headers)
    assert response.status_code == 400
    assert response.json() == fixture("errors/missing_client_credentials.json")


def test_authtoken_empty_header_counts_as_missing(helloatlas: TestClient) -> None:
    response = helloatlas.post(
        "/v1/bulk/authtoken", headers={"Client-Id": " ", "Client-Secret": CLIENT.client_secret}
    )
    assert response.status_code == 400
    assert response.json()["error_message"] == "Bad Request: Missing Client-Id or Client-Secret"


@pytest.mark.parametrize(
    ("client_id", "client_secret"),
    [
        (CLIENT.client_id, "wrong"),
        ("nobody", CLIENT.client_secret),
        (CLIENT.client_id, "s\u00e9cret"),
    ],
    ids=["wrong-secret", "unknown-client", "non-ascii-secret"],
)
def test_authtoken_wrong_credentials_returns_401(
    helloatlas: TestClient, client_id: str, client_secret: str
) -> None:
    response = helloatlas.post(
        "/v1/bulk/authtoken",
        headers=[(b"Client-Id", client_id.encode()), (b"Client-Secret", client_secret.encode())],
    )
    assert response.status_code == 401
    assert response.json() == fixture("errors/invalid_client_credentials.json")


def test_authtoken_credentials_in_json_body_are_not_read(helloatlas: TestClient) -> None:
    response = helloatlas.post(
        "/v1/bulk/authtoken",
        json={"client_id": CLIENT.client_id, "client_secret": CLIENT.client_secret},
    )
    assert response.status_code == 400


def test_token_header_authenticates_extracts(helloatlas: TestClient) -> None:
    response = helloatlas.get(EXTRACTS, headers=auth(helloatlas))
    assert response.status_code == 200


@pytest.mark.parametrize("path", [EXTRACTS, "/v1/bulk/multiupload"])
def test_protected_call_without_token_returns_401(helloatlas: TestClient, path: str) -> None:
    method = "GET" if path == EXTRACTS else "POST"
    response = helloatlas.request(method, path)
    assert response.status_code == 401
    assert response.json() == fixture("errors/missing_token.json")


@pytest.mark.parametrize(
    "value",
    [
        "not-a-jwt",
        "a.b.c",
        "Bearer {token}",
        "{token}x",
        jwt.encode(
            {"sub": CLIENT.client_id, "exp": 4102444800, "iat": 0},
            "a-guessed-key-of-at-least-32-bytes",
            "HS256",
        ),
        jwt.encode(
            {"sub": CLIENT.client_id, "exp": 4102444800, "iat": 0}, key="", algorithm="none"
        ),
    ],
    ids=["garbage", "three-dots", "bearer-prefix", "tampered", "foreign-key", "alg-none"],
)
def test_protected_call_with_invalid_token_returns_401(helloatlas: TestClient, value: str) -> None:
    headers = {"Token": value.format(token=token(helloatlas))}
    response = helloatlas.get(EXTRACTS, headers=headers)
    assert response.status_code == 401
    assert response.json() == fixture("errors/invalid_token.json")


def test_token_of_another_simulator_instance_returns_401(
    helloatlas: TestClient, app_factory: AppFactory
) -> None:
    with TestClient(app_factory(), base_url=BASE) as elsewhere:
        foreign = token(elsewhere)
    response = helloatlas.get(EXTRACTS, headers={"Token": foreign})
    assert response.json() == fixture("errors/invalid_token.json")


def test_deepvue_token_is_rejected_by_helloatlas(helloatlas: TestClient) -> None:
    from simulator.providers.deepvue.models import TEST_CLIENTS as DEEPVUE_CLIENTS

    deepvue = DEEPVUE_CLIENTS[0]
    issued = helloatlas.post(
        "http://testserver/deepvue/v1/authorize",
        data={"client_id": deepvue.client_id, "client_secret": deepvue.client_secret},
    )
    assert issued.status_code == 200
    response = helloatlas.get(EXTRACTS, headers={"Token": issued.json()["access_token"]})
    assert response.status_code == 401
    assert response.json() == fixture("errors/invalid_token.json")


def test_token_expires_after_3600_seconds_on_the_clock(helloatlas: TestClient) -> None:
    headers = auth(helloatlas)
    advance(helloatlas, 3599)
    assert helloatlas.get(EXTRACTS, headers=headers).status_code == 200
    advance(helloatlas, 1)
    response = helloatlas.get(EXTRACTS, headers=headers)
    assert response.status_code == 401
    assert response.json() == fixture("errors/expired_token.json")
    assert helloatlas.get(EXTRACTS, headers=auth(helloatlas)).status_code == 200


def test_token_ttl_follows_the_option(app_factory: AppFactory, clock: ManualClock) -> None:
    app = app_factory(options=(("helloatlas.token_ttl_seconds", "60"),))
    with TestClient(app, base_url=BASE) as client:
        response = client.post(
            "/v1/bulk/authtoken",
            headers={"Client-Id": CLIENT.client_id, "Client-Secret": CLIENT.client_secret},
        )
        assert response.json()["expires_in"] == 60
        headers = {"Token": response.json()["access_token"]}
        clock.advance(timedelta(seconds=60))
        assert client.get(EXTRACTS, headers=headers).json()["error_message"] == (
            "Authentication Error: Token has expired"
        )


def test_forged_expired_token_is_invalid_not_expired(helloatlas: TestClient) -> None:
    forged = jwt.encode(
        {"sub": CLIENT.client_id, "exp": 1, "iat": 0}, "a-guessed-key-of-at-least-32-bytes", "HS256"
    )
    response = helloatlas.get(EXTRACTS, headers={"Token": forged})
    assert response.json() == fixture("errors/invalid_token.json")


def test_token_secrets_are_masked_in_the_journal(helloatlas: TestClient) -> None:
    secret_token = token(helloatlas)
    helloatlas.get(EXTRACTS, headers={"Token": secret_token})
    journal = helloatlas.get("http://testserver/_sim/journal?provider=helloatlas").text
    assert CLIENT.client_secret not in journal
    assert secret_token not in journal
