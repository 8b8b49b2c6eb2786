"""What a provider's rules, handlers and errors may use: clock, ids, settings, options, store.

It sits below everything else in the kit, so that errors and the provider record can both
name it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic

from typing_extensions import TypeVar

from simulator.clock import Clock
from simulator.ids import IdFactory, NumberedId
from simulator.settings import Settings
from simulator.store import Store

__all__ = ["ProviderContext"]

OptionsT = TypeVar("OptionsT", default=Any)


@dataclass
class ProviderContext(Generic[OptionsT]):
    """One provider's view of the simulator, typed by its options class ``OptionsT``.

    ``store`` is the provider's own view of the store (its key prefix, judged on ``clock``).
    """

    clock: Clock
    ids: IdFactory
    settings: Settings
    options: OptionsT
    store: Store

    def now(self) -> datetime:
        return self.clock.now()

    def scaled(self, seconds: float) -> float:
        """A documented duration, scaled by ``--time-scale`` (0 makes everything immediate)."""
        return seconds * self.settings.time_scale

    async def next_id(self, scope: str) -> NumberedId:
        """The next id of ``scope`` (``.hex32()``, ``.uuid()``, ...).

        The n-th is a pure function of (seed, scope, n), and n comes from a counter in the
        store, so any number of app instances sharing a store hand out one sequence between
        them, never an id twice.
        """
        n = await self.store.incr(f"ids/{scope}")
        return self.ids.numbered(scope, n)

    async def next_ids(self, scope: str, count: int) -> list[NumberedId]:
        """The next ``count`` ids of ``scope`` at once (one counter step), in order."""
        last = await self.store.incr(f"ids/{scope}", count)
        return [self.ids.numbered(scope, n) for n in range(last - count + 1, last + 1)]
