"""bulksim's pytest plugin (registered through the ``pytest11`` entry point).

Fixtures:

- ``bulksim_app``: a fresh simulator in this process (ASGI, no sockets) for each test;
  ``bulksim_app.client("deepvue")`` is an ``httpx.Client`` pointed at Deepvue and
  ``bulksim_app.async_client("deepvue")`` an ``httpx.AsyncClient``.
- ``bulksim_server``: a sandbox of its own for each test (its own state, clock, faults and
  journal; deleted after the test) on a uvicorn on a free loopback port, for clients that
  open sockets (requests, urllib, aiohttp, curl, ...). Each distinct ``bulksim_settings``
  gets its own server, started when first asked for and stopped at the end of the session.
  With ``--bulksim-url URL`` (or ``BULKSIM_URL``) the sandboxes are made on a server that is
  already running (``--bulksim-token`` / ``BULKSIM_TOKEN``: its control token), so pytest-xdist
  workers can share one. ``--bulksim-sandboxes off`` falls back to the shared default
  sandbox, reset before each test.
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
import os
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


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bulksim")
    group.addoption(
        "--bulksim-url",
        default=None,
        help="run bulksim_server tests on the bulksim serving at this URL (env BULKSIM_URL)",
    )
    group.addoption(
        "--bulksim-token",
        default=None,
        help="that server's control token (env BULKSIM_TOKEN)",
    )
    group.addoption(
        "--bulksim-sandboxes",
        choices=("on", "off"),
        default="on",
        help="on (default): each test gets its own sandbox; off: the tests share the "
        "default sandbox, reset before each test",
    )


def _option(config: pytest.Config, name: str, env: str) -> str | None:
    value: str | None = config.getoption(name) or os.environ.get(env) or None
    return value


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
def _bulksim_servers(pytestconfig: pytest.Config) -> Iterator[ServedSimulators]:
    """The session's served simulators, one per distinct Settings, all stopped at its end
    (or the one at ``--bulksim-url``)."""
    url = _option(pytestconfig, "bulksim_url", "BULKSIM_URL")
    token = _option(pytestconfig, "bulksim_token", "BULKSIM_TOKEN")
    with _harness().ServedSimulators(url, token) as servers:
        yield servers


@pytest.fixture
def bulksim_server(
    _bulksim_servers: ServedSimulators, bulksim_settings: Settings, pytestconfig: pytest.Config
) -> Iterator[Simulator]:
    """A sandbox of its own for this test (seed, clock, start and options of the settings)
    on the simulator serving these settings; with ``--bulksim-sandboxes off``, that
    simulator's default sandbox, reset (state, faults, journal, clock) for this test."""
    simulator: Simulator = _bulksim_servers.get(bulksim_settings)
    if pytestconfig.getoption("bulksim_sandboxes") == "off":
        simulator.reset()
        if bulksim_settings.start is not None:
            simulator.clock.set(bulksim_settings.start)
        yield simulator
        simulator.raise_crashes()
        return
    with simulator.sandbox(bulksim_settings) as sandbox:
        yield sandbox
        sandbox.raise_crashes()
