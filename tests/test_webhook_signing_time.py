"""A webhook signature's timestamp: wall-clock time by default, the simulated time when
``webhook_signature_time`` is ``simulated``; checked with ``hmac`` either way."""

from __future__ import annotations

from datetime import datetime

import pytest
from starlette.testclient import TestClient

from simulator import Settings
from simulator.clock import wall_clock_now
from simulator.settings import SettingsError
from tests.conftest import AppFactory
from tests.test_webhook_faults import genuine, poll_until_done, signed_parts
from tests.test_webhooks import SINK, create_check_batch, received


def test_signatures_carry_wall_clock_time_by_default(client: TestClient) -> None:
    batch = create_check_batch(client, f"{SINK}/wall")
    before = int(wall_clock_now().timestamp())
    poll_until_done(client, batch["id"])
    after = int(wall_clock_now().timestamp())
    [entry] = received(client, "wall")
    assert genuine(client, entry)
    assert before <= int(signed_parts(entry)["t"]) <= after
    simulated = datetime.fromisoformat(entry["at"].replace("Z", "+00:00")).timestamp()
    assert int(signed_parts(entry)["t"]) != int(simulated)


def test_an_option_signs_with_the_simulated_time(app_factory: AppFactory) -> None:
    app = app_factory(webhook_signature_time="simulated")
    with TestClient(app, base_url="http://testserver") as client:
        batch = create_check_batch(client, f"{SINK}/simulated")
        poll_until_done(client, batch["id"])
        [entry] = received(client, "simulated")
        assert genuine(client, entry)
    delivered_at = datetime.fromisoformat(entry["at"].replace("Z", "+00:00"))
    assert int(signed_parts(entry)["t"]) == int(delivered_at.timestamp())


def test_an_unknown_signature_time_is_refused_clearly() -> None:
    with pytest.raises(SettingsError, match="webhook_signature_time must be 'wall' or 'simulated'"):
        Settings.from_env({"BULKSIM_WEBHOOK_SIGNATURE_TIME": "sundial"})
