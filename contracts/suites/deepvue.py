"""Deepvue: authorize with client credentials, then Bearer token plus x-api-key."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs

import httpx
from hypothesis import strategies as st

from contracts.checks import Behaviour, Polling
from contracts.strategies import ScenarioSpace
from contracts.verify import Target

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


CREDENTIAL_KEYS = ("client_id", "client_secret")
STATUS = "/v1/verification/batch-processing-status"
LIFECYCLE_VPAS = ("rahul.sharma@okaxis", "9876543210@paytm")


def lifecycle(target: Target) -> None:
    """authorize → submit → poll (201 until done, then 200 with a URL) → download."""
    secret = str(target.credentials["client_secret"])
    auth = target.call(
        "authorize",
        "POST",
        "/v1/authorize",
        data={"client_id": target.credentials["client_id"], "client_secret": secret},
    )
    target.expect("authorize", auth.status_code == 200, f"answered {auth.status_code}, not 200")
    headers = {"Authorization": f"Bearer {auth.json()['access_token']}", "x-api-key": secret}

    anonymous = target.call("poll without a token", "GET", STATUS, params={"request_id": "x"})
    target.expect(
        "poll without a token",
        anonymous.status_code == 401 and anonymous.json() == {"detail": "Not authenticated"},
        f"answered {anonymous.status_code} {anonymous.text[:200]}, not 401 Not authenticated",
    )
    unknown = target.call(
        "poll an unknown request_id",
        "GET",
        STATUS,
        params={"request_id": "0" * 32},
        headers=headers,
    )
    target.expect(
        "poll an unknown request_id",
        unknown.status_code == 422 and unknown.json().get("sub_code") == "INVALID_REQUEST_ID",
        f"answered {unknown.status_code} {unknown.text[:200]}, not 422 INVALID_REQUEST_ID",
    )

    content = ("vpa,name\n" + "".join(f"{vpa},\n" for vpa in LIFECYCLE_VPAS)).encode()
    submit = target.call(
        "submit",
        "POST",
        "/v1/verification/upi-basic/batch",
        headers=headers,
        files={"batch_file": ("vpas.csv", content, "text/csv")},
    )
    target.expect("submit", submit.status_code in (200, 201), f"answered {submit.status_code}")
    request_id = submit.json()["request_id"]

    deadline = time.monotonic() + target.timeout
    while True:
        poll = target.call(
            "poll", "GET", STATUS, params={"request_id": request_id}, headers=headers
        )
        data = poll.json()["data"]
        target.expect("poll", data["status"] in (200, 201), f"data.status is {data['status']}")
        if data["status"] == 200:
            break
        target.expect(
            "poll", time.monotonic() < deadline, f"not completed within {target.timeout:g}s"
        )
        target.wait(60 if target.is_bulksim else 10)
    url = data["batch_output_file_url"]
    target.expect("poll", isinstance(url, str) and url.startswith("http"), f"output URL is {url!r}")

    target.steps.append("download")
    output = target.http.get(url)
    target.expect(
        "download", output.status_code == 200, f"output file answered {output.status_code}"
    )
    rows = list(csv.DictReader(io.StringIO(output.text)))
    target.expect(
        "download",
        [row.get("vpa") for row in rows] == list(LIFECYCLE_VPAS),
        f"output rows do not echo the input VPAs: {[row.get('vpa') for row in rows]}",
    )
