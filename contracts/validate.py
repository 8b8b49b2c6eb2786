"""Request validation against a provider's OpenAPI spec (openapi-core underneath).

The simulator records each request raw and validates it here lazily, the first time the
journal is read, so validation costs nothing on the serving path. :func:`violations` turns
openapi-core's exception chain into short, readable sentences.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl

import httpx

__all__ = ["SpecValidator"]

SERVER = "http://provider.invalid"


def _multipart_as_text(value: bytes, **parameters: str) -> Any:
    """openapi-core's multipart loader, with file parts as text so ``format: binary`` holds."""
    from openapi_core.deserializing.media_types.util import data_form_loads
    from werkzeug.datastructures import ImmutableMultiDict

    form: Any = data_form_loads(value, **parameters)
    return ImmutableMultiDict(
        [(k, v.decode("latin-1") if isinstance(v, bytes) else v) for k, v in form.items(multi=True)]
    )


class SpecValidator:
    """Validates requests (method, path, parameters, headers, body) against one spec."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = {**document, "servers": [{"url": SERVER}]}

    @cached_property
    def _api(self) -> Any:
        from openapi_core import Config, OpenAPI

        config = Config(extra_media_type_deserializers={"multipart/form-data": _multipart_as_text})
        return OpenAPI.from_dict(self.document, config=config)

    def violations(
        self,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes | None,
    ) -> list[str]:
        """What is wrong with this request by the spec; empty when it conforms.

        ``path`` is relative to the provider's base URL. ``body`` is None when it was not
        captured whole, in which case the body is not judged.
        """
        from openapi_core.testing import MockRequest
        from werkzeug.datastructures import ImmutableMultiDict

        content_type = headers.get("content-type", "")
        too_deep = body is not None and _too_deep(content_type, body)
        if too_deep:
            body = None  # judged here, not by the validator, whose recursion it would exhaust
        request = MockRequest(
            SERVER,
            method.lower(),
            path,
            args=ImmutableMultiDict(parse_qsl(query, keep_blank_values=True)),
            headers=dict(headers),
            data=body if body is not None else b"",
            content_type=content_type or "application/octet-stream",
        )
        found = self._request_violations(request, judge_body=body is not None)
        if too_deep:
            found.append(f"body: JSON nested more than {MAX_JSON_DEPTH} levels deep")
        return found

    def _request_violations(self, request: Any, *, judge_body: bool) -> list[str]:
        try:
            self._api.validate_request(request)
        except UnicodeDecodeError:
            return ["body: not valid UTF-8"] if judge_body else []
        except RecursionError:  # pragma: no cover - deep bodies are judged before this
            return ["body: nested too deeply to check"] if judge_body else []
        except Exception as exc:  # every openapi-core error is a finding about the request
            found = _described(exc)
            if not judge_body:
                found = [f for f in found if not f.startswith("body")]
            return found
        return []

    def response_violations(
        self,
        request: httpx.Request,
        response: httpx.Response,
        base_path: str,
    ) -> list[str]:
        """What is wrong with ``response`` (to ``request``) by the spec; empty when it conforms.

        ``base_path`` is the path of the provider's base URL, cut from the request's path.
        """
        from openapi_core.testing import MockRequest, MockResponse
        from werkzeug.datastructures import ImmutableMultiDict

        path = request.url.path.removeprefix(base_path.rstrip("/")) or "/"
        mock_request = MockRequest(
            SERVER,
            request.method.lower(),
            path,
            args=ImmutableMultiDict(request.url.params.multi_items()),
            headers=dict(request.headers),
            content_type=request.headers.get("content-type", "application/octet-stream"),
        )
        content_type = response.headers.get("content-type", "").split(";")[0].strip()
        mock_response = MockResponse(
            response.content,
            status_code=response.status_code,
            headers=dict(response.headers),
            content_type=content_type or "application/octet-stream",
        )
        try:
            self._api.validate_response(mock_request, mock_response)
        except Exception as exc:  # every openapi-core error is a finding about the response
            return describe_response(exc)
        return []


MAX_JSON_DEPTH = 64  # a JSON body nested deeper is a finding, not something to walk


def _too_deep(content_type: str, body: bytes) -> bool:
    """Whether ``body``, a JSON body, nests deeper than :data:`MAX_JSON_DEPTH` levels (walked
    without recursion: the decoder's own limit counts as too deep)."""
    if "json" not in content_type.split(";")[0].lower():
        return False
    try:
        value = json.loads(body)
    except RecursionError:
        return True
    except ValueError:
        return False  # not JSON: the validator says so
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def describe_response(exc: BaseException) -> list[str]:
    """Readable sentences from openapi-core's response validation errors."""
    name = type(exc).__name__
    cause = exc.__cause__
    schema_errors = getattr(cause, "schema_errors", None)
    if schema_errors:
        return [
            f"response body: {_schema_error(found)}"
            for error in schema_errors
            for found in _closest(error)
        ]
    if name == "ResponseNotFound" or (
        cause is not None and type(cause).__name__ == "ResponseNotFound"
    ):
        return [f"response status: not in the spec: {cause or exc}"]
    if cause is not None:
        return [f"response: {cause}"]
    return [f"response: {str(exc) or name}"]


def _closest(error: Any) -> list[Any]:
    """The errors that matter in a jsonschema error: for a ``oneOf``/``anyOf`` that nothing
    matched, those of the branch that came closest (fewest errors), so a missing field is
    named rather than "not valid under any of the given schemas"."""
    if error.validator not in ("oneOf", "anyOf") or not error.context:
        return [error]
    branches: dict[Any, list[Any]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    nearest = min(branches.values(), key=len)
    return [found for sub in nearest for found in _closest(sub)]


def _schema_error(error: Any) -> str:
    """``at data: 'x' is a required property``; the location is left out at the top."""
    where = ".".join(str(part) for part in error.absolute_path)
    return f"at {where}: {error.message}" if where else str(error.message)


def _described(exc: BaseException) -> list[str]:
    """``describe``, safe against errors whose text cannot be rendered (undecodable bodies)."""
    try:
        return describe(exc)
    except UnicodeDecodeError:
        return ["body: not valid UTF-8"]


def describe(exc: BaseException) -> list[str]:
    """Readable sentences from openapi-core's chained validation errors."""
    name = type(exc).__name__
    if name == "SecurityValidationError":
        return ["security: no credentials the spec accepts (missing or malformed auth headers)"]
    if name in ("PathNotFound", "ServerNotFound"):
        return [f"path: {exc}"]
    if name == "OperationNotFound":
        return [f"method: {exc}"]
    cause = exc.__cause__
    where = "body" if "Body" in name or "MediaType" in name else "parameters"
    schema_errors = getattr(cause, "schema_errors", None)
    if schema_errors:
        return [f"{where}: {error.message}" for error in schema_errors]
    if cause is not None and type(cause).__name__ == "MediaTypeNotFound":
        return [f"body: content type not in the spec: {cause}"]
    if cause is not None and where == "body":
        return [f"body: {cause}"]
    return [f"{where}: {str(exc) or name}"]
