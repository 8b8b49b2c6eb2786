"""Provider errors, rendered byte-for-byte in each provider's own envelope.

The tree::

    ProviderError                 status_code, body(), headers(), response()
    ├── deepvue.errors.DeepvueError         {"detail": "..."} and the rich {code, sub_code, ...}
    ├── passcreator.errors.PasscreatorError {statusCode, success, description, errors, ...}
    ├── helloatlas.errors.HelloAtlasError   {"error_code": "401", "error_message": "..."}
    └── check.errors.CheckError             {"error": {"code": ..., "message": ...}}

Each provider's ``errors.py`` has one base class that fixes the envelope and one subclass per
documented error; the class name is the catalogue name that ``/_sim/faults`` accepts.
"""

from __future__ import annotations

from starlette.responses import JSONResponse, Response

from simulator.kit.context import ProviderContext

__all__ = ["ProviderError"]


class ProviderError(Exception):
    """An error response a provider documents; raise it from a handler to answer with it."""

    status_code: int = 500

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
