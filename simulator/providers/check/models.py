"""Check's records and rules: test keys and plans, rate windows, one-shot files, batches.

Pure: nothing here reads or writes the store. A handler loads the records, calls these rules
(which raise Check's errors), saves what they return, and renders it.

Everything time-dependent is derived from the injected clock. A batch's items are scheduled
when it is created (``concurrency`` lanes, each item as long as its outcome's processing
time), so an item's status at any instant is a pure function of the clock:
pending → queued → processing → completed | failed, or skipped by a cancel.
"""

from __future__ import annotations

import dataclasses
import functools
import heapq
import itertools
import math
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, NamedTuple, TypeVar

from simulator.ids import IdFactory
from simulator.kit import credentials
from simulator.kit.budget import Budget
from simulator.kit.context import ProviderContext
from simulator.kit.files import FileErrors, FileRef, OneShotFiles
from simulator.kit.progress import Progress
from simulator.kit.retention import Retention
from simulator.providers.check import errors, fakes
from simulator.providers.check.formats import FileLimits, Item
from simulator.settings import Range
from simulator.store import Table

__all__ = [
    "BATCHES",
    "BATCH_CHUNKS",
    "SEED_COPIES",
    "TEST_KEYS",
    "WINDOWS",
    "Batch",
    "BatchChunk",
    "BatchHead",
    "Check",
    "CheckOptions",
    "Org",
    "Plan",
    "Window",
]

H = TypeVar("H")
PlanName = Literal["free", "pro", "enterprise"]
PLAN_TITLES: dict[PlanName, str] = {"free": "Free", "pro": "Pro", "enterprise": "Enterprise"}
# The plan each verification method first appears in (Create Batch, "Available Methods").
METHOD_PLANS: dict[str, PlanName] = {
    "semantic": "free",
    "reasoning": "free",
    "tool": "pro",
    "biprm": "pro",
    "ensemble": "pro",
    "entropy": "pro",
    "formal": "enterprise",
}
PLAN_RANK: dict[PlanName, int] = {"free": 0, "pro": 1, "enterprise": 2}
BATCH_STATUSES = ("pending", "validating", "processing", "completed", "failed", "cancelled")
SEED_FILE_ID = "550e8400-e29b-41d4-a716-446655440000"
SEED_COMPLETED = "batch_abc123def456"
SEED_IN_PROGRESS = "batch_inprogress01"
ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


class _Worked:
    """A slot for what a frozen record works out of its own fields on first use, a pure
    function of them (so never out of date): not a field, so never stored, compared or
    copied (a copy works it out again)."""

    __slots__ = ("_worked",)
    _worked: Any


@dataclass(frozen=True, slots=True)
class CheckOptions(_Worked):
    """Check's knobs (``--option check.<name>=<value>``); plan limits per the Batch overview."""

    file_storage: bool = True
    enforce_rate_limits: bool = False
    free_requests_per_minute: Annotated[int, Range(1, 1_000_000)] = 20
    pro_requests_per_minute: Annotated[int, Range(1, 1_000_000)] = 200
    enterprise_requests_per_minute: Annotated[int, Range(1, 1_000_000)] = 1000
    pro_max_file_mb: Annotated[float, Range(0.001, 1024)] = 10.0
    enterprise_max_file_mb: Annotated[float, Range(0.001, 1024)] = 100.0
    pro_file_expiry_seconds: Annotated[int, Range(1, 31_536_000)] = 3600
    enterprise_file_expiry_seconds: Annotated[int, Range(1, 31_536_000)] = 86_400
    pro_max_batch_items: Annotated[int, Range(1, 1_000_000)] = 1000
    enterprise_max_batch_items: Annotated[int, Range(1, 1_000_000)] = 10_000
    pro_retention_days: Annotated[int, Range(0, 3650)] = 30
    enterprise_retention_days: Annotated[int, Range(0, 3650)] = 90
    max_items_per_file: Annotated[int, Range(1, 1_000_000)] = 100
    max_content_chars: Annotated[int, Range(1, 10_000_000)] = 50_000
    concurrency: Annotated[int, Range(1, 1000)] = 10
    queue_seconds: Annotated[float, Range(0, 86_400)] = 1.0
    seed_in_progress_seconds: Annotated[float, Range(0, 31_536_000)] = 600.0
    max_batches: Annotated[int, Range(1, 1_000_000)] = 1000
    max_files: Annotated[int, Range(1, 1_000_000)] = 1000
    # Bytes the stored batches, and the uploaded files not yet used, may hold between them
    # (each measured by kit.budget.size_of).
    max_stored_bytes: Annotated[int, Range(1, 17_179_869_184)] = 64 * 1024 * 1024
    max_stored_file_bytes: Annotated[int, Range(1, 17_179_869_184)] = 64 * 1024 * 1024

    @property
    def file_limits(self) -> FileLimits:
        return FileLimits(self.max_items_per_file, self.max_content_chars)

    @property
    def budget(self) -> Budget:
        """The caps on stored batches (the seeded ones are not stored)."""
        return Budget(self.max_batches, self.max_stored_bytes)

    @property
    def plans(self) -> dict[PlanName, Plan]:
        """The plans under these options, worked out once (every request reads its plan)."""
        try:
            plans: dict[PlanName, Plan] = self._worked
        except AttributeError:
            plans = _plans(self)
            object.__setattr__(self, "_worked", plans)
        return plans


