"""Acme's records and rules: the test key, batches done on the clock, options.

Pure: nothing here reads or writes the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from simulator.kit import credentials
from simulator.kit.context import ProviderContext
from simulator.kit.progress import Progress
from simulator.kit.retention import Retention
from simulator.store import Table
from tests.fifth.acme import errors

__all__ = ["BATCHES", "AcmeOptions", "Batch", "start"]

TEST_KEY = "acme_test_key_7c1e9a"
KEYS = {TEST_KEY: "test-account"}


@dataclass(frozen=True, slots=True)
class AcmeOptions:
    """Acme's knobs (``--option acme.<name>=<value>``)."""

    processing_seconds: float = 60.0
    max_batches: int = 1000
    retention_days: int = 1

    @property
    def retention(self) -> Retention:
        return Retention(timedelta(days=self.retention_days), self.max_batches)


Context = ProviderContext[AcmeOptions]


@dataclass(frozen=True, slots=True)
class Batch:
    batch_id: str
    account: str
    items: tuple[str, ...]
    progress: Progress


BATCHES = Table("batches", Batch)


@dataclass(frozen=True, slots=True)
class Acme:
    """Nothing an Acme instance holds besides its records."""


def start(ctx: Context) -> Acme:
    """The provider record's ``store_factory``."""
    return Acme()


def account_of(key: str | None) -> str:
    """The account an API key belongs to, or Acme's 401."""
    account = credentials.lookup(KEYS, key)
    if account is None:
        raise errors.InvalidApiKey()
    return account


def new_batch(ctx: Context, batch_id: str, account: str, items: list[str]) -> Batch:
    """A batch submitted now, done ``processing_seconds`` later."""
    progress = Progress.whole(ctx.now(), ctx.scaled(ctx.options.processing_seconds))
    return Batch(batch_id, account, tuple(items), progress)


def owned(batch: Batch | None, account: str) -> Batch:
    """The batch, if ``account`` submitted it; else Acme's 404."""
    if batch is None or batch.account != account:
        raise errors.StatusError(404)
    return batch
