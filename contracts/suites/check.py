"""Check: a static API key on every request, ``Authorization: Bearer vfy_...``.

A batch is polled with ``GET /v1/batch/{id}`` until it is completed, failed or cancelled; its
results are paged with ``limit``/``offset`` while ``pagination.hasMore``; a fileId is one-shot
(a second create with it answers 409 ``conflict``).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs

import httpx
from hypothesis import strategies as st

from contracts.checks import Behaviour, Paging, Polling
from contracts.strategies import ScenarioSpace

Entry = Mapping[str, Any]
TERMINAL = ("completed", "failed", "cancelled")
_BATCH = re.compile(r"/v1/batch/([^/]+)$")
_RESULTS = re.compile(r"/v1/batch/([^/]+)/results$")


def auth_headers(client: httpx.Client, credentials: Mapping[str, object]) -> dict[str, str]:
    return {"Authorization": f"Bearer {credentials['api_key']}"}


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
