from __future__ import annotations

from simulator.kit.cache import ByteCache


def test_cache_drops_least_recently_used_beyond_its_budget() -> None:
    cache: ByteCache[None] = ByteCache(10)
    cache.put("a", b"1234")
    cache.put("b", b"5678")
    assert cache.get("a") == b"1234"  # "a" is now the most recent
    cache.put("c", b"90ab")
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (b"1234", None, b"90ab")
    assert cache.size == 8


def test_cache_never_keeps_a_value_larger_than_its_budget() -> None:
    cache: ByteCache[None] = ByteCache(3)
    cache.put("a", b"1234")
    assert cache.get("a") is None
    assert len(cache) == 0


def test_cache_replacing_a_key_counts_its_size_once() -> None:
    cache: ByteCache[None] = ByteCache(10)
    cache.put("a", b"123456")
    cache.put("a", b"12")
    assert (cache.size, len(cache)) == (2, 1)


def test_cache_keeps_each_value_with_its_note() -> None:
    cache: ByteCache[int] = ByteCache(10)
    cache.put("a", b"12", 7)
    cache.put("b", b"34")
    assert (cache.lookup("a"), cache.lookup("b"), cache.lookup("c")) == (
        (b"12", 7),
        (b"34", None),
        None,
    )
    cache.put("a", b"56", 8)  # replaced with its new note
    assert cache.lookup("a") == (b"56", 8)
