"""A reference Check client: upload a file, create one batch from it, poll, page the results.

The one delicate step is the create. A fileId is one-shot: the first create that uses it
consumes it, and any later one is refused with 409 ``conflict``. So when a create's outcome
is unknown (the connection dropped, the body was cut off, a 5xx came back), sending the same
fileId again is never right: if the first create landed, the retry is refused and the client
is left without the id of the batch it made. See :meth:`CheckClient.submit` for what the
client does instead.
"""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from contracts.clients.base import (
    GaveUp,
    Now,
    RetryPolicy,
    Sleep,
    call_with_retries,
    system_now,
    system_sleep,
)

__all__ = ["TERMINAL", "CheckClient", "CheckError"]

TERMINAL = frozenset({"completed", "failed", "cancelled"})
MAX_PAGE = 100  # the most GET /v1/batch and /results give per page
Intact = Callable[[httpx.Response], bool]


class CheckError(RuntimeError):
    """Check answered with an error a retry will not fix."""

    def __init__(self, response: httpx.Response, doing: str = "") -> None:
        what = f" to {doing}" if doing else ""
        super().__init__(f"Check answered {response.status_code}{what}: {response.text[:300]}")
        self.response = response


class _Outcome(enum.Enum):
    CREATED = "created"
    # Refused before it was processed: the fileId is unused and may be sent again.
    NOT_CREATED = "refused before it was processed"
    # The fileId expired or is unknown: upload again.
    FILE_GONE = "the fileId is gone"
    # The create may or may not have landed.
    UNKNOWN = "outcome unknown"


def _fresh_tag() -> str:
    return uuid.uuid4().hex[:12]


