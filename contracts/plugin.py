"""bulksim's pytest plugin (registered through the ``pytest11`` entry point).

Fixtures:

- ``bulksim_app``: a fresh simulator in this process (ASGI, no sockets) for each test;
  ``bulksim_app.client("deepvue")`` is an ``httpx.Client`` pointed at Deepvue.
- ``bulksim_server``: one uvicorn on a free loopback port for the whole session, reset
  before each test, for clients that need a real socket (requests, curl, ...).
- ``bulksim_settings``: the Settings both use; override it in your conftest.py.

Both fixtures are :class:`contracts.harness.Simulator`: ``url(provider)``,
``credentials(provider)``, ``clock`` (``advance``, ``set``, ``sleep``), ``faults``
(``schedule``, ``clear``), ``journal``, ``options(...)``, ``assert_client_conformant()`` and
``run_client(...)``. A test that ends with an exception inside the simulator fails.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from contracts.harness import Simulator, in_process, serve_in_thread
from simulator.clock import parse_iso
from simulator.settings import Settings

START = "2026-03-09T08:14:08Z"


@pytest.fixture(scope="session")
def bulksim_settings() -> Settings:
    """A manual clock at a fixed instant and seed 0: every run is the same run.

    The journal keeps 128 KiB of each body, so the checks see whole pages of results.
    """
    return Settings(
        clock="manual",
        start=parse_iso(START),
        seed=0,
        journal_size=10_000,
        journal_body_bytes=128 * 1024,
    )


@pytest.fixture
def bulksim_app(bulksim_settings: Settings) -> Iterator[Simulator]:
    """A fresh in-process simulator for this test."""
    with in_process(bulksim_settings) as simulator:
        yield simulator
        simulator.raise_crashes()


@pytest.fixture(scope="session")
def _bulksim_served(bulksim_settings: Settings) -> Iterator[Simulator]:
    with serve_in_thread(bulksim_settings) as simulator:
        yield simulator


@pytest.fixture
def bulksim_server(_bulksim_served: Simulator, bulksim_settings: Settings) -> Iterator[Simulator]:
    """The session's served simulator, reset (state, faults, journal, clock) for this test."""
    simulator = _bulksim_served
    simulator.reset()
    if bulksim_settings.start is not None:
        simulator.clock.set(bulksim_settings.start)
    yield simulator
    simulator.raise_crashes()
