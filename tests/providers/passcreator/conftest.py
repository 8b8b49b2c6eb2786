from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from simulator.providers.passcreator.models import TEST_ACCOUNTS

ACCOUNT = TEST_ACCOUNTS[0]
OTHER = TEST_ACCOUNTS[1]
KEY = {"Authorization": ACCOUNT.api_key}
OTHER_KEY = {"Authorization": OTHER.api_key}
TEMPLATE = ACCOUNT.templates[0].identifier
BASE = "http://testserver/passcreator"
PASSES = "/api/v3/pass"
SEED_PROCESS = "627d21f7-e1a0-4085-84cb-130906cd097c"
DAVID = "1d2ffd3d-bf5c-4c11-964f-018aee016dda"
RAY = "64d55135-8a4c-afb0-e107-4d17d771b9c5"


@pytest.fixture
def passcreator(app: Starlette) -> Iterator[TestClient]:
    """A client whose base URL is Passcreator's prefix; /_sim is reached by absolute URL."""
    with TestClient(app, base_url=BASE) as client:
        yield client


def advance(client: TestClient, seconds: float) -> None:
    response = client.post("http://testserver/_sim/clock/advance", json={"seconds": seconds})
    assert response.status_code == 200, response.text


def process(client: TestClient, identifier: str) -> dict[str, Any]:
    response = client.get(f"/api/v3/process/{identifier}", headers=KEY)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def bulk_create(client: TestClient, items: list[object]) -> str:
    response = client.post(PASSES, json={"data": items}, headers=KEY)
    assert response.status_code == 200, response.text
    identifier: str = response.json()["data"]["identifier"]
    return identifier


def bulk_update(client: TestClient, query: dict[str, object], data: dict[str, object]) -> str:
    response = client.patch(PASSES, json={"filter": {"query": query}, "data": data}, headers=KEY)
    assert response.status_code == 200, response.text
    identifier: str = response.json()["data"]["identifier"]
    return identifier


def encoded(query: dict[str, object]) -> str:
    """A query as ``?query=`` carries it: base64url JSON without padding."""
    return base64.urlsafe_b64encode(json.dumps(query).encode()).decode().rstrip("=")


def where(field: str, operator: str, value: object = None) -> dict[str, object]:
    condition: dict[str, object] = {"field": field, "operator": operator}
    if value is not None:
        condition["value"] = value
    return {"groups": [[condition]]}


def listed(client: TestClient, query: dict[str, object] | None = None) -> list[dict[str, Any]]:
    params = {"query": encoded(query)} if query is not None else {}
    response = client.get(PASSES, params=params, headers=KEY)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def by_user_id(client: TestClient, user_id: str) -> list[dict[str, Any]]:
    return listed(client, where("userProvidedId", "equals", [user_id]))
