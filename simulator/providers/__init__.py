"""The provider registry: adding a provider is one line here."""

from __future__ import annotations

from simulator.kit.provider import Provider
from simulator.providers import check, deepvue, helloatlas, passcreator

__all__ = ["PROVIDERS"]

PROVIDERS: tuple[Provider, ...] = (
    deepvue.PROVIDER,
    passcreator.PROVIDER,
    helloatlas.PROVIDER,
    check.PROVIDER,
)
