"""A reference HelloAtlas client: a token, one multiupload, then the extracts page by page.

HelloAtlas has no status endpoint: ``GET /v1/bulk/extracts`` is both the status and the
results. A document still processing keeps its place in its page as ``"file_data": null``
(or, on a provider configured to omit them, is left out and its page comes back short while
``total_items`` still counts it). So the client pages to the end once, following
``has_next``, and then re-reads with backoff only the pages that still hold an unfinished
document. A page whose documents have all finished never changes again and is not read twice.

A lost multiupload answer cannot be recovered: HelloAtlas has neither an idempotency key nor
a way to list batches. The upload is retried like any other call; if the lost one did land,
its batch is orphaned and costs only the extraction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from contracts.clients.base import (
    Now,
    RetryPolicy,
    Sleep,
    call_with_retries,
    system_now,
    system_sleep,
)

__all__ = [
    "MAX_PER_PAGE",
    "Extraction",
    "HelloAtlasClient",
    "HelloAtlasError",
    "page_finished",
]

MAX_PER_PAGE = 50
Intact = Callable[[httpx.Response], bool]
Page = dict[str, Any]


class HelloAtlasError(RuntimeError):
    """HelloAtlas answered with an error a retry will not fix."""

    def __init__(self, response: httpx.Response, doing: str = "") -> None:
        what = f" to {doing}" if doing else ""
        super().__init__(f"HelloAtlas answered {response.status_code}{what}: {response.text[:300]}")
        self.response = response


@dataclass(frozen=True)
class Extraction:
    """One document's outcome: its extracted fields, or why extraction failed."""

    document_id: str
    file_data: Mapping[str, Any] | None
    error_code: str | None = None
    error_message: str | None = None

    @property
    def failed(self) -> bool:
        return self.error_code is not None

    @property
    def pending(self) -> bool:
        """Still processing: only a client that stopped waiting too early returns this."""
        return self.file_data is None and not self.failed

    @property
    def document_type(self) -> str | None:
        if self.file_data is None:
            return None
        kind = self.file_data.get("document_type")
        return kind if isinstance(kind, str) else None

    @classmethod
    def of(cls, entry: Mapping[str, Any]) -> Extraction:
        return cls(
            str(entry["document_id"]),
            entry.get("file_data"),
            entry.get("error_code"),
            entry.get("error_message"),
        )


def _document_finished(entry: Any) -> bool:
    return isinstance(entry, dict) and (
        entry.get("file_data") is not None or entry.get("error_code") is not None
    )


def page_finished(page: Mapping[str, Any]) -> bool:
    """Whether every document this page covers has finished (extracted or failed).

    A page covers a fixed run of documents (they keep their upload order and place): it is
    finished when it shows as many as it covers, none of them with ``file_data`` null and
    no error. Both ways of showing an unfinished document are covered: in place with
    ``"file_data": null``, or left out (the page is short).
    """
    data, number, per_page, total = (
        page.get(k) for k in ("data", "page", "per_page", "total_items")
    )
    if not (
        isinstance(data, list)
        and isinstance(number, int)
        and isinstance(per_page, int)
        and isinstance(total, int)
    ):
        return False
    covered = max(0, min(per_page, total - (number - 1) * per_page))
    return len(data) >= covered and all(_document_finished(entry) for entry in data)


