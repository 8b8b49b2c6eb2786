"""Passcreator's error catalogue, in the API v3 envelope.

Every v3 answer, success or error, has the same seven keys (the process page documents them)::

    {"statusCode": 404, "success": false, "description": "Not Found",
     "errors": ["Object not found"], "count": 0, "responseMetaData": null, "data": []}

Only the 404 for an unknown process is documented. Everything else here is inferred: the same
envelope, ``description`` the HTTP reason phrase, ``errors`` one or more plain strings (v3's
``errors`` is an array of strings, unlike v2's ``{property, message}`` objects).

==============================================  ====  ============================================
cause                                           HTTP  errors[0]
==============================================  ====  ============================================
no ``Authorization`` header (or a blank one)    401   ``MISSING_API_KEY``
a key no account has                            401   ``INVALID_API_KEY``
``Authorization: Bearer <key>``                 401   ``BEARER_PREFIX``
unknown process or pass (or another account's)  404   ``Object not found``
body not JSON / not an object                   400   ``INVALID_JSON`` / ``BODY_NOT_OBJECT``
no ``data``, or ``data`` of the wrong shape     400   ``DATA_MISSING`` / ``DATA_INVALID`` ...
a bulk with no items or too many                400   ``BULK_EMPTY`` / ``BULK_TOO_LARGE``
single create: the item fails validation        400   the item's messages (see ``ITEM_*``)
bulk update: no filter, bad query or fields     400   ``FILTER_MISSING`` / ``QUERY_INVALID`` ...
a bad query parameter                           400   ``PARAMETER_INVALID``
a body over the size cap                        413   ``BODY_TOO_LARGE``
hooks: no event/target_url, a bad one           400   ``HOOK_FIELD_MISSING`` / ``HOOK_URL_INVALID``
hooks: an unknown event, too many subscriptions 400   ``HOOK_EVENT_UNKNOWN`` / ``HOOK_TOO_MANY``
hooks: unknown template, nothing to unsubscribe 404   ``Object not found``
pull mode: bad ``identifiers`` to acknowledge   400   ``HOOK_IDENTIFIERS_INVALID``
fault only                                      429   ``Too many requests``
fault only                                      500   ``Internal server error``
==============================================  ====  ============================================
"""

from __future__ import annotations

from http import HTTPStatus
from typing import ClassVar

from simulator.kit import errors as kit
from simulator.kit.errors import ProviderError

MISSING_API_KEY = "No API key provided. Send your API key in the Authorization header."
INVALID_API_KEY = "Invalid API key."
BEARER_PREFIX = (
    "Invalid API key. Send the API key itself in the Authorization header, without a Bearer prefix."
)
OBJECT_NOT_FOUND = "Object not found"
INVALID_JSON = "The request body is not valid JSON."
BODY_NOT_OBJECT = "The request body must be a JSON object."
DATA_MISSING = "The request body must contain data."
DATA_INVALID = "data must be an object or an array of objects."
UPDATE_DATA_INVALID = "data must be an object."
BULK_EMPTY = "data must contain at least one item."
BULK_TOO_LARGE = "A bulk request can contain at most {limit} items."
FILTER_MISSING = "The request body must contain a filter with a query."
FILTER_FIELDS_INVALID = "filter.fields must be a list of field names."
QUERY_INVALID = "Invalid query: {reason}"
PARAMETER_INVALID = "Invalid value for parameter {name}."
BODY_TOO_LARGE = "The request body must not be larger than {limit} bytes."
TEMPLATE_ID_READ_ONLY = "templateId cannot be changed."

# Webhooks (inferred: the webhook pages document no errors).
HOOK_FIELD_MISSING = "{field} is mandatory."
HOOK_URL_INVALID = "{field} must be an http or https URL."
HOOK_EVENT_UNKNOWN = "event must be one of: {events}."
HOOK_TOO_MANY = "An account can have at most {limit} webhook subscriptions."
HOOK_IDENTIFIERS_INVALID = "identifiers must be a list of 1 to {limit} payload identifiers."

# Per item: a single create answers 400 with these; a bulk process reports them in data.errors.
ITEM_NOT_OBJECT = "The item must be a JSON object."
ITEM_TEMPLATE_ID_MISSING = "templateId is mandatory."
ITEM_TEMPLATE_NOT_FOUND = "Template {template_id} not found."
ITEM_USER_PROVIDED_ID_IN_USE = "userProvidedId {user_provided_id} is already in use."
ITEM_FIELD_TYPE = "{field} must be {kind}."
ITEM_VALUE_TOO_LONG = "{field} must not be longer than {limit} characters."
ITEM_TOO_MANY_PROPERTIES = "A pass can have at most {limit} additional properties."
ITEM_FAILED = "The item could not be processed."
UPDATE_FAILED = "The pass could not be updated."


class PasscreatorError(ProviderError):
    """The v3 envelope with ``success: false``, ``count: 0`` and ``data: []``."""

    in_catalogue = False
    status_code = 400
    message: ClassVar[str]

    def __init__(self, *messages: str) -> None:
        super().__init__()
        self.messages = list(messages) or [self.message]

    def body(self) -> object:
        return envelope(self.status_code, [], errors=self.messages, count=0)


class MissingApiKey(PasscreatorError):
    status_code = 401
    message = MISSING_API_KEY


class InvalidApiKey(PasscreatorError):
    status_code = 401
    message = INVALID_API_KEY


class BearerPrefixNotAccepted(PasscreatorError):
    status_code = 401
    message = BEARER_PREFIX


class ObjectNotFound(PasscreatorError):
    status_code = 404
    message = OBJECT_NOT_FOUND


class InvalidJson(PasscreatorError):
    message = INVALID_JSON


class InvalidBody(PasscreatorError):
    """The body is JSON but not of the shape the operation takes."""

    message = BODY_NOT_OBJECT


class InvalidItem(PasscreatorError):
    """A single create whose item fails validation; the messages are the item's."""

    message = ITEM_TEMPLATE_ID_MISSING


class InvalidFilter(PasscreatorError):
    message = FILTER_MISSING


class InvalidParameter(PasscreatorError):
    message = PARAMETER_INVALID.format(name="async")


class BodyTooLarge(PasscreatorError):
    status_code = 413
    message = BODY_TOO_LARGE.format(limit=10_000_000)


class TooManyRequests(kit.RateLimitError, PasscreatorError):
    status_code = 429
    message = "Too many requests"


class InternalServerError(PasscreatorError):
    status_code = 500
    message = "Internal server error"


class StatusError(kit.StatusError):
    """Any status (an unknown path, a wrong method, a fault): the reason phrase as the error,
    except that every 404 reads "Object not found", as an unknown process does."""

    in_catalogue = False

    def body(self) -> object:
        message = OBJECT_NOT_FOUND if self.status_code == 404 else self.phrase
        return envelope(self.status_code, [], errors=[message], count=0)


def reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def envelope(
    status: int,
    data: object,
    *,
    errors: list[str] | None = None,
    count: int = 1,
    meta: object = None,
) -> dict[str, object]:
    """The v3 response body; ``description`` is "Success" for a 2xx, else the reason phrase."""
    return {
        "statusCode": status,
        "success": 200 <= status < 300,
        "description": "Success" if 200 <= status < 300 else reason(status),
        "errors": errors or [],
        "count": count,
        "responseMetaData": meta,
        "data": data,
    }


CATALOGUE = kit.catalogue(__name__)
