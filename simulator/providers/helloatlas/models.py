"""HelloAtlas's state: test clients, signed tokens and batches, all on the injected clock.

A batch keeps only its documents' ids and URLs (``documents.py``); each document's
processing time and extracted data are derived from ``(seed, batch_id, index)`` when its
page is read, so reading page 20,000 of a million-document batch costs what page 1 does.
"""

from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from simulator.kit.cache import ByteCache
from simulator.kit.context import ProviderContext
from simulator.kit.pagination import PageRequest, PageRules, PageWindow
from simulator.kit.tokens import Problem, TokenRejected, TokenSigner
from simulator.providers.helloatlas import errors
from simulator.providers.helloatlas.documents import Documents
from simulator.providers.helloatlas.fakes import FAILED, UNIDENTIFIED, DocumentFaker
from simulator.providers.helloatlas.upload import Multiupload

__all__ = ["Batch", "Client", "HelloAtlasOptions", "HelloAtlasStore", "Timing"]

AUDIENCE = "helloatlas-bulk"
DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 50


@dataclass(frozen=True, slots=True)
class HelloAtlasOptions:
    """HelloAtlas's knobs (``--option helloatlas.<name>=<value>``)."""

    token_ttl_seconds: int = 3600
    # Each document finishes at a point of this window after upload, derived from the seed.
    min_processing_seconds: float = 5.0
    max_processing_seconds: float = 30.0
    slow_extra_seconds: float = 600.0
    # A document still processing: in its place with "file_data": null, or left out.
    pending_documents: Literal["null", "omit"] = "null"
    # per_page above 50: served as 50, or refused with a 400.
    per_page_above_max: Literal["clamp", "reject"] = "clamp"
    max_files: int = 1_000_000
    max_upload_bytes: int = 128 * 1024 * 1024
    max_batches: int = 1000
    max_metadata_bytes: int = 256 * 1024 * 1024
    # Pages of finished documents kept as bytes, so that reading one again is a lookup.
    page_cache_bytes: int = 8 * 1024 * 1024
    retention_days: int = 7


@dataclass(frozen=True, slots=True)
class Timing:
    """When a batch's documents finish, fixed when the batch is uploaded.

    A change of the timing options through ``/_sim/options`` reaches batches uploaded after
    it, never one already uploaded, so a finished document stays finished.
    """

    min_seconds: float
    window_seconds: float
    slow_extra_seconds: float
    time_scale: float

    @classmethod
    def of(cls, options: HelloAtlasOptions, ctx: ProviderContext) -> Timing:
        return cls(
            options.min_processing_seconds,
            max(0.0, options.max_processing_seconds - options.min_processing_seconds),
            options.slow_extra_seconds,
            ctx.settings.time_scale,
        )

    def ready_after(self, fraction: float, slow: bool) -> timedelta:
        """How long after upload a document finishes; ``fraction`` is its seeded point."""
        seconds = self.min_seconds + self.window_seconds * fraction
        if slow:
            seconds += self.slow_extra_seconds
        return timedelta(seconds=seconds * self.time_scale)


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    client_secret: str


TEST_CLIENTS = (
    Client("helloatlas_test_client", "ha_sim_secret_4b1d9e7c2a6f3058"),
    Client("helloatlas_other_client", "ha_sim_secret_other_9c3e5a71d2b8"),
)

# The batch of the extracts page, with its one document verbatim.
SEED_BATCH_ID = "BATCH-69469-BBRSS-20260309081408"
SEED_DOCUMENT = {
    "document_type": "AADHAAR",
    "name": {"value": "D MANIKANDAN DURAISAMY", "confidence_score": 0.95},
    "date_of_birth": {"value": "16/07/1986", "confidence_score": 0.98},
    "address": {
        "value": "4-CH-64, NEAR COMMUNITY HALL, BHILWARA, BHILWARA, Bhilwara, Rajasthan, 311001",
        "confidence_score": 0.95,
    },
    "aadhaar_number": {"value": "1234 5678 9012", "confidence_score": 0.99},
}
# The batch of the multiupload page's example response (its files: sample1.jpg, ...).
EXAMPLE_BATCH_ID = "BATCH-30732-SIYKJ-20251121113228"
SAMPLE_BUCKET = "https://helloatlas-samples.s3.ap-south-1.amazonaws.com/bulk"


