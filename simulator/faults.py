"""Scheduled faults: make a provider misbehave on purpose, deterministically.

A fault names a provider, optionally an operation (a route name; ``*`` for any), a kind, and
when it strikes: the next ``count`` calls, or each call with ``probability`` (drawn from a
generator seeded by the simulator's seed and the fault's id, so a run replays exactly).

Kinds:

- ``error``: a documented error from the provider's catalogue, by name (``error``).
- ``status``: any HTTP status (``status``), in the provider's generic error envelope.
- ``latency``: wait ``latency_ms`` before answering normally.
- ``rate_limit``: the provider's 429 with ``Retry-After: retry_after``.
- ``drop``: the connection is closed before the request is handled.
- ``drop_after``: the request is handled (its effects happen), then the connection is closed
  before the answer: what tests whether a retrying client does the work twice.
- ``malformed``: a 200 whose body is truncated JSON.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

__all__ = ["Fault", "FaultError", "FaultPlan"]

FaultKind = Literal["error", "status", "latency", "rate_limit", "drop", "drop_after", "malformed"]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)


class FaultError(ValueError):
    """A fault request that cannot be scheduled; the message says why."""


@dataclass
class Fault:
    """One scheduled fault."""

    id: int
    provider: str
    operation: str
    kind: str
    error: str | None = None
    status: int | None = None
    latency_ms: int = 0
    retry_after: int = 30
    remaining: int | None = 1
    probability: float | None = None
    hits: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def strikes(self) -> bool:
        """Whether this call is hit; counts the hit."""
        if self.probability is not None:
            if self.rng.random() >= self.probability:
                return False
        elif not self.remaining:
            return False
        else:
            self.remaining -= 1
        self.hits += 1
        return True

    @property
    def spent(self) -> bool:
        return self.probability is None and not self.remaining

    def describe(self) -> str:
        detail = {
            "error": self.error,
            "status": str(self.status),
            "latency": f"{self.latency_ms}ms",
            "rate_limit": f"retry_after={self.retry_after}",
        }.get(self.kind)
        return f"{self.kind}:{detail}" if detail else self.kind

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "provider": self.provider,
            "operation": self.operation,
            "kind": self.kind,
            "error": self.error,
            "status": self.status,
            "latency_ms": self.latency_ms,
            "retry_after": self.retry_after,
            "remaining": self.remaining,
            "probability": self.probability,
            "hits": self.hits,
        }


class FaultPlan:
    """The faults scheduled on one simulator, checked by the gateway on each call."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._faults: list[Fault] = []
        self._next_id = 0

    def schedule(
        self,
        spec: Mapping[str, object],
        operations: Mapping[str, list[str]],
        errors: Mapping[str, list[str]],
    ) -> Fault:
        """Validate ``spec`` against the known providers, operations and errors, and add it."""
        provider = _text(spec, "provider")
        if provider not in operations:
            raise FaultError(f"unknown provider {provider!r}; known: {', '.join(operations)}")
        operation = _text(spec, "operation", "*")
        if operation != "*" and operation not in operations[provider]:
            known = ", ".join(operations[provider])
            raise FaultError(f"unknown operation {operation!r} for {provider}; known: {known}")
        kind = _text(spec, "kind")
        if kind not in FAULT_KINDS:
            raise FaultError(f"kind must be one of {', '.join(FAULT_KINDS)}")
        self._next_id += 1
        fault = Fault(
            id=self._next_id,
            provider=provider,
            operation=operation,
            kind=kind,
            rng=random.Random(f"{self._seed}/fault/{self._next_id}"),
        )
        if kind == "error":
            fault.error = _text(spec, "error")
            if fault.error not in errors[provider]:
                known = ", ".join(errors[provider])
                raise FaultError(f"unknown error {fault.error!r} for {provider}; known: {known}")
        if kind == "status":
            fault.status = _int(spec, "status", None, 100, 599)
        if kind == "latency":
            fault.latency_ms = _int(spec, "latency_ms", None, 0, 120_000)
        if kind == "rate_limit":
            fault.retry_after = _int(spec, "retry_after", 30, 0, 86_400)
        if "probability" in spec:
            if "count" in spec:
                raise FaultError("give either count or probability, not both")
            probability = spec["probability"]
            if not isinstance(probability, int | float) or not 0 <= probability <= 1:
                raise FaultError("probability must be a number from 0 to 1")
            fault.probability = float(probability)
            fault.remaining = None
        else:
            fault.remaining = _int(spec, "count", 1, 1, 1_000_000)
        self._faults.append(fault)
        return fault

    def take(self, provider: str, operation: str) -> Fault | None:
        """The first scheduled fault that strikes this call, if any."""
        if not self._faults:
            return None
        for fault in self._faults:
            if (
                fault.provider == provider
                and fault.operation in ("*", operation)
                and fault.strikes()
            ):
                if fault.spent:
                    self._faults.remove(fault)
                return fault
        return None

    def list(self, provider: str | None = None) -> list[Fault]:
        return [f for f in self._faults if provider in (None, f.provider)]

    def clear(self, provider: str | None = None) -> int:
        before = len(self._faults)
        self._faults = [f for f in self._faults if provider not in (None, f.provider)]
        return before - len(self._faults)


def _text(spec: Mapping[str, object], key: str, default: str | None = None) -> str:
    value = spec.get(key, default)
    if not isinstance(value, str) or not value:
        raise FaultError(f"{key} is required and must be a string")
    return value


def _int(spec: Mapping[str, object], key: str, default: int | None, low: int, high: int) -> int:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise FaultError(f"{key} must be an integer from {low} to {high}")
    return value
