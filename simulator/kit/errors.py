"""Provider errors, rendered byte-for-byte in each provider's own envelope.

The tree::

    ProviderError                 status_code, body(), headers(), response()
    ├── deepvue.errors.DeepvueError         {"detail": "..."} and the rich {code, sub_code, ...}
    ├── passcreator.errors.PasscreatorError {statusCode, success, description, errors, ...}
    ├── helloatlas.errors.HelloAtlasError   {"error_code": "401", "error_message": "..."}
    └── check.errors.CheckError             {"error": {"code": ..., "message": ...}}

Each provider's ``errors.py`` has one base class that fixes the envelope and one subclass per
documented error; the class name is the catalogue name that ``/_sim/faults`` accepts. The
catalogue is read off the module (:func:`catalogue`): every error class defined there, in
order, except those that say ``in_catalogue = False`` in their own body (envelope bases, and
errors that need arguments a fault cannot give). Every provider also has a rate-limit error
(:class:`RateLimitError`: ``Retry-After``) and an error for any status in its envelope
(:class:`StatusError`), which are what its record's ``rate_limited`` and
``error_for_status`` name.
"""

from __future__ import annotations

import sys
from http import HTTPStatus
from typing import ClassVar

from starlette.responses import JSONResponse, Response

from simulator.kit.context import ProviderContext

__all__ = ["ProviderError", "RateLimitError", "StatusError", "catalogue"]


class ProviderError(Exception):
    """An error response a provider documents; raise it from a handler to answer with it."""

    status_code: int = 500
    # False in a class's own body leaves that class (only) out of the catalogue.
    in_catalogue: ClassVar[bool] = False

    def body(self) -> object:
        raise NotImplementedError

    def headers(self) -> dict[str, str]:
        return {}

    def response(self) -> Response:
        return JSONResponse(self.body(), status_code=self.status_code, headers=self.headers())

    @classmethod
    def for_fault(cls, ctx: ProviderContext) -> ProviderError:
        """An instance to answer with when ``/_sim/faults`` names this error."""
        return cls()

    def __str__(self) -> str:
        return f"{self.status_code} {self.body()!r}"


class RateLimitError(ProviderError):
    """429 with ``Retry-After`` (when known); mix in before the provider's envelope base."""

    in_catalogue = False
    status_code = 429

    def __init__(self, retry_after: int | None = None) -> None:
        super().__init__()
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        headers = super().headers()
        if self.retry_after is not None:
            headers = {**headers, "retry-after": str(self.retry_after)}
        return headers

    @classmethod
    def for_retry(cls, retry_after: int, ctx: ProviderContext) -> ProviderError:
        """What a ``rate_limit`` fault answers (the provider record's ``rate_limited``)."""
        return cls(retry_after)


class StatusError(ProviderError):
    """Any status in the provider's envelope: unknown paths, wrong methods, status faults."""

    in_catalogue = False

    def __init__(self, status: int) -> None:
        super().__init__()
        self.status_code = status

    @property
    def phrase(self) -> str:
        """The status's reason phrase, or "Error" for a code HTTP does not name."""
        try:
            return HTTPStatus(self.status_code).phrase
        except ValueError:
            return "Error"

    @classmethod
    def for_status(cls, status: int, ctx: ProviderContext) -> ProviderError:
        """The provider record's ``error_for_status``."""
        return cls(status)


def catalogue(module: str) -> tuple[type[ProviderError], ...]:
    """The error classes defined in ``module``, in order, but for those left out by name."""
    return tuple(
        value
        for value in vars(sys.modules[module]).values()
        if isinstance(value, type)
        and issubclass(value, ProviderError)
        and value.__module__ == module
        and value.__dict__.get("in_catalogue", True)
    )
