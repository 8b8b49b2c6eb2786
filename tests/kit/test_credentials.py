from __future__ import annotations

from simulator.kit.credentials import lookup, same

KEYS = {"key_one_123": "one", "key_two_456": "two"}


def test_same_compares_whole_values() -> None:
    assert same("secret", "secret")
    assert not same("secre", "secret")
    assert not same("secret!", "secret")
    assert not same(None, "secret")
    assert not same("", "secret")


def test_lookup_finds_the_value_of_an_exact_key_only() -> None:
    assert lookup(KEYS, "key_two_456") == "two"
    assert lookup(KEYS, "key_two_45") is None
    assert lookup(KEYS, "KEY_TWO_456") is None
    assert lookup(KEYS, None) is None