Context = ProviderContext[CheckOptions]


@dataclass(frozen=True, slots=True)
class Plan:
    name: PlanName
    requests_per_minute: int
    max_file_mb: float = 0.0
    file_expiry: timedelta = timedelta(0)
    max_batch_items: int = 0
    retention: timedelta = timedelta(0)

    @property
    def title(self) -> str:
        return PLAN_TITLES[self.name]

    @property
    def batches(self) -> bool:
        return self.name != "free"

    @property
    def max_file_bytes(self) -> int:
        return math.floor(self.max_file_mb * 1024 * 1024)

    def allows(self, method: str) -> bool:
        return PLAN_RANK[METHOD_PLANS[method]] <= PLAN_RANK[self.name]


def _plans(options: CheckOptions) -> dict[PlanName, Plan]:
    """The plans under these options (:attr:`CheckOptions.plans`; do not change the dict)."""
    return {
        "free": Plan("free", options.free_requests_per_minute),
        "pro": Plan(
            "pro",
            options.pro_requests_per_minute,
            options.pro_max_file_mb,
            timedelta(seconds=options.pro_file_expiry_seconds),
            options.pro_max_batch_items,
            timedelta(days=options.pro_retention_days),
        ),
        "enterprise": Plan(
            "enterprise",
            options.enterprise_requests_per_minute,
            options.enterprise_max_file_mb,
            timedelta(seconds=options.enterprise_file_expiry_seconds),
            options.enterprise_max_batch_items,
            timedelta(days=options.enterprise_retention_days),
        ),
    }


@dataclass(frozen=True, slots=True)
class Org:
    """An organisation behind a test key."""

    id: str
    plan: PlanName


TEST_KEYS = {
    "vfy_test_free_4c1e9a7d2b8f6035": Org("org_free_test", "free"),
    "vfy_test_pro_8c2e6a4f1b9d7e35": Org("org_pro_test", "pro"),
    "vfy_test_enterprise_5d7b3f9e2a6c": Org("org_enterprise_test", "enterprise"),
}


@dataclass(frozen=True, slots=True)
class BatchOptions:
    """A batch's resolved ``options``, defaults filled in."""

    timeout: int = 30_000
    min_confidence: float | None = None
    accept_threshold: float = 0.95
    escalate_threshold: float = 0.5
    max_retries: int = 3
    retry_on_low_confidence: bool = False

    def as_json(self) -> dict[str, object]:
        return {
            "timeout": self.timeout,
            "minConfidence": self.min_confidence,
            "acceptThreshold": self.accept_threshold,
            "escalateThreshold": self.escalate_threshold,
            "maxRetries": self.max_retries,
            "retryOnLowConfidence": self.retry_on_low_confidence,
        }

    def settings(self) -> fakes.Settings:
        return fakes.Settings(
            self.timeout, self.max_retries, self.min_confidence, self.retry_on_low_confidence
        )


@dataclass(frozen=True, slots=True)
class CreateRequest:
    """A validated ``POST /v1/batch`` body."""

    methods: dict[str, float]
    options: BatchOptions
    name: str | None = None
    file_id: str | None = None
    items: tuple[Item, ...] = ()
    webhook_url: str | None = None


