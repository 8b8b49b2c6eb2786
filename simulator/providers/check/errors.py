"""Check's error catalogue.

Check's envelope::

    {"error": {"code": "not_found", "message": "Batch not found"}}
    {"error": {"code": "validation_error", "message": "...",
               "details": [{"field": "options.timeout", "message": "..."}]}}
    {"error": {"code": "rate_limited", "message": "Rate limit exceeded. Try again in 45 seconds.",
               "retryAfter": 45}}

with the documented exception of the upload's parse failure, where ``error`` is a string::

    {"error": "File parsing failed", "validationErrors": [{"row": 1, "error": "..."}]}

Codes mix cases as the docs do (``FILE_STORAGE_UNAVAILABLE``, ``CANNOT_CANCEL``), and the
upload's missing-file answer is ``validation_error`` at 400 although Check's table puts
``validation_error`` at 422. Which cause answers with which error:

=============================================  ====  ==========================  ========
cause                                          HTTP  code                        source
=============================================  ====  ==========================  ========
no ``Authorization: Bearer ...``               401   unauthorized                docs
a key that is not a test key                   401   unauthorized                inferred
upload without a ``file`` part                 400   validation_error            docs
a file that cannot be parsed                   400   (string) File parsing...    docs
upload or create on the free plan              402   quota_exceeded              docs
upload over the plan's size                    413   payload_too_large           docs
file storage switched off                      503   FILE_STORAGE_UNAVAILABLE    docs
create: body that is not JSON                  400   bad_request                 inferred
create: body over the plan's size              413   payload_too_large           inferred
create: fields out of range, fileId + items    422   validation_error            inferred
create: a method the plan does not include     403   forbidden                   inferred
create: fileId unknown (or another org's)      404   not_found                   inferred
create: fileId already used                    409   conflict                    inferred
create: fileId expired                         400   bad_request                 inferred
bad limit / offset / status in a query         422   validation_error            inferred
unknown batch                                  404   not_found                   docs
cancel of a finished or cancelled batch        400   CANNOT_CANCEL               docs
over the rate limit (when enforced)            429   rate_limited                docs
unknown path / method                          404   not_found / 405             inferred
=============================================  ====  ==========================  ========
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from simulator.clock import format_iso
from simulator.kit import errors as kit
from simulator.kit.context import ProviderContext
from simulator.kit.errors import ProviderError

Detail = dict[str, str]
RowError = dict[str, object]

# Codes by status, from Check's error table; 405 is not in it.
STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    402: "quota_exceeded",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


class CheckError(ProviderError):
    """Envelope: ``{"error": {"code", "message", "details"?}}``."""

    in_catalogue = False
    code: ClassVar[str]
    message: ClassVar[str]

    def __init__(self, message: str | None = None, details: list[Detail] | None = None) -> None:
        super().__init__()
        self.text = message or self.message
        self.details = details
        self.extra_headers: dict[str, str] = {}

    @classmethod
    def for_fault(cls, ctx: ProviderContext) -> ProviderError:
        error = cls()
        error.extra_headers.update(anonymous_rate_headers(ctx))
        return error

    def error_object(self) -> dict[str, object]:
        error: dict[str, object] = {"code": self.code, "message": self.text}
        if self.details:
            error["details"] = self.details
        return error

    def body(self) -> object:
        return {"error": self.error_object()}

    def headers(self) -> dict[str, str]:
        return dict(self.extra_headers)


class Unauthorized(CheckError):
    status_code = 401
    code = "unauthorized"
    message = "API key is required. Include it in the Authorization header as 'Bearer vfy_...'"


class InvalidApiKey(CheckError):
    status_code = 401
    code = "unauthorized"
    message = "Invalid API key. Check the key in the Authorization header ('Bearer vfy_...')"


class FileRequired(CheckError):
    status_code = 400
    code = "validation_error"
    message = 'File is required. Use form field name "file".'


class FileParsingFailed(CheckError):
    """The upload's parse failure: ``error`` is a plain string here, as documented."""

    status_code = 400
    code = "validation_error"
    message = "File parsing failed"

    def __init__(self, rows: list[RowError] | None = None) -> None:
        super().__init__()
        self.rows = rows or [{"row": 1, "error": "Missing required column: content"}]

    def body(self) -> object:
        return {"error": self.message, "validationErrors": self.rows}


class QuotaExceeded(CheckError):
    status_code = 402
    code = "quota_exceeded"
    message = "Batch processing is not available on the free plan."


class PayloadTooLarge(CheckError):
    status_code = 413
    code = "payload_too_large"
    message = "File size exceeds maximum of 10 MB"

    @classmethod
    def file(cls, megabytes: float) -> PayloadTooLarge:
        return cls(f"File size exceeds maximum of {megabytes:g} MB")

    @classmethod
    def body_size(cls, megabytes: float) -> PayloadTooLarge:
        return cls(f"Request body exceeds maximum of {megabytes:g} MB")


