"""bulksim's pytest plugin (registered through the ``pytest11`` entry point).

Fixtures:

- ``bulksim_app``: a fresh simulator in this process (ASGI, no sockets) for each test;
  ``bulksim_app.client("deepvue")`` is an ``httpx.Client`` pointed at Deepvue and
  ``bulksim_app.async_client("deepvue")`` an ``httpx.AsyncClient``.
- ``bulksim_server``: a uvicorn on a free loopback port, reset before each test, for clients
  that open sockets (requests, urllib, aiohttp, curl, ...). Each distinct ``bulksim_settings``
  gets its own server, started when first asked for and stopped at the end of the session.
- ``bulksim_settings``: the Settings both use; override it in your conftest.py, starting from
  :func:`contracts.harness.default_settings` to keep the harness's defaults.

Both fixtures are :class:`contracts.harness.Simulator`: ``url(provider)``,
``credentials(provider)``, ``clock`` (``advance``, ``set``, ``sleep``, ``async_sleep``),
``faults`` (``schedule``, ``clear``), ``journal``, ``options(...)``,
``assert_client_conformant()`` and ``run_client(...)``. A test that ends with an exception
inside the simulator fails.

This module imports nothing of bulksim until a fixture is used: bulksim's code lives in the
packages ``contracts`` and ``simulator``, and a project with packages of those names must
still be able to run its tests with the plugin installed.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from contracts.harness import ServedSimulators, Simulator
    from simulator.settings import Settings


def _harness() -> ModuleType:
    """``contracts.harness``, or a failure that says whose ``contracts`` is in the way."""
    try:
        harness = importlib.import_module("contracts.harness")
        importlib.import_module("simulator.settings")
        for package, module in (
            ("contracts", "contracts.harness"),
            ("simulator", "simulator.settings"),
        ):
            home = Path(getattr(sys.modules[package], "__file__", None) or ".").parent
            if home != Path(getattr(sys.modules[module], "__file__", None) or ".").parent:
                raise ImportError(f"`{package}` is not bulksim's")
    except ImportError as exc:
        problem = str(exc)
    else:
        return harness
    found = [
        f"`{name}` from {getattr(sys.modules[name], '__file__', None) or '?'}"
        for name in ("contracts", "simulator")
        if name in sys.modules
    ]
    pytest.fail(
        "bulksim's fixtures need bulksim's packages `contracts` and `simulator`, but "
        f"importing them failed ({problem}): this run imports "
        f"{' and '.join(found) or 'other packages of those names'}. "
        "Use the bulksim fixtures from a test run where your own `contracts` and "
        "`simulator` packages do not come first on sys.path.",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def bulksim_settings() -> Settings:
    """A manual clock at a fixed instant and seed 0: every run is the same run.

    The journal keeps 128 KiB of each body, so the checks see whole pages of results. To change
    some of it, override this fixture and return ``default_settings(field=value, ...)``.
    """
    settings: Settings = _harness().default_settings()
    return settings


@pytest.fixture
def bulksim_app(bulksim_settings: Settings) -> Iterator[Simulator]:
    """A fresh in-process simulator for this test."""
    with _harness().in_process(bulksim_settings) as simulator:
        yield simulator
        simulator.raise_crashes()


@pytest.fixture(scope="session")
def _bulksim_servers() -> Iterator[ServedSimulators]:
    """The session's served simulators, one per distinct Settings, all stopped at its end."""
    with _harness().ServedSimulators() as servers:
        yield servers


@pytest.fixture
def bulksim_server(
    _bulksim_servers: ServedSimulators, bulksim_settings: Settings
) -> Iterator[Simulator]:
    """The simulator serving these settings, reset (state, faults, journal, clock) for this test."""
    simulator: Simulator = _bulksim_servers.get(bulksim_settings)
    simulator.reset()
    if bulksim_settings.start is not None:
        simulator.clock.set(bulksim_settings.start)
    yield simulator
    simulator.raise_crashes()
