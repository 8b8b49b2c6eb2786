"""Deepvue: authorize with client credentials, then Bearer token plus x-api-key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs

import httpx
from hypothesis import strategies as st

from contracts.checks import Behaviour, Polling
from contracts.strategies import ScenarioSpace

Entry = Mapping[str, Any]


def auth_headers(client: httpx.Client, credentials: Mapping[str, object]) -> dict[str, str]:
    response = client.post(
        "/v1/authorize",
        data={"client_id": credentials["client_id"], "client_secret": credentials["client_secret"]},
    )
    response.raise_for_status()
    return {
        "Authorization": f"Bearer {response.json()['access_token']}",
        "x-api-key": str(credentials["client_secret"]),
    }


def _request_id(entry: Entry) -> str | None:
    values = parse_qs(entry["query"]).get("request_id")
    return values[0] if values else None


def _completed(entry: Entry) -> bool:
    body = entry["response"]["body"]
    return (
        isinstance(body, dict)
        and isinstance(body.get("data"), dict)
        and body["data"].get("status") == 200
    )


def _expired(entry: Entry) -> bool:
    body = entry["response"]["body"]
    return bool(entry["response"]["status"] == 401 and body == {"detail": "Authorization failure"})


BEHAVIOUR = Behaviour(
    polling=[Polling("get_batch_processing_status", _request_id, _completed)],
    expired_token=_expired,
)


_BANKS = ("okaxis", "oksbi", "okicici", "ybl", "paytm")
_vpa = st.builds(
    lambda prefix, n, bank: f"{prefix}{n}@{bank}",
    st.sampled_from(["user", "user", "user", "invalid", "noaccount", "fail", "slow"]),
    st.integers(0, 999),
    st.sampled_from(_BANKS),
)


def _csv(items: Sequence[str]) -> bytes:
    return ("vpa,name\n" + "".join(f"{vpa},\n" for vpa in items)).encode()


SPACE = ScenarioSpace(
    options={
        "processing_seconds": st.floats(0, 1800, allow_nan=False),
        "seconds_per_row": st.floats(0, 1, allow_nan=False),
        "token_ttl_seconds": st.integers(300, 86_400),
    },
    items=st.lists(_vpa, min_size=1, max_size=20),
    operations=(
        "authorize",
        "submit_upi_basic_batch",
        "get_batch_processing_status",
        "download_batch_output_file",
    ),
    transient_errors=("RateLimitExceeded", "SourceUnavailable", "InternalServerError"),
    render=_csv,
)
