from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from simulator import ManualClock, Settings, create_app
from simulator.providers.deepvue.models import TEST_CLIENTS
from tests.conftest import AppFactory, Sleeps

CLIENT = TEST_CLIENTS[0]
INACTIVE = TEST_CLIENTS[1]
BASE = "http://testserver/deepvue"


@pytest.fixture
def app_factory(clock: ManualClock, sleeps: Sleeps, new_store_url: Callable[[], str]) -> AppFactory:
    """Deepvue's tests run once per store backend, through HTTP alike; each app built is a
    simulator of its own, on a fresh store."""

    def build(**fields: object) -> Starlette:
        fields.setdefault("seed", 7)
        fields.setdefault("store", new_store_url())
        return create_app(Settings(**fields), clock=clock, sleep=sleeps)  # type: ignore[arg-type]

    return build


@pytest.fixture
def deepvue(app: Starlette) -> Iterator[TestClient]:
    """A client whose base URL is Deepvue's prefix; /_sim is reached by absolute URL."""
    with TestClient(app, base_url=BASE) as client:
        yield client


def token(client: TestClient) -> str:
    response = client.post(
        "/v1/authorize",
        data={"client_id": CLIENT.client_id, "client_secret": CLIENT.client_secret},
    )
    assert response.status_code == 200, response.text
    value: str = response.json()["access_token"]
    return value


def auth(client: TestClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(client)}", "x-api-key": CLIENT.client_secret}


def advance(client: TestClient, seconds: float) -> None:
    response = client.post("http://testserver/_sim/clock/advance", json={"seconds": seconds})
    assert response.status_code == 200, response.text
