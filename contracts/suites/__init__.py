"""Per-provider contract knowledge: how to authenticate against any target of a provider."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Protocol

import httpx

__all__ = ["Suite", "suite_for"]


class Suite(Protocol):
    """What every ``contracts.suites.<provider>`` module provides."""

    def auth_headers(
        self, client: httpx.Client, credentials: Mapping[str, object]
    ) -> dict[str, str]:
        """Headers that authenticate a request, obtained through ``client`` (base URL set)."""
        ...


def suite_for(provider: str) -> Suite:
    module: Suite = importlib.import_module(f"contracts.suites.{provider}")
    return module
