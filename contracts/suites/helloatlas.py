"""HelloAtlas: exchange Client-Id and Client-Secret headers for a token, sent as ``Token``."""

from __future__ import annotations

from collections.abc import Mapping

import httpx


def auth_headers(client: httpx.Client, credentials: Mapping[str, object]) -> dict[str, str]:
    response = client.post(
        "/v1/bulk/authtoken",
        headers={
            "Client-Id": str(credentials["client_id"]),
            "Client-Secret": str(credentials["client_secret"]),
        },
    )
    response.raise_for_status()
    return {"Token": str(response.json()["access_token"])}
