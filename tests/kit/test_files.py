"""simulator.kit.files: one-shot, expiring file references in the store (a provider-agnostic
unit, on the memory backend)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

import pytest

from simulator.clock import ManualClock
from simulator.kit.errors import ProviderError
from simulator.kit.files import FileErrors, FileRef, OneShotFiles
from simulator.store import MemoryStore, Store
from tests.conftest import START

T = TypeVar("T")


class Refused(ProviderError):
    def __init__(self, kind: str, file_id: str, at: datetime | None = None) -> None:
        super().__init__()
        self.kind = kind
        self.file_id = file_id
        self.at = at

    def body(self) -> object:
        return {"kind": self.kind}


@dataclass(frozen=True, slots=True)
class Payload:
    text: str


ERRORS = FileErrors(
    unknown=lambda file_id: Refused("unknown", file_id),
    expired=lambda file_id, at: Refused("expired", file_id, at),
    consumed=lambda file_id, at: Refused("consumed", file_id, at),
)
HOUR = timedelta(hours=1)
FILES = OneShotFiles("files", Payload, ERRORS)


def run(awaitable: Awaitable[T]) -> T:
    async def wrapped() -> T:
        return await awaitable

    return asyncio.run(wrapped())


@dataclass
class Files:
    """The files of one store, on a manual clock."""

    clock: ManualClock
    store: Store
    files: OneShotFiles[Payload] = FILES
    max_files: int = 100

    def put(self, file_id: str, owner: str | None, text: str, ttl: timedelta = HOUR) -> None:
        ref = FileRef(owner, self.clock.now() + ttl, len(text))
        run(self.files.put(self.store, file_id, ref, Payload(text), max_files=self.max_files))

    def consume(self, file_id: str, owner: str | None = "a", reject: bool = False) -> str:
        def check(ref: FileRef) -> None:
            if reject:
                raise Refused("too big", file_id)

        now = self.clock.now()
        return run(self.files.consume(self.store, file_id, owner, now, check)).text

    def refusal(self, file_id: str, owner: str | None = "a") -> Refused:
        with pytest.raises(Refused) as caught:
            self.consume(file_id, owner)
        return caught.value


def files(files: OneShotFiles[Payload] = FILES, max_files: int = 100) -> Files:
    clock = ManualClock(START)
    return Files(clock, MemoryStore().scoped("p", now=clock.now), files, max_files)


def test_consume_returns_payload_once_then_consumed() -> None:
    kept = files()
    kept.put("f1", "a", "payload")
    assert kept.consume("f1") == "payload"
    refused = kept.refusal("f1")
    assert (refused.kind, refused.at) == ("consumed", START)


def test_consume_after_expiry_is_expired_and_just_before_is_fine() -> None:
    kept = files()
    kept.put("early", "a", "x")
    kept.put("late", "a", "y")
    kept.clock.advance(HOUR - timedelta(microseconds=1))
    assert kept.consume("early") == "x"
    kept.clock.advance(timedelta(microseconds=1))
    refused = kept.refusal("late")
    assert (refused.kind, refused.at) == ("expired", START + HOUR)


def test_consume_other_owner_or_unknown_id_is_unknown() -> None:
    kept = files()
    kept.put("f1", "a", "x")
    assert kept.refusal("f1", owner="b").kind == "unknown"
    assert kept.refusal("nope").kind == "unknown"
    assert kept.consume("f1") == "x"


def test_file_without_owner_is_usable_by_anyone() -> None:
    kept = files()
    kept.put("shared", None, "x")
    assert kept.consume("shared", "b") == "x"


def test_check_that_raises_leaves_the_file_usable() -> None:
    kept = files()
    kept.put("f1", "a", "x")
    with pytest.raises(Refused):
        kept.consume("f1", reject=True)
    assert kept.consume("f1") == "x"


def test_the_payload_goes_when_used_and_at_expiry() -> None:
    kept = files()
    kept.put("used", "a", "x")
    kept.put("expires", "a", "y")
    kept.consume("used")
    assert run(kept.store.count(FILES.payloads)) == 1
    kept.clock.advance(HOUR)
    assert run(kept.store.count(FILES.payloads)) == 0
    assert kept.refusal("expires").kind == "expired"


def test_references_are_forgotten_after_forget_after() -> None:
    kept = files()
    kept.put("used", "a", "x")
    kept.consume("used")
    kept.clock.advance(HOUR + timedelta(days=1) - timedelta(microseconds=1))
    assert kept.refusal("used").kind == "consumed"
    kept.clock.advance(timedelta(microseconds=1))
    assert kept.refusal("used").kind == "unknown"


def test_at_most_max_files_kept_oldest_first() -> None:
    kept = files(max_files=2)
    kept.put("old", "a", "x")
    kept.put("live", "a", "z")
    kept.put("new", "a", "w")
    assert run(kept.store.count(FILES.refs)) == run(kept.store.count(FILES.payloads)) == 2
    assert kept.refusal("old").kind == "unknown"
    assert kept.consume("live") == "z"


def test_a_seeded_file_is_used_once_and_never_stored_until_then() -> None:
    seed = (FileRef("a", START + HOUR, 1), Payload("seeded"))
    kept = files(OneShotFiles("files", Payload, ERRORS, seeds={"doc": seed}))
    assert run(kept.store.count(FILES.refs)) == 0
    assert kept.refusal("doc", owner="b").kind == "unknown"
    assert kept.consume("doc") == "seeded"
    assert kept.refusal("doc").kind == "consumed"
    # Another store (a reset) has the seed back.
    assert files(kept.files).consume("doc") == "seeded"


def test_concurrent_consumers_on_one_loop_get_it_exactly_once() -> None:
    kept = files()
    kept.put("f1", "a", "x")

    async def consume() -> str:
        try:
            return (await FILES.consume(kept.store, "f1", "a", kept.clock.now())).text
        except Refused as refused:
            return refused.kind

    async def race() -> list[str]:
        return await asyncio.gather(*(consume() for _ in range(32)))

    assert sorted(asyncio.run(race())) == ["consumed"] * 31 + ["x"]


def test_concurrent_consumers_from_threads_get_it_exactly_once() -> None:
    kept = files()
    kept.put("f1", "a", "x")
    barrier = threading.Barrier(32)
    won: list[str] = []
    lost: list[str] = []

    def consume() -> None:
        barrier.wait()
        try:
            won.append(kept.consume("f1"))
        except Refused as refused:
            lost.append(refused.kind)

    threads = [threading.Thread(target=consume) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert won == ["x"]
    assert lost == ["consumed"] * 31
