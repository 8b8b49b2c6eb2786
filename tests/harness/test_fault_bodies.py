"""A body a fault answered before it was read is never taken for a missing one.

Served (``bulksim_server``), a fault answers before the provider reads the request: a small
body is read first and kept; one too large for the journal, or sent in chunks past its cap,
is marked as not seen and not judged. Either way a correct client gets no finding.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from contracts.clients.deepvue import DeepvueClient
from contracts.harness import Simulator, default_settings
from simulator import Settings

CAP = 1024
BIG_CSV = ("vpa,name\n" + "".join(f"user{n}@okaxis,\n" for n in range(200))).encode()
FAULTS: list[dict[str, Any]] = [
    {"kind": "rate_limit", "retry_after": 1},
    {"kind": "status", "status": 503},
    {"kind": "drop"},
]


@pytest.fixture
def bulksim_settings() -> Settings:
    return default_settings(journal_body_bytes=CAP)


def verified(sim: Simulator, csv: bytes) -> list[dict[str, str]]:
    """The reference client's rows for ``csv``."""
    credentials = sim.credentials("deepvue")
    with sim.client("deepvue") as http:
        client = DeepvueClient(
            http,
            credentials["client_id"],
            credentials["client_secret"],
            sleep=sim.clock.sleep,
            now=sim.clock.seconds,
        )
        return sim.run_client(client.verify, csv)


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f["kind"])
def test_a_large_upload_a_fault_answered_is_no_finding(
    bulksim_server: Simulator, fault: dict[str, Any]
) -> None:
    assert len(BIG_CSV) > CAP
    bulksim_server.faults.schedule("deepvue", operation="submit_upi_basic_batch", count=1, **fault)
    rows = verified(bulksim_server, BIG_CSV)
    assert len(rows) == 200
    bulksim_server.assert_client_conformant()
    faulted, retried = bulksim_server.journal.entries(operation="submit_upi_basic_batch")
    assert faulted["fault"] is not None
    assert not faulted["request"]["body_seen"]
    assert retried["request"]["body_seen"]


def chunks(body: bytes) -> Iterator[bytes]:
    """A body sent in pieces, with no length declared (``Transfer-Encoding: chunked``)."""
    yield body[:10]
    yield body[10:]


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f["kind"])
def test_a_chunked_body_a_fault_answered_is_kept(
    bulksim_server: Simulator, fault: dict[str, Any]
) -> None:
    credentials = bulksim_server.credentials("deepvue")
    body = f"client_id={credentials['client_id']}&client_secret={credentials['client_secret']}"
    bulksim_server.faults.schedule("deepvue", operation="authorize", count=1, **fault)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    with bulksim_server.client("deepvue") as client:
        try:
            client.post("/v1/authorize", content=chunks(body.encode()), headers=form)
        except Exception:  # the dropped connection
            assert fault["kind"] == "drop"
        bulksim_server.clock.sleep(1)  # as Retry-After asks, on the simulator's clock
        again = client.post("/v1/authorize", content=chunks(body.encode()), headers=form)
        assert again.status_code == 200
    bulksim_server.assert_client_conformant()
    for entry in bulksim_server.journal.entries():
        assert entry["request"]["body_seen"]
        assert entry["request"]["body"].startswith("client_id=")
