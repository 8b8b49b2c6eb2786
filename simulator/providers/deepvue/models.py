"""Deepvue's state: test clients, signed tokens and UPI batches, all on the injected clock."""

from __future__ import annotations

import csv
import io
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from simulator.clock import format_iso
from simulator.kit.context import ProviderContext
from simulator.kit.tokens import Problem, TokenRejected, TokenSigner
from simulator.providers.deepvue import errors
from simulator.providers.deepvue.fakes import (
    OUTPUT_COLUMNS,
    SEED_COMPLETED_ROWS,
    SEED_IN_PROGRESS_ROWS,
    SLOW_EXTRA_SECONDS,
    Row,
    is_slow,
    output_rows,
)

__all__ = ["Batch", "Client", "DeepvueOptions", "DeepvueStore"]

AUDIENCE = "deepvue"
PRODUCT = "upi-basic"
OUTPUT_FOLDER = "upi-basic-batch-output-files"
SEED_COMPLETED = "06d0d7c340ed460d96103aaa0b26f0de"
SEED_IN_PROGRESS = "673f7487fc0e4949b54e443a0bcc767d"


@dataclass(frozen=True, slots=True)
class DeepvueOptions:
    """Deepvue's knobs (``--option deepvue.<name>=<value>``)."""

    processing_seconds: float = 30.0
    seconds_per_row: float = 0.01
    seed_in_progress_seconds: float = 600.0
    token_ttl_seconds: int = 86_400
    max_rows: int = 10_000
    max_upload_bytes: int = 5_000_000
    max_batches: int = 10_000
    retention_days: int = 7


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    client_secret: str
    active: bool = True


TEST_CLIENTS = (
    Client("deepvue_test_client", "free_tier_sim_5f3c8a2e9b7d4c1a"),
    Client("deepvue_inactive_client", "free_tier_sim_inactive_8d2e71b0", active=False),
)


@dataclass
class Batch:
    """One submitted batch file; its status is derived from the clock."""

    request_id: str
    owner: str | None
    created_at: datetime
    ready_at: datetime
    rows: list[Row]
    webhook_url: str | None = None
    pinned: bool = False

    def done(self, now: datetime) -> bool:
        return now >= self.ready_at