@dataclass(frozen=True, slots=True)
class Counts:
    processed: int
    succeeded: int
    failed: int
    cost_cents: int


@dataclass(frozen=True, slots=True)
class Span:
    """When a batch's first item starts (its queue's end, if it has none) and its last one
    ends, in seconds after its creation."""

    first_start: float
    last_end: float


@dataclass(frozen=True, slots=True)
class Batch(_Worked):
    """One batch; item ``i`` runs from ``starts[i]`` to ``progress.ends[i]`` seconds after
    its creation (``progress.started_at``)."""

    id: str
    owner: str
    name: str | None
    methods: tuple[tuple[str, float], ...]
    options: BatchOptions
    items: tuple[Item, ...]
    progress: Progress
    queue_seconds: float
    starts: tuple[float, ...]
    # How each item ends, drawn once when the batch is made (or fixed in advance, for the
    # documentation's examples): a results page reads them, never draws them again.
    outcomes: tuple[fakes.Outcome, ...]
    retention: timedelta
    webhook_url: str | None = None
    cancelled_at: datetime | None = None

    @property
    def created_at(self) -> datetime:
        return self.progress.started_at

    @property
    def ends(self) -> tuple[float, ...]:
        return self.progress.ends

    @property
    def span(self) -> Span:
        """Its first start and last end, worked out once (every poll reads them)."""
        try:
            span: Span = self._worked
        except AttributeError:
            span = Span(
                min(self.starts, default=self.queue_seconds),
                max(self.ends, default=self.queue_seconds),
            )
            object.__setattr__(self, "_worked", span)
        return span

    @property
    def last_end(self) -> float:
        return self.span.last_end

    def elapsed(self, now: datetime) -> float:
        return self.progress.elapsed(now)

    def cancel_offset(self) -> float | None:
        return None if self.cancelled_at is None else self.elapsed(self.cancelled_at)

    def item_status(self, index: int, now: datetime) -> str:
        cancelled = self.cancel_offset()
        if cancelled is not None and self.starts[index] > cancelled:
            return "skipped"
        elapsed = self.elapsed(now)
        if elapsed < self.queue_seconds:
            return "pending"
        if elapsed < self.starts[index]:
            return "queued"
        if elapsed < self.ends[index]:
            return "processing"
        return "failed" if self.outcomes[index].failed else "completed"

    def status(self, now: datetime) -> str:
        if self.cancelled_at is not None:
            return "cancelled"
        if self.elapsed(now) < self.last_end:
            return "processing"
        return "failed" if all(o.failed for o in self.outcomes) else "completed"

    def counts(self, now: datetime) -> Counts:
        outcomes = self.outcomes
        failed = map(_FAILED, outcomes)
        return tally(self, now, failed, map(_COST, outcomes))

    def started_at(self, now: datetime) -> datetime | None:
        first = self.span.first_start
        cancelled = self.cancel_offset()
        if self.elapsed(now) < first or (cancelled is not None and cancelled < first):
            return None
        return self.created_at + timedelta(seconds=first)

    def completed_at(self, now: datetime) -> datetime | None:
        if self.cancelled_at is not None:
            return self.cancelled_at
        if self.elapsed(now) < self.last_end:
            return None
        return self.created_at + timedelta(seconds=self.last_end)

    @property
    def ends_at(self) -> datetime:
        """When the batch is over: cancelled, or its last item done."""
        if self.cancelled_at is not None:
            return self.cancelled_at
        return self.created_at + timedelta(seconds=self.last_end)

    def expires_at(self, max_batches: int) -> datetime:
        """When the store forgets the batch: its plan's retention after it is over."""
        return Retention(self.retention, max_batches).expires_at(self.ends_at)


_FAILED = operator.attrgetter("failed")
_COST = operator.attrgetter("cost_cents")


def tally(batch: Batch, now: datetime, failed: Iterable[bool], costs: Iterable[int]) -> Counts:
    """The batch's counts at ``now``, item ``i`` having ``failed[i]`` and cost ``costs[i]``."""
    return _tally(batch, batch.elapsed(now), batch.cancel_offset(), failed, costs, batch.last_end)


