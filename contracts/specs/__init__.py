"""The providers' OpenAPI specs: the source of truth for the simulator and the harness alike.

This package sits at the bottom of bulksim's layers (see ARCHITECTURE.md): it imports neither
the simulator nor the rest of the harness, so both can read a spec without reaching into the
other. Where a provider's spec is, its ``Provider`` record says (``spec_file``): here, by
default, ``contracts/specs/<provider>.yaml``.
"""

from __future__ import annotations

from collections.abc import Hashable
from functools import cache
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:  # importlib.resources loads when a spec is first looked up
    from importlib.resources.abc import Traversable

__all__ = ["spec_document", "spec_file"]


def spec_file(provider: str) -> Traversable:
    """Where a provider's spec lives by default: ``contracts/specs/<provider>.yaml``."""
    from importlib.resources import files

    return files(__package__) / f"{provider}.yaml"


def spec_document(file: Traversable) -> dict[str, Any]:
    """The spec in ``file``, parsed once (shared: it never changes; do not modify it)."""
    # A Traversable does not promise a hash, but every kind there is (a path, a path in a
    # zip archive) has one.
    return _parsed(cast(Hashable, file))


@cache
def _parsed(file: Any) -> dict[str, Any]:
    import yaml

    document: dict[str, Any] = yaml.safe_load(file.read_text(encoding="utf-8"))
    return document