@dataclass
class DeepvueStore:
    ctx: ProviderContext
    clients: dict[str, Client] = field(init=False)
    batches: dict[str, Batch] = field(init=False)
    tokens: TokenSigner = field(init=False)

    @property
    def options(self) -> DeepvueOptions:
        """Read live: ``/_sim/options`` may change them while the simulator runs."""
        options: DeepvueOptions = self.ctx.options
        return options

    def __post_init__(self) -> None:
        self.clients = {c.client_id: c for c in TEST_CLIENTS}
        self.batches = {}
        self.tokens = TokenSigner(AUDIENCE, self.ctx.clock, self.ctx.ids)
        now = self.now()
        self._add(
            Batch(
                SEED_COMPLETED,
                None,
                now - timedelta(days=1),
                now - timedelta(days=1, seconds=-30),
                SEED_COMPLETED_ROWS,
                pinned=True,
            )
        )
        in_progress = timedelta(seconds=self.ctx.scaled(self.options.seed_in_progress_seconds))
        self._add(
            Batch(
                SEED_IN_PROGRESS, None, now, now + in_progress, SEED_IN_PROGRESS_ROWS, pinned=True
            )
        )

    def now(self) -> datetime:
        return self.ctx.clock.now()

    def epoch_ms(self) -> int:
        return errors.epoch_ms(self.ctx)

    def transaction_id(self) -> str:
        return self.ctx.ids.hex32()

    # -- auth ------------------------------------------------------------------------------

    def authorize(self, client_id: str, client_secret: str) -> tuple[str, datetime]:
        client = self.clients.get(client_id)
        if client is None or not secrets.compare_digest(
            client.client_secret.encode(), client_secret.encode()
        ):
            raise errors.IncorrectClientIdOrClientSecret()
        if not client.active:
            raise errors.InactiveClientId()
        return self.tokens.issue(client.client_id, self.options.token_ttl_seconds)

    def verify(self, token: str, api_key: str | None) -> Client:
        """The client a bearer token and ``x-api-key`` belong to, or Deepvue's error."""
        try:
            client = self.clients.get(self.tokens.subject(token))
        except TokenRejected as exc:
            raise {
                Problem.MALFORMED: errors.NotAValidToken,
                Problem.INVALID: errors.CouldNotValidateCredentials,
                Problem.EXPIRED: errors.AuthorizationFailure,
            }[exc.problem]() from None
        if client is None:
            raise errors.CouldNotValidateCredentials()
        if api_key is None or not secrets.compare_digest(
            api_key.encode(), client.client_secret.encode()
        ):
            raise errors.InvalidClientIdAccessDenied()
        return client

    # -- batches ---------------------------------------------------------------------------

    def parse_batch_file(self, filename: str, data: bytes) -> list[Row]:
        """The rows of an uploaded CSV with a ``vpa`` column (and optionally ``name``)."""
        suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        if suffix not in ("", "csv", "txt") or b"\x00" in data:
            raise self.error(errors.InvalidFile)
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise self.error(errors.InvalidFile) from None
        try:
            reader = csv.reader(io.StringIO(text, newline=""))
            header = next(reader, None)
            if header is None:
                raise self.error(errors.EmptyFile)
            columns = [c.strip().lower() for c in header]
            if "vpa" not in columns:
                raise self.error(errors.InvalidFileFormat)
            vpa_at = columns.index("vpa")
            name_at = columns.index("name") if "name" in columns else None
            rows: list[Row] = []
            for record in reader:
                if not any(cell.strip() for cell in record):
                    continue
                if len(rows) >= self.options.max_rows:
                    raise self.error(
                        errors.BatchSizeExceeded,
                        f"Batch file exceeds the maximum of {self.options.max_rows} records",
                    )
                vpa = record[vpa_at].strip() if vpa_at < len(record) else ""
                name = (
                    record[name_at].strip() if name_at is not None and name_at < len(record) else ""
                )
                rows.append(Row(vpa, name))
        except csv.Error:
            raise self.error(errors.InvalidFile) from None
        if not rows:
            raise self.error(errors.EmptyFile)
        return rows

    def submit(self, owner: str, rows: list[Row], webhook_url: str | None) -> Batch:
        self.evict()
        now = self.now()
        seconds = self.options.processing_seconds + self.options.seconds_per_row * len(rows)
        if any(is_slow(row) for row in rows):
            seconds += SLOW_EXTRA_SECONDS
        ready_at = now + timedelta(seconds=self.ctx.scaled(seconds))
        batch = Batch(self.ctx.ids.hex32(), owner, now, ready_at, rows, webhook_url)
        self._add(batch)
        return batch

    def batch_for(self, request_id: str, owner: str) -> Batch:
        batch = self.batches.get(request_id)
        if batch is None or batch.owner not in (None, owner):
            raise self.error(errors.InvalidRequestId)
        return batch

    def output_csv(self, request_id: str) -> str | None:
        """The output file of a completed batch; None while it does not exist."""
        batch = self.batches.get(request_id)
        if batch is None or not batch.done(self.now()):
            return None
        out = io.StringIO(newline="")
        writer = csv.DictWriter(out, fieldnames=OUTPUT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(output_rows(self.ctx.ids, request_id, batch.rows))
        return out.getvalue()

    def evict(self) -> None:
        """Drop batches past retention, then the oldest beyond the cap (seeded ones stay)."""
        cutoff = self.now() - timedelta(days=self.options.retention_days)
        for request_id in [
            k for k, b in self.batches.items() if not b.pinned and b.ready_at < cutoff
        ]:
            del self.batches[request_id]
        unpinned = [k for k, b in self.batches.items() if not b.pinned]
        for request_id in unpinned[: max(0, len(unpinned) - self.options.max_batches + 1)]:
            del self.batches[request_id]

    def error(self, kind: type[errors.BatchError], message: str | None = None) -> errors.BatchError:
        return kind(self.epoch_ms(), self.transaction_id(), message)

    def _add(self, batch: Batch) -> None:
        self.batches[batch.request_id] = batch


def expiry_text(expiry: datetime) -> str:
    return format_iso(expiry)
