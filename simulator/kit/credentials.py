"""Credential checks that take the same time whatever is wrong with the credential.

A plain ``==`` or dict lookup answers sooner the earlier the first differing character is,
which tells a prober how much of a secret it has right. These compare in constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import TypeVar

__all__ = ["lookup", "same"]

T = TypeVar("T")


def same(given: str | None, expected: str) -> bool:
    """Whether ``given`` is ``expected``, compared in constant time (None never is)."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def lookup(secrets: Mapping[str, T], given: str | None) -> T | None:
    """The value whose key is ``given``: every key is compared, in constant time each."""
    if given is None:
        return None
    encoded = given.encode()
    found: T | None = None
    for key, value in secrets.items():
        if hmac.compare_digest(encoded, key.encode()):
            found = value
    return found
