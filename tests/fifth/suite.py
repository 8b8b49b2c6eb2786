"""Acme's contract suite: the key in a header, the polling rule, the lifecycle."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import httpx
from hypothesis import strategies as st

from contracts.checks import Behaviour, Polling
from contracts.strategies import ScenarioSpace
from contracts.verify import Target

Entry = Mapping[str, Any]
CREDENTIAL_KEYS = ("api_key",)


def auth_headers(client: httpx.Client, credentials: Mapping[str, object]) -> dict[str, str]:
    return {"X-Acme-Key": str(credentials["api_key"])}


def _batch_id(entry: Entry) -> str | None:
    _, found, batch_id = str(entry["path"]).rpartition("/v1/batches/")
    return batch_id if found and batch_id else None


def _done(entry: Entry) -> bool:
    return bool(entry["response"]["status"] == 200)


BEHAVIOUR = Behaviour(polling=[Polling("get_batch", _batch_id, _done)])

SPACE = ScenarioSpace(
    options={"processing_seconds": st.floats(0, 600, allow_nan=False)},
    items=st.lists(st.text("abc", min_size=1, max_size=5), min_size=1, max_size=5),
    operations=("submit_batch", "get_batch"),
)


def lifecycle(target: Target) -> None:
    """A wrong key's 401 → submit (201) → poll (201 until done, then 200 with scores)."""
    headers = auth_headers(target.http, target.credentials)
    wrong = target.call("wrong key", "GET", "/v1/batches/x", headers={"X-Acme-Key": "nope"})
    target.expect("wrong key", wrong.status_code == 401, f"answered {wrong.status_code}")
    submit = target.call("submit", "POST", "/v1/batches", headers=headers, json={"items": ["a"]})
    target.expect("submit", submit.status_code == 201, f"answered {submit.status_code}")
    batch_id = submit.json()["id"]
    deadline = time.monotonic() + target.timeout
    while True:
        poll = target.call("poll", "GET", f"/v1/batches/{batch_id}", headers=headers)
        if poll.status_code == 200:
            break
        target.expect("poll", poll.status_code == 201, f"answered {poll.status_code}")
        target.expect("poll", time.monotonic() < deadline, "not done in time")
        target.wait(30 if target.is_bulksim else 5)
    scores = [row["item"] for row in poll.json()["results"]]
    target.expect("poll", scores == ["a"], f"results are for {scores}, not the items sent")
