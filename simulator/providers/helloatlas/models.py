"""HelloAtlas's records and rules: test clients, batches on the clock, options.

A batch record keeps only its documents' ids and URLs (``documents.py``); each document's
processing time and extracted data are derived from ``(seed, batch_id, index)`` when its
page is read, so reading page 20,000 of a million-document batch costs what page 1 does.
Pure: nothing here reads or writes the store. A handler loads the records, calls these rules
(which raise HelloAtlas's errors), saves what they return, and renders it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from simulator.ids import NumberedId
from simulator.kit import credentials
from simulator.kit.budget import Budget
from simulator.kit.cache import ByteCache
from simulator.kit.context import ProviderContext
from simulator.kit.pagination import PageRules
from simulator.kit.retention import Retention
from simulator.kit.tokens import Problem, TokenRejected, TokenSigner
from simulator.providers.helloatlas import errors
from simulator.providers.helloatlas.documents import Documents
from simulator.providers.helloatlas.fakes import DocumentFaker, Traits
from simulator.providers.helloatlas.multiupload import Multiupload
from simulator.settings import Range
from simulator.store import Table

__all__ = [
    "BATCHES",
    "Batch",
    "Client",
    "FinishedPages",
    "HelloAtlas",
    "HelloAtlasOptions",
    "Timing",
]

AUDIENCE = "helloatlas-bulk"
DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 50
# The Retry-After of an upload refused because the stored batches are at their caps.
RETRY_WHEN_FULL = 60


@dataclass(frozen=True, slots=True)
class HelloAtlasOptions:
    """HelloAtlas's knobs (``--option helloatlas.<name>=<value>``)."""

    token_ttl_seconds: Annotated[int, Range(1, 31_536_000)] = 3600
    # Each document finishes at a point of this window after upload, derived from the seed.
    min_processing_seconds: Annotated[float, Range(0, 2_592_000)] = 5.0
    max_processing_seconds: Annotated[float, Range(0, 2_592_000)] = 30.0
    slow_extra_seconds: Annotated[float, Range(0, 2_592_000)] = 600.0
    # A document still processing: in its place with "file_data": null, or left out.
    pending_documents: Literal["null", "omit"] = "null"
    # per_page above 50: served as 50, or refused with a 400.
    per_page_above_max: Literal["clamp", "reject"] = "clamp"
    max_files: Annotated[int, Range(1, 10_000_000)] = 1_000_000
    max_upload_bytes: Annotated[int, Range(1, 1_073_741_824)] = 128 * 1024 * 1024
    max_batches: Annotated[int, Range(1, 1_000_000)] = 1000
    max_metadata_bytes: Annotated[int, Range(1, 4 * 1_073_741_824)] = 256 * 1024 * 1024
    # Pages of finished documents kept as bytes, so that reading one again is a lookup.
    page_cache_bytes: Annotated[int, Range(0, 1_073_741_824)] = 8 * 1024 * 1024
    retention_days: Annotated[int, Range(0, 3650)] = 7

    @property
    def rules(self) -> PageRules:
        return PageRules(DEFAULT_PER_PAGE, MAX_PER_PAGE, self.per_page_above_max)

    @property
    def retention(self) -> Retention:
        return Retention(timedelta(days=self.retention_days), self.max_batches)

    def budget(self, seeded: int) -> Budget:
        """The caps on uploaded batches; the ``seeded`` ones count towards ``max_batches``."""
        return Budget(self.max_batches - seeded, self.max_metadata_bytes)


Context = ProviderContext[HelloAtlasOptions]


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
    def of(cls, ctx: Context) -> Timing:
        options = ctx.options
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
CLIENTS = {c.client_id: c for c in TEST_CLIENTS}

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


@dataclass(frozen=True, slots=True)
class Batch:
    """One multiupload: its documents' metadata; everything else is derived.

    ``version`` names the batch's content (a hash of everything a page of it is rendered
    from): two processes sharing a store agree on it, and a batch_id that comes back with
    other documents (after a reset) has another.
    """

    batch_id: str
    owner: str | None
    product_type: str
    created_at: datetime
    documents: Documents
    timing: Timing
    version: str

    @property
    def count(self) -> int:
        return self.documents.count

    def ready_at(self, fraction: float, traits: Traits) -> datetime:
        """When a document finishes: ``fraction`` is its seeded point of the window."""
        return self.created_at + self.timing.ready_after(fraction, traits.slow)


BATCHES = Table("batches", Batch)


