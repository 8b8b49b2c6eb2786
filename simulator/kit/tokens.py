"""Signed access tokens: HS256 JWTs whose expiry follows the simulator's clock.

The key is made per instance, so a token from another simulator, or from another provider,
never verifies. PyJWT checks the signature, the audience and the claims; expiry is judged
here against the injected clock (a manual clock may stand hours from the wall clock), so
PyJWT's own time checks are off. A rejection says what was wrong; each provider maps that
to its own error.

A client sends the same token on every call for hours, so a token that verified once is
remembered (a bounded few thousand, by its exact text) and only its expiry is judged again.
"""

from __future__ import annotations

import enum
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import jwt

from simulator.clock import Clock
from simulator.ids import IdFactory

__all__ = ["Problem", "TokenRejected", "TokenSigner"]

ALGORITHM = "HS256"


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
    remembered: int = 4096
    _verified: OrderedDict[str, tuple[str, int]] = field(
        default_factory=OrderedDict, init=False, repr=False
    )

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
