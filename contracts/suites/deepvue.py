"""Deepvue: authorize with client credentials, then Bearer token plus x-api-key."""

from __future__ import annotations

from collections.abc import Mapping

import httpx


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
