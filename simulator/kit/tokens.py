"""Signed access tokens: HS256 JWTs whose expiry follows the simulator's clock.

A ``shared`` signer derives its key from the seed, the audience and an instance secret kept in
the store (:func:`instance_key`): apps that share a store and a seed accept each other's
tokens, and a token from another simulator, or from another provider, never verifies. (A
signer that is not shared keeps a random key of its own.) PyJWT checks the signature, the
audience and the claims; expiry is judged here against the injected clock (a manual clock may
stand hours from the wall clock), so PyJWT's own time checks are off. A rejection says what
was wrong; each provider maps that to its own error.

A client sends the same token on every call for hours, so a token that verified once is
remembered (a bounded few thousand, by its exact text) and only its expiry is judged again.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from simulator.clock import Clock
from simulator.ids import IdFactory
from simulator.store import Store, Table

__all__ = ["Problem", "TokenRejected", "TokenSigner", "instance_key"]

ALGORITHM = "HS256"
SECRETS = Table("secrets", str)


async def instance_key(store: Store, seed: int | str, purpose: str) -> bytes:
    """A key for ``purpose`` from the seed and the store's instance secret (made once)."""
    secret, _ = await store.put_if_absent(SECRETS, "instance", secrets.token_hex(32))
    message = f"{seed}/{purpose}".encode()
    return hmac.new(bytes.fromhex(secret), message, hashlib.sha256).digest()


class Problem(enum.Enum):
    """Why a token was refused."""

    MALFORMED = "not a JWT at all"
    INVALID = "a JWT that does not verify here (signature, algorithm, audience, claims)"
    EXPIRED = "a valid token past its expiry on the clock"


class TokenRejected(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.value)
        self.problem = problem


@dataclass
class TokenSigner:
    """Issues and checks tokens for one provider of one simulator instance."""

    audience: str
    clock: Clock
    ids: IdFactory
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    # Derive the key from the store (``keyed``) instead of keeping the random one.
    shared: bool = False
    remembered: int = 4096
    _verified: OrderedDict[str, tuple[str, int]] = field(
        default_factory=OrderedDict, init=False, repr=False
    )
    _keyed: bool = field(default=False, init=False, repr=False)

    async def keyed(self, store: Store) -> TokenSigner:
        """This signer, ready: a ``shared`` one derives its key from ``store`` on first use."""
        if self.shared and not self._keyed:
            self.key = await instance_key(store, self.ids.seed, f"tokens/{self.audience}")
            self._keyed = True
        return self

    def issue(self, subject: str, ttl_seconds: float) -> tuple[str, datetime]:
        """A token for ``subject`` and its expiry (whole seconds on the clock)."""
        issued = self.clock.now().replace(microsecond=0)
        expiry = issued + timedelta(seconds=ttl_seconds)
        claims = {
            "sub": subject,
            "aud": self.audience,
            "iat": int(issued.timestamp()),
            "exp": int(expiry.timestamp()),
            "jti": self.ids.hex32(),
        }
        import jwt  # PyJWT (and cryptography) load with the first token, not to serve a poll

        return jwt.encode(claims, self.key, algorithm=ALGORITHM), expiry

    def subject(self, token: str) -> str:
        """The subject of a token issued here and not expired; else :class:`TokenRejected`."""
        known = self._verified.get(token)
        if known is None:
            known = self._verify(token)
            self._verified[token] = known
            if len(self._verified) > self.remembered:
                self._verified.popitem(last=False)
        subject, expiry = known
        if expiry <= self.clock.now().timestamp():
            raise TokenRejected(Problem.EXPIRED)
        return subject

    def _verify(self, token: str) -> tuple[str, int]:
        import jwt

        try:
            if jwt.get_unverified_header(token).get("alg") != ALGORITHM:
                raise TokenRejected(Problem.INVALID)
            claims = jwt.decode(
                token,
                self.key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": ["sub", "exp", "iat"],
                },
            )
        except jwt.InvalidSignatureError:
            raise TokenRejected(Problem.INVALID) from None
        except (jwt.DecodeError, ValueError):
            raise TokenRejected(Problem.MALFORMED) from None
        except jwt.PyJWTError:
            raise TokenRejected(Problem.INVALID) from None
        expiry = claims["exp"]
        if isinstance(expiry, bool) or not isinstance(expiry, int):
            raise TokenRejected(Problem.INVALID)
        return str(claims["sub"]), expiry
