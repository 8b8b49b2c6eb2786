from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from simulator.providers.check.models import KEYS_BY_PLAN

BASE = "http://testserver/check"
FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "check"
Body = dict[str, Any]


@pytest.fixture
def check(app: Starlette) -> Iterator[TestClient]:
    """A client whose base URL is Check's prefix; /_sim is reached by absolute URL.

    No request may have crashed a handler (each crash is answered as a 500).
    """
    with TestClient(app, base_url=BASE) as client:
        yield client
    assert not app.state.sim.crashes, list(app.state.sim.crashes)


def auth(plan: str = "pro") -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS_BY_PLAN[plan]}"}  # type: ignore[index]


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def upload(
    client: TestClient,
    data: bytes,
    name: str = "claims.csv",
    plan: str = "pro",
    content_type: str = "text/csv",
) -> httpx2.Response:
    return client.post(
        "/v1/batch/upload", headers=auth(plan), files={"file": (name, data, content_type)}
    )


def file_id(client: TestClient, data: bytes, name: str = "claims.csv", plan: str = "pro") -> str:
    response = upload(client, data, name, plan)
    assert response.status_code == 200, response.text
    value: str = response.json()["fileId"]
    return value


def create(client: TestClient, body: Body, plan: str = "pro") -> httpx2.Response:
    return client.post("/v1/batch", headers=auth(plan), json=body)


def created(client: TestClient, body: Body, plan: str = "pro") -> Body:
    response = create(client, body, plan)
    assert response.status_code == 202, response.text
    result: Body = response.json()
    return result


def get_json(client: TestClient, path: str, plan: str = "pro", **params: object) -> Body:
    response = client.get(path, headers=auth(plan), params=params)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    result: Body = response.json()
    return result


def error(response: httpx.Response | httpx2.Response, status: int) -> Body:
    assert response.status_code == status, response.text
    body: Body = response.json()
    return body


def advance(client: TestClient, seconds: float) -> None:
    response = client.post("http://testserver/_sim/clock/advance", json={"seconds": seconds})
    assert response.status_code == 200, response.text


def set_options(client: TestClient, **options: object) -> None:
    response = client.post(
        "http://testserver/_sim/options", json={"provider": "check", "options": options}
    )
    assert response.status_code == 200, response.text
