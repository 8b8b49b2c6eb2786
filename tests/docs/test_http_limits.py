"""The README's two 16 KiB figures: the HTTP parser's head limit and the journal's body cap."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from contracts.harness import Simulator, serve_in_thread
from simulator import Settings

HEAD_LIMIT = 16 * 1024
JOURNAL_BODY_BYTES = 16384  # the --journal-body-bytes default the README gives


@pytest.fixture(scope="module")
def served() -> Iterator[Simulator]:
    with serve_in_thread(Settings()) as simulator:  # as `bulksim serve` runs, not the harness
        yield simulator


def test_a_head_unfinished_after_16_kib_is_refused_with_a_plain_400(served: Simulator) -> None:
    origin = urlsplit(served.origin)
    assert origin.hostname is not None
    assert origin.port is not None
    head = b"GET /_sim/health HTTP/1.1\r\nHost: bulksim\r\nX-Long: " + b"a" * HEAD_LIMIT
    with socket.create_connection((origin.hostname, origin.port), timeout=30) as conn:
        conn.sendall(head)  # no end of head: the server has more than 16 KiB of an unfinished one
        answer = b""
        while chunk := conn.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"content-type: text/plain" in answer.lower()
    assert answer.endswith(b"Invalid HTTP request received.")


def test_the_journal_keeps_16384_bytes_of_a_body_and_marks_the_cut(served: Simulator) -> None:
    key = served.credentials("passcreator")["api_key"]
    body = json.dumps({"data": {"templateId": "none", "note": "x" * (JOURNAL_BODY_BYTES + 5000)}})
    with served.client("passcreator") as client:
        response = client.post(
            "/api/v3/pass",
            content=body,
            headers={"Authorization": key, "Content-Type": "application/json"},
        )
    assert response.status_code == 400  # the whole body was read and answered
    entries = served.journal.entries(provider="passcreator", operation="create_pass")
    recorded = entries[-1]["request"]["body"]
    assert recorded == body[:JOURNAL_BODY_BYTES] + "…"
