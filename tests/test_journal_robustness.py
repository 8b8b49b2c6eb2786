"""Whatever a client sends, reading the journal answers: nothing recorded crashes a reader."""

from __future__ import annotations

import pytest

from contracts.checks import ClientNotConformant
from contracts.harness import Simulator


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
