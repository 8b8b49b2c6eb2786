"""What ``bulksim serve`` loads before it answers: only what serving a poll needs."""

from __future__ import annotations

import compileall
import json
import subprocess
import sys
from pathlib import Path

from starlette.testclient import TestClient

from contracts.harness import findings_source
from simulator import Settings, create_app
from simulator.__main__ import lazy_findings

PASSCREATOR_KEY = "pcsim-test-key-5b0e8c7a41d94e2f"  # the seeded test account's

# Loaded when first used: the dashboard's findings (the harness's checks, every provider's
# suite, Hypothesis), its templates (Jinja2), a scenario's schema (jsonschema) and its YAML
# (PyYAML), the first token (PyJWT), HTTPS (trustme), httpx (the first webhook delivery,
# scenario or hook), Passcreator's webhook signing key (cryptography), and pydantic (a
# store's codecs, which the memory store never builds, a snapshot restored, a sandbox
# created), the installed version (importlib.metadata, for --version) and Deepvue's missing
# file answer (XML escaping), and the dashboard's plots (its first page).
DEFERRED = (
    "contracts.checks",
    "contracts.harness",
    "contracts.suites",
    "contracts.validate",
    "cryptography",
    "httpx",
    "hypothesis",
    "importlib.metadata",
    "jinja2",
    "jsonschema",
    "jwt",
    "pydantic",
    "pydantic_core",
    "simulator.dashboard.plots",
    "simulator.sandboxspec",
    "trustme",
    "xml.sax",
    "yaml",
)

PROCESS = "627d21f7-e1a0-4085-84cb-130906cd097c"  # seeded, in progress
# bulksim serve as the command starts it, its app then asked by ASGI (no HTTP client, which
# would load httpx): health, a Passcreator poll with the test key and a Deepvue poll without
# a token, the first answers start-up is timed to; then the modules loaded.
STARTED = """
import asyncio, json, sys
import simulator.server

ANSWERS = []


async def ask(app, path, headers):
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    target, _, query = path.partition("?")
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": target, "raw_path": target.encode(), "root_path": "",
        "query_string": query.encode(), "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8700),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    await app(scope, receive, send)
    return sent[0]["status"]


def served(app, host, port, announce=None, **options):
    async def first_answers():
        for path, headers in PATHS:
            ANSWERS.append(await ask(app, path, headers))

    asyncio.run(first_answers())
    return 0


PATHS = json.loads(sys.argv[1])
simulator.server.run_uvicorn = served  # started up: answer in process instead of serving
from simulator.__main__ import main
sys.argv = ["bulksim", "serve", "--port", "0", "--access-log", "off", "--seed", "0"]
assert main() == 0
print(json.dumps({"answers": ANSWERS, "modules": sorted(sys.modules)}))
"""
FIRST_ANSWERS = [
    ("/_sim/health", {}, 200),
    (f"/passcreator/api/v3/process/{PROCESS}", {"Authorization": PASSCREATOR_KEY}, 200),
    ("/deepvue/v1/verification/batch-processing-status?request_id=" + "0" * 32, {}, 401),
]


def test_serve_answers_its_first_polls_without_loading_what_a_poll_does_not_need() -> None:
    paths = json.dumps([[path, headers] for path, headers, _ in FIRST_ANSWERS])
    done = subprocess.run(
        [sys.executable, "-c", STARTED, paths], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["answers"] == [status for _, _, status in FIRST_ANSWERS]
    loaded = set(result["modules"])
    assert {"simulator", "uvicorn"} <= loaded
    early = sorted(m for m in loaded if any(m == d or m.startswith(f"{d}.") for d in DEFERRED))
    assert not early, early


# Counts the collector's runs while the package's own import is underway (its __all__, set
# after every import it makes, not yet there).
COLLECTIONS = """
import gc, sys

during = []


def counted(phase, info):
    package = sys.modules.get("simulator")
    if phase == "start" and package is not None and not hasattr(package, "__all__"):
        during.append(info["generation"])


gc.callbacks.append(counted)
import simulator
print(len(during), gc.isenabled())
"""


def test_importing_the_simulator_runs_no_collection_and_leaves_the_collector_on() -> None:
    package = Path(__file__).resolve().parent.parent / "simulator"
    compileall.compile_dir(package, quiet=1)  # as installed: no module compiled meanwhile
    done = subprocess.run(
        [sys.executable, "-c", COLLECTIONS], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "True"]


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
