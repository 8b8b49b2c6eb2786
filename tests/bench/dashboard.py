"""The dashboard's figures for ``make bench``: the first render of ``/_sim/ui`` with 1,000
journal entries and 1,000 batches, and what the page costs provider requests (nothing: no
dashboard code runs on them). In process, on a manual clock: nothing here is served.

The providers' packages are imported first, as a served process has them a tenth of a second
after it starts (``bulksim serve`` loads them to print the test credentials): an app loads a
provider's package when it first needs it, and a page that also had to import the three
providers the batches did not use would take some 30 ms more, once a process."""

from __future__ import annotations

import re
import statistics
import sys
import time
from datetime import UTC, datetime
from types import FrameType
from typing import Any, Protocol

from starlette.testclient import TestClient

from simulator import ManualClock, Settings, available_providers, create_app

KEY = "pcsim-test-key-5b0e8c7a41d94e2f"
TEMPLATE = "2d1b5f7f-26df-41c6-980f-ed0709f1170d"


class Figures(Protocol):
    data: dict[str, Any]

    def add(self, name: str, figure: str, note: str = "") -> None: ...


def dashboard(figures: Figures) -> None:
    print("the dashboard: /_sim/ui with 1,000 journal entries and 1,000 batches", flush=True)
    available_providers()  # every provider's package imported, as served (see above)
    # The first app also compiles the templates; the first check builds the spec validator
    # (both once a process).
    for label in ("in a fresh process", "again in the same process"):
        renders, shown, calls, checking = _render(label)
        first, again = renders[0] * 1000, statistics.median(renders[1:]) * 1000
        figures.data[f"dashboard, {label}"] = {
            "first_ms": first,
            "again_ms": again,
            "check_ms": checking * 1000,
        }
        figures.add(
            f"/_sim/ui, 1,000 batches ({shown:,} rows shown), {label}",
            f"{first:,.0f} ms first, {again:,.0f} ms again",
            "target < 100 ms; 50 journal rows, shown before they are checked against the "
            "spec; the newest 100 resources of each provider, with the seeded examples",
        )
        figures.add(
            f"/_sim/ui/live checking those 50 rows against the spec, {label}",
            f"{checking * 1000:,.0f} ms",
            "what the page's script asks next, off the event loop (the first in a process "
            "builds the spec validator)",
        )
    figures.data["dashboard_calls_on_provider_requests"] = calls
    figures.add("dashboard calls during 1,000 provider requests", str(calls), "target 0")


def _render(label: str) -> tuple[list[float], int, int, float]:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    app = create_app(Settings(journal_size=1000), clock=clock)
    calls = 0

    def count(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal calls
        if event == "call" and "simulator/dashboard" in frame.f_code.co_filename:
            calls += 1

    with TestClient(app) as client:
        headers = {"Authorization": KEY}
        body = {"data": [{"templateId": TEMPLATE}, {"templateId": TEMPLATE}]}
        sys.setprofile(count)
        try:
            for _ in range(1000):  # each a bulk create: one entry, one process
                response = client.post("/passcreator/api/v3/pass", json=body, headers=headers)
                assert response.is_success
        finally:
            sys.setprofile(None)
        renders = []
        for _ in range(5):
            started = time.perf_counter()
            page = client.get("/_sim/ui")
            renders.append(time.perf_counter() - started)
            assert page.status_code == 200
        unchecked = re.findall(r'class="entry[^"]* unchecked"\s+data-seq="(\d+)"', page.text)
        started = time.perf_counter()
        live = client.get(f"/_sim/ui/live?since=1000&check={','.join(unchecked)}")
        checking = time.perf_counter() - started
        assert len(live.json()["checked"]) == len(unchecked) == 50
    return renders, page.text.count('<tr class="resource"'), calls, checking
