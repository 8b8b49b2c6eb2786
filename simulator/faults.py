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

Webhook kinds strike a provider's next deliveries (:mod:`simulator.webhooks`), never a
request; their ``operation`` is ``*``:

- ``webhook_duplicate``: the delivery is sent twice.
- ``webhook_out_of_order``: the event is held back until the provider's next event has been
  sent (at most ``latency_ms``, default an hour), then sent right after it.
- ``webhook_late``: the delivery is made ``latency_ms`` (default a minute) later on the clock,
  after a polling client could have seen the result.
- ``webhook_drop``: the event is never sent (nor retried).
- ``webhook_bad_signature``: signed with the wrong secret.
- ``webhook_stale_timestamp``: signed correctly with a timestamp ``latency_ms`` (default an
  hour) in the past.
- ``webhook_slow``: the receiver's answer is taken to come after the timeout: the attempt is
  counted as failed and retried, though the receiver got it.

On a store of one process's own the plan is kept here, and checking it costs a call nothing
while no fault is armed. On a store several processes share (``--workers``, two servers on
one file or one Redis) the plan lives in the store: each fault is a record, and a fault for
the next N calls is spent by an atomic ``update`` of its record, so that it strikes exactly N
times across every process. Each process keeps a copy of the plan to match calls against
(no store call for a call no fault names); the copy is read again when the plan's version,
which the state keeps with the clock in its shared record, moves (see
:meth:`simulator.state.SimulatorState.sync`).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, get_args

from simulator.store import Store, Table

__all__ = ["Fault", "FaultError", "FaultPlan", "FaultPlanFull"]

FaultKind = Literal["error", "status", "latency", "rate_limit", "drop", "drop_after", "malformed"]
WebhookFaultKind = Literal[
    "webhook_duplicate",
    "webhook_out_of_order",
    "webhook_late",
    "webhook_drop",
    "webhook_bad_signature",
    "webhook_stale_timestamp",
    "webhook_slow",
]
WEBHOOK_KINDS: tuple[str, ...] = get_args(WebhookFaultKind)
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind) + WEBHOOK_KINDS
# The operation a delivery takes its faults as (no route is named so).
WEBHOOK = "@webhook"
# latency_ms of a webhook kind when none is given: how late, how long held, how stale.
WEBHOOK_LATENCY_MS = {
    "webhook_late": 60_000,
    "webhook_out_of_order": 3_600_000,
    "webhook_stale_timestamp": 3_600_000,
}


class FaultError(ValueError):
    """A fault request that cannot be scheduled; the message says why."""


class FaultPlanFull(FaultError):
    """The plan holds as many faults as it may (the ``max_faults`` setting)."""


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


@dataclass(frozen=True, slots=True)
class Armed:
    """A fault as the shared store keeps it (a :class:`Fault` without its generator)."""

    id: int
    provider: str
    operation: str
    kind: str
    error: str | None
    status: int | None
    latency_ms: int
    retry_after: int
    remaining: int | None
    probability: float | None
    hits: int

    @staticmethod
    def of(fault: Fault) -> Armed:
        return Armed(
            fault.id,
            fault.provider,
            fault.operation,
            fault.kind,
            fault.error,
            fault.status,
            fault.latency_ms,
            fault.retry_after,
            fault.remaining,
            fault.probability,
            fault.hits,
        )


ARMED = Table("faults", Armed)
FAULT_IDS = "fault_ids"


class _Spent(Exception):
    """Another process spent the fault's last call first."""


def _hit(armed: Armed) -> Armed:
    """The record after one more strike; raises :class:`_Spent` when none is left."""
    if armed.probability is None:
        if not armed.remaining:
            raise _Spent
        return replace(armed, remaining=armed.remaining - 1, hits=armed.hits + 1)
    return replace(armed, hits=armed.hits + 1)


