"""bulksim's simulator: four bulk-job providers and a control plane, in one Starlette app."""

from __future__ import annotations

from simulator.app import create_app
from simulator.clock import Clock, ManualClock, SystemClock
from simulator.ids import IdFactory
from simulator.settings import Settings

__all__ = [
    "Clock",
    "IdFactory",
    "ManualClock",
    "Settings",
    "SystemClock",
    "__version__",
    "create_app",
]

__version__ = "0.1.0"