@dataclass(frozen=True, slots=True)
class Summary:
    """What a batch's summary shows at one instant (as its methods give each)."""

    counts: Counts
    status: str
    started_at: datetime | None
    completed_at: datetime | None


def summarize(batch: Batch, now: datetime, head: BatchHead | None = None) -> Summary:
    """:meth:`Batch.counts`, :meth:`Batch.status`, :meth:`Batch.started_at` and
    :meth:`Batch.completed_at` at ``now`` in one pass; from ``head`` (the stored head of
    ``batch``: each item's fate and cost) when given, else from the batch's own outcomes."""
    elapsed = batch.elapsed(now)
    cancelled = batch.cancel_offset()
    span = batch.span
    last_end = span.last_end
    if cancelled is None and elapsed >= last_end:
        # Every item done (what most polls see): the counts of a batch over.
        counts = head.ended if head is not None else ended(batch.outcomes)
    elif head is not None:
        counts = _tally(batch, elapsed, cancelled, head.failed, head.costs, last_end)
    else:
        outcomes = batch.outcomes
        failed, costs = map(_FAILED, outcomes), map(_COST, outcomes)
        counts = _tally(batch, elapsed, cancelled, failed, costs, last_end)
    created_at = batch.created_at
    first = span.first_start
    started_at = None
    if not (elapsed < first or (cancelled is not None and cancelled < first)):
        started_at = created_at + timedelta(seconds=first)
    if batch.cancelled_at is not None:
        return Summary(counts, "cancelled", started_at, batch.cancelled_at)
    if elapsed < last_end:
        return Summary(counts, "processing", started_at, None)
    # Every item done: all failed when none succeeded.
    status = "failed" if counts.succeeded == 0 else "completed"
    return Summary(counts, status, started_at, created_at + timedelta(seconds=last_end))


def ended(outcomes: Iterable[fakes.Outcome]) -> Counts:
    """The counts once every item has ended, none cancelled."""
    return _ended(map(_FAILED, outcomes), map(_COST, outcomes))


def _ended(failed: Iterable[bool], costs: Iterable[int]) -> Counts:
    succeeded = list(map(operator.not_, failed))
    total = len(succeeded)
    ok = sum(succeeded)
    return Counts(total, ok, total - ok, sum(itertools.compress(costs, succeeded)))


def _tally(
    batch: Batch,
    elapsed: float,
    cancelled: float | None,
    failed: Iterable[bool],
    costs: Iterable[int],
    last_end: float,
) -> Counts:
    if cancelled is None and elapsed >= last_end:
        # Every item done: counted without a loop in Python.
        return _ended(failed, costs)
    processed = failures = cost = 0
    if cancelled is None:
        for end, fail, cents in zip(batch.ends, failed, costs, strict=False):
            if end <= elapsed:
                processed += 1
                if fail:
                    failures += 1
                else:
                    cost += cents
    else:
        for end, start, fail, cents in zip(batch.ends, batch.starts, failed, costs, strict=False):
            if end <= elapsed and start <= cancelled:
                processed += 1
                if fail:
                    failures += 1
                else:
                    cost += cents
    return Counts(processed, processed - failures, failures, cost)


# -- how a batch is stored -----------------------------------------------------------------
#
# A stored batch is its head (``BATCHES``: the batch without its items and outcomes, with
# what its counts need of each outcome) and its items with their outcomes in chunks of
# ``CHUNK`` (``BATCH_CHUNKS``, under ``<batch id>/<n>``), all expiring together. A results
# page reads the head and the chunks it shows; the caps count the whole batch (its size is
# the whole batch's, stored beside the head).

CHUNK = 100