class FaultPlan:
    """The faults scheduled on one simulator, checked by the gateway on each call.

    With ``store`` (the state's ``_sim`` view of a shared store) the plan is kept there; the
    async methods (:meth:`add`, :meth:`take`, :meth:`remove`, :meth:`reload`) work on both
    kinds of plan, the sync ones on this process's copy.
    """

    def __init__(self, seed: int, store: Store | None = None, cap: int = 1000) -> None:
        self._seed = seed
        # Every fault by id, in id order; and the same faults by (provider, operation), so
        # that a call looks only at the faults aimed at it (``*`` is an operation of its own).
        self._plan: dict[int, Fault] = {}
        self._index: dict[tuple[str, str], dict[int, Fault]] = {}
        self._next_id = 0
        self.cap = cap
        self.store = store
        # How many changes of the plan this process made or has seen (a shared plan's
        # version, kept by the state in its shared record).
        self.version = 0

    @property
    def armed(self) -> bool:
        """Whether any fault is scheduled (what the gateway checks before :meth:`take`)."""
        return bool(self._plan)

    def _put(self, fault: Fault) -> None:
        self._plan[fault.id] = fault
        self._index.setdefault((fault.provider, fault.operation), {})[fault.id] = fault

    def _drop(self, fault: Fault) -> None:
        self._plan.pop(fault.id, None)
        target = (fault.provider, fault.operation)
        bucket = self._index.get(target, {})
        bucket.pop(fault.id, None)
        if not bucket:
            self._index.pop(target, None)

    def _candidates(self, provider: str, operation: str) -> list[Fault]:
        """The faults that may strike a call of ``operation``, in the order scheduled."""
        exact = self._index.get((provider, operation))
        wildcard = self._index.get((provider, "*"))
        if not exact or not wildcard:
            return list((exact or wildcard or {}).values())
        return sorted([*exact.values(), *wildcard.values()], key=lambda f: f.id)

    def _check_room(self) -> None:
        if len(self._plan) >= self.cap:
            raise FaultPlanFull(
                f"{self.cap} faults are scheduled, the most this simulator keeps (max_faults); "
                "clear some with DELETE /_sim/faults"
            )

    def schedule(
        self,
        spec: Mapping[str, object],
        operations: Mapping[str, list[str]],
        errors: Mapping[str, list[str]],
    ) -> Fault:
        """Validate ``spec`` against the known providers, operations and errors, and add it."""
        self._check_room()
        fault = self._build(spec, operations, errors, self._next_id + 1)
        self._next_id += 1
        self._put(fault)
        return fault

    def _build(
        self,
        spec: Mapping[str, object],
        operations: Mapping[str, list[str]],
        errors: Mapping[str, list[str]],
        fault_id: int,
    ) -> Fault:
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
        if kind in WEBHOOK_KINDS and operation != "*":
            raise FaultError(f"{kind} strikes the provider's webhook deliveries: operation is *")
        fault = Fault(
            id=fault_id,
            provider=provider,
            operation=operation,
            kind=kind,
            rng=self._rng(fault_id),
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
        if kind in WEBHOOK_LATENCY_MS:
            fault.latency_ms = _int(spec, "latency_ms", WEBHOOK_LATENCY_MS[kind], 0, 86_400_000)
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
        return fault

    def _rng(self, fault_id: int) -> random.Random:
        return random.Random(f"{self._seed}/fault/{fault_id}")

    async def add(
        self,
        spec: Mapping[str, object],
        operations: Mapping[str, list[str]],
        errors: Mapping[str, list[str]],
    ) -> Fault:
        """:meth:`schedule`, in the store when the plan is shared."""
        if self.store is None:
            return self.schedule(spec, operations, errors)
        self._check_room()
        self._build(spec, operations, errors, 0)  # refused before an id is spent on it
        fault = self._build(spec, operations, errors, await self.store.incr(FAULT_IDS))
        await self.store.put(ARMED, _key(fault.id), Armed.of(fault))
        self._put(fault)
        self.version += 1
        return fault

    async def take(self, provider: str, operation: str) -> Fault | None:
        """The first scheduled fault that strikes this call, if any.

        On a shared plan a strike is counted in the store, atomically: of the processes
        that try a fault's last call at once, one strikes.
        """
        if self.store is None:
            for fault in self._candidates(provider, operation):
                if fault.provider == provider and _aims(fault, operation) and fault.strikes():
                    if fault.spent:
                        self._drop(fault)
                    return fault
            return None
        # Other calls of this process change the copy while this one awaits the store.
        for fault in self._candidates(provider, operation):
            if fault.provider != provider or not _aims(fault, operation):
                continue
            if fault.probability is not None and fault.rng.random() >= fault.probability:
                continue
            try:
                struck = await self.store.update(ARMED, _key(fault.id), _hit)
            except _Spent:
                struck = None
            self.version += 1  # the count moved (or the fault is gone): read again
            if struck is None:
                fault.remaining = 0
                self._drop(fault)
                continue
            fault.remaining, fault.hits = struck.remaining, struck.hits
            if fault.spent:
                self._drop(fault)
                await self.store.delete(ARMED, _key(fault.id))
            return fault
        return None

    def list(self, provider: str | None = None) -> list[Fault]:
        return [f for f in self._plan.values() if provider in (None, f.provider)]

    def clear(self, provider: str | None = None) -> int:
        gone = self.list(provider)
        for fault in gone:
            self._drop(fault)
        return len(gone)

    async def remove(self, provider: str | None = None) -> int:
        """:meth:`clear`, in the store when the plan is shared."""
        if self.store is None:
            return self.clear(provider)
        await self.reload()
        gone = 0
        for fault in self.list(provider):
            gone += await self.store.delete(ARMED, _key(fault.id))
        self.clear(provider)
        self.version += 1
        return gone

    async def reload(self) -> None:
        """Read a shared plan again from the store (keeping each fault's generator)."""
        if self.store is None:
            return
        known = dict(self._plan)
        faults: list[Fault] = []
        after: str | None = None
        while True:
            page = await self.store.scan(ARMED, after=after, limit=500)
            for _, armed in page.items:
                fault = known.get(armed.id) or Fault(
                    armed.id, armed.provider, armed.operation, armed.kind, rng=self._rng(armed.id)
                )
                fault.error, fault.status = armed.error, armed.status
                fault.latency_ms, fault.retry_after = armed.latency_ms, armed.retry_after
                fault.remaining, fault.probability = armed.remaining, armed.probability
                fault.hits = armed.hits
                faults.append(fault)
            if page.next is None:
                break
            after = page.next
        self._plan, self._index = {}, {}
        for fault in sorted(faults, key=lambda f: f.id):
            self._put(fault)


def _aims(fault: Fault, operation: str) -> bool:
    """Whether ``fault`` is for ``operation`` (a route, or :data:`WEBHOOK`, a delivery)."""
    if (fault.kind in WEBHOOK_KINDS) != (operation == WEBHOOK):
        return False
    return fault.operation in ("*", operation)


def _key(fault_id: int) -> str:
    return f"{fault_id:012d}"


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
