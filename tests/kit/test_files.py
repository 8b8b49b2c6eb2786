"""simulator.kit.files: one-shot, expiring file references (a provider-agnostic unit)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest

from simulator.clock import ManualClock
from simulator.kit.errors import ProviderError
from simulator.kit.files import FileErrors, OneShotFiles
from tests.conftest import START


class Refused(ProviderError):
    def __init__(self, kind: str, file_id: str, at: datetime | None = None) -> None:
        super().__init__()
        self.kind = kind
        self.file_id = file_id
        self.at = at

    def body(self) -> object:
        return {"kind": self.kind}


ERRORS = FileErrors(
    unknown=lambda file_id: Refused("unknown", file_id),
    expired=lambda file_id, at: Refused("expired", file_id, at),
    consumed=lambda file_id, at: Refused("consumed", file_id, at),
)
HOUR = timedelta(hours=1)


def files(clock: ManualClock, **kwargs: int) -> OneShotFiles[str]:
    return OneShotFiles(clock, ERRORS, **kwargs)  # type: ignore[arg-type]


def refusal(store: OneShotFiles[str], file_id: str, owner: str | None = "a") -> Refused:
    with pytest.raises(Refused) as caught:
        store.consume(file_id, owner)
    return caught.value


def test_consume_returns_payload_once_then_consumed() -> None:
    clock = ManualClock(START)
    store = files(clock)
    store.put("f1", "a", "payload", HOUR)
    assert store.consume("f1", "a") == "payload"
    refused = refusal(store, "f1")
    assert (refused.kind, refused.at) == ("consumed", START)


def test_consume_after_expiry_is_expired_and_just_before_is_fine() -> None:
    clock = ManualClock(START)
    store = files(clock)
    store.put("early", "a", "x", HOUR)
    store.put("late", "a", "y", HOUR)
    clock.advance(HOUR - timedelta(microseconds=1))
    assert store.consume("early", "a") == "x"
    clock.advance(timedelta(microseconds=1))
    refused = refusal(store, "late")
    assert (refused.kind, refused.at) == ("expired", START + HOUR)


def test_consume_other_owner_or_unknown_id_is_unknown() -> None:
    store = files(ManualClock(START))
    store.put("f1", "a", "x", HOUR)
    assert refusal(store, "f1", owner="b").kind == "unknown"
    assert refusal(store, "nope").kind == "unknown"
    assert store.consume("f1", "a") == "x"


def test_file_without_owner_is_usable_by_anyone() -> None:
    store = files(ManualClock(START))
    store.put("seeded", None, "x", HOUR)
    assert store.peek("seeded", "anyone").payload == "x"
    assert store.consume("seeded", "b") == "x"


def test_check_that_raises_leaves_the_file_usable() -> None:
    store = files(ManualClock(START))
    store.put("f1", "a", "x", HOUR)

    def reject(payload: str) -> None:
        raise Refused("too big", "f1")

    with pytest.raises(Refused):
        store.consume("f1", "a", reject)
    assert store.consume("f1", "a") == "x"


def test_tombstones_are_forgotten_after_forget_after() -> None:
    clock = ManualClock(START)
    store = OneShotFiles[str](clock, ERRORS, forget_after=timedelta(days=1))
    store.put("used", "a", "x", HOUR)
    store.consume("used", "a")
    clock.advance(HOUR + timedelta(days=1, seconds=1))
    store.evict()
    assert "used" not in store
    assert refusal(store, "used").kind == "unknown"


def test_payloads_are_dropped_when_expired() -> None:
    clock = ManualClock(START)
    store = files(clock)
    ref = store.put("f1", "a", "x", HOUR)
    clock.advance(HOUR)
    store.evict()
    assert ref.payload is None
    assert refusal(store, "f1").kind == "expired"


def test_at_most_max_files_kept_tombstones_first() -> None:
    store = files(ManualClock(START), max_files=3)
    store.put("old", "a", "x", HOUR)
    store.put("used", "a", "y", HOUR)
    store.consume("used", "a")
    store.put("live", "a", "z", HOUR)
    store.put("new", "a", "w", HOUR)
    assert len(store) == 3
    assert "used" not in store
    store.put("newer", "a", "v", HOUR)
    assert "old" not in store
    assert store.consume("live", "a") == "z"


def test_concurrent_consumers_from_threads_get_it_exactly_once() -> None:
    store = files(ManualClock(START))
    store.put("f1", "a", "x", HOUR)
    barrier = threading.Barrier(32)
    won: list[str] = []
    lost: list[str] = []

    def consume() -> None:
        barrier.wait()
        try:
            won.append(store.consume("f1", "a"))
        except Refused as refused:
            lost.append(refused.kind)

    threads = [threading.Thread(target=consume) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert won == ["x"]
    assert lost == ["consumed"] * 31
