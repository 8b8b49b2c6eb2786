"""Check: a static API key on every request, ``Authorization: Bearer vfy_...``.

A batch is polled with ``GET /v1/batch/{id}`` until it is completed, failed or cancelled; its
results are paged with ``limit``/``offset`` while ``pagination.hasMore``; a fileId is one-shot
(a second create with it answers 409 ``conflict``).

``BEHAVIOUR`` tells the client checks the above; ``SPACE`` is what client fuzzing varies,
``WEBHOOKS`` how receiver fuzzing makes an event.
For ``bulksim verify``: ``CREDENTIAL_KEYS`` is the one ``api_key`` (``--credential api_key=...``
or ``CHECK_API_KEY``; a bulksim lists its pro-plan test key), and ``lifecycle`` walks the
documented flow against any target.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs

import httpx
from hypothesis import strategies as st

from contracts.checks import Behaviour, Paging, Polling
from contracts.harness import Simulator
from contracts.strategies import ScenarioSpace, WebhookSpace
from contracts.verify import Target

Entry = Mapping[str, Any]
TERMINAL = ("completed", "failed", "cancelled")
_BATCH = re.compile(r"/v1/batch/([^/]+)$")
_RESULTS = re.compile(r"/v1/batch/([^/]+)/results$")


def auth_headers(client: httpx.Client, credentials: Mapping[str, object]) -> dict[str, str]:
    return {"Authorization": f"Bearer {credentials['api_key']}"}


def probe(client: httpx.Client, headers: Mapping[str, str]) -> httpx.Response:
    """One cheap authenticated call, so ``bulksim verify`` can tell refused credentials (401)
    and a wrong base URL (404) from drift before it starts."""
    return client.get("/v1/batch", params={"limit": 1}, headers=headers)


def _body(entry: Entry) -> dict[str, Any]:
    body = entry["response"]["body"]
    return body if isinstance(body, dict) else {}


def _batch_id(entry: Entry) -> str | None:
    match = _BATCH.search(entry["path"])
    return match.group(1) if match else None


def _results_id(entry: Entry) -> str | None:
    match = _RESULTS.search(entry["path"])
    return match.group(1) if match else None


def _terminal(entry: Entry) -> bool:
    return _body(entry).get("status") in TERMINAL


def _offset(entry: Entry) -> int:
    values = parse_qs(entry["query"]).get("offset", ["0"])
    return int(values[0]) if values[0].isdigit() else 0


def _has_more(entry: Entry) -> bool:
    return bool(_body(entry).get("pagination", {}).get("hasMore"))


def _next_offset(entry: Entry) -> int:
    return _offset(entry) + len(_body(entry).get("items", []))


def _reused(entry: Entry) -> bool:
    error = _body(entry).get("error")
    return (
        entry["operation"] == "create_batch"
        and entry["response"]["status"] == 409
        and isinstance(error, dict)
        and error.get("code") == "conflict"
    )


BEHAVIOUR = Behaviour(
    polling=[Polling("get_batch", _batch_id, _terminal)],
    paging=[Paging("get_batch_results", _results_id, _offset, _has_more, _next_offset)],
    reused_one_shot=_reused,
)

_CLAIMS = (
    "The Earth is approximately 4.5 billion years old.",
    "Water boils at 100 degrees Celsius at sea level.",
    "The Great Wall of China is visible from space.",
    "Honey never spoils when stored properly.",
)
_item = st.builds(
    lambda magic, claim: f"{magic}{claim}",
    st.sampled_from(["", "", "", "[true] ", "[false] ", "[uncertain] ", "[fail] ", "[timeout] "]),
    st.sampled_from(_CLAIMS),
)


def _csv(items: Sequence[str]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["content"])
    writer.writerows([item] for item in items)
    return out.getvalue().encode()


SPACE = ScenarioSpace(
    options={
        "queue_seconds": st.floats(0, 30, allow_nan=False),
        "concurrency": st.integers(1, 10),
        "pro_file_expiry_seconds": st.integers(300, 3600),
        # Enforced, a low limit answers 429 with Retry-After until the minute's window resets.
        "enforce_rate_limits": st.booleans(),
        "pro_requests_per_minute": st.integers(3, 200),
    },
    items=st.lists(_item, min_size=1, max_size=20),
    operations=(
        "upload_batch_file",
        "create_batch",
        "list_batches",
        "get_batch",
        "get_batch_results",
        "cancel_batch",
    ),
    transient_errors=("RateLimited", "InternalError"),
    render=_csv,
)


WEBHOOK_ITEM = "Water boils at 100 degrees Celsius at sea level."


def _trigger(sim: Simulator, target: str) -> str:
    """A one-item batch whose ``batch.completed`` goes to ``target``."""
    headers = {"Authorization": f"Bearer {sim.credentials('check')['api_key']}"}
    body = {"items": [{"content": WEBHOOK_ITEM}], "webhookUrl": target}
    with sim.client("check", headers=headers) as http:
        response = http.post("/v1/batch", json=body)
    response.raise_for_status()
    batch_id: str = response.json()["id"]
    return batch_id


def _poll(sim: Simulator, batch_id: str) -> object:
    headers = {"Authorization": f"Bearer {sim.credentials('check')['api_key']}"}
    with sim.client("check", headers=headers) as http:
        return http.get(f"/v1/batch/{batch_id}").json()


def _replay(origin: str, target: str, credentials: Mapping[str, Any]) -> str:
    body = json.dumps({"items": [{"content": WEBHOOK_ITEM}], "webhookUrl": target})
    return (
        f"curl -s --fail-with-body -X POST {origin}/check/v1/batch "
        f"-H 'Authorization: Bearer {credentials.get('api_key', 'KEY')}' "
        f"-H 'Content-Type: application/json' -d '{body}'"
    )


# What receiver fuzzing varies: events are batches ending (batch.completed to the webhookUrl).
WEBHOOKS = WebhookSpace(trigger=_trigger, poll=_poll, replay=_replay)


CREDENTIAL_KEYS = ("api_key",)
LIFECYCLE_ROWS = (
    ("claim-001", "wikipedia", "The Earth is approximately 4.5 billion years old."),
    ("claim-002", "textbook", "Water boils at 100 degrees Celsius at sea level."),
    ("claim-003", "folklore", "Honey never spoils when stored properly."),
)
LIFECYCLE_PAGE = 2  # smaller than the batch, so the results take more than one page
UNKNOWN_BATCH = "batch_000000000000"


def _error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def lifecycle(target: Target) -> None:
    """401 without a key → upload → create (202) → the fileId refused a second time → poll to a
    terminal status → results paged to the end → 404 for an unknown batch."""
    headers = {"Authorization": f"Bearer {target.credentials['api_key']}"}

    anonymous = target.call("list without a key", "GET", "/v1/batch")
    target.expect(
        "list without a key",
        anonymous.status_code == 401
        and _error_of(anonymous).get("code") == "unauthorized"
        and str(_error_of(anonymous).get("message", "")).startswith("API key is required"),
        f"answered {anonymous.status_code} {anonymous.text[:200]}, "
        "not 401 unauthorized 'API key is required...'",
    )

    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["idempotencyKey", "context.source", "content"])
    writer.writerows(LIFECYCLE_ROWS)
    upload = target.call(
        "upload",
        "POST",
        "/v1/batch/upload",
        headers=headers,
        files={"file": ("claims.csv", out.getvalue().encode(), "text/csv")},
    )
    target.expect("upload", upload.status_code == 200, f"answered {upload.status_code}, not 200")
    uploaded = upload.json()
    target.expect(
        "upload",
        uploaded["itemCount"] == len(LIFECYCLE_ROWS) and uploaded["format"] == "csv",
        f"itemCount {uploaded['itemCount']} format {uploaded['format']!r}, "
        f"not {len(LIFECYCLE_ROWS)} csv",
    )
    file_id = uploaded["fileId"]

    body = {"fileId": file_id, "name": "bulksim verify lifecycle", "methods": {"reasoning": 1}}
    create = target.call("create", "POST", "/v1/batch", headers=headers, json=body)
    target.expect("create", create.status_code == 202, f"answered {create.status_code}, not 202")
    batch_id = create.json()["id"]
    target.expect(
        "create",
        create.json()["totalItems"] == len(LIFECYCLE_ROWS),
        f"totalItems is {create.json()['totalItems']}, not {len(LIFECYCLE_ROWS)}",
    )

    again = target.call(
        "create again with the same fileId", "POST", "/v1/batch", headers=headers, json=body
    )
    target.expect(
        "create again with the same fileId",
        again.status_code == 409 and _error_of(again).get("code") == "conflict",
        f"answered {again.status_code} {again.text[:200]}, not 409 conflict (a fileId is one-shot)",
    )

    deadline = time.monotonic() + target.timeout
    while True:
        poll = target.call("poll", "GET", f"/v1/batch/{batch_id}", headers=headers)
        target.expect("poll", poll.status_code == 200, f"answered {poll.status_code}, not 200")
        status = poll.json()["status"]
        if status in TERMINAL:
            break
        target.expect(
            "poll", time.monotonic() < deadline, f"still {status} after {target.timeout:g}s"
        )
        target.wait(10 if target.is_bulksim else 5)
    target.expect("poll", status == "completed", f"ended {status}, not completed")

    items: list[dict[str, Any]] = []
    while True:
        page = target.call(
            "results",
            "GET",
            f"/v1/batch/{batch_id}/results",
            headers=headers,
            params={"limit": LIFECYCLE_PAGE, "offset": len(items)},
        )
        target.expect("results", page.status_code == 200, f"answered {page.status_code}, not 200")
        items += page.json()["items"]
        if not page.json()["pagination"]["hasMore"]:
            break
        target.expect("results", bool(page.json()["items"]), "an empty page says more follow")
    echoed = [
        (i["idempotencyKey"], (i["itemContext"] or {}).get("source"), i["content"]) for i in items
    ]
    target.expect(
        "results",
        echoed == list(LIFECYCLE_ROWS),
        f"items do not echo the file's rows in order: {echoed}",
    )
    target.expect(
        "results",
        all(i["status"] == "completed" and i["verdict"] is not None for i in items),
        "a completed batch has items without a completed verdict: "
        f"{[(i['status'], i['verdict']) for i in items]}",
    )

    unknown = target.call(
        "get an unknown batch", "GET", f"/v1/batch/{UNKNOWN_BATCH}", headers=headers
    )
    target.expect(
        "get an unknown batch",
        unknown.status_code == 404
        and _error_of(unknown) == {"code": "not_found", "message": "Batch not found"},
        f"answered {unknown.status_code} {unknown.text[:200]}, not 404 not_found 'Batch not found'",
    )