@dataclass(frozen=True, slots=True)
class BatchHead(_Worked):
    """A stored batch without its items and outcomes (``batch.items`` and ``batch.outcomes``
    are empty): each item's fate and cost, which its counts and status need, kept beside."""

    batch: Batch
    failed: tuple[bool, ...]
    costs: tuple[int, ...]

    @property
    def ended(self) -> Counts:
        """The batch's counts once every item has ended, none cancelled: worked out once,
        so that a poll of a batch that is over walks none of its items."""
        try:
            counts: Counts = self._worked
        except AttributeError:
            counts = _ended(self.failed, self.costs)
            object.__setattr__(self, "_worked", counts)
        return counts

    @property
    def id(self) -> str:
        return self.batch.id

    @property
    def size(self) -> int:
        """How many items the batch has."""
        return len(self.failed)

    def chunks(self, offset: int = 0, limit: int | None = None) -> range:
        """The numbers of the chunks holding items ``offset`` to ``offset + limit``."""
        end = self.size if limit is None else min(self.size, offset + limit)
        if end <= offset:
            return range(0)
        return range(offset // CHUNK, (end - 1) // CHUNK + 1)


@dataclass(frozen=True, slots=True)
class BatchChunk:
    """Items ``n * CHUNK`` to ``(n + 1) * CHUNK`` of a stored batch, with their outcomes."""

    items: tuple[Item, ...]
    outcomes: tuple[fakes.Outcome, ...]


def chunk_key(batch_id: str, number: int) -> str:
    return f"{batch_id}/{number}"


def stored_parts(batch: Batch) -> tuple[BatchHead, list[BatchChunk]]:
    """The batch as it is stored: its head and its chunks, in order."""
    outcomes = batch.outcomes
    head = BatchHead(
        dataclasses.replace(batch, items=(), outcomes=()),
        tuple(o.failed for o in outcomes),
        tuple(o.cost_cents for o in outcomes),
    )
    chunks = [
        BatchChunk(batch.items[start : start + CHUNK], outcomes[start : start + CHUNK])
        for start in range(0, len(batch.items), CHUNK)
    ]
    return head, chunks


_UNREAD_ITEM = Item("")


def joined(head: BatchHead, chunks: dict[int, BatchChunk]) -> Batch:
    """The batch from its head and the chunks read (by number). An item of a chunk not read
    is a stand-in: its outcome says only whether it failed and its cost (what the counts and
    status read), so such a batch renders exactly the items of the chunks read, and is never
    stored."""
    items: list[Item] = []
    outcomes: list[fakes.Outcome] = []
    for number in range(head.chunks().stop):
        chunk = chunks.get(number)
        if chunk is not None:
            items.extend(chunk.items)
            outcomes.extend(chunk.outcomes)
            continue
        start = number * CHUNK
        stop = min(head.size, start + CHUNK)
        items.extend([_UNREAD_ITEM] * (stop - start))
        outcomes.extend(
            fakes.Outcome(head.failed[i], None, None, 0, head.costs[i]) for i in range(start, stop)
        )
    return dataclasses.replace(head.batch, items=tuple(items), outcomes=tuple(outcomes))


BATCHES = Table("batch_heads", BatchHead)
BATCH_CHUNKS = Table("batch_chunks", BatchChunk)
# A seeded batch a client changed (cancelled): it stands in for the seed from then on.
SEED_COPIES = Table("seed_batches", Batch)


@dataclass(frozen=True, slots=True)
class FileItems:
    """An uploaded file's items, kept until the fileId is used or expires."""

    items: tuple[Item, ...]


def schedule(
    durations: list[float], lanes: int, offset: float
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Start and end of each item when items take the first free of ``lanes`` in order."""
    free = [(offset, lane) for lane in range(max(1, lanes))]
    starts: list[float] = []
    ends: list[float] = []
    for duration in durations:
        at, lane = heapq.heappop(free)
        starts.append(at)
        ends.append(at + duration)
        heapq.heappush(free, (at + duration, lane))
    return tuple(starts), tuple(ends)


# -- auth and rate limits ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    """One minute of the clock, in which an organisation's requests are counted; it starts
    at ``starts_at`` and ends at ``reset`` (epoch seconds), the instant ``ends_at``."""

    minute: int
    reset: int
    ends_at: datetime
    starts_at: datetime

    def key(self, org: Org) -> str:
        """Where the organisation's count in this window is kept (in ``WINDOWS``)."""
        return f"{org.id}/{self.minute}"


@functools.lru_cache(maxsize=16)
def window(minute: int) -> Window:
    """The window of minute ``minute`` since the epoch (a pure function of it: the latest
    few kept, so that a request need not work out its end again)."""
    reset = (minute + 1) * 60
    starts_at = datetime.fromtimestamp(minute * 60, UTC)
    return Window(minute, reset, datetime.fromtimestamp(reset, UTC), starts_at)


# An organisation's requests in one window, under ``Window.key``: a counter that expires
# when its window ends, added to atomically by every request (``Store.add``).
WINDOWS = Table("rate_counts", int)


class RateWindow(NamedTuple):
    """What the ``X-RateLimit-*`` headers say (a tuple: one is made for every request)."""

    limit: int
    remaining: int
    reset: int

    def headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-reset": str(self.reset),
        }

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """:meth:`headers` as an ASGI response's raw headers, in the same order."""
        return [
            (b"x-ratelimit-limit", b"%d" % self.limit),
            (b"x-ratelimit-remaining", b"%d" % self.remaining),
            (b"x-ratelimit-reset", b"%d" % self.reset),
        ]


def authenticate(authorization: str | None) -> Org:
    """The organisation behind ``Authorization: Bearer <key>``, or Check's 401."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise errors.Unauthorized()
    org = credentials.lookup(TEST_KEYS, token)
    if org is None:
        raise errors.InvalidApiKey()
    return org


def plan_of(options: CheckOptions, org: Org) -> Plan:
    return options.plans[org.plan]


def minute_of(now: datetime) -> int:
    return math.floor(now.timestamp()) // 60


def window_of(now: datetime) -> Window:
    """The window ``now`` is in: the last one found, while ``now`` is still in it."""
    global _last_window
    last = _last_window
    if last.starts_at <= now < last.ends_at:
        return last
    found = _last_window = window(minute_of(now))
    return found


_last_window = window(0)


def counted(window: Window, count: int, now: datetime, limit: int, enforce: bool) -> RateWindow:
    """The headers of the ``count``-th request in ``window``; over ``limit`` it is refused
    (Check's 429) if ``enforce``, and then it is not to be counted."""
    if enforce and count > limit:
        seconds = now.timestamp()
        limited = errors.RateLimited(max(1, math.ceil(window.reset - seconds)))
        limited.extra_headers.update(RateWindow(limit, 0, window.reset).headers())
        raise limited
    return RateWindow(limit, max(0, limit - count), window.reset)


# -- one-shot files ------------------------------------------------------------------------

FILE_ERRORS = FileErrors(
    unknown=errors.FileNotFound.of,
    expired=errors.FileExpired.of,
    consumed=errors.FileAlreadyUsed.of,
)


# The Retry-After of a create refused because the stored batches are at their caps.
RETRY_WHEN_FULL = 60


def store_full() -> errors.RateLimited:
    """Check's 429 (inferred for this cause): the stored batches fill ``max_batches`` or
    ``max_stored_bytes``; none is dropped before its plan's retention ends."""
    return errors.RateLimited(RETRY_WHEN_FULL)


def file_store_full(options: CheckOptions) -> errors.PayloadTooLarge:
    """Check's 413 (inferred for this cause): one file larger than ``max_stored_file_bytes``."""
    return errors.PayloadTooLarge.file(options.max_stored_file_bytes / (1024 * 1024))


def new_file(org: Org, plan: Plan, items: list[Item], now: datetime) -> FileRef:
    return FileRef(org.id, now + plan.file_expiry, len(items))


def fits(plan: Plan) -> Callable[[FileRef], None]:
    """Whether a file's items fit in one batch of ``plan`` (else a 422 on ``fileId``)."""

    def check(ref: FileRef) -> None:
        if ref.size > plan.max_batch_items:
            raise errors.ValidationFailed.field(
                "fileId",
                f"File has {ref.size} items; the {plan.title} plan allows "
                f"{plan.max_batch_items} per batch",
            )

    return check


# -- batches -------------------------------------------------------------------------------


def new_batch(
    ctx: Context,
    batch_id: str,
    owner: str,
    items: tuple[Item, ...],
    request: CreateRequest,
    created_at: datetime,
    lanes: int,
    retention: timedelta,
    overrides: dict[int, fakes.Outcome] | None = None,
    durations: list[float] | None = None,
) -> Batch:
    """A batch created at ``created_at``, its items scheduled on ``lanes``."""
    overrides = overrides or {}
    settings = request.options.settings()
    outcomes = [
        overrides.get(i) or fakes.outcome(ctx.ids, item, dict(request.methods), settings)
        for i, item in enumerate(items)
    ]
    if durations is None:
        durations = [o.duration_s for o in outcomes]
    queue = ctx.scaled(ctx.options.queue_seconds)
    starts, ends = schedule([ctx.scaled(d) for d in durations], lanes, queue)
    return Batch(
        id=batch_id,
        owner=owner,
        name=request.name,
        methods=tuple(request.methods.items()),
        options=request.options,
        items=items,
        progress=Progress(created_at, ends),
        queue_seconds=queue,
        starts=starts,
        outcomes=tuple(outcomes),
        retention=retention,
        webhook_url=request.webhook_url,
    )


def owned(batch: Batch | None, org: Org) -> Batch:
    """The batch, if ``org`` owns it; else Check's 404."""
    if batch is None or batch.owner != org.id:
        raise errors.BatchNotFound()
    return batch


def cancelled(batch: Batch, now: datetime) -> Batch:
    """The batch cancelled at ``now``; only a processing batch can be (else CANNOT_CANCEL)."""
    if batch.status(now) != "processing":
        raise errors.CannotCancel()
    return dataclasses.replace(batch, cancelled_at=now)


def newest_first(batches: list[tuple[Batch, H]]) -> list[tuple[Batch, H]]:
    """``batches`` (each with what goes beside it, in the order they were made), newest
    first; of batches created in the same instant, the later one first."""
    order = sorted(enumerate(batches), key=lambda pair: (pair[1][0].created_at, pair[0]))
    return [found for _, found in reversed(order)]


WEBHOOK_HEADER = "X-Check-Signature"


def webhook_secret(ids: IdFactory, org_id: str) -> str:
    """The organisation's webhook signing secret (the dashboard shows it): from the seed."""
    return "whsec_" + ids.hashed("webhook-secret", org_id, n=32, alphabet="0123456789abcdef")


def webhook_type(batch: Batch) -> str:
    """The event a batch ends with: ``batch.failed`` when every item failed."""
    return "batch.failed" if batch.status(batch.ends_at) == "failed" else "batch.completed"


def verification_id(ctx: Context, batch: Batch, index: int) -> str:
    fixed = batch.outcomes[index].verification_id
    return fixed or fakes.verification_id(ctx.ids, batch.id, index)


# -- the instance --------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """What one app's Check holds besides its records, fixed when it starts (or resets): the
    documentation's batches and fileId, owned by the pro test key's organisation."""

    seeds: dict[str, Batch]
    files: OneShotFiles[FileItems]


def start(ctx: Context) -> Check:
    """The provider record's ``store_factory``: the seeds, as of now."""
    pro = TEST_KEYS_BY_PLAN["pro"]
    plan = plan_of(ctx.options, pro)
    now = ctx.now()
    example = CreateRequest(
        methods={"reasoning": 1.0, "tool": 0.5},
        options=BatchOptions(),
        name="Article verification batch",
    )
    completed = new_batch(
        ctx,
        SEED_COMPLETED,
        pro.id,
        fakes.SEED_RESULTS,
        example,
        now - timedelta(days=1),
        ctx.options.concurrency,
        plan.retention,
        overrides=dict(fakes.SEED_OUTCOMES),
    )
    count = 25
    in_progress = new_batch(
        ctx,
        SEED_IN_PROGRESS,
        pro.id,
        fakes.CLAIMS[:count],
        CreateRequest(
            methods={"reasoning": 1.0}, options=BatchOptions(), name="Nightly claims review"
        ),
        now,
        1,
        plan.retention,
        durations=[ctx.options.seed_in_progress_seconds / count] * count,
    )
    seed_file = (new_file(pro, plan, list(fakes.CLAIMS), now), FileItems(fakes.CLAIMS))
    files = OneShotFiles("files", FileItems, FILE_ERRORS, seeds={SEED_FILE_ID: seed_file})
    return Check({b.id: b for b in (completed, in_progress)}, files)


TEST_KEYS_BY_PLAN: dict[PlanName, Org] = {org.plan: org for org in TEST_KEYS.values()}
KEYS_BY_PLAN: dict[PlanName, str] = {org.plan: key for key, org in TEST_KEYS.items()}
