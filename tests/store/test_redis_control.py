"""The control plane on a Redis that is lost while serving: each ``/_sim`` call that needs the
store answers a JSON 503 that says so (never a traceback), and works again when Redis is back."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from simulator import ManualClock, Settings, create_app
from simulator.store.redis import RedisStore
from tests.conftest import START
from tests.redis_server import MISSING, REDIS_SERVER, running_redis

# Calls that read or change what the store holds: (method, path, JSON body).
CALLS: list[tuple[str, str, object]] = [
    ("GET", "/_sim/journal", None),
    ("DELETE", "/_sim/journal", None),
    ("GET", "/_sim/snapshot", None),
    ("POST", "/_sim/reset", None),
    ("POST", "/_sim/clock/advance", {"seconds": 5}),
    ("POST", "/_sim/options", {"provider": "deepvue", "options": {"processing_seconds": 5}}),
    ("POST", "/_sim/faults", {"provider": "deepvue", "kind": "malformed"}),
    ("DELETE", "/_sim/faults", None),
    ("GET", "/_sim/webhooks", None),
    ("POST", "/_sim/sink/lost", {"hello": "world"}),
    ("GET", "/_sim/sink/lost", None),
]


def test_control_calls_on_a_lost_redis_are_a_json_503_and_work_when_it_returns(
    tmp_path: Path,
) -> None:
    if REDIS_SERVER is None:
        pytest.skip(MISSING)
    with running_redis(tmp_path) as server:
        store = RedisStore.from_url(server.url)
        app = create_app(Settings(seed=7), clock=ManualClock(START), store=store)
        with TestClient(app, base_url="http://testserver") as sim:
            for method, path, body in CALLS:
                response = sim.request(method, path, json=body)
                assert response.status_code < 300, (method, path, response.text)
            server.stop()
            for method, path, body in CALLS:
                lost = sim.request(method, path, json=body)
                assert lost.status_code == 503, (method, path, lost.text)
                assert lost.headers["content-type"] == "application/json"
                error = lost.json()["error"]
                assert error.startswith("store unavailable: "), (method, path, error)
                assert "\n" not in error
            server.start()
            for method, path, body in CALLS:
                response = sim.request(method, path, json=body)
                assert response.status_code < 300, (method, path, response.text)
            assert sim.get("/_sim/sink/lost").json()["received"][0]["body"] == '{"hello":"world"}'
        assert not app.state.sim.crashes, list(app.state.sim.crashes)
