"""Where the harness finds a provider's parts: from its ``Provider`` record, and only there.

A record names its spec file (``spec_file``) and its contract suite (``suite_module``: a
dotted module name, ``contracts.suites.<name>`` unless the record says otherwise). The
harness, the strategies and ``bulksim verify`` all ask here, so a provider that lives outside
the package (its own folder, spec and suite) is found the same way as the four built in. A
name is looked up among the providers bulksim serves (``simulator.available_providers``);
pass the record itself for any other.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Mapping
from typing import Any, Protocol

import httpx

from contracts.specs import spec_document
from simulator import Provider, available_providers

__all__ = ["Suite", "record_of", "spec_of", "suite_of"]


class Suite(Protocol):
    """What every contract suite provides; besides it, optionally ``BEHAVIOUR`` (the
    checks), ``SPACE`` (the fuzzing scenarios), ``CREDENTIAL_KEYS``, ``probe`` and
    ``lifecycle`` (what ``bulksim verify`` runs)."""

    def auth_headers(
        self, client: httpx.Client, credentials: Mapping[str, object]
    ) -> dict[str, str]:
        """Headers that authenticate a request, obtained through ``client`` (base URL set)."""
        ...


def record_of(provider: str | Provider) -> Provider:
    """The provider's record: a record as it is, a name among ``available_providers()``."""
    if isinstance(provider, Provider):
        return provider
    known = {p.name: p for p in available_providers()}
    if provider not in known:
        raise LookupError(f"unknown provider {provider!r}; known: {', '.join(known)}")
    return known[provider]


def suite_of(provider: str | Provider) -> Suite:
    """The provider's contract suite, the module its record names.

    Raises :class:`LookupError` when that module does not exist.
    """
    name = record_of(provider).suite_module
    try:
        module: Suite = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not f"{name}.".startswith(f"{exc.name}."):
            raise  # the suite exists but imports something missing: a bug to show
        raise LookupError(f"no contract suite for {record_of(provider).name}: {exc}") from None
    return module


def spec_of(provider: str | Provider) -> dict[str, Any]:
    """A private copy of the provider's spec (schemathesis may change what it is given)."""
    return copy.deepcopy(spec_document(record_of(provider).spec_file))
