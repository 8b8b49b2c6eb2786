"""Passcreator's handlers: parse, call the store, render. One per operationId of the spec."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from itertools import islice
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulator.kit.provider import base_url, store_of
from simulator.providers.passcreator import errors
from simulator.providers.passcreator.models import MAX_PAGE_SIZE, Account, PasscreatorStore
from simulator.providers.passcreator.query import Query, QueryError, parse_query

__all__ = ["ROUTES"]

MAX_PAGE = 1_000_000
STANDARD_TO_URLSAFE = str.maketrans("+/", "-_")


def _store(request: Request) -> PasscreatorStore:
    return store_of(request, PasscreatorStore)


def _authenticate(request: Request, store: PasscreatorStore) -> Account:
    return store.authenticate(request.headers.get("authorization"))


def _answer(data: object, *, count: int = 1, meta: object = None) -> Response:
    return JSONResponse(errors.envelope(200, data, count=count, meta=meta))


def _flag(request: Request, name: str, default: bool) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise errors.InvalidParameter(errors.PARAMETER_INVALID.format(name=name))


def _number(request: Request, name: str, default: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    text = raw.strip()
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= high:
        raise errors.InvalidParameter(errors.PARAMETER_INVALID.format(name=name))
    return int(text)


def _reject_constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError("number out of range")
    return value


def parse_json(raw: bytes, invalid: Callable[[], errors.PasscreatorError]) -> object:
    """Strict JSON (no NaN, no infinities, no lone surrogates), or ``invalid()``."""
    try:
        value = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite)
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError):
        raise invalid() from None
    return value


async def _json_body(request: Request, store: PasscreatorStore) -> dict[str, object]:
    """The request body as a JSON object, read with a size cap."""
    limit = store.options.max_body_bytes

    def too_large() -> errors.PasscreatorError:
        return errors.BodyTooLarge(errors.BODY_TOO_LARGE.format(limit=limit))

    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large()
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise too_large()
    if not body.strip():
        raise errors.InvalidBody(errors.DATA_MISSING)
    value = parse_json(bytes(body), errors.InvalidJson)
    if not isinstance(value, dict):
        raise errors.InvalidBody(errors.BODY_NOT_OBJECT)
    return value


def _query_param(request: Request) -> Query:
    """``?query=``: a Query Language object as base64url-encoded JSON (padding optional).

    Standard base64 is taken too, including a ``+`` that the query string turned into a space.
    """
    raw = request.query_params.get("query")
    if raw is None or not raw.strip():
        return Query()

    def invalid() -> errors.PasscreatorError:
        return errors.InvalidFilter(errors.QUERY_INVALID.format(reason="not base64url JSON"))

    text = raw.strip().replace(" ", "+").translate(STANDARD_TO_URLSAFE)
    try:
        decoded = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise invalid() from None
    try:
        return parse_query(parse_json(decoded, invalid))
    except QueryError as exc:
        raise errors.InvalidFilter(str(exc)) from None


async def create_pass(request: Request) -> Response:
    store = _store(request)
    account = _authenticate(request, store)
    asynchronous = _flag(request, "async", True)
    body = await _json_body(request, store)
    data = body.get("data")
    if data is None:
        raise errors.InvalidBody(errors.DATA_MISSING)
    if isinstance(data, list):
        process = store.create_bulk(account, data)
        return _answer({"identifier": process.identifier})
    if not isinstance(data, dict):
        raise errors.InvalidBody(errors.DATA_INVALID)
    created = store.create_one(account, data)
    return _answer(store.pass_body(created, hide_generated_barcode=asynchronous))


async def update_passes(request: Request) -> Response:
    store = _store(request)
    account = _authenticate(request, store)
    body = await _json_body(request, store)
    data = body.get("data")
    store.check_update(data)
    selection = body.get("filter")
    if not isinstance(selection, dict) or "query" not in selection:
        raise errors.InvalidFilter(errors.FILTER_MISSING)
    fields = selection.get("fields", [])
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise errors.InvalidFilter(errors.FILTER_FIELDS_INVALID)
    try:
        query = parse_query(selection["query"])
    except QueryError as exc:
        raise errors.InvalidFilter(str(exc)) from None
    process = store.update_bulk(account, query, data)
    return _answer({"identifier": process.identifier})


async def list_passes(request: Request) -> Response:
    store = _store(request)
    account = _authenticate(request, store)
    query = _query_param(request)
    size = _number(request, "pageSize", store.options.page_size, MAX_PAGE_SIZE)
    page = _number(request, "page", 1, MAX_PAGE)
    start = (page - 1) * size
    # One more than a page tells whether there is a next one.
    found = list(islice(store.list_passes(account, query), start, start + size + 1))
    items = [store.pass_body(item) for item in found[:size]]
    next_url = None
    if len(found) > size:
        params = {k: v for k, v in request.query_params.items() if k not in ("page", "pageSize")}
        params.update(page=str(page + 1), pageSize=str(size))
        next_url = f"{base_url(request)}/api/v3/pass?{urlencode(params)}"
    meta = {"page": {"number": page, "size": size, "next": next_url}}
    return _answer(items, count=len(items), meta=meta)


async def get_pass(request: Request) -> Response:
    store = _store(request)
    account = _authenticate(request, store)
    found = store.pass_for(request.path_params["identifier"], account)
    return _answer(store.pass_body(found))


async def update_pass(request: Request) -> Response:
    store = _store(request)
    account = _authenticate(request, store)
    _flag(request, "async", True)  # accepted; a single update always applies at once
    identifier = request.path_params["identifier"]
    store.pass_for(identifier, account)
    body = await _json_body(request, store)
    updated = store.update_one(account, identifier, body.get("data"))
    return _answer(store.pass_body(updated))


async def get_process(request: Request) -> Response:
    store = _store(request)
    account = _authenticate(request, store)
    process = store.process_for(request.path_params["identifier"], account)
    return _answer(store.process_body(process))


ROUTES = (
    Route("/api/v3/pass", list_passes, methods=["GET"]),
    Route("/api/v3/pass", create_pass, methods=["POST"]),
    Route("/api/v3/pass", update_passes, methods=["PATCH"]),
    Route("/api/v3/pass/{identifier}", get_pass, methods=["GET"]),
    Route("/api/v3/pass/{identifier}", update_pass, methods=["PATCH"]),
    Route("/api/v3/process/{identifier}", get_process, methods=["GET"]),
)
