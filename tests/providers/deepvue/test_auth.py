"""POST /v1/authorize and the auth errors of every protected Deepvue call."""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest
from starlette.testclient import TestClient

from simulator import ManualClock
from simulator.clock import format_iso
from simulator.providers.deepvue import errors
from tests.providers.deepvue.conftest import CLIENT, INACTIVE, advance, auth, token

STATUS = "/v1/verification/batch-processing-status?request_id=06d0d7c340ed460d96103aaa0b26f0de"


def test_authorize_urlencoded_returns_bearer_token_valid_24h(
    deepvue: TestClient, clock: ManualClock
) -> None:
    response = deepvue.post(
        "/v1/authorize",
        data={"client_id": CLIENT.client_id, "client_secret": CLIENT.client_secret},
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expiry"}
    assert body["token_type"] == "bearer"
    assert body["expiry"] == format_iso(clock.now() + timedelta(hours=24))
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == CLIENT.client_id
    assert jwt.get_unverified_header(body["access_token"])["alg"] == "HS256"


def test_authorize_multipart_is_accepted(deepvue: TestClient) -> None:
    response = deepvue.post(
        "/v1/authorize",
        files={
            "client_id": (None, CLIENT.client_id),
            "client_secret": (None, CLIENT.client_secret),
        },
    )
    assert response.status_code == 200
    assert response.json()["token_type"] == "bearer"


@pytest.mark.parametrize(
    ("client_id", "client_secret"),
    [
        (CLIENT.client_id, "wrong"),
        ("nobody", CLIENT.client_secret),
        ("", ""),
        (CLIENT.client_id, "sécret"),
    ],
    ids=["wrong-secret", "unknown-client", "empty", "non-ascii-secret"],
)
def test_authorize_wrong_credentials_returns_401(
    deepvue: TestClient, client_id: str, client_secret: str
) -> None:
    response = deepvue.post(
        "/v1/authorize", data={"client_id": client_id, "client_secret": client_secret}
    )
    assert response.status_code == 401
    assert response.json() == {"detail": errors.IncorrectClientIdOrClientSecret.detail}


def test_authorize_inactive_client_returns_400(deepvue: TestClient) -> None:
    response = deepvue.post(
        "/v1/authorize",
        data={"client_id": INACTIVE.client_id, "client_secret": INACTIVE.client_secret},
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "Inactive client_id"}


def test_authorize_missing_fields_returns_fastapi_422(deepvue: TestClient) -> None:
    response = deepvue.post("/v1/authorize", data={"client_id": CLIENT.client_id})
    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {
                "type": "missing",
                "loc": ["body", "client_secret"],
                "msg": "Field required",
                "input": None,
            }
        ]
    }


def test_authorize_json_body_is_not_a_form_returns_422_for_both_fields(deepvue: TestClient) -> None:
    response = deepvue.post(
        "/v1/authorize",
        json={"client_id": CLIENT.client_id, "client_secret": CLIENT.client_secret},
    )
    assert response.status_code == 422
    assert [d["loc"] for d in response.json()["detail"]] == [
        ["body", "client_id"],
        ["body", "client_secret"],
    ]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(b"--x\r\nnot a part", "multipart/form-data; boundary=x"), (b"abc", "multipart/form-data")],
    ids=["broken-part", "no-boundary"],
)
def test_authorize_malformed_multipart_returns_400_parse_error(
    deepvue: TestClient, body: bytes, content_type: str
) -> None:
    response = deepvue.post("/v1/authorize", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 400
    assert response.json() == {"detail": "There was an error parsing the body"}


def test_status_without_authorization_returns_401_not_authenticated(deepvue: TestClient) -> None:
    response = deepvue.get(STATUS, headers={"x-api-key": CLIENT.client_secret})
    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("value", ["Basic abc", "Bearer ", "Token abc", "bearer"])
def test_status_non_bearer_authorization_returns_401_not_authenticated(
    deepvue: TestClient, value: str
) -> None:
    response = deepvue.get(STATUS, headers={"Authorization": value, "x-api-key": "k"})
    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}


@pytest.mark.parametrize("value", ["YOUR_API_TOKEN (JWT)", "abc", "a.b.c", "ey.ey.ey"])
def test_status_bearer_value_not_a_jwt_returns_403(deepvue: TestClient, value: str) -> None:
    response = deepvue.get(
        STATUS, headers={"Authorization": f"Bearer {value}", "x-api-key": CLIENT.client_secret}
    )
    assert response.status_code == 403
    assert response.json() == {"detail": "Not a valid token"}


def test_status_forged_signature_returns_401_could_not_validate(deepvue: TestClient) -> None:
    forged = jwt.encode(
        {"sub": CLIENT.client_id, "aud": "deepvue", "exp": 4_000_000_000}, b"x" * 32, "HS256"
    )
    response = deepvue.get(
        STATUS, headers={"Authorization": f"Bearer {forged}", "x-api-key": CLIENT.client_secret}
    )
    assert response.status_code == 401
    assert response.json() == {"detail": "Could not validate credentials"}


def test_status_token_of_another_simulator_is_rejected(
    deepvue: TestClient, app_factory: object
) -> None:
    from starlette.testclient import TestClient as Client

    other = app_factory()  # type: ignore[operator]
    with Client(other, base_url="http://testserver/deepvue") as other_client:
        foreign = token(other_client)
    response = deepvue.get(
        STATUS, headers={"Authorization": f"Bearer {foreign}", "x-api-key": CLIENT.client_secret}
    )
    assert response.status_code == 401
    assert response.json() == {"detail": "Could not validate credentials"}


def test_status_token_expires_after_24h_on_the_clock(deepvue: TestClient) -> None:
    headers = auth(deepvue)
    advance(deepvue, 24 * 3600 - 1)
    assert deepvue.get(STATUS, headers=headers).status_code == 200
    advance(deepvue, 1)
    response = deepvue.get(STATUS, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"detail": "Authorization failure"}


@pytest.mark.parametrize("api_key", [None, "wrong", "free_tier_sim_inactive_8d2e71b0"])
def test_status_missing_or_wrong_api_key_returns_401_access_denied(
    deepvue: TestClient, api_key: str | None
) -> None:
    headers = {"Authorization": f"Bearer {token(deepvue)}"}
    if api_key is not None:
        headers["x-api-key"] = api_key
    response = deepvue.get(STATUS, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid client_id, access Denied"}


def test_status_api_key_in_non_ascii_bytes_returns_401_access_denied(deepvue: TestClient) -> None:
    headers = {b"Authorization": f"Bearer {token(deepvue)}".encode(), b"x-api-key": "clé".encode()}
    response = deepvue.get(STATUS, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid client_id, access Denied"}


def test_journal_masks_secrets_of_authorize_and_status(deepvue: TestClient) -> None:
    headers = auth(deepvue)
    deepvue.get(STATUS, headers=headers)
    entries = deepvue.get("http://testserver/_sim/journal?provider=deepvue").json()["entries"]
    text = str(entries)
    assert CLIENT.client_secret not in text
    assert headers["Authorization"].split()[1] not in text
    authorize, status = entries
    assert authorize["request"]["body"].startswith(
        f"client_id={CLIENT.client_id}&client_secret=***"
    )
    assert status["request"]["headers"]["x-api-key"] == f"***{CLIENT.client_secret[-4:]}"
