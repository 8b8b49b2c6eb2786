"""Seeded identifiers and randomness.

All randomness in the simulator flows from one seed. :meth:`IdFactory.derive` gives an
independent generator for a named thing (a batch, an item), so item ``i`` of a batch is a
pure function of ``(seed, batch, i)`` whatever order pages are read in.

The n-th id of a scope is a pure function of the seed, the scope and n, and n is a counter in
the store: on a store that starts empty (memory, after a restart or a reset) the same ids come
again, and a stale id can name a different object. ``stream`` tells such runs apart:
``bulksim serve`` without an explicit seed, on the memory store, starts each run on a fresh
one (see :mod:`simulator.__main__`), so a restart does not hand out the ids of the last run.
"""

from __future__ import annotations

import hashlib
import random
import uuid

__all__ = ["IdFactory", "NumberedId"]


class IdFactory:
    """A seeded source of ids; the same seed yields the same sequence."""

    def __init__(self, seed: int | str, scope: str = "", stream: str = "") -> None:
        self.seed = seed
        self.scope = scope
        self.stream = stream
        self._random = random.Random(f"{seed}/{scope}")

    def child(self, scope: str) -> IdFactory:
        """A factory of its own for a sub-scope (one per provider)."""
        return IdFactory(self.seed, f"{self.scope}/{scope}", self.stream)

    def numbered(self, scope: str, n: int) -> NumberedId:
        """The ``n``-th id of ``scope``: a pure function of (seed, stream, scope, n); with no
        stream (the default), of (seed, scope, n)."""
        seed = f"{self.seed}~{self.stream}" if self.stream else self.seed
        return NumberedId(f"{seed}/{self.scope}/{scope}#{n}")

    def hex32(self) -> str:
        """32 lowercase hex characters: a UUID4 without hyphens."""
        return self.uuid().replace("-", "")

    def uuid(self) -> str:
        return str(uuid.UUID(int=self._random.getrandbits(128), version=4))

    def digits(self, n: int) -> str:
        return "".join(self._random.choices("0123456789", k=n))

    def letters(self, n: int, alphabet: str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ") -> str:
        return "".join(self._random.choices(alphabet, k=n))

    def token(self, n: int = 24) -> str:
        return "".join(self._random.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=n))

    def derive(self, *parts: object) -> random.Random:
        """An independent generator for one named thing, e.g. ``derive(batch_id, i)``."""
        key = "/".join(str(part) for part in parts)
        return random.Random(f"{self.seed}/{self.scope}/{key}")

    def hashed(self, *parts: object, n: int, alphabet: str) -> str:
        """``n`` characters of ``alphabet`` for one named thing, from a hash: as stable as
        :meth:`derive`, without building a generator (for ids read on every page)."""
        key = "/".join(str(part) for part in parts)
        value = int.from_bytes(
            hashlib.blake2b(f"{self.seed}/{self.scope}/{key}".encode(), digest_size=16).digest()
        )
        chars = []
        for _ in range(n):
            value, digit = divmod(value, len(alphabet))
            chars.append(alphabet[digit])
        return "".join(chars)

    def derive_int(self, *parts: object) -> int:
        """A stable 64-bit integer for one named thing (for seeding Faker)."""
        return self.derive(*parts).getrandbits(64)


class NumberedId:
    """One numbered id in every form a provider needs, each a pure function of its key.

    ``uuid`` and ``hex32`` hash the key (cheap: they are drawn on every status poll); the
    other forms draw from a generator seeded with it, made on first use.
    """

    __slots__ = ("_key", "_random")

    def __init__(self, key: str) -> None:
        self._key = key
        self._random: random.Random | None = None

    def uuid(self) -> str:
        h = self.hex32()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def hex32(self) -> str:
        """32 lowercase hex characters: a UUID4 without hyphens.

        The text of ``UUID(bytes=digest, version=4)``, made without the object: the
        version nibble set to 4 and the variant bits to RFC 4122's, on the bytes."""
        digest = bytearray(hashlib.blake2b(self._key.encode(), digest_size=16).digest())
        digest[6] = digest[6] & 0x0F | 0x40
        digest[8] = digest[8] & 0x3F | 0x80
        return digest.hex()

    def _draws(self) -> random.Random:
        if self._random is None:
            self._random = random.Random(self._key)
        return self._random

    def digits(self, n: int) -> str:
        return "".join(self._draws().choices("0123456789", k=n))

    def letters(self, n: int, alphabet: str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ") -> str:
        return "".join(self._draws().choices(alphabet, k=n))
