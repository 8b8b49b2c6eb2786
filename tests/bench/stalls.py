"""How long the heaviest requests the default caps allow hold up everyone else
(``--only stalls``).

Each heavy request is sent from a process of its own while this one probes ``/_sim/health``
every 5 ms on a keep-alive connection: the probes' longest wait is the longest the server's
event loop was held. The sender must not share a process with the prober: building a 128 MB
body in Python would hold that process's interpreter lock, and the probes would then measure
the client, not the server.

Nothing here asserts; the figures are for reading.
"""

from __future__ import annotations

import multiprocessing
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

# The seed accounts' Passcreator key and template (see docs/providers/passcreator.md).
PASSCREATOR_KEY = "pcsim-test-key-5b0e8c7a41d94e2f"
PASSCREATOR_TEMPLATE = "2d1b5f7f-26df-41c6-980f-ed0709f1170d"
PROBE_EVERY = 0.005


def helloatlas_million(origin: str, token: str) -> None:
    """A multiupload of 1,000,000 documents (the default ``max_files``), streamed."""
    from tests.bench.__main__ import Server, helloatlas_batch

    helloatlas_batch(Server(None, origin, 0), token, 1_000_000)  # type: ignore[arg-type]


def passcreator_bulk_create(origin: str, _: str) -> None:
    """A bulk create of 10,000 passes (the default ``max_bulk_items``), a 9.9 MB body."""
    items = [
        {"templateId": PASSCREATOR_TEMPLATE, "userProvidedId": f"u{n}", "firstName": "x" * 900}
        for n in range(10_000)
    ]
    answer = httpx.post(
        f"{origin}/passcreator/api/v3/pass",
        json={"data": items},
        headers={"Authorization": PASSCREATOR_KEY},
        timeout=600,
    )
    answer.raise_for_status()


def passcreator_bulk_update(origin: str, _: str) -> None:
    """A bulk update whose query is the costliest the cap allows (1,000 values compared, in
    ten groups of 100, none of them held), judged over every pass: the 10,000 of the bulk
    create, all made once the clock is a day on."""
    httpx.post(f"{origin}/_sim/clock/advance", json={"seconds": 86_400}).raise_for_status()
    groups = [
        [{"field": "country", "operator": "contains", "value": [f"zz{g}-{v}" for v in range(100)]}]
        for g in range(10)
    ]
    answer = httpx.patch(
        f"{origin}/passcreator/api/v3/pass",
        json={"filter": {"query": {"groups": groups}}, "data": {"country": "x"}},
        headers={"Authorization": PASSCREATOR_KEY},
        timeout=600,
    )
    answer.raise_for_status()


HEAVY: list[tuple[str, Callable[[str, str], None]]] = [
    ("HelloAtlas multiupload of 1,000,000 documents", helloatlas_million),
    ("Passcreator bulk create of 10,000 passes (9.9 MB)", passcreator_bulk_create),
    ("Passcreator bulk update, the costliest query over 10,000 passes", passcreator_bulk_update),
]


def probed(origin: str, send: Callable[[str, str], None], token: str) -> dict[str, Any]:
    """Send one heavy request from a process of its own while probing; the figures."""
    waits: list[float] = []
    stop = threading.Event()

    def probe() -> None:
        with httpx.Client(base_url=origin) as client:
            while not stop.is_set():
                started = time.perf_counter()
                client.get("/_sim/health").raise_for_status()
                waits.append(time.perf_counter() - started)
                time.sleep(PROBE_EVERY)

    prober = threading.Thread(target=probe)
    prober.start()
    time.sleep(0.2)
    sender = multiprocessing.get_context("spawn").Process(target=send, args=(origin, token))
    started = time.perf_counter()
    sender.start()
    sender.join()
    took = time.perf_counter() - started
    stop.set()
    prober.join()
    return {
        "request_s": took,
        "exit": sender.exitcode,
        "probes": len(waits),
        "median_ms": statistics.median(waits) * 1000,
        "max_ms": max(waits) * 1000,
    }


def stalls(facts: Any) -> None:
    from tests.bench.__main__ import helloatlas_token, serve

    print("stalls: the heaviest allowed requests, with /_sim/health probed meanwhile")
    figures: dict[str, Any] = {}
    with serve("bulksim") as server:
        token = helloatlas_token(server)
        for what, send in HEAVY:
            found = figures[what] = probed(server.origin, send, token)
            facts.add(
                f"{what}: longest health-probe wait (median), request time",
                f"{found['max_ms']:.0f} ms ({found['median_ms']:.1f} ms), "
                f"{found['request_s']:.1f} s" + ("" if found["exit"] == 0 else ", FAILED"),
                "≤ ~50 ms",
            )
    facts.data["stalls"] = figures
