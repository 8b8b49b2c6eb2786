"""Whatever a client sends, reading the journal answers: nothing recorded crashes a reader."""

from __future__ import annotations

import select
import socket

import httpx
import pytest

from contracts.checks import ClientNotConformant
from contracts.harness import Simulator, default_settings, serve_in_thread

CHECK_KEY = {"Authorization": "Bearer vfy_test_pro_8c2e6a4f1b9d7e35"}
SEEDED_BATCH = "batch_abc123def456"


def deep_json(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("depth", [100, 900, 5000])
def test_a_deeply_nested_body_is_a_finding_not_a_crash(bulksim_app: Simulator, depth: int) -> None:
    key = bulksim_app.credentials("passcreator")["api_key"]
    with bulksim_app.client("passcreator") as client:
        sent = client.post(
            "/api/v3/pass",
            content=deep_json(depth),
            headers={"Authorization": key, "Content-Type": "application/json"},
        )
    assert sent.status_code == 400

    journal = bulksim_app.http.get("/_sim/journal")
    assert journal.status_code == 200
    (entry,) = journal.json()["entries"]
    assert entry["request"]["body"] == deep_json(depth).decode()  # shown as the text it is
    assert entry["violations"] == ["body: JSON nested more than 64 levels deep"]

    with pytest.raises(ClientNotConformant, match="JSON nested more than 64 levels deep"):
        bulksim_app.assert_client_conformant()
    for page in ("/_sim/ui", "/_sim/ui/live?check=1"):
        assert bulksim_app.http.get(page).status_code == 200


def http_get(port: int, path: str) -> socket.socket:
    """A connection that has sent ``GET path`` (its answer is read later)."""
    connection = socket.create_connection(("127.0.0.1", port))
    connection.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    )
    return connection


def test_reading_a_long_journal_for_the_first_time_does_not_hold_up_other_requests() -> None:
    with serve_in_thread(default_settings()) as simulator:
        with simulator.client("check") as client:
            for _ in range(400):
                assert client.get(f"/v1/batch/{SEEDED_BATCH}", headers=CHECK_KEY).is_success
        port = httpx.URL(simulator.origin).port
        assert port is not None
        journal = http_get(port, "/_sim/journal")  # checks 400 entries against the spec
        health = http_get(port, "/_sim/health")
        with journal, health:
            ready, _, _ = select.select([journal, health], [], [])
            # The health probe was answered while the journal was still being read.
            assert ready == [health]
            assert health.recv(64).startswith(b"HTTP/1.1 200")
            journal.settimeout(30)
            assert journal.recv(64).startswith(b"HTTP/1.1 200")
