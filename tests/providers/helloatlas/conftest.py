from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from simulator.providers.helloatlas.models import TEST_CLIENTS, Client

CLIENT = TEST_CLIENTS[0]
OTHER = TEST_CLIENTS[1]
BASE = "http://testserver/helloatlas"
FIXTURES = Path(__file__).parents[3] / "fixtures" / "helloatlas"
SEED_BATCH = "BATCH-69469-BBRSS-20260309081408"
EXAMPLE_BATCH = "BATCH-30732-SIYKJ-20251121113228"
BATCH_ID = r"BATCH-[0-9]{5}-[A-Z]{5}-[0-9]{14}"


@pytest.fixture
def helloatlas(app: Starlette) -> Iterator[TestClient]:
    """A client whose base URL is HelloAtlas's prefix; /_sim is reached by absolute URL."""
    with TestClient(app, base_url=BASE) as client:
        yield client


def fixture(name: str) -> object:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def token(client: TestClient, who: Client = CLIENT) -> str:
    response = client.post(
        "/v1/bulk/authtoken",
        headers={"Client-Id": who.client_id, "Client-Secret": who.client_secret},
    )
    assert response.status_code == 201, response.text
    value: str = response.json()["access_token"]
    return value


def auth(client: TestClient, who: Client = CLIENT) -> dict[str, str]:
    return {"Token": token(client, who)}


def files(*names: str) -> list[dict[str, str]]:
    """file_urls entries numbered "1", "2", ... for the given file names."""
    return [
        {"file_url": f"https://docs.example.com/uploads/{name}", "document_id": str(number)}
        for number, name in enumerate(names, 1)
    ]


def upload(client: TestClient, headers: dict[str, str], entries: Sequence[dict[str, str]]) -> str:
    """Submit a batch; its batch_id."""
    response = client.post(
        "/v1/bulk/multiupload",
        json={"product_type": "POC_CDL", "file_urls": list(entries)},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    batch_id: str = response.json()[0]["batch_id"]
    return batch_id


def extracts(
    client: TestClient, headers: dict[str, str], batch_id: str, **params: str | int
) -> dict[str, Any]:
    response = client.get(
        "/v1/bulk/extracts", params={"batch_id": batch_id, **params}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def documents(page: dict[str, Any]) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = page["data"]
    assert isinstance(data, list)
    return data


def advance(client: TestClient, seconds: float) -> None:
    response = client.post("http://testserver/_sim/clock/advance", json={"seconds": seconds})
    assert response.status_code == 200, response.text
