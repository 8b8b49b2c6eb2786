"""The pytest plugin's sandboxes: one per test on the session server, or on a server that is
already running (``--bulksim-url``), and pytest-xdist workers sharing that server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator import Settings, create_app
from simulator.server import running_in_thread

# Every fixture feature, per sandbox: url, credentials, clock, faults, journal, options,
# behaviour checks and a fuzzing scenario's apply.
SUITE = """
from datetime import timedelta

import pytest

from contracts.strategies import Scenario

START = "2026-03-09T08:14:08+00:00"


@pytest.mark.parametrize("n", range({tests}))
def test_a_client_sees_only_its_own_world(bulksim_server, n):
    sim = bulksim_server
    assert "/sandboxes/" in sim.url("deepvue")
    assert sim.clock.now().isoformat() == START
    assert sim.journal.entries() == []
    creds = sim.credentials("deepvue")
    form = {{"client_id": creds["client_id"], "client_secret": creds["client_secret"]}}
    start = sim.clock.now()
    with sim.client("deepvue") as deepvue:
        token = deepvue.post("/v1/authorize", data=form).json()["access_token"]
        headers = {{"Authorization": f"Bearer {{token}}", "x-api-key": creds["x_api_key"]}}
        params = {{"request_id": "{seeded}"}}
        for step in range(1, {steps} + 1):
            sim.clock.advance(60)
            assert sim.clock.now() == start + timedelta(seconds=120 * step - 60)
            sim.faults.schedule("deepvue", "status", "get_batch_processing_status", status=503)
            assert deepvue.get("{status}", params=params, headers=headers).status_code == 503
            sim.clock.advance(60)
            assert deepvue.get("{status}", params=params, headers=headers).status_code == 200
    entries = sim.journal.entries()
    assert [e["response"]["status"] for e in entries] == [200] + [503, 200] * {steps}
    assert sim.faults.list() == []
    assert sim.options("deepvue", processing_seconds=n)["processing_seconds"] == n
    # The behaviour checks judge this sandbox's journal: they see this test's polls only.
    sim.assert_client_conformant(skip=["poll-after-terminal"])
    assert {{f.check for f in sim.findings()}} == {{"poll-after-terminal"}}


def test_a_scenario_applies_to_the_sandbox(bulksim_server):
    scenario = Scenario(
        "deepvue",
        options={{"processing_seconds": 7}},
        faults=({{"kind": "rate_limit", "operation": "authorize", "retry_after": 1}},),
    )
    bulksim_server.clock.advance(3600)
    scenario.apply(bulksim_server)
    assert bulksim_server.clock.now().isoformat() == START
    assert [f["kind"] for f in bulksim_server.faults.list()] == ["rate_limit"]
    options = bulksim_server.http.get(f"{{bulksim_server.control}}/options").json()
    assert options["deepvue"]["processing_seconds"] == 7
    assert scenario.credentials["client_id"] == "deepvue_test_client"
"""


SEEDED = "06d0d7c340ed460d96103aaa0b26f0de"  # a finished Deepvue batch of the seed page
STATUS = "/v1/verification/batch-processing-status"


def write_suite(pytester: pytest.Pytester, tests: int, steps: int) -> None:
    suite = SUITE.format(tests=tests, steps=steps, seeded=SEEDED, status=STATUS)
    pytester.makepyfile(test_clients=suite)


def run(
    pytester: pytest.Pytester, *args: str, env: dict[str, str] | None = None
) -> pytest.RunResult:
    """``pytest ARGS`` in the project directory, in a subprocess, as a user runs it."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BULKSIM_")}
    environ.pop("PYTEST_ADDOPTS", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=pytester.path,
        env={**environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    sys.stdout.write(done.stdout + done.stderr)  # shown when the test fails
    return pytest.RunResult(done.returncode, done.stdout.splitlines(), done.stderr.splitlines(), 0)


def test_each_test_gets_its_own_sandbox_on_the_session_server(pytester: pytest.Pytester) -> None:
    write_suite(pytester, tests=3, steps=2)
    result = run(pytester)
    result.assert_outcomes(passed=4)


def test_the_plugin_attaches_to_a_running_server_with_its_control_token(
    pytester: pytest.Pytester,
) -> None:
    write_suite(pytester, tests=2, steps=2)
    app = create_app(Settings(clock="manual", control_token="s3cret-token"))
    with running_in_thread(app) as origin:
        refused = run(pytester, "--bulksim-url", origin)
        assert refused.ret != 0
        assert "control plane token required" in "\n".join(refused.outlines)
        run(pytester, "--bulksim-url", origin, "--bulksim-token", "s3cret-token").assert_outcomes(
            passed=3
        )
        environ = {"BULKSIM_URL": origin, "BULKSIM_TOKEN": "s3cret-token"}
        run(pytester, env=environ).assert_outcomes(passed=3)
        # Every sandbox the tests made was deleted after its test.
        assert app.state.sandboxes.live == {}


@pytest.fixture
def bulksim_serve() -> Iterator[str]:
    """``bulksim serve`` in its own process on a free port; its origin."""
    command = [
        str(Path(sys.executable).with_name("bulksim")),
        "serve",
        "--port",
        "0",
        "--clock",
        "manual",
        "--access-log",
        "off",
    ]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BULKSIM_")}
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=environ) as server:
        assert server.stdout is not None
        banner = server.stdout.readline()  # "bulksim serving on http://127.0.0.1:PORT (...)"
        assert banner.startswith("bulksim serving on "), banner
        try:
            yield banner.split()[3]
        finally:
            server.terminate()
            server.wait(timeout=30)


def test_xdist_workers_share_one_server_only_because_each_test_has_a_sandbox(
    pytester: pytest.Pytester, bulksim_serve: str
) -> None:
    """Four workers advance clocks and schedule faults in every test, against one server:
    with sandboxes they pass; sharing the default sandbox, they trip over each other."""
    write_suite(pytester, tests=16, steps=25)
    isolated = run(pytester, "-n", "4", "--bulksim-url", bulksim_serve)
    isolated.assert_outcomes(passed=17)

    shared = run(pytester, "-n", "4", "--bulksim-url", bulksim_serve, "--bulksim-sandboxes", "off")
    outcomes = shared.parseoutcomes()
    assert shared.ret != 0
    assert outcomes.get("failed", 0) > 0, outcomes
