"""Deepvue: authorize with client credentials, then Bearer token plus x-api-key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

import httpx

from contracts.checks import Behaviour, Polling

Entry = Mapping[str, Any]


def auth_headers(client: httpx.Client, credentials: Mapping[str, object]) -> dict[str, str]:
    response = client.post(
        "/v1/authorize",
        data={"client_id": credentials["client_id"], "client_secret": credentials["client_secret"]},
    )
    response.raise_for_status()
    return {
        "Authorization": f"Bearer {response.json()['access_token']}",
        "x-api-key": str(credentials["client_secret"]),
    }


def _request_id(entry: Entry) -> str | None:
    values = parse_qs(entry["query"]).get("request_id")
    return values[0] if values else None


def _completed(entry: Entry) -> bool:
    body = entry["response"]["body"]
    return (
        isinstance(body, dict)
        and isinstance(body.get("data"), dict)
        and body["data"].get("status") == 200
    )


def _expired(entry: Entry) -> bool:
    body = entry["response"]["body"]
    return bool(entry["response"]["status"] == 401 and body == {"detail": "Authorization failure"})


BEHAVIOUR = Behaviour(
    polling=[Polling("get_batch_processing_status", _request_id, _completed)],
    expired_token=_expired,
)
