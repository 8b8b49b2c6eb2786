"""Check's state: test keys and plans, rate windows, one-shot files and batches.

Everything time-dependent is derived from the injected clock. A batch's items are scheduled
when it is created (``concurrency`` lanes, each item as long as its outcome's processing
time), so an item's status at any instant is a pure function of the clock:
pending → queued → processing → completed | failed, or skipped by a cancel.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from simulator.kit.context import ProviderContext
from simulator.kit.files import FileErrors, OneShotFiles
from simulator.providers.check import errors, fakes
from simulator.providers.check.formats import FileLimits, Item

__all__ = ["TEST_KEYS", "Batch", "CheckOptions", "CheckStore", "Org", "Plan"]

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


@dataclass(frozen=True, slots=True)
class CheckOptions:
    """Check's knobs (``--option check.<name>=<value>``); plan limits per the Batch overview."""

    file_storage: bool = True
    enforce_rate_limits: bool = False
    free_requests_per_minute: int = 20
    pro_requests_per_minute: int = 200
    enterprise_requests_per_minute: int = 1000
    pro_max_file_mb: float = 10.0
    enterprise_max_file_mb: float = 100.0
    pro_file_expiry_seconds: int = 3600
    enterprise_file_expiry_seconds: int = 86_400
    pro_max_batch_items: int = 1000
    enterprise_max_batch_items: int = 10_000
    pro_retention_days: int = 30
    enterprise_retention_days: int = 90
    max_items_per_file: int = 100
    max_content_chars: int = 50_000
    concurrency: int = 10
    queue_seconds: float = 1.0
    seed_in_progress_seconds: float = 600.0
    max_batches: int = 1000
    max_files: int = 1000


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


def plans(options: CheckOptions) -> dict[PlanName, Plan]:
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


@dataclass
class Batch:
    """One batch; item ``i`` runs from ``starts[i]`` to ``ends[i]`` seconds after creation."""

    id: str
    owner: str
    name: str | None
    methods: dict[str, float]
    options: BatchOptions
    items: list[Item]
    created_at: datetime
    queue_seconds: float
    starts: list[float]
    ends: list[float]
    failed: bytearray
    costs: list[int]
    retention: timedelta
    overrides: dict[int, fakes.Outcome] = field(default_factory=dict)
    webhook_url: str | None = None
    cancelled_at: datetime | None = None
    pinned: bool = False
    # Each item's outcome and verification id are fixed when the batch is made (they derive
    # from the seed, the batch and the item only); kept, so a results page does not derive
    # them again on every read. What the clock decides (status, times) is never kept.
    outcomes: list[fakes.Outcome] = field(default_factory=list, repr=False)
    verification_ids: dict[int, str] = field(default_factory=dict, repr=False)

    @property
    def last_end(self) -> float:
        return max(self.ends, default=self.queue_seconds)

    def elapsed(self, now: datetime) -> float:
        return (now - self.created_at).total_seconds()

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
        return "failed" if self.failed[index] else "completed"

    def status(self, now: datetime) -> str:
        if self.cancelled_at is not None:
            return "cancelled"
        if self.elapsed(now) < self.last_end:
            return "processing"
        return "failed" if all(self.failed) else "completed"

    def counts(self, now: datetime) -> Counts:
        elapsed = self.elapsed(now)
        cancelled = self.cancel_offset()
        processed = succeeded = failed = cost = 0
        for i, end in enumerate(self.ends):
            if end > elapsed or (cancelled is not None and self.starts[i] > cancelled):
                continue
            processed += 1
            if self.failed[i]:
                failed += 1
            else:
                succeeded += 1
                cost += self.costs[i]
        return Counts(processed, succeeded, failed, cost)

    def started_at(self, now: datetime) -> datetime | None:
        first = min(self.starts, default=self.queue_seconds)
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

    def finished_at(self, now: datetime) -> datetime | None:
        return self.completed_at(now)


def schedule(durations: list[float], lanes: int, offset: float) -> tuple[list[float], list[float]]:
    """Start and end of each item when items take the first free of ``lanes`` in order."""
    free = [(offset, lane) for lane in range(max(1, lanes))]
    starts: list[float] = []
    ends: list[float] = []
    for duration in durations:
        at, lane = heapq.heappop(free)
        starts.append(at)
        ends.append(at + duration)
        heapq.heappush(free, (at + duration, lane))
    return starts, ends