@dataclass
class CheckClient:
    """Verifies the items of a CSV or JSON file the way Check's batch pages describe.

    Every call is retried on 429 (after ``Retry-After``, or the body's ``retryAfter``), 5xx,
    dropped connections and cut-off bodies, except the create (see :meth:`submit`). A batch
    is polled with exponential backoff until it is completed, failed or cancelled, and its
    results are paged with ``limit``/``offset`` until ``pagination.hasMore`` is false.
    """

    http: httpx.Client
    api_key: str
    sleep: Sleep = system_sleep
    now: Now = system_now
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    poll_interval: float = 2.0
    max_poll_interval: float = 30.0
    max_wait: float = 6 * 3600.0
    page_size: int = MAX_PAGE
    max_lookup_pages: int = 10
    tag: Callable[[], str] = _fresh_tag

    def verify(
        self,
        content: bytes,
        filename: str = "items.csv",
        *,
        name: str | None = None,
        methods: Mapping[str, float] | None = None,
    ) -> list[dict[str, Any]]:
        """Upload ``content``, create a batch, wait for it and return every result item."""
        batch_id = self.submit(content, filename, name=name, methods=methods)
        self.wait(batch_id)
        return self.results(batch_id)

    # -- upload and create ------------------------------------------------------------------

    def upload(self, content: bytes, filename: str = "items.csv") -> str:
        """A fresh one-shot fileId for ``content``.

        Safe to retry: an upload whose answer was lost only leaves an unused fileId behind,
        which expires on its own.
        """
        media = "application/json" if filename.lower().endswith(".json") else "text/csv"
        response = self._call(
            "upload the file",
            "POST",
            "/v1/batch/upload",
            intact=_has("fileId"),
            files={"file": (filename, content, media)},
        )
        file_id: str = response.json()["fileId"]
        return file_id

    def submit(
        self,
        content: bytes,
        filename: str = "items.csv",
        *,
        name: str | None = None,
        methods: Mapping[str, float] | None = None,
    ) -> str:
        """Upload and create exactly one batch; returns its id.

        Each create carries a name with a tag unique to this submission, because Check has
        no idempotency key for a batch (an item's ``idempotencyKey`` is not a batch's).
        When a create's outcome is unknown, the client:

        1. waits a backoff, then lists the organisation's batches (newest first) for that
           name. If the create landed and only its answer was lost, that batch is the one:
           no second batch, no second use of the fileId;
        2. if no such batch exists, uploads the file again and creates with the fresh
           fileId. The old fileId might have been consumed by a create that is still on its
           way, and it is never sent again: the one-shot rule holds without exception.

        Retrying the old fileId after an empty lookup would turn that last race into a 409
        instead of a possible second batch, but it would send a resource that may already be
        used, which is exactly the mistake the one-shot rule forbids; a second upload costs
        one request. A 429 is different: Check rate-limits a request before it is processed,
        so the fileId is known to be unused and the same create is sent again after the wait.
        """
        marker = self._marker(name)
        body: dict[str, object] = {"name": marker}
        if methods is not None:
            body["methods"] = dict(methods)
        file_id: str | None = None
        last = "no attempt"
        for attempt in range(self.retry.attempts):
            if file_id is None:
                file_id = self.upload(content, filename)
            outcome, detail = self._create_once({"fileId": file_id, **body})
            if outcome is _Outcome.CREATED:
                return detail
            last = f"{detail} ({outcome.value})"
            if outcome is _Outcome.NOT_CREATED:
                continue  # _create_once has waited out the Retry-After
            file_id = None  # from here on this fileId is never sent again
            if outcome is _Outcome.UNKNOWN:
                # Give a create still on its way the time to land before looking for it.
                self.sleep(self.retry.backoff(attempt))
                found = self.find_batch(marker)
                if found is not None:
                    return found
        raise GaveUp(f"gave up creating a batch after {self.retry.attempts} attempts; last: {last}")

    def _create_once(self, body: Mapping[str, object]) -> tuple[_Outcome, str]:
        """Send one create; the batch id, or why there is none and what that means."""
        try:
            response = self._send("POST", "/v1/batch", json=body)
        except httpx.TransportError as exc:
            return _Outcome.UNKNOWN, f"{type(exc).__name__}: {exc}"
        status = response.status_code
        if status < 300:
            if _has("id")(response):
                batch_id: str = response.json()["id"]
                return _Outcome.CREATED, batch_id
            return _Outcome.UNKNOWN, f"a cut-off {status} answer"
        if status == 429:
            self.sleep(_retry_after(response) or self.retry.first_backoff)
            return _Outcome.NOT_CREATED, "rate limited"
        if status >= 500:
            return _Outcome.UNKNOWN, f"HTTP {status}"
        code = _error_code(response)
        if (status, code) in ((404, "not_found"), (400, "bad_request")) and _about_file(response):
            return _Outcome.FILE_GONE, f"HTTP {status} {code}"
        raise CheckError(response, "create a batch")

    def find_batch(self, name: str) -> str | None:
        """The id of the organisation's newest batch called ``name``, if there is one."""
        for page in range(self.max_lookup_pages):
            listing = self._call(
                "list batches",
                "GET",
                "/v1/batch",
                intact=_has("data", "pagination"),
                params={"limit": MAX_PAGE, "offset": page * MAX_PAGE},
            ).json()
            for batch in listing["data"]:
                if batch.get("name") == name:
                    batch_id: str = batch["id"]
                    return batch_id
            if not listing["pagination"].get("hasMore") or not listing["data"]:
                return None
        return None

    def _marker(self, name: str | None) -> str:
        tag = f"[{self.tag()}]"
        return f"{name[: 254 - len(tag)]} {tag}" if name else f"bulksim {tag}"

    # -- status and results -----------------------------------------------------------------

    def status(self, batch_id: str) -> dict[str, Any]:
        response = self._call(
            "get the batch", "GET", f"/v1/batch/{batch_id}", intact=_has("id", "status")
        )
        batch: dict[str, Any] = response.json()
        return batch

    def wait(self, batch_id: str) -> dict[str, Any]:
        """Poll with backoff until the batch is completed, failed or cancelled; returns it."""
        interval = self.poll_interval
        deadline = self.now() + self.max_wait
        while True:
            batch = self.status(batch_id)
            if batch["status"] in TERMINAL:
                return batch
            if self.now() >= deadline:
                raise TimeoutError(
                    f"batch {batch_id} still {batch['status']} after {self.max_wait:g}s"
                )
            self.sleep(interval)
            interval = min(self.max_poll_interval, interval * 1.5)

    def results(self, batch_id: str) -> list[dict[str, Any]]:
        """Every result item, paging with ``limit``/``offset`` while ``hasMore``."""
        items: list[dict[str, Any]] = []
        while True:
            page = self._call(
                "get results",
                "GET",
                f"/v1/batch/{batch_id}/results",
                intact=_has("items", "pagination"),
                params={"limit": self.page_size, "offset": len(items)},
            ).json()
            items += page["items"]
            if not page["pagination"]["hasMore"]:
                return items
            if not page["items"]:
                raise RuntimeError(f"results of {batch_id}: an empty page that says more follow")

    # -- transport --------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.http.request(method, path, headers=self._headers(), **kwargs)
        return self._read_limits(response)

    def _read_limits(self, response: httpx.Response) -> httpx.Response:
        """Make Check's own signals plain to the retry loop.

        A 429 whose ``Retry-After`` header went missing (a proxy may strip it) still says how
        long to wait in its body's ``retryAfter``. And a 503 ``FILE_STORAGE_UNAVAILABLE`` is a
        setting of the account, not a passing outage: retrying it only wastes the rate limit.
        """
        if response.status_code == 429 and "retry-after" not in response.headers:
            seconds = _body_retry_after(response)
            if seconds is not None:
                response.headers["Retry-After"] = str(seconds)
        if response.status_code == 503 and _error_code(response) == "FILE_STORAGE_UNAVAILABLE":
            raise CheckError(response)
        return response

    def _call(
        self, doing: str, method: str, path: str, *, intact: Intact, **kwargs: Any
    ) -> httpx.Response:
        response = call_with_retries(
            lambda: self._send(method, path, **kwargs), self.sleep, self.retry, intact=intact
        )
        if response.status_code >= 300:
            raise CheckError(response, doing)
        return response


def _json(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        return None


def _has(*keys: str) -> Intact:
    """A whole JSON object with these keys: anything else was cut off or mangled."""

    def intact(response: httpx.Response) -> bool:
        body = _json(response)
        return isinstance(body, dict) and all(key in body for key in keys)

    return intact


def _error(response: httpx.Response) -> dict[str, Any]:
    body = _json(response)
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _error_code(response: httpx.Response) -> str | None:
    code = _error(response).get("code")
    return code if isinstance(code, str) else None


def _about_file(response: httpx.Response) -> bool:
    """Whether an error is about the fileId (unknown, expired) rather than the request."""
    details = _error(response).get("details")
    fields = [d.get("field") for d in details if isinstance(d, dict)] if details else []
    return "fileId" in fields or "file" in str(_error(response).get("message", "")).lower()


def _body_retry_after(response: httpx.Response) -> int | None:
    seconds = _error(response).get("retryAfter")
    return seconds if isinstance(seconds, int) and seconds >= 0 else None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "").strip()
    if value.isdigit():
        return float(value)
    seconds = _body_retry_after(response)
    return None if seconds is None else float(seconds)