class FinishedPages:
    """Rendered pages whose documents have all finished, kept as bytes (bounded).

    A per-process service, not state: keyed by the batch's ``version`` (never by a number
    this process counts), so it can never answer for another batch, and each page remembers
    when its last document finished, so a clock set back before then renders afresh.
    """

    def __init__(self, max_bytes: int) -> None:
        # Each body is noted with the instant it is final from.
        self._cache: ByteCache[datetime] = ByteCache(max_bytes)

    def get(self, batch: Batch, page: int, per_page: int, now: datetime) -> bytes | None:
        found = self._cache.lookup((batch.version, page, per_page))
        if found is None or found[1] is None or found[1] > now:
            return None
        return found[0]

    def put(self, batch: Batch, page: int, per_page: int, body: bytes, final_at: datetime) -> None:
        """Keep ``body``, final from ``final_at`` on."""
        self._cache.put((batch.version, page, per_page), body, final_at)


@dataclass
class HelloAtlas:
    """What one app's HelloAtlas holds besides its records, fixed when it starts (or resets):
    the token signer (keyed from the store), the document faker, the cache of finished
    pages, and the seed pages' two batches with the one document the extracts page shows."""

    signer: TokenSigner
    fakes: DocumentFaker
    pages: FinishedPages
    seeds: dict[str, Batch]
    fixed: dict[str, Mapping[int, Mapping[str, object]]]

    def finishes_at(self, batch: Batch, index: int, traits: Traits) -> datetime:
        """When document ``index`` of ``batch`` (whose URL gave it ``traits``) finishes."""
        return batch.ready_at(self.fakes.processing_fraction(batch.batch_id, index), traits)


def start(ctx: Context) -> HelloAtlas:
    """The provider record's ``store_factory``."""
    timing = Timing.of(ctx)
    seed = _seed(
        SEED_BATCH_ID, Documents.of([("1", f"{SAMPLE_BUCKET}/aadhaar_front_1.jpg")]), timing
    )
    example = _seed(
        EXAMPLE_BATCH_ID,
        Documents.of([(str(n), f"{SAMPLE_BUCKET}/sample{n}.jpg") for n in (1, 2)]),
        timing,
    )
    return HelloAtlas(
        TokenSigner(AUDIENCE, ctx.clock, ctx.ids, shared=True),
        DocumentFaker(ctx.ids),
        FinishedPages(ctx.options.page_cache_bytes),
        {batch.batch_id: batch for batch in (seed, example)},
        {SEED_BATCH_ID: {0: SEED_DOCUMENT}},
    )


def _seed(batch_id: str, documents: Documents, timing: Timing) -> Batch:
    created_at = _stamp(batch_id)
    return Batch(batch_id, None, "POC_CDL", created_at, documents, timing, f"seed/{batch_id}")


def _stamp(batch_id: str) -> datetime:
    """The upload instant a batch id ends with (``...-YYYYMMDDhhmmss``), in UTC."""
    return datetime.strptime(batch_id[-14:], "%Y%m%d%H%M%S").replace(tzinfo=UTC)


# -- auth ----------------------------------------------------------------------------------


def store_full() -> errors.RateLimited:
    """HelloAtlas's 429 (inferred for this cause): the stored batches fill ``max_batches`` or
    ``max_metadata_bytes``; none is dropped before its retention ends."""
    return errors.RateLimited(RETRY_WHEN_FULL)


def authorize(client_id: str, client_secret: str) -> Client:
    """The client these credentials name, or HelloAtlas's 401."""
    client = CLIENTS.get(client_id)
    if client is None or not credentials.same(client_secret, client.client_secret):
        raise errors.InvalidClientCredentials()
    return client


def verify(signer: TokenSigner, token: str) -> Client:
    """The client a ``Token`` header belongs to, or HelloAtlas's 401."""
    try:
        client = CLIENTS.get(signer.subject(token))
    except TokenRejected as exc:
        raise (
            errors.ExpiredToken if exc.problem is Problem.EXPIRED else errors.InvalidToken
        )() from None
    if client is None:
        raise errors.InvalidToken()
    return client


# -- batches -------------------------------------------------------------------------------


def batch_id(number: NumberedId, now: datetime) -> str:
    """``BATCH-nnnnn-AAAAA-<UTC timestamp>`` for the batch numbered ``number``."""
    stamp = now.astimezone(UTC).strftime("%Y%m%d%H%M%S")
    return f"BATCH-{number.digits(5)}-{number.letters(5)}-{stamp}"


def new_batch(ctx: Context, batch_id: str, owner: str, upload: Multiupload, now: datetime) -> Batch:
    """A batch uploaded at ``now``, with the timing the options give now (fixed from then on)."""
    timing = Timing.of(ctx)
    hasher = hashlib.blake2b(digest_size=16)
    hasher.update(repr((batch_id, now.isoformat(), timing)).encode())
    hasher.update(upload.documents.digest().encode())
    documents = upload.documents
    return Batch(batch_id, owner, upload.product_type, now, documents, timing, hasher.hexdigest())


def owned(batch: Batch | None, owner: str) -> Batch:
    """The batch, if ``owner`` may see it (seeded ones are everyone's); else HelloAtlas's 400."""
    if batch is None or batch.owner not in (None, owner):
        raise errors.InvalidBatchId()
    return batch