@dataclass
class HelloAtlasClient:
    """Extracts a batch of documents the way HelloAtlas's bulk pages describe.

    The token is refreshed before it expires (its ``expires_in`` read on the injected
    ``now``) and once more if HelloAtlas still answers 401. Every call is retried on 429
    (after ``Retry-After``), 5xx, dropped connections and cut-off bodies.
    """

    http: httpx.Client
    client_id: str
    client_secret: str
    sleep: Sleep = system_sleep
    now: Now = system_now
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    product_type: str = "POC_CDL"
    page_size: int = MAX_PER_PAGE
    poll_interval: float = 2.0
    max_poll_interval: float = 60.0
    max_polls: int = 200
    refresh_margin: float = 300.0
    _token: str | None = None
    _token_deadline: float = 0.0

    def extract(self, files: Mapping[str, str]) -> dict[str, Extraction]:
        """Submit ``{document_id: file_url}`` and return one result per document_id, in order.

        A document whose extraction failed is in the result with ``failed`` true and
        HelloAtlas's ``error_code`` and ``error_message``.
        """
        batch_id = self.submit(files)
        return self.results(batch_id, list(files))

    # -- submit ---------------------------------------------------------------------------

    def submit(self, files: Mapping[str, str]) -> str:
        """One multiupload of every file; returns the batch_id they share."""
        body = {
            "product_type": self.product_type,
            "file_urls": [{"file_url": url, "document_id": d} for d, url in files.items()],
        }
        response = self._authorized(
            "submit the documents",
            "POST",
            "/v1/bulk/multiupload",
            intact=_is_upload_answer,
            json=body,
        )
        _check_upload(response, list(files))
        batch_id: str = response.json()[0]["batch_id"]
        return batch_id

    # -- results --------------------------------------------------------------------------

    def page(self, batch_id: str, number: int) -> Page:
        response = self._authorized(
            "read the extracts",
            "GET",
            "/v1/bulk/extracts",
            intact=_is_page,
            params={"batch_id": batch_id, "page": number, "per_page": self.page_size},
        )
        page: Page = response.json()
        return page

    def results(
        self, batch_id: str, document_ids: Sequence[str] | None = None
    ) -> dict[str, Extraction]:
        """Every document of the batch once it has finished, in upload order.

        With ``document_ids`` (those submitted), the result holds exactly those, in that
        order, and a document the provider never showed is an error.
        """
        pages = self.read_pages(batch_id)
        self.wait_for_pages(batch_id, pages)
        found: dict[str, Extraction] = {}
        for number in sorted(pages):
            for entry in pages[number]["data"]:
                found[str(entry["document_id"])] = Extraction.of(entry)
        if document_ids is None:
            return found
        missing = [d for d in document_ids if d not in found]
        if missing:
            raise RuntimeError(f"batch {batch_id} never showed documents {missing[:10]}")
        return {d: found[d] for d in document_ids}

    def read_pages(self, batch_id: str) -> dict[int, Page]:
        """Page 1, 2, ... until ``has_next`` is false, each read once."""
        pages: dict[int, Page] = {}
        number = 1
        while True:
            page = self.page(batch_id, number)
            pages[number] = page
            if not page["has_next"]:
                return pages
            if number >= page["total_pages"]:
                raise RuntimeError(
                    f"batch {batch_id}: page {number} of {page['total_pages']} says more follow"
                )
            number += 1

    def wait_for_pages(self, batch_id: str, pages: dict[int, Page]) -> None:
        """Re-read, with backoff between rounds, each page that still has unfinished documents.

        ``pages`` is updated in place; a finished page is never read again.
        """
        unfinished = self._unfinished(pages)
        interval = self.poll_interval
        for _ in range(self.max_polls):
            if not unfinished:
                return
            self.sleep(interval)
            interval = min(self.max_poll_interval, interval * 1.5)
            for number in unfinished:
                pages[number] = self.page(batch_id, number)
            unfinished = self._unfinished(pages, unfinished)
        if unfinished:
            raise TimeoutError(
                f"batch {batch_id}: pages {unfinished} unfinished after {self.max_polls} rounds"
            )

    @staticmethod
    def _unfinished(pages: Mapping[int, Page], among: Iterable[int] | None = None) -> list[int]:
        numbers = sorted(pages) if among is None else among
        return [n for n in numbers if not page_finished(pages[n])]

    # -- auth and transport ---------------------------------------------------------------

    def authenticate(self) -> str:
        started = self.now()
        response = call_with_retries(
            lambda: self.http.post(
                "/v1/bulk/authtoken",
                headers={"Client-Id": self.client_id, "Client-Secret": self.client_secret},
            ),
            self.sleep,
            self.retry,
            intact=_has("access_token", "expires_in"),
        )
        if response.status_code != 201:
            raise HelloAtlasError(response, "get a token")
        body = response.json()
        lifetime = float(body["expires_in"])
        # The token was issued no earlier than ``started``; refresh with a margin to spare
        # for a slow answer, never more than a fifth of a short lifetime.
        margin = min(self.refresh_margin, lifetime / 5)
        self._token = str(body["access_token"])
        self._token_deadline = started + lifetime - margin
        return self._token

    def _headers(self) -> dict[str, str]:
        if self._token is None or self.now() >= self._token_deadline:
            self.authenticate()
        return {"Token": str(self._token)}

    def _authorized(
        self, doing: str, method: str, path: str, *, intact: Intact, **kwargs: Any
    ) -> httpx.Response:
        for refreshed in (False, True):
            response = call_with_retries(
                lambda: self.http.request(method, path, headers=self._headers(), **kwargs),
                self.sleep,
                self.retry,
                intact=intact,
            )
            if response.status_code == 401 and not refreshed:
                self._token = None  # HelloAtlas no longer takes it: a new token, once
                continue
            if response.status_code >= 300:
                raise HelloAtlasError(response, doing)
            return response
        raise AssertionError("unreachable")  # pragma: no cover


def _json(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        return None


def _has(*keys: str) -> Intact:
    def intact(response: httpx.Response) -> bool:
        body = _json(response)
        return isinstance(body, dict) and all(key in body for key in keys)

    return intact


def _is_page(response: httpx.Response) -> bool:
    body = _json(response)
    return (
        isinstance(body, dict)
        and isinstance(body.get("data"), list)
        and all(isinstance(body.get(k), int) for k in ("page", "per_page", "total_items"))
        and isinstance(body.get("has_next"), bool)
        and isinstance(body.get("total_pages"), int)
    )


def _is_upload_answer(response: httpx.Response) -> bool:
    """A whole JSON array of entries with a batch_id: anything else was cut off or mangled."""
    body = _json(response)
    return (
        isinstance(body, list)
        and bool(body)
        and all(isinstance(e, dict) and isinstance(e.get("batch_id"), str) for e in body)
    )


def _check_upload(response: httpx.Response, document_ids: Sequence[str]) -> None:
    """One entry per file, in order, all with one batch_id; otherwise the batch is unusable.

    Not a reason to retry: the upload did land, and sending it again makes a second batch.
    """
    body = response.json()
    echoed = [str(e.get("document_id")) for e in body]
    batch_ids = {e["batch_id"] for e in body}
    if echoed != list(document_ids) or len(batch_ids) != 1:
        raise RuntimeError(
            f"the multiupload answer does not echo the files: {len(echoed)} entries, "
            f"batch_ids {sorted(batch_ids)[:3]}, document_ids {echoed[:5]}..."
        )
