"""bulksim's simulator: four bulk-job providers and a control plane, in one Starlette app.

This module is the simulator's public API: the harness, the contract suites and the CLI use
what it exports (and :mod:`simulator.server`, :mod:`simulator.settings`, :mod:`simulator.clock`,
:mod:`simulator.tls`), never the modules behind it. ARCHITECTURE.md draws the layers.
"""

from __future__ import annotations

import gc

# What importing the simulator makes (classes, routes, specs' tables) lives as long as the
# process: the cyclic collector, which would run a dozen times over it meanwhile and free
# nothing, is paused until the import is done, and what the import made is then moved to the
# oldest generation (freeze, then unfreeze: nothing stays frozen), which only a full
# collection scans. Re-enabled with all of it still young, the next collections scanned it
# all again, at a cost of some 10 ms of start-up.
_collecting = gc.isenabled()
gc.disable()
try:
    from typing import TYPE_CHECKING, Any

    from simulator.app import available_providers, create_app, make_clock, provider_names
    from simulator.clock import Clock, ManualClock, SystemClock
    from simulator.dashboard import FindingsSource
    from simulator.faults import WEBHOOK_KINDS as WEBHOOK_FAULT_KINDS
    from simulator.gateway import ConnectionDropped
    from simulator.ids import IdFactory
    from simulator.kit.provider import Provider
    from simulator.scenarios import (
        Scenario,
        ScenarioError,
        load_scenario,
        settings_with,
        start_default,
    )
    from simulator.settings import Settings
    from simulator.state import SimulatorState
    from simulator.store import MemoryStore, Store, open_store

    if TYPE_CHECKING:
        from simulator.store.sqlite import SqliteStore
finally:
    if _collecting:
        gc.freeze()
        gc.unfreeze()
        gc.enable()

__all__ = [
    "WEBHOOK_FAULT_KINDS",
    "Clock",
    "ConnectionDropped",
    "FindingsSource",
    "IdFactory",
    "ManualClock",
    "MemoryStore",
    "Provider",
    "Scenario",
    "ScenarioError",
    "Settings",
    "SimulatorState",
    "SqliteStore",
    "Store",
    "SystemClock",
    "__version__",
    "available_providers",
    "create_app",
    "load_scenario",
    "make_clock",
    "open_store",
    "provider_names",
    "settings_with",
    "start_default",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # The SQLite backend loads when it is first asked for (see simulator.store).
    if name == "SqliteStore":
        from simulator.store.sqlite import SqliteStore

        return SqliteStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