@dataclass
class Batch:
    """One multiupload: its documents' metadata; everything else is derived."""

    batch_id: str
    owner: str | None
    product_type: str
    created_at: datetime
    documents: Documents
    timing: Timing
    # Unique within a store, never reused: the page cache's key, so that a batch_id that
    # comes back after its batch was evicted can never be served the old batch's pages.
    serial: int = 0
    pinned: bool = False
    fixed: Mapping[int, Mapping[str, object]] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return self.documents.count


@dataclass
class HelloAtlasStore:
    ctx: ProviderContext
    clients: dict[str, Client] = field(init=False)
    batches: dict[str, Batch] = field(init=False)
    tokens: TokenSigner = field(init=False)

    @property
    def options(self) -> HelloAtlasOptions:
        """Read live: ``/_sim/options`` may change them while the simulator runs."""
        options: HelloAtlasOptions = self.ctx.options
        return options

    @property
    def rules(self) -> PageRules:
        return PageRules(DEFAULT_PER_PAGE, MAX_PER_PAGE, self.options.per_page_above_max)

    def __post_init__(self) -> None:
        self.clients = {c.client_id: c for c in TEST_CLIENTS}
        self.batches = {}
        self.tokens = TokenSigner(AUDIENCE, self.ctx.clock, self.ctx.ids)
        self.fakes = DocumentFaker(self.ctx.ids)
        self.pages = ByteCache(self.options.page_cache_bytes)
        self.serials = itertools.count(1)
        timing = Timing.of(self.options, self.ctx)
        self._add(
            Batch(
                SEED_BATCH_ID,
                None,
                "POC_CDL",
                _stamp(SEED_BATCH_ID),
                Documents.of([("1", f"{SAMPLE_BUCKET}/aadhaar_front_1.jpg")]),
                timing,
                pinned=True,
                fixed={0: SEED_DOCUMENT},
            )
        )
        self._add(
            Batch(
                EXAMPLE_BATCH_ID,
                None,
                "POC_CDL",
                _stamp(EXAMPLE_BATCH_ID),
                Documents.of([(str(n), f"{SAMPLE_BUCKET}/sample{n}.jpg") for n in (1, 2)]),
                timing,
                pinned=True,
            )
        )

    def now(self) -> datetime:
        return self.ctx.clock.now()

    # -- auth ------------------------------------------------------------------------------

    def issue_token(self, client_id: str, client_secret: str) -> tuple[str, int]:
        client = self.clients.get(client_id)
        if client is None or not secrets.compare_digest(
            client.client_secret.encode(), client_secret.encode()
        ):
            raise errors.InvalidClientCredentials()
        ttl = self.options.token_ttl_seconds
        token, _ = self.tokens.issue(client.client_id, ttl)
        return token, ttl

    def verify(self, token: str) -> Client:
        """The client a ``Token`` header belongs to, or HelloAtlas's 401."""
        try:
            client = self.clients.get(self.tokens.subject(token))
        except TokenRejected as exc:
            raise (
                errors.ExpiredToken if exc.problem is Problem.EXPIRED else errors.InvalidToken
            )() from None
        if client is None:
            raise errors.InvalidToken()
        return client

    # -- batches ---------------------------------------------------------------------------

    def create_batch(self, owner: str, upload: Multiupload) -> Batch:
        now = self.now()
        self.evict(incoming=upload.documents.nbytes())
        batch_id = self._new_batch_id(now)
        timing = Timing.of(self.options, self.ctx)
        batch = Batch(batch_id, owner, upload.product_type, now, upload.documents, timing)
        self._add(batch)
        return batch

    def batch_for(self, batch_id: str, owner: str) -> Batch:
        batch = self.batches.get(batch_id)
        if batch is None or batch.owner not in (None, owner):
            raise errors.InvalidBatchId()
        return batch

    def file_uuids(self, batch: Batch, start: int, stop: int) -> Iterator[str]:
        return self.fakes.file_uuids(batch.batch_id, start, stop)

    def page_bytes(self, batch: Batch, request: PageRequest) -> bytes:
        """The extracts response body for one page, as JSON bytes.

        A page whose documents have all finished can no longer change (its batch's timing is
        fixed at upload, and no option changes a finished document), so it is kept (in a
        bounded cache) and reading it again costs a lookup, not generating it again.
        """
        key = (batch.serial, request.page, request.per_page)
        cached = self.pages.get(key)
        if cached is not None:
            return cached
        body, final = self.page(batch, request)
        data = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
        if final:
            self.pages.put(key, data)
        return data

    def page(self, batch: Batch, request: PageRequest) -> tuple[dict[str, object], bool]:
        """The extracts response body for one page of ``batch``, and whether it is final."""
        window = PageWindow(request.page, request.per_page, batch.count)
        now = self.now()
        data = []
        final = True
        for index in window.indices():
            item = self.document(batch, index, now)
            if item is None or (item["file_data"] is None and "error_code" not in item):
                final = False
            if item is not None:
                data.append(item)
        return {
            "data": data,
            "page": window.page,
            "per_page": window.per_page,
            "total_pages": window.total_pages,
            "total_items": window.total_items,
            "has_next": window.has_next,
            "has_prev": window.has_prev,
        }, final

    def document(self, batch: Batch, index: int, now: datetime) -> dict[str, object] | None:
        """Document ``index`` as the extracts page shows it at ``now`` (None: left out)."""
        document_id = batch.documents.document_id(index)
        if index in batch.fixed:
            return {"document_id": document_id, "file_data": dict(batch.fixed[index])}
        traits = batch.documents.traits(index)
        fraction = self.fakes.processing_fraction(batch.batch_id, index)
        if now < batch.created_at + batch.timing.ready_after(fraction, traits.slow):
            if self.options.pending_documents == "omit":
                return None
            return {"document_id": document_id, "file_data": None}
        if traits.outcome != "extracted":
            text = FAILED if traits.outcome == "failed" else UNIDENTIFIED
            return {"document_id": document_id, "file_data": None, **errors.envelope(422, text)}
        file_data = self.fakes.file_data(batch.batch_id, index, batch.created_at, traits)
        return {"document_id": document_id, "file_data": file_data}

    def evict(self, incoming: int = 0) -> None:
        """Drop batches past retention, then the oldest while over the count or size cap."""
        cutoff = self.now() - timedelta(days=self.options.retention_days)
        for batch_id in [
            k for k, b in self.batches.items() if not b.pinned and b.created_at < cutoff
        ]:
            del self.batches[batch_id]
        unpinned = [k for k, b in self.batches.items() if not b.pinned]
        held = sum(self.batches[k].documents.nbytes() for k in unpinned) + incoming
        for batch_id in unpinned:
            if len(self.batches) < self.options.max_batches and (
                held <= self.options.max_metadata_bytes
            ):
                break
            held -= self.batches.pop(batch_id).documents.nbytes()

    def _new_batch_id(self, now: datetime) -> str:
        stamp = now.astimezone(UTC).strftime("%Y%m%d%H%M%S")
        while True:
            batch_id = f"BATCH-{self.ctx.ids.digits(5)}-{self.ctx.ids.letters(5)}-{stamp}"
            if batch_id not in self.batches:
                return batch_id

    def _add(self, batch: Batch) -> None:
        batch.serial = next(self.serials)
        self.batches[batch.batch_id] = batch


def _stamp(batch_id: str) -> datetime:
    """The upload instant a batch id ends with (``...-YYYYMMDDhhmmss``), in UTC."""
    return datetime.strptime(batch_id[-14:], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
