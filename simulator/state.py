"""SimulatorState: the one place a running simulator keeps what it knows.

One state is one sandbox (:mod:`simulator.sandboxes`): the app's own, the default, and one
per sandbox created on the control plane, each with its store scoped under its prefix.
It holds the clock, the seeded ids, the journal, the fault plan, the store and one
:class:`~simulator.kit.provider.ProviderRuntime` per served provider. There are no module
globals: two apps built in one process share nothing but a store handed to both.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from simulator.clock import Clock
from simulator.faults import FaultPlan
from simulator.ids import IdFactory
from simulator.journal import Journal
from simulator.kit.provider import Provider, ProviderRuntime
from simulator.settings import Settings
from simulator.store import MemoryStore, Store

__all__ = ["SimulatorState"]

Sleep = Callable[[float], Awaitable[None]]


@dataclass
class SimulatorState:
    """Clock, ids, journal, faults, the store and each provider's runtime in one simulator."""

    settings: Settings
    clock: Clock
    ids: IdFactory
    providers: Sequence[Provider]
    store: Store = field(default_factory=MemoryStore)
    sleep: Sleep = asyncio.sleep
    # Where its providers are served below the origin: "" (today's paths) for the default
    # sandbox, "/sandboxes/<id>" for another (see simulator.sandboxes).
    base_path: str = ""
    journal: Journal = field(init=False)
    faults: FaultPlan = field(init=False)
    runtimes: dict[str, ProviderRuntime] = field(init=False)
    # Exceptions no handler caught (each answered as the provider's 500): a bug to surface.
    crashes: deque[BaseException] = field(default_factory=lambda: deque(maxlen=100))

    def __post_init__(self) -> None:
        self.journal = Journal(self.settings.journal_size)
        self.faults = FaultPlan(self.settings.seed)
        self.runtimes = {
            p.name: ProviderRuntime(p, self.clock, self.ids, self.settings, self.store)
            for p in self.providers
        }

    async def reset(self, provider: str | None = None) -> list[str]:
        """Back to the fresh state (seeded examples included); returns what was reset."""
        names = [provider] if provider else list(self.runtimes)
        for name in names:
            await self.runtimes[name].reset()
        return names

    def operations(self) -> dict[str, list[str]]:
        return {name: rt.provider.operations() for name, rt in self.runtimes.items()}

    def error_names(self) -> dict[str, list[str]]:
        return {
            name: [e.__name__ for e in rt.provider.errors] for name, rt in self.runtimes.items()
        }
