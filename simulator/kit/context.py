"""What a provider's store, rules and errors may use: the clock, seeded ids, settings, options.

It sits below everything else in the kit, so that errors and the provider record can both
name it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simulator.clock import Clock
from simulator.ids import IdFactory
from simulator.settings import Settings

__all__ = ["ProviderContext"]


@dataclass
class ProviderContext:
    """One provider's view of the simulator: its clock, ids, settings and current options."""

    clock: Clock
    ids: IdFactory
    settings: Settings
    options: Any

    def scaled(self, seconds: float) -> float:
        """A documented duration, scaled by ``--time-scale`` (0 makes everything immediate)."""
        return seconds * self.settings.time_scale
