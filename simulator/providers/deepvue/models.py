"""Deepvue's records and rules: test clients, UPI batches on the clock, options.

Pure: nothing here reads or writes the store. A handler loads the records, calls these rules
(which raise Deepvue's errors), saves what they return, and renders it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from simulator.kit import credentials
from simulator.kit.budget import Budget
from simulator.kit.context import ProviderContext
from simulator.kit.progress import Progress
from simulator.kit.retention import Retention
from simulator.kit.tokens import Problem, TokenRejected, TokenSigner
from simulator.providers.deepvue import errors
from simulator.providers.deepvue.fakes import (
    SEED_COMPLETED_ROWS,
    SEED_IN_PROGRESS_ROWS,
    SLOW_EXTRA_SECONDS,
    Row,
    is_slow,
)
from simulator.settings import Range
from simulator.store import Table

__all__ = ["BATCHES", "Batch", "Client", "Deepvue", "DeepvueOptions"]

AUDIENCE = "deepvue"
PRODUCT = "upi-basic"
OUTPUT_FOLDER = "upi-basic-batch-output-files"
SEED_COMPLETED = "06d0d7c340ed460d96103aaa0b26f0de"
SEED_IN_PROGRESS = "673f7487fc0e4949b54e443a0bcc767d"
# The Retry-After of a create refused because the stored batches are at their caps.
RETRY_WHEN_FULL = 60


@dataclass(frozen=True, slots=True)
class DeepvueOptions:
    """Deepvue's knobs (``--option deepvue.<name>=<value>``)."""

    processing_seconds: Annotated[float, Range(0, 2_592_000)] = 30.0
    seconds_per_row: Annotated[float, Range(0, 60)] = 0.01
    seed_in_progress_seconds: Annotated[float, Range(0, 31_536_000)] = 600.0
    token_ttl_seconds: Annotated[int, Range(1, 31_536_000)] = 86_400
    max_rows: Annotated[int, Range(1, 1_000_000)] = 10_000
    max_upload_bytes: Annotated[int, Range(1, 1_073_741_824)] = 5_000_000
    max_batches: Annotated[int, Range(1, 1_000_000)] = 10_000
    retention_days: Annotated[int, Range(0, 3650)] = 7
    # Bytes the stored batches may hold between them (each measured by kit.budget.size_of).
    max_stored_bytes: Annotated[int, Range(1, 17_179_869_184)] = 64 * 1024 * 1024

    @property
    def retention(self) -> Retention:
        return Retention(timedelta(days=self.retention_days), self.max_batches)

    @property
    def budget(self) -> Budget:
        return Budget(self.max_batches, self.max_stored_bytes)


Context = ProviderContext[DeepvueOptions]


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    client_secret: str
    active: bool = True


TEST_CLIENTS = (
    Client("deepvue_test_client", "free_tier_sim_5f3c8a2e9b7d4c1a"),
    Client("deepvue_inactive_client", "free_tier_sim_inactive_8d2e71b0", active=False),
)
CLIENTS = {c.client_id: c for c in TEST_CLIENTS}


@dataclass(frozen=True, slots=True)
class Batch:
    """One submitted batch file; its status is derived from the clock."""

    request_id: str
    owner: str | None
    progress: Progress
    rows: tuple[Row, ...]
    webhook_url: str | None = None

    @property
    def ready_at(self) -> datetime:
        return self.progress.finished_at

    def done(self, now: datetime) -> bool:
        return self.progress.done(now)


BATCHES = Table("batches", Batch)


@dataclass
class Deepvue:
    """What one app's Deepvue holds besides its records, fixed when it starts (or resets):
    the token signer (keyed from the store) and the seed page's two batches."""

    signer: TokenSigner
    seeds: dict[str, Batch]


def start(ctx: Context) -> Deepvue:
    """The provider record's ``store_factory``."""
    now = ctx.now()
    running = ctx.scaled(ctx.options.seed_in_progress_seconds)
    seeds = (
        Batch(
            SEED_COMPLETED, None, Progress.whole(now - timedelta(days=1), 30), SEED_COMPLETED_ROWS
        ),
        Batch(SEED_IN_PROGRESS, None, Progress.whole(now, running), SEED_IN_PROGRESS_ROWS),
    )
    signer = TokenSigner(AUDIENCE, ctx.clock, ctx.ids, shared=True)
    return Deepvue(signer, {batch.request_id: batch for batch in seeds})


# -- auth ----------------------------------------------------------------------------------


def authorize(client_id: str, client_secret: str) -> Client:
    """The active client these credentials name, or Deepvue's error."""
    client = CLIENTS.get(client_id)
    if client is None or not credentials.same(client_secret, client.client_secret):
        raise errors.IncorrectClientIdOrClientSecret()
    if not client.active:
        raise errors.InactiveClientId()
    return client


def verify(signer: TokenSigner, token: str, api_key: str | None) -> Client:
    """The client a bearer token and ``x-api-key`` belong to, or Deepvue's error."""
    try:
        client = CLIENTS.get(signer.subject(token))
    except TokenRejected as exc:
        raise {
            Problem.MALFORMED: errors.NotAValidToken,
            Problem.INVALID: errors.CouldNotValidateCredentials,
            Problem.EXPIRED: errors.AuthorizationFailure,
        }[exc.problem]() from None
    if client is None:
        raise errors.CouldNotValidateCredentials()
    if not credentials.same(api_key, client.client_secret):
        raise errors.InvalidClientIdAccessDenied()
    return client


# -- batches -------------------------------------------------------------------------------


def new_batch(
    ctx: Context, request_id: str, owner: str, rows: list[Row], webhook_url: str | None
) -> Batch:
    """A batch submitted now: done after the processing time its rows take."""
    options = ctx.options
    seconds = options.processing_seconds + options.seconds_per_row * len(rows)
    if any(is_slow(row) for row in rows):
        seconds += SLOW_EXTRA_SECONDS
    progress = Progress.whole(ctx.now(), ctx.scaled(seconds))
    return Batch(request_id, owner, progress, tuple(rows), webhook_url)


def status_message(done: bool) -> str:
    """What a status poll's ``data.message`` says of a batch."""
    return "batch processing completed" if done else "batch processing in progress"


def store_full() -> errors.RateLimitExceeded:
    """Deepvue's 429 (inferred for this cause): the stored batches fill ``max_batches`` or
    ``max_stored_bytes``; none is dropped before its retention ends."""
    return errors.RateLimitExceeded(RETRY_WHEN_FULL)


def owned(batch: Batch | None, owner: str) -> Batch:
    """The batch, if ``owner`` may see it (seeded ones are everyone's); else Deepvue's 422."""
    if batch is None or batch.owner not in (None, owner):
        raise errors.InvalidRequestId()
    return batch