class FileStorageUnavailable(CheckError):
    status_code = 503
    code = "FILE_STORAGE_UNAVAILABLE"
    message = "File upload is not configured. Please use direct JSON items array instead."


class BadRequest(CheckError):
    status_code = 400
    code = "bad_request"
    message = "Request body must be valid JSON"


class ValidationFailed(CheckError):
    status_code = 422
    code = "validation_error"
    message = "Request validation failed"

    @classmethod
    def field(cls, field: str, problem: str) -> ValidationFailed:
        return cls(f"{field}: {problem}", [{"field": field, "message": problem}])

    @classmethod
    def fields(cls, details: list[Detail]) -> ValidationFailed:
        if len(details) == 1:
            return cls.field(details[0]["field"], details[0]["message"])
        return cls(f"Request validation failed ({len(details)} errors)", details)


class MethodNotInPlan(CheckError):
    status_code = 403
    code = "forbidden"
    message = "Method 'formal' requires the Enterprise plan"

    @classmethod
    def of(cls, method: str, plan_title: str) -> MethodNotInPlan:
        problem = f"Method '{method}' requires the {plan_title} plan"
        return cls(problem, [{"field": f"methods.{method}", "message": problem}])


class FileNotFound(CheckError):
    status_code = 404
    code = "not_found"
    message = "File not found. Upload the file again to get a new fileId."

    @classmethod
    def of(cls, file_id: str) -> FileNotFound:
        return cls(details=[{"field": "fileId", "message": f"No uploaded file with id {file_id}"}])


class FileAlreadyUsed(CheckError):
    status_code = 409
    code = "conflict"
    message = (
        "File has already been used to create a batch. Each fileId can only be used once; "
        "upload the file again to create another batch."
    )

    @classmethod
    def of(cls, file_id: str, at: datetime) -> FileAlreadyUsed:
        return cls(details=[{"field": "fileId", "message": f"Used at {format_iso(at)}"}])


class FileExpired(CheckError):
    status_code = 400
    code = "bad_request"
    message = "File has expired. Upload the file again to get a new fileId."

    @classmethod
    def of(cls, file_id: str, at: datetime) -> FileExpired:
        return cls(details=[{"field": "fileId", "message": f"Expired at {format_iso(at)}"}])


class BatchNotFound(CheckError):
    status_code = 404
    code = "not_found"
    message = "Batch not found"


class CannotCancel(CheckError):
    status_code = 400
    code = "CANNOT_CANCEL"
    message = "Cannot cancel batch. Batch not found or already completed/cancelled."


class RateLimited(kit.RateLimitError, CheckError):
    code = "rate_limited"
    message = "Rate limit exceeded. Try again in 45 seconds."

    def __init__(self, retry_after: int = 45) -> None:
        super().__init__(retry_after)
        self.text = f"Rate limit exceeded. Try again in {retry_after} seconds."

    def error_object(self) -> dict[str, object]:
        return {**super().error_object(), "retryAfter": self.retry_after}

    @classmethod
    def for_retry(cls, retry_after: int, ctx: ProviderContext) -> ProviderError:
        """A ``rate_limit`` fault: no key is counted, so the window shows none remaining."""
        error = cls(retry_after)
        reset = int(ctx.now().timestamp()) + retry_after
        error.extra_headers.update(anonymous_rate_headers(ctx))
        error.extra_headers.update({"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)})
        return error


class InternalError(CheckError):
    status_code = 500
    code = "internal_error"
    message = "Internal server error"


class StatusError(kit.StatusError, CheckError):
    """Any status in Check's envelope, for unknown paths, wrong methods and faults."""

    in_catalogue = False
    code = "error"
    message = "Error"

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.text = self.phrase
        self.status_code_name = STATUS_CODES.get(status, "_".join(self.phrase.lower().split()))

    def error_object(self) -> dict[str, object]:
        return {"code": self.status_code_name, "message": self.text}

    @classmethod
    def for_status(cls, status: int, ctx: ProviderContext) -> ProviderError:
        """Not tied to a key: the free plan's full allowance in the rate headers."""
        error = cls(status)
        error.extra_headers.update(anonymous_rate_headers(ctx))
        return error


def anonymous_rate_headers(ctx: ProviderContext) -> dict[str, str]:
    """Rate-limit headers for a response that no API key can be tied to.

    Such requests are not counted: they show the free plan's full allowance.
    """
    limit = ctx.options.free_requests_per_minute
    window = int(ctx.clock.now().timestamp()) // 60
    return {
        "x-ratelimit-limit": str(limit),
        "x-ratelimit-remaining": str(limit),
        "x-ratelimit-reset": str((window + 1) * 60),
    }


CATALOGUE = kit.catalogue(__name__)
