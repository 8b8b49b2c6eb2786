"""Deepvue's error catalogue.

Deepvue is a FastAPI service. Most errors use FastAPI's envelope::

    {"detail": "Not authenticated"}

Request validation errors use FastAPI's list form::

    {"detail": [{"type": "missing", "loc": ["query", "request_id"], "msg": "Field required",
                 "input": null}]}

and batch errors the richer envelope of the status page::

    {"code": 422, "timestamp": 1732002741216, "transaction_id": "88e4...",
     "sub_code": "INVALID_REQUEST_ID", "message": "Invalid Request ID"}

Which cause answers with which message is fixed here once (docs/providers/deepvue.md has the
same table):

==========================================  ====  ========================================
cause                                       HTTP  detail
==========================================  ====  ========================================
no ``Authorization: Bearer <token>``        401   Not authenticated
the bearer value is not a JWT               403   Not a valid token
a JWT whose signature does not verify       401   Could not validate credentials
a JWT expired on the clock                  401   Authorization failure
``x-api-key`` missing or not the secret     401   Invalid client_id, access Denied
wrong client_id/client_secret to authorize  401   Incorrect client_id or client_secret
an inactive client authorizes               400   Inactive client_id
unknown request_id                          422   INVALID_REQUEST_ID (rich envelope)
fault only                                  500   Internal Server Error
==========================================  ====  ========================================
"""

from __future__ import annotations

import math
from typing import ClassVar

from starlette.responses import Response

from simulator.kit import errors as kit
from simulator.kit.context import ProviderContext
from simulator.kit.errors import ProviderError


class DeepvueError(ProviderError):
    """Envelope: ``{"detail": "<message>"}``."""

    in_catalogue = False
    detail: ClassVar[str]

    def body(self) -> object:
        return {"detail": self.detail}


class NotAuthenticated(DeepvueError):
    status_code = 401
    detail = "Not authenticated"

    def headers(self) -> dict[str, str]:
        return {"www-authenticate": "Bearer"}


class NotAValidToken(DeepvueError):
    status_code = 403
    detail = "Not a valid token"


class CouldNotValidateCredentials(DeepvueError):
    status_code = 401
    detail = "Could not validate credentials"


class AuthorizationFailure(DeepvueError):
    status_code = 401
    detail = "Authorization failure"


class InvalidClientIdAccessDenied(DeepvueError):
    status_code = 401
    detail = "Invalid client_id, access Denied"


class IncorrectClientIdOrClientSecret(DeepvueError):
    status_code = 401
    detail = "Incorrect client_id or client_secret"


class InactiveClientId(DeepvueError):
    status_code = 400
    detail = "Inactive client_id"


class BadRequest(DeepvueError):
    status_code = 400
    detail = "Bad Request"


class BodyParseError(DeepvueError):
    """FastAPI's answer to a form or multipart body it cannot parse."""

    status_code = 400
    detail = "There was an error parsing the body"


class RateLimitExceeded(kit.RateLimitError, DeepvueError):
    detail = "Rate limit exceeded. Please retry after some time."


class SourceUnavailable(DeepvueError):
    status_code = 503
    detail = "Source Unavailable"


class InternalServerError(DeepvueError):
    status_code = 500
    detail = "Internal Server Error"


class StatusError(kit.StatusError):
    """Any status in FastAPI's default shape: ``{"detail": "<reason phrase>"}``."""

    in_catalogue = False

    def body(self) -> object:
        return {"detail": self.phrase}


class FieldRequired(ProviderError):
    """FastAPI's 422 for missing request fields, one entry per field."""

    in_catalogue = False
    status_code = 422

    def __init__(self, *locations: tuple[str, str]) -> None:
        super().__init__()
        self.locations = locations

    def body(self) -> object:
        return {
            "detail": [
                {"type": "missing", "loc": list(loc), "msg": "Field required", "input": None}
                for loc in self.locations
            ]
        }


class BatchError(ProviderError):
    """Envelope: ``{code, timestamp, transaction_id, sub_code, message}``.

    The rules raise it with the message only; the handler stamps the instant and a fresh
    transaction id on its way out (:meth:`stamp`).
    """

    in_catalogue = False
    status_code = 422
    sub_code: ClassVar[str]
    message: ClassVar[str]

    def __init__(self, message: str | None = None) -> None:
        super().__init__()
        self.text = message or self.message
        self.timestamp = 0
        self.transaction_id: str | None = None

    def stamp(self, timestamp: int, transaction_id: str) -> BatchError:
        self.timestamp = timestamp
        self.transaction_id = transaction_id
        return self

    @classmethod
    def for_fault(cls, ctx: ProviderContext) -> ProviderError:
        return cls().stamp(epoch_ms(ctx), ctx.ids.hex32())

    def body(self) -> object:
        return {
            "code": self.status_code,
            "timestamp": self.timestamp,
            "transaction_id": self.transaction_id,
            "sub_code": self.sub_code,
            "message": self.text,
        }


class InvalidRequestId(BatchError):
    sub_code = "INVALID_REQUEST_ID"
    message = "Invalid Request ID"


class InvalidFile(BatchError):
    sub_code = "INVALID_FILE"
    message = "Invalid file. Please upload a CSV file"


class EmptyFile(BatchError):
    sub_code = "EMPTY_FILE"
    message = "Uploaded file has no records"


class InvalidFileFormat(BatchError):
    sub_code = "INVALID_FILE_FORMAT"
    message = "Missing required column: vpa"


class BatchSizeExceeded(BatchError):
    sub_code = "BATCH_SIZE_EXCEEDED"
    message = "Batch file exceeds the maximum number of records"


class FileTooLarge(BatchError):
    status_code = 413
    sub_code = "FILE_TOO_LARGE"
    message = "Batch file exceeds the maximum upload size"


class NoSuchKey(ProviderError):
    """The output file store answers as S3 does for an object that is not there."""

    in_catalogue = False
    status_code = 404

    def __init__(self, key: str = "") -> None:
        super().__init__()
        self.key = key

    def body(self) -> object:
        return self.xml()

    def xml(self) -> str:
        # The key is the client's path: escaped, so any key gives well-formed XML.
        from xml.sax.saxutils import escape  # not loaded at start-up: few ask a missing file

        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>'
            "<Message>The specified key does not exist.</Message>"
            f"<Key>{escape(self.key)}</Key></Error>"
        )

    def response(self) -> Response:
        return Response(self.xml(), status_code=404, media_type="application/xml")


def epoch_ms(ctx: ProviderContext) -> int:
    return math.floor(ctx.clock.now().timestamp() * 1000)


CATALOGUE = kit.catalogue(__name__)
