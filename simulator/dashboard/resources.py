"""What the dashboard shows of each provider's batches, processes and fileIds.

Each provider answers through its hook (``Provider.resources``, see ``simulator.kit.resources``)
from its store and its seeds, with the status and progress its own poll would give now: the
seeded examples show before anyone polls them, and progress moves with the clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from simulator.kit.resources import Resource
from simulator.state import SimulatorState

__all__ = ["PER_PROVIDER", "Resource", "live_resources", "next_due"]

# The newest this many of each provider are shown: the page stays quick however many exist.
PER_PROVIDER = 100


async def live_resources(sim: SimulatorState, per_provider: int = PER_PROVIDER) -> list[Resource]:
    """Each provider's newest ``per_provider`` resources (newest first), provider by provider."""
    found: list[Resource] = []
    for runtime in sim.runtimes.values():
        hook = runtime.provider.resources
        if hook is not None:
            found += await hook(runtime.context, runtime.store, per_provider)
    return found


def next_due(resources: Iterable[Resource]) -> Resource | None:
    """The unfinished resource that is ready soonest (None: nothing is due)."""
    due = [r for r in resources if not r.finished and r.ready_at is not None]
    return min(due, key=_ready_at, default=None)


def _ready_at(resource: Resource) -> datetime:
    assert resource.ready_at is not None
    return resource.ready_at
