"""Passcreator: the raw API key in ``Authorization``, no token exchange and no Bearer prefix."""

from __future__ import annotations

from collections.abc import Mapping

import httpx


def auth_headers(client: httpx.Client, credentials: Mapping[str, object]) -> dict[str, str]:
    return {"Authorization": str(credentials["api_key"])}
