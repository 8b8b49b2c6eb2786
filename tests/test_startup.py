"""What ``bulksim serve`` loads before it answers: only what serving a poll needs."""

from __future__ import annotations

import json
import subprocess
import sys

from starlette.testclient import TestClient

from contracts.harness import findings_source
from simulator import Settings, create_app
from simulator.__main__ import lazy_findings

# Loaded when first used: the dashboard's findings (the harness's checks, every provider's
# suite, Hypothesis), its templates (Jinja2), a scenario's schema (jsonschema), the first
# token (PyJWT), HTTPS (trustme) and httpx (the first webhook delivery, scenario or hook).
DEFERRED = (
    "contracts.checks",
    "contracts.harness",
    "contracts.suites",
    "contracts.validate",
    "httpx",
    "hypothesis",
    "jinja2",
    "jsonschema",
    "jwt",
    "trustme",
)

PROCESS = "627d21f7-e1a0-4085-84cb-130906cd097c"  # seeded, in progress
STARTED = """
import json, sys
import uvicorn
uvicorn.Server.run = lambda self, sockets=None: None  # started up: stop before serving
from simulator.__main__ import main
sys.argv = ["bulksim", "serve", "--port", "0", "--access-log", "off"]
assert main() == 0
print(json.dumps(sorted(sys.modules)))
"""


def test_serve_starts_without_loading_what_a_poll_does_not_need() -> None:
    done = subprocess.run(
        [sys.executable, "-c", STARTED], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert {"simulator", "uvicorn"} <= loaded
    early = sorted(m for m in loaded if any(m == d or m.startswith(f"{d}.") for d in DEFERRED))
    assert not early, early


def test_the_deferred_findings_judge_as_the_harness_does() -> None:
    app = create_app(Settings(seed=0))
    with TestClient(app) as client:
        listing = client.get("/_sim/providers").json()["providers"]
        key = next(p for p in listing if p["name"] == "passcreator")["credentials"]["api_key"]
        for _ in range(3):  # a poll loop with no wait between polls
            client.get(f"/passcreator/api/v3/process/{PROCESS}", headers={"Authorization": key})
    entries = [entry.as_dict() for entry in app.state.sim.journal.select()]
    found = lazy_findings()(entries, time_scale=1.0)
    assert found  # three polls with no wait between them
    assert found == findings_source()(entries, time_scale=1.0)
