"""HelloAtlas: exchange Client-Id and Client-Secret headers for a token, sent as ``Token``.

There is no status endpoint: ``GET /v1/bulk/extracts`` pages through a batch, and a document
still processing keeps its place as ``"file_data": null`` (or is left out, the page coming
back short). So the checks see each *page* of a batch (its batch_id, page number and page
size) as the resource a client polls. A page covers a fixed run of documents and is terminal
once each of them has finished, extracted or failed; finished documents never change.

- paging: a client reads page 1, 2, ... of a batch while ``has_next`` is true
  (``stopped-paging`` otherwise);
- polling: a page with an unfinished document is read again, after a wait
  (``stopped-polling`` when a client takes it as final, ``hot-poll`` when it re-reads
  it less than the minimum interval later), and a finished page is never read again
  (``poll-after-terminal``: re-reading a finished page costs a call and tells nothing new;
  the reference client re-reads only the pages that still hold unfinished documents);
- expired token: ``401 {"error_code": "401", "error_message": "Authentication Error: Token
  has expired"}``, what HelloAtlas answers a token past its ``expires_in``.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import httpx
from hypothesis import strategies as st

from contracts.checks import Behaviour, Paging, Polling
from contracts.clients.helloatlas import MAX_PER_PAGE, page_finished
from contracts.strategies import ScenarioSpace
from contracts.verify import Target

Entry = Mapping[str, Any]
EXTRACTS = "/v1/bulk/extracts"
TOKEN = "/v1/bulk/authtoken"
UPLOAD = "/v1/bulk/multiupload"
BATCH_ID = re.compile(r"^BATCH-[0-9]{5}-[A-Z]{5}-[0-9]{14}$")


def auth_headers(client: httpx.Client, credentials: Mapping[str, object]) -> dict[str, str]:
    response = client.post(
        TOKEN,
        headers={
            "Client-Id": str(credentials["client_id"]),
            "Client-Secret": str(credentials["client_secret"]),
        },
    )
    response.raise_for_status()
    return {"Token": str(response.json()["access_token"])}


# -- what the client checks need to know ------------------------------------------------------

# Answers that never reached the client whole: they tell it nothing.
_LOST = ("drop", "drop_after", "malformed")
# A document still processing, shown in its place (a failed one goes on with "error_code").
_PENDING = re.compile(r'"file_data"\s*:\s*null\s*}')


@dataclass(frozen=True)
class _Read:
    """What one answered extracts request says of its page."""

    batch_id: str
    page: int
    per_page: int
    has_next: bool
    finished: bool


def _query_int(entry: Entry, name: str, default: int) -> int | None:
    values = parse_qs(entry["query"]).get(name)
    if not values:
        return default
    return int(values[0]) if values[0].isdigit() else None


def _read(entry: Entry) -> _Read | None:
    """The page an extracts answer showed the client, or None if it showed none.

    The journal keeps the first 16 KiB of a body, and a page of 50 extracted documents is
    larger (up to about 50 KB). A cut-off page is judged by what is left: its place from the
    query, unfinished if an unfinished document shows, otherwise taken as finished, and
    ``has_next`` unknown (so never said to be missed). Whole pages are judged exactly.

    Taking a cut-off page as finished is the lesser error: ``stopped-polling`` stays right
    (a page's last read is finished), but a page whose unfinished documents fall past the cut,
    or are left out (``pending_documents=omit``), may be reported as ``poll-after-terminal``
    when a correct client reads it again. Judging it unfinished instead would report nearly
    every large finished page as ``stopped-polling``.
    """
    response = entry["response"]
    if not 200 <= response["status"] < 300 or entry.get("fault") in _LOST:
        return None
    batch_ids = parse_qs(entry["query"]).get("batch_id")
    if not batch_ids:
        return None
    body = response["body"]
    if isinstance(body, dict):
        number, per_page = body.get("page"), body.get("per_page")
        if not isinstance(number, int) or not isinstance(per_page, int):
            return None
        return _Read(
            batch_ids[0], number, per_page, body.get("has_next") is True, page_finished(body)
        )
    declared = response["headers"].get("content-length", "")
    if isinstance(body, str) and declared.isdigit() and int(declared) > len(body.encode()):
        number = _query_int(entry, "page", 1)
        per_page = _query_int(entry, "per_page", MAX_PER_PAGE)
        if number is None or per_page is None:
            return None
        finished = _PENDING.search(body) is None
        return _Read(batch_ids[0], number, min(per_page, MAX_PER_PAGE), False, finished)
    return None


def _listing(entry: Entry) -> str | None:
    """One listing is one batch read at one page size."""
    read = _read(entry)
    return f"{read.batch_id} ({read.per_page} a page)" if read else None


def _page_of_listing(entry: Entry) -> str | None:
    read = _read(entry)
    return f"{read.batch_id} page {read.page} ({read.per_page} a page)" if read else None


def _position(entry: Entry) -> int:
    read = _read(entry)
    return read.page if read else 0


def _has_next(entry: Entry) -> bool:
    read = _read(entry)
    return bool(read and read.has_next)


def _finished(entry: Entry) -> bool:
    read = _read(entry)
    return bool(read and read.finished)


def _answered(entry: Entry) -> bool:
    return _read(entry) is not None


EXPIRED = {"error_code": "401", "error_message": "Authentication Error: Token has expired"}


def _expired(entry: Entry) -> bool:
    return bool(entry["response"]["status"] == 401 and entry["response"]["body"] == EXPIRED)


BEHAVIOUR = Behaviour(
    polling=[Polling("get_bulk_extracts", _page_of_listing, _finished, answered=_answered)],
    paging=[
        Paging("get_bulk_extracts", _listing, _position, _has_next, lambda e: _position(e) + 1)
    ],
    expired_token=_expired,
)


# -- fuzzing ----------------------------------------------------------------------------------

# File names steer the simulated outcome: the first type word picks the document type, and
# fail/corrupt/unknown fail it, blurry lowers its confidence, slow finishes it 600 s later.
_TYPES = ("aadhaar_front", "pan_card", "dl_front", "voter_id", "passport", "gst_cert", "scan")
_MAGIC = ("", "", "", "", "_fail", "_corrupt", "_unknown", "_blurry", "_slow")
_file_name = st.builds(
    lambda kind, magic, ext: f"{kind}{magic}.{ext}",
    st.sampled_from(_TYPES),
    st.sampled_from(_MAGIC),
    st.sampled_from(["jpg", "png", "pdf"]),
)


def files_of(names: Sequence[str]) -> dict[str, str]:
    """``{document_id: file_url}``, numbered from "1", one URL per name."""
    return {str(n): f"https://docs.example.com/kyc/{n}/{name}" for n, name in enumerate(names, 1)}


SPACE = ScenarioSpace(
    options={
        "token_ttl_seconds": st.integers(300, 7200),
        "min_processing_seconds": st.floats(0, 30, allow_nan=False),
        "max_processing_seconds": st.floats(0, 120, allow_nan=False),
        "slow_extra_seconds": st.floats(0, 1200, allow_nan=False),
        "pending_documents": st.sampled_from(["null", "omit"]),
        "per_page_above_max": st.sampled_from(["clamp", "reject"]),
    },
    # A few names, repeated: up to 144 documents (three pages of 50) at the cost of twelve
    # drawn names, and the repetition shrinks away first.
    items=st.builds(
        lambda names, copies: names * copies,
        st.lists(_file_name, min_size=1, max_size=12),
        st.integers(1, 12),
    ),
    operations=("generate_bulk_auth_token", "bulk_multiupload", "get_bulk_extracts"),
    transient_errors=("RateLimited", "InternalServerError", "ServiceUnavailable"),
    render=files_of,
)


# -- bulksim verify ---------------------------------------------------------------------------

CREDENTIAL_KEYS = ("client_id", "client_secret")
# The documents of the lifecycle and the type bulksim detects from each file name.
LIFECYCLE_FILES = (
    ("1", "https://docs.example.com/kyc/aadhaar_front.jpg", "AADHAAR"),
    ("2", "https://docs.example.com/kyc/pan_card.jpg", "PAN"),
    ("3", "https://docs.example.com/kyc/passport.jpg", "PASSPORT"),
    ("4", "https://docs.example.com/kyc/dl_front.jpg", "DRIVING_LICENSE"),
    ("5", "https://docs.example.com/kyc/voter_id.jpg", "VOTER_ID"),
)
LIFECYCLE_PAGE = 2  # smaller than the batch, so the extracts take three pages
UNKNOWN_BATCH = "BATCH-00000-AAAAA-20000101000000"


def _error(status: int, message: str) -> dict[str, str]:
    return {"error_code": str(status), "error_message": message}


def _expect_error(
    target: Target, step: str, response: httpx.Response, status: int, text: str
) -> None:
    body = _json(response)
    target.expect(
        step,
        response.status_code == status and body == _error(status, text),
        f"answered {response.status_code} {response.text[:200]}, not {status} {text!r}",
    )


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _field_problems(path: str, value: Any) -> list[str]:
    """Every extracted field is ``{"value", "confidence_score"}``; a group holds fields."""
    if not isinstance(value, dict):
        return [f"{path} is {value!r}, not a field"]
    if "value" in value or "confidence_score" in value:
        score = value.get("confidence_score")
        if not isinstance(value.get("value"), str):
            return [f"{path}.value is {value.get('value')!r}, not a string"]
        if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
            return [f"{path}.confidence_score is {score!r}, not a number from 0 to 1"]
        return []
    if not value:
        return [f"{path} is an empty group"]
    return [p for key, inner in value.items() for p in _field_problems(f"{path}.{key}", inner)]


def _document_problems(entry: Mapping[str, Any]) -> list[str]:
    name = f"document {entry.get('document_id')}"
    if entry.get("error_code") is not None:
        ok = entry.get("error_code") == "422" and str(entry.get("error_message", "")).startswith(
            "Unprocessable: "
        )
        return [] if ok else [f"{name} failed with {entry.get('error_code')!r}, not '422'"]
    file_data = entry.get("file_data")
    if not isinstance(file_data, dict) or not isinstance(file_data.get("document_type"), str):
        return [f"{name} has no file_data.document_type: {file_data!r}"]
    fields = {k: v for k, v in file_data.items() if k != "document_type"}
    if not fields:
        return [f"{name} has no fields"]
    return [p for k, v in fields.items() for p in _field_problems(f"{name}.{k}", v)]


def _read_page(
    target: Target, headers: Mapping[str, str], batch_id: str, number: int
) -> dict[str, Any]:
    count = len(LIFECYCLE_FILES)
    pages = math.ceil(count / LIFECYCLE_PAGE)
    response = target.call(
        "extracts",
        "GET",
        EXTRACTS,
        params={"batch_id": batch_id, "page": number, "per_page": LIFECYCLE_PAGE},
        headers=headers,
    )
    target.expect("extracts", response.status_code == 200, f"answered {response.status_code}")
    page: dict[str, Any] = response.json()
    where = (
        page["page"],
        page["per_page"],
        page["total_items"],
        page["total_pages"],
        page["has_next"],
        page["has_prev"],
    )
    expected = (number, LIFECYCLE_PAGE, count, pages, number < pages, number > 1)
    target.expect(
        "extracts",
        where == expected,
        f"page {number}: (page, per_page, total_items, total_pages, has_next, has_prev) is "
        f"{where}, not {expected}",
    )
    covered = [d for d, _, _ in LIFECYCLE_FILES][(number - 1) * LIFECYCLE_PAGE :][:LIFECYCLE_PAGE]
    shown = [str(entry["document_id"]) for entry in page["data"]]
    target.expect(
        "extracts",
        shown == [d for d in covered if d in shown] and len(shown) <= len(covered),
        f"page {number} shows documents {shown}, not (some of) {covered} in upload order",
    )
    return page


def lifecycle(target: Target) -> None:
    """The token's documented errors → a token → the Token's errors → multiupload (201 array)
    → an unknown batch_id (400) → extracts paged to the end and polled until every document
    has finished → on a bulksim, the token expired an hour later."""
    credentials = {
        "Client-Id": str(target.credentials["client_id"]),
        "Client-Secret": str(target.credentials["client_secret"]),
    }

    missing = target.call("token without credentials", "POST", TOKEN)
    _expect_error(
        target,
        "token without credentials",
        missing,
        400,
        "Bad Request: Missing Client-Id or Client-Secret",
    )
    wrong = target.call(
        "token with a wrong secret",
        "POST",
        TOKEN,
        headers={**credentials, "Client-Secret": "not-the-secret"},
    )
    _expect_error(
        target,
        "token with a wrong secret",
        wrong,
        401,
        "Authentication Error: Invalid Client-Id or Client-Secret",
    )
    issued = target.call("token", "POST", TOKEN, headers=credentials)
    target.expect("token", issued.status_code == 201, f"answered {issued.status_code}, not 201")
    expires_in = issued.json()["expires_in"]
    target.expect("token", expires_in > 0, f"expires_in is {expires_in}")
    headers = {"Token": issued.json()["access_token"]}

    anonymous = target.call(
        "extracts without a token", "GET", EXTRACTS, params={"batch_id": UNKNOWN_BATCH}
    )
    _expect_error(
        target, "extracts without a token", anonymous, 401, "Authentication Error: Missing Token"
    )
    forged = target.call(
        "extracts with an invalid token",
        "GET",
        EXTRACTS,
        params={"batch_id": UNKNOWN_BATCH},
        headers={"Token": "not-a-helloatlas-token"},
    )
    _expect_error(
        target,
        "extracts with an invalid token",
        forged,
        401,
        "Authentication Error: Invalid Token",
    )

    body = {
        "product_type": "POC_CDL",
        "file_urls": [{"file_url": url, "document_id": d} for d, url, _ in LIFECYCLE_FILES],
    }
    upload = target.call("upload", "POST", UPLOAD, headers=headers, json=body)
    target.expect("upload", upload.status_code == 201, f"answered {upload.status_code}, not 201")
    entries = upload.json()
    echoed = [e["document_id"] for e in entries]
    target.expect(
        "upload",
        echoed == [d for d, _, _ in LIFECYCLE_FILES],
        f"the answer lists documents {echoed}, not each file in request order",
    )
    batch_ids = {e["batch_id"] for e in entries}
    target.expect("upload", len(batch_ids) == 1, f"the files got several batch_ids: {batch_ids}")
    batch_id = entries[0]["batch_id"]
    target.expect(
        "upload", bool(BATCH_ID.match(batch_id)), f"batch_id {batch_id!r} is not BATCH-nnnnn-..."
    )

    unknown = target.call(
        "extracts of an unknown batch_id",
        "GET",
        EXTRACTS,
        params={"batch_id": UNKNOWN_BATCH},
        headers=headers,
    )
    _expect_error(
        target, "extracts of an unknown batch_id", unknown, 400, "Bad Request: Invalid batch_id"
    )

    pages: dict[int, dict[str, Any]] = {}
    number = 1
    while True:
        pages[number] = _read_page(target, headers, batch_id, number)
        if not pages[number]["has_next"]:
            break
        number += 1
    deadline = time.monotonic() + target.timeout
    while unfinished := [n for n in sorted(pages) if not page_finished(pages[n])]:
        target.expect(
            "extracts",
            time.monotonic() < deadline,
            f"pages {unfinished} still unfinished after {target.timeout:g}s",
        )
        target.wait(10 if target.is_bulksim else 5)
        for number in unfinished:
            pages[number] = _read_page(target, headers, batch_id, number)

    documents = [entry for n in sorted(pages) for entry in pages[n]["data"]]
    problems = [p for entry in documents for p in _document_problems(entry)]
    target.expect("extracts", not problems, "; ".join(problems[:5]))
    if target.is_bulksim:
        # bulksim detects the type from the file name (docs/providers/helloatlas.md).
        kinds = [(e["document_id"], (e["file_data"] or {}).get("document_type")) for e in documents]
        expected = [(d, kind) for d, _, kind in LIFECYCLE_FILES]
        target.expect("extracts", kinds == expected, f"document types {kinds}, not {expected}")

        target.wait(float(expires_in))
        expired = target.call(
            "extracts with an expired token",
            "GET",
            EXTRACTS,
            params={"batch_id": batch_id},
            headers=headers,
        )
        _expect_error(
            target,
            "extracts with an expired token",
            expired,
            401,
            "Authentication Error: Token has expired",
        )
