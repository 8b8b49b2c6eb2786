"""Check: a static API key on every request, ``Authorization: Bearer vfy_...``."""

from __future__ import annotations

from collections.abc import Mapping

import httpx


def auth_headers(client: httpx.Client, credentials: Mapping[str, object]) -> dict[str, str]:
    return {"Authorization": f"Bearer {credentials['api_key']}"}
