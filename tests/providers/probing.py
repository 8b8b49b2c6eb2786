"""A served app probed on ``/_sim/health`` while one heavy request runs: how long each probe
waited, to show that the heavy request never holds the event loop."""

from __future__ import annotations

import gc
import threading
import time
from typing import Any

import httpx


def timed(client: httpx.Client, method: str, url: str, **kwargs: Any) -> float:
    """Seconds one request took; it must answer 200."""
    began = time.perf_counter()
    response = client.request(method, url, **kwargs)
    assert response.status_code == 200, response.text
    return time.perf_counter() - began


def while_probing(
    client: httpx.Client, method: str, url: str, **kwargs: Any
) -> tuple[float, list[float]]:
    """Send one request on a connection of its own while ``client`` probes ``/_sim/health``
    back to back; the request's seconds and each probe's.

    The app is served from this process, whose earlier tests leave many objects behind: the
    cyclic garbage collector is paused meanwhile, so that a collection of theirs is not
    timed as the server's."""
    gc.collect()
    gc.disable()
    try:
        return _probed(client, method, url, **kwargs)
    finally:
        gc.enable()


def _probed(
    client: httpx.Client, method: str, url: str, **kwargs: Any
) -> tuple[float, list[float]]:
    heavy: list[float] = []

    def run_heavy() -> None:
        with httpx.Client(base_url=client.base_url, timeout=120) as own:
            heavy.append(timed(own, method, url, **kwargs))

    worker = threading.Thread(target=run_heavy)
    worker.start()
    probes: list[float] = []
    while worker.is_alive():
        probes.append(timed(client, "GET", "/_sim/health"))
    worker.join()
    assert heavy, "the heavy request failed"
    return heavy[0], probes


def held_loop_at_most(
    client: httpx.Client, plain: float, method: str, url: str, **kwargs: Any
) -> tuple[float, list[float]]:
    """:func:`while_probing`, tried up to three times until no probe waited longer than a
    quarter of the heavy request (or ten plain ones); the last try's figures.

    A loop held for the whole request fails every try (its probe waits as long as the
    request); one hiccup of a shared machine does not fail the test."""
    for _ in range(3):
        heavy, probes = while_probing(client, method, url, **kwargs)
        if max(probes) < max(10 * plain, heavy / 4):
            break
    return heavy, probes