@dataclass(frozen=True, slots=True)
class RateWindow:
    limit: int
    remaining: int
    reset: int
    retry_after: int | None = None

    def headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-reset": str(self.reset),
        }


@dataclass
class CheckStore:
    ctx: ProviderContext
    batches: dict[str, Batch] = field(init=False)
    files: OneShotFiles[tuple[Item, ...]] = field(init=False)
    windows: dict[str, tuple[int, int]] = field(init=False)

    def __post_init__(self) -> None:
        self.batches = {}
        self.windows = {}
        self.files = OneShotFiles(
            self.ctx.clock,
            FileErrors(
                unknown=errors.FileNotFound.of,
                expired=errors.FileExpired.of,
                consumed=errors.FileAlreadyUsed.of,
            ),
            max_files=self.options.max_files,
        )
        self._seed()

    @property
    def options(self) -> CheckOptions:
        """Read on every use: ``/_sim/options`` may change them while the simulator runs."""
        options: CheckOptions = self.ctx.options
        return options

    @property
    def plans(self) -> dict[PlanName, Plan]:
        return plans(self.options)

    @property
    def file_limits(self) -> FileLimits:
        return FileLimits(self.options.max_items_per_file, self.options.max_content_chars)

    def now(self) -> datetime:
        return self.ctx.clock.now()

    # -- auth and rate limits --------------------------------------------------------------

    def authenticate(self, authorization: str | None) -> Org:
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise errors.Unauthorized()
        org = TEST_KEYS.get(token)
        if org is None:
            raise errors.InvalidApiKey()
        return org

    def plan_of(self, org: Org) -> Plan:
        return self.plans[org.plan]

    def hit(self, org: Org) -> RateWindow:
        """Count one request in the org's current minute; over the limit only if enforced."""
        now = self.now().timestamp()
        window = math.floor(now) // 60
        reset = (window + 1) * 60
        limit = self.plan_of(org).requests_per_minute
        seen, count = self.windows.get(org.id, (window, 0))
        if seen != window:
            count = 0
        if self.options.enforce_rate_limits and count >= limit:
            return RateWindow(limit, 0, reset, max(1, math.ceil(reset - now)))
        count += 1
        self.windows[org.id] = (window, count)
        return RateWindow(limit, max(0, limit - count), reset)

    # -- files -----------------------------------------------------------------------------

    def store_file(self, org: Org, items: list[Item]) -> tuple[str, datetime]:
        file_id = self.ctx.ids.uuid()
        ref = self.files.put(file_id, org.id, tuple(items), self.plan_of(org).file_expiry)
        return file_id, ref.expires_at

    # -- batches ---------------------------------------------------------------------------

    def create_batch(self, org: Org, request: CreateRequest) -> Batch:
        """Create a batch; a fileId is consumed atomically, and only once all else is valid.

        Synchronous on purpose: nothing can run between checking the file and using it.
        """
        plan = self.plan_of(org)
        items: tuple[Item, ...] = request.items
        if request.file_id is not None:

            def fits(payload: tuple[Item, ...]) -> None:
                if len(payload) > plan.max_batch_items:
                    raise errors.ValidationFailed.field(
                        "fileId",
                        f"File has {len(payload)} items; the {plan.title} plan allows "
                        f"{plan.max_batch_items} per batch",
                    )

            items = self.files.consume(request.file_id, org.id, fits)
        self.evict(room_for=1)
        batch = self._build(
            self._new_id(),
            org.id,
            list(items),
            request,
            self.now(),
            self.options.concurrency,
            plan.retention,
        )
        self.batches[batch.id] = batch
        return batch

    def batch_for(self, org: Org, batch_id: str) -> Batch:
        batch = self.batches.get(batch_id)
        if batch is None or batch.owner != org.id:
            raise errors.BatchNotFound()
        return batch

    def list_batches(self, org: Org, status: str | None) -> list[Batch]:
        self.evict()
        now = self.now()
        mine = [b for b in self.batches.values() if b.owner == org.id]
        if status is not None:
            mine = [b for b in mine if b.status(now) == status]
        # Newest first; of batches created in the same instant, the later one first.
        order = sorted(enumerate(mine), key=lambda pair: (pair[1].created_at, pair[0]))
        return [batch for _, batch in reversed(order)]

    def cancel(self, org: Org, batch_id: str) -> Batch:
        batch = self.batch_for(org, batch_id)
        if batch.status(self.now()) != "processing":
            raise errors.CannotCancel()
        batch.cancelled_at = self.now()
        return batch

    def outcome(self, batch: Batch, index: int) -> fakes.Outcome:
        if batch.outcomes:
            return batch.outcomes[index]
        pinned = batch.overrides.get(index)
        if pinned is not None:
            return pinned
        return fakes.outcome(
            self.ctx.ids, batch.items[index], batch.methods, batch.options.settings()
        )

    def verification_id(self, batch: Batch, index: int) -> str:
        known = batch.verification_ids.get(index)
        if known is not None:
            return known
        pinned = batch.overrides.get(index)
        if pinned is not None and pinned.verification_id:
            return pinned.verification_id
        known = batch.verification_ids[index] = fakes.verification_id(self.ctx.ids, batch.id, index)
        return known

    def evict(self, room_for: int = 0) -> None:
        """Drop batches past their plan's retention, then the oldest beyond the cap."""
        now = self.now()
        for batch_id in [
            k
            for k, b in self.batches.items()
            if not b.pinned
            and (done := b.finished_at(now)) is not None
            and done + b.retention < now
        ]:
            del self.batches[batch_id]
        unpinned = [k for k, b in self.batches.items() if not b.pinned]
        for batch_id in unpinned[: max(0, len(unpinned) + room_for - self.options.max_batches)]:
            del self.batches[batch_id]

    def _new_id(self) -> str:
        while True:
            batch_id = "batch_" + self.ctx.ids.letters(12, ID_ALPHABET)
            if batch_id not in self.batches:
                return batch_id

    def _build(
        self,
        batch_id: str,
        owner: str,
        items: list[Item],
        request: CreateRequest,
        created_at: datetime,
        lanes: int,
        retention: timedelta,
        overrides: dict[int, fakes.Outcome] | None = None,
        durations: list[float] | None = None,
    ) -> Batch:
        overrides = overrides or {}
        settings = request.options.settings()
        outcomes = [
            overrides.get(i) or fakes.outcome(self.ctx.ids, item, request.methods, settings)
            for i, item in enumerate(items)
        ]
        if durations is None:
            durations = [o.duration_s for o in outcomes]
        queue = self.ctx.scaled(self.options.queue_seconds)
        starts, ends = schedule([self.ctx.scaled(d) for d in durations], lanes, queue)
        return Batch(
            id=batch_id,
            owner=owner,
            name=request.name,
            methods=dict(request.methods),
            options=request.options,
            items=items,
            created_at=created_at,
            queue_seconds=queue,
            starts=starts,
            ends=ends,
            failed=bytearray(o.failed for o in outcomes),
            costs=[o.cost_cents for o in outcomes],
            retention=retention,
            overrides=overrides,
            webhook_url=request.webhook_url,
            outcomes=outcomes,
        )

    def _seed(self) -> None:
        """The documentation's examples, owned by the pro test key's organisation."""
        pro = TEST_KEYS_BY_PLAN["pro"]
        plan = self.plans["pro"]
        now = self.now()
        self.files.put(SEED_FILE_ID, pro.id, fakes.CLAIMS, plan.file_expiry)
        example = CreateRequest(
            methods={"reasoning": 1.0, "tool": 0.5},
            options=BatchOptions(),
            name="Article verification batch",
        )
        completed = self._build(
            SEED_COMPLETED,
            pro.id,
            list(fakes.SEED_RESULTS),
            example,
            now - timedelta(days=1),
            self.options.concurrency,
            plan.retention,
            overrides=dict(fakes.SEED_OUTCOMES),
        )
        completed.pinned = True
        count = 25
        in_progress = self._build(
            SEED_IN_PROGRESS,
            pro.id,
            list(fakes.CLAIMS[:count]),
            CreateRequest(
                methods={"reasoning": 1.0}, options=BatchOptions(), name="Nightly claims review"
            ),
            now,
            1,
            plan.retention,
            durations=[self.options.seed_in_progress_seconds / count] * count,
        )
        in_progress.pinned = True
        self.batches = {b.id: b for b in (completed, in_progress)}


TEST_KEYS_BY_PLAN: dict[PlanName, Org] = {org.plan: org for org in TEST_KEYS.values()}
KEYS_BY_PLAN: dict[PlanName, str] = {org.plan: key for key, org in TEST_KEYS.items()}
