"""HelloAtlas's error catalogue.

Every error uses one envelope; both fields are strings and the message starts with its
category (https://docs.helloatlas.in/resources/error-codes)::

    {"error_code": "401",
     "error_message": "Authentication Error: Invalid Client-Id or Client-Secret"}

Which cause answers with which message is fixed here once (docs/providers/helloatlas.md has
the same mapping; the category prefix is left out below; ``[I]`` marks wording no public
page gives):

=========================================  ====  ===========================================
cause                                      HTTP  error_message after "<Category>: "
=========================================  ====  ===========================================
Client-Id or Client-Secret header absent   400   Missing Client-Id or Client-Secret
wrong Client-Id / Client-Secret            401   Invalid Client-Id or Client-Secret
no ``Token`` header                    [I] 401   Missing Token
a Token that is no token of ours       [I] 401   Invalid Token
a Token expired on the clock           [I] 401   Token has expired
multiupload body not a JSON object     [I] 400   Request body must be a JSON object
a required field absent                [I] 400   Missing required parameter: <field>
a field of the wrong type or shape     [I] 400   <field> must be ...
a document_id twice in one batch       [I] 400   Duplicate document_id: <id>
more files than ``max_files``          [I] 400   file_urls may hold at most <n> files
a body over ``max_upload_bytes``       [I] 413   Request body exceeds <n> bytes
no batch_id                                400   Missing required parameter: batch_id
unknown (or another client's) batch_id     400   Invalid batch_id
page / per_page not usable             [I] 400   page must be a positive integer, ...
unknown path                           [I] 404   The requested URL was not found on the server
wrong method                           [I] 405   The method is not allowed for the requested URL
fault only                             [I] 429   Rate limit exceeded
fault only                             [I] 500   An unexpected error occurred
fault only                                 503   A downstream service is unavailable
=========================================  ====  ===========================================

A document that fails extraction is not an error response: it appears in its page with the
same two fields (``error_code`` "422", "Unprocessable: ..."), see ``fakes.py``.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import ClassVar

from simulator.kit import errors as kit
from simulator.kit.context import ProviderContext
from simulator.kit.errors import ProviderError

# The category each status's messages start with; the documented ones come from the
# error-codes page, the others are the reason phrase.
CATEGORY = {
    400: "Bad Request",
    401: "Authentication Error",
    409: "Conflict",
    410: "Gone",
    413: "Payload Too Large",
    422: "Unprocessable",
    503: "Service Unavailable",
}
GENERIC_TEXT = {
    400: "The request could not be understood by the server",
    401: "Authentication failed",
    403: "You do not have access to this resource",
    404: "The requested URL was not found on the server",
    405: "The method is not allowed for the requested URL",
    409: "The request conflicts with the current state of the resource",
    410: "This API version is no longer supported",
    422: "The request could not be processed",
    429: "Rate limit exceeded",
    500: "An unexpected error occurred",
    503: "A downstream service is unavailable",
}


def category(status: int) -> str:
    if status in CATEGORY:
        return CATEGORY[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def envelope(status: int, text: str) -> dict[str, str]:
    """``{"error_code": "<status>", "error_message": "<Category>: <text>"}``."""
    return {"error_code": str(status), "error_message": f"{category(status)}: {text}"}


class HelloAtlasError(ProviderError):
    """Envelope: ``{"error_code": "<status>", "error_message": "<Category>: <text>"}``.

    ``text`` is a class-level template; keyword arguments fill it in.
    """

    in_catalogue = False
    text: ClassVar[str]

    def __init__(self, **params: object) -> None:
        super().__init__()
        self.message = f"{category(self.status_code)}: {self.text.format(**params)}"

    def body(self) -> dict[str, str]:
        return {"error_code": str(self.status_code), "error_message": self.message}


class MissingClientCredentials(HelloAtlasError):
    status_code = 400
    text = "Missing Client-Id or Client-Secret"


class InvalidClientCredentials(HelloAtlasError):
    status_code = 401
    text = "Invalid Client-Id or Client-Secret"


class MissingToken(HelloAtlasError):
    status_code = 401
    text = "Missing Token"


class InvalidToken(HelloAtlasError):
    status_code = 401
    text = "Invalid Token"


class ExpiredToken(HelloAtlasError):
    status_code = 401
    text = "Token has expired"


class MalformedBody(HelloAtlasError):
    status_code = 400
    text = "Request body must be a JSON object"


class MissingParameter(HelloAtlasError):
    status_code = 400
    text = "Missing required parameter: {field}"

    @classmethod
    def for_fault(cls, ctx: ProviderContext) -> ProviderError:
        return cls(field="product_type")


class InvalidParameter(HelloAtlasError):
    status_code = 400
    text = "{field} must be {expected}"

    @classmethod
    def for_fault(cls, ctx: ProviderContext) -> ProviderError:
        return cls(field="file_urls", expected="a non-empty array")


class DuplicateDocumentId(HelloAtlasError):
    status_code = 400
    text = "Duplicate document_id: {document_id}"

    @classmethod
    def for_fault(cls, ctx: ProviderContext) -> ProviderError:
        return cls(document_id="1")


class TooManyFiles(HelloAtlasError):
    status_code = 400
    text = "file_urls may hold at most {limit} files"

    @classmethod
    def for_fault(cls, ctx: ProviderContext) -> ProviderError:
        return cls(limit=ctx.options.max_files)


class PayloadTooLarge(HelloAtlasError):
    status_code = 413
    text = "Request body exceeds {limit} bytes"

    @classmethod
    def for_fault(cls, ctx: ProviderContext) -> ProviderError:
        return cls(limit=ctx.options.max_upload_bytes)


class InvalidBatchId(HelloAtlasError):
    status_code = 400
    text = "Invalid batch_id"


class InvalidPageParameter(HelloAtlasError):
    status_code = 400
    text = "{field} {reason}"

    @classmethod
    def for_fault(cls, ctx: ProviderContext) -> ProviderError:
        return cls(field="page", reason="must be a positive integer")


class RateLimited(kit.RateLimitError, HelloAtlasError):
    text = "Rate limit exceeded"


class InternalServerError(HelloAtlasError):
    status_code = 500
    text = "An unexpected error occurred"


class ServiceUnavailable(HelloAtlasError):
    status_code = 503
    text = "A downstream service is unavailable"


class StatusError(kit.StatusError):
    """Any other status (unknown paths, wrong methods, ``status`` faults) in the envelope."""

    in_catalogue = False

    def body(self) -> dict[str, str]:
        text = GENERIC_TEXT.get(self.status_code, category(self.status_code))
        return envelope(self.status_code, text)


CATALOGUE = kit.catalogue(__name__)
