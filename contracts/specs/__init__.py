"""The providers' OpenAPI specs: the source of truth for the simulator and the harness alike.

This package sits at the bottom of bulksim's layers (see ARCHITECTURE.md): it imports neither
the simulator nor the rest of the harness, so both can read a spec without reaching into the
other.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

__all__ = ["spec_document", "spec_file"]


def spec_file(provider: str) -> Traversable:
    """Where a provider's spec lives: ``contracts/specs/<provider>.yaml``."""
    return files(__package__) / f"{provider}.yaml"


@cache
def spec_document(provider: str) -> dict[str, Any]:
    """A provider's spec, parsed once (shared: it never changes; do not modify it)."""
    import yaml

    document: dict[str, Any] = yaml.safe_load(spec_file(provider).read_text(encoding="utf-8"))
    return document
