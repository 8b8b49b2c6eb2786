"""Passcreator's handlers, one per operationId of the spec: parse → load → decide → save → render.

Each handler takes the request, the typed context (clock, options, the store view) and the
instance's :class:`~simulator.providers.passcreator.models.Passcreator` (the seeded process and
passes). It parses the request, loads records from ``ctx.store``, lets ``models`` decide
(raising Passcreator's errors), saves what changed and renders the answer; nothing else.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulator.kit.budget import size_of, sizes_of
from simulator.kit.provider import base_url, endpoint_for, header_of
from simulator.kit.rendering import FastJSONResponse
from simulator.providers.passcreator import errors, hooks, models
from simulator.providers.passcreator.fakes import pass_links
from simulator.providers.passcreator.models import (
    MAX_PAGE_SIZE,
    PASSES,
    PROCESSES,
    SEED_CHANGES,
    STANDARD_FIELDS,
    USER_IDS,
    Account,
    Context,
    Holders,
    Pass,
    Passcreator,
    PasscreatorOptions,
    Process,
    user_id_key,
)
from simulator.providers.passcreator.query import Query, QueryError, parse_query
from simulator.store import Store

__all__ = ["ROUTES"]

MAX_PAGE = 1_000_000
STANDARD_TO_URLSAFE = str.maketrans("+/", "-_")
# Records read at a time when every pass is gone through (a listing, a bulk update).
SCAN_PAGE = 5_000
# Going through every pass hands the event loop back at least this often (seconds), so that
# a listing or bulk update over many passes never keeps other requests waiting long.
SLICE_SECONDS = 0.005

# A handler takes the request, its typed context and the instance's services.
endpoint = endpoint_for(PasscreatorOptions, Passcreator)


# -- parse ---------------------------------------------------------------------------------


def authenticate(request: Request) -> Account:
    return models.authenticate(header_of(request, b"authorization"))


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


# A body larger than this is decoded in a worker thread: a 10 MB bulk create takes some 100 ms
# to decode, which would hold every other request on the event loop.
INLINE_JSON_BYTES = 64 * 1024


async def _json_body(request: Request, ctx: Context) -> dict[str, object]:
    """The request body as a JSON object, read with a size cap."""
    limit = ctx.options.max_body_bytes

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
    if len(body) > INLINE_JSON_BYTES:
        value = await to_thread.run_sync(parse_json, bytes(body), errors.InvalidJson)
    else:
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


# -- load and save -------------------------------------------------------------------------


async def load_pass(store: Store, pc: Passcreator, identifier: str) -> Pass | None:
    """A pass from the store, else a seeded one (as a client last changed it)."""
    found = await store.get(PASSES, identifier)
    if found is None and identifier in pc.seed_passes:
        found = await store.get(SEED_CHANGES, identifier) or pc.seed_passes[identifier]
    return found


async def load_process(store: Store, pc: Passcreator, identifier: str) -> Process | None:
    found = await store.get(PROCESSES, identifier)
    if found is None and identifier == pc.seed_process.identifier:
        return pc.seed_process
    return found


async def every_pass(store: Store, pc: Passcreator) -> AsyncIterator[Pass]:
    """Every pass, oldest first: the seeded ones, then the store's."""
    for identifier in pc.seed_passes:
        yield await store.get(SEED_CHANGES, identifier) or pc.seed_passes[identifier]
    after = None
    while True:
        page = await store.scan(PASSES, after=after, limit=SCAN_PAGE)
        for _, item in page.items:
            yield item
        if page.next is None:
            return
        after = page.next


async def selected(
    ctx: Context, store: Store, pc: Passcreator, account: Account, query: Query
) -> AsyncIterator[Pass]:
    """The passes of ``account`` that exist by now and that ``query`` selects, oldest first.

    It lets other requests run every :data:`SLICE_SECONDS` (a query judges one pass in about
    a millisecond at most, see :data:`~simulator.providers.passcreator.query.MAX_TERMS`), so
    it must not run inside a transaction.
    """
    now = ctx.now()
    pause_at = time.perf_counter() + SLICE_SECONDS
    async for item in every_pass(store, pc):
        if models.visible(item, account, now) and query.matches(models.pass_fields(item, now)):
            yield item
        if time.perf_counter() >= pause_at:
            await asyncio.sleep(0)
            pause_at = time.perf_counter() + SLICE_SECONDS


async def user_ids_in_use(
    tx: Store, pc: Passcreator, account: Account, wanted: set[str]
) -> set[str]:
    """Which of ``wanted`` a pass of ``account`` holds, or will once its updates apply."""
    in_use: set[str] = set()
    if not wanted:
        return in_use
    for item in pc.seed_passes.values():
        current = await tx.get(SEED_CHANGES, item.identifier) or item
        if current.account == account.id and current.final_user_provided_id() in wanted:
            in_use.add(str(current.final_user_provided_id()))
    for user_id in wanted - in_use:
        key = user_id_key(account.id, user_id)
        holders = await tx.get(USER_IDS, key)
        if holders is None:
            continue
        still = []
        for identifier in holders.identifiers:
            holder = await tx.get(PASSES, identifier)
            if holder is not None and holder.final_user_provided_id() == user_id:
                still.append(identifier)
        if still:
            in_use.add(user_id)
        if len(still) < len(holders.identifiers):
            await tx.put(USER_IDS, key, Holders(tuple(still)))
    return in_use


def user_id_holders(pc: Passcreator, passes: Iterable[Pass]) -> dict[str, list[str]]:
    """The index keys of the userProvidedIds ``passes`` take on, each with the passes."""
    added: dict[str, list[str]] = {}
    for item in passes:
        if item.identifier in pc.seed_passes:
            continue
        values = [dict(item.values), *(dict(u.values) for u in item.updates)]
        for user_id in {v.get("userProvidedId") for v in values}:
            if isinstance(user_id, str) and user_id:
                added.setdefault(user_id_key(item.account, user_id), []).append(item.identifier)
    return added


async def index_user_ids(
    tx: Store, pc: Passcreator, passes: Iterable[Pass], added: dict[str, list[str]] | None = None
) -> None:
    """Record which passes hold each userProvidedId they take on (seeded ones are looked at
    directly); one read and one write per userProvidedId. ``added`` is
    :func:`user_id_holders` of ``passes`` when already known."""
    if added is None:
        added = user_id_holders(pc, passes)
    for key, identifiers in added.items():
        holders = await tx.get(USER_IDS, key) or Holders()
        new = [i for i in dict.fromkeys(identifiers) if i not in holders.identifiers]
        if new:
            await tx.put(USER_IDS, key, Holders((*holders.identifiers, *new)))


async def save_changed(tx: Store, ctx: Context, pc: Passcreator, passes: list[Pass]) -> None:
    """Changed passes and their userProvidedIds' index: a seeded one is copied into the
    store, an evicted one stays gone. Passes grown past the byte budget push the oldest out."""
    sizes = sizes_of(PASSES)
    for item in passes:
        if item.identifier in pc.seed_passes:
            await tx.put(SEED_CHANGES, item.identifier, item)
        elif await tx.update(PASSES, item.identifier, functools.partial(_replaced, item)):
            await tx.put(sizes, item.identifier, size_of(item))
    await index_user_ids(tx, pc, passes)
    await make_room_for_passes(tx, ctx, pc, [])


def _replaced(new: Pass, old: Pass) -> Pass:
    return new


async def make_room_for_passes(
    tx: Store, ctx: Context, pc: Passcreator, incoming: list[Pass], sizes: list[int] | None = None
) -> None:
    """Drop the oldest passes until ``incoming`` (of ``sizes``, when known) fit, and every
    index entry that names them."""
    budget = models.passes_room(ctx.options, len(pc.seed_passes))
    size = sum(sizes if sizes is not None else (size_of(item) for item in incoming))
    dropped = await budget.evict(tx, PASSES, size, full=models.store_full, records=len(incoming))
    await forget_user_ids(tx, [item for _, item in dropped])


async def save_passes(
    tx: Store, ctx: Context, pc: Passcreator, passes: list[Pass], built: Built | None = None
) -> None:
    """New passes, after the oldest made room for them, and their userProvidedIds' index
    (``built``: their sizes and index entries, worked out beforehand)."""
    if built is None:
        built = Built.of(pc, passes)
    await make_room_for_passes(tx, ctx, pc, passes, built.sizes)
    budget = models.passes_room(ctx.options, len(pc.seed_passes))
    for item, size in zip(passes, built.sizes, strict=True):
        await budget.put(tx, PASSES, item.identifier, item, size)
    await index_user_ids(tx, pc, passes, built.holders)


@dataclass(frozen=True, slots=True)
class Built:
    """What storing new passes needs that takes no store: their sizes and index entries."""

    sizes: list[int]
    holders: dict[str, list[str]]

    @classmethod
    def of(cls, pc: Passcreator, passes: list[Pass]) -> Built:
        return cls([size_of(item) for item in passes], user_id_holders(pc, passes))


async def forget_user_ids(tx: Store, passes: Iterable[Pass]) -> None:
    """Drop removed passes from the userProvidedId index (an entry naming none goes)."""
    for item in passes:
        for user_id in models.user_ids_of(item):
            key = user_id_key(item.account, user_id)
            holders = await tx.get(USER_IDS, key)
            if holders is None:
                continue
            still = tuple(i for i in holders.identifiers if i != item.identifier)
            if still:
                await tx.put(USER_IDS, key, Holders(still))
            else:
                await tx.delete(USER_IDS, key)


async def admit_process(tx: Store, ctx: Context, process: Process) -> int:
    """Passcreator's 429 if the stored processes are at their caps; else the process's size.
    Writes nothing: call it before any other write of the request."""
    size = size_of(process)
    await models.processes_room(ctx.options).admit(tx, PROCESSES, size, full=models.store_full)
    return size


async def save_process(tx: Store, ctx: Context, process: Process, size: int) -> None:
    expires_at = models.process_expires_at(ctx.options, process)
    budget = models.processes_room(ctx.options)
    await budget.put(tx, PROCESSES, process.identifier, process, size, expires_at=expires_at)


# -- render --------------------------------------------------------------------------------


def _answer(data: object, *, count: int = 1, meta: object = None) -> Response:
    return JSONResponse(errors.envelope(200, data, count=count, meta=meta))


def pass_body(
    ctx: Context, item: Pass, *, hide_generated_barcode: bool = False
) -> dict[str, object]:
    fields: dict[str, object] = dict(models.pass_fields(item, ctx.now()))
    if hide_generated_barcode and item.barcode_generated:
        # Created asynchronously: the service does not know the value yet when it answers.
        fields["barcodeValue"] = None
    links = pass_links(ctx.options.public_base_url, item.identifier)
    ordered = {k: fields.pop(k) for k in ("identifier", "templateId", *STANDARD_FIELDS)}
    ordered.update({k: fields.pop(k) for k in ("createdOn", "modifiedOn")})
    return {**ordered, **links, **fields}


def process_body(ctx: Context, process: Process) -> dict[str, object]:
    current = process.current(ctx.now())
    return {
        "current": current,
        "total": process.total,
        "createdOn": models.format_time(process.created_at),
        "status": process.status_at(current),
        "errors": process.errors_at(current),
    }


# -- handlers ------------------------------------------------------------------------------


@endpoint
async def create_pass(request: Request, ctx: Context, pc: Passcreator) -> Response:
    account = authenticate(request)
    asynchronous = _flag(request, "async", True)
    body = await _json_body(request, ctx)
    data = body.get("data")
    if data is None:
        raise errors.InvalidBody(errors.DATA_MISSING)
    if isinstance(data, list):
        return await _create_bulk(ctx, pc, account, data)
    if not isinstance(data, dict):
        raise errors.InvalidBody(errors.DATA_INVALID)
    identifier = (await ctx.next_id("pass")).uuid()
    async with ctx.store.transaction() as tx:
        in_use = await user_ids_in_use(tx, pc, account, models.enforced_user_ids([data]))
        draft, messages = models.check_item(ctx.options, account, data, in_use.__contains__)
        if draft is None:
            raise errors.InvalidItem(*messages)
        created = models.new_pass(ctx.ids, identifier, account, draft, ctx.now())
        await save_passes(tx, ctx, pc, [created])
    await hooks.passes_created(ctx, account, [created])
    return _answer(pass_body(ctx, created, hide_generated_barcode=asynchronous))


async def _create_bulk(
    ctx: Context, pc: Passcreator, account: Account, items: list[object]
) -> Response:
    models.check_bulk(ctx.options, items)
    process_id = (await ctx.next_id("process")).uuid()
    identifiers = [n.uuid() for n in await ctx.next_ids("pass", len(items))]
    wanted = models.enforced_user_ids(items)

    def build(in_use: set[str]) -> tuple[Process, list[Pass], Built]:
        process = models.new_process(ctx, process_id, account, len(items))
        process, made = models.bulk_create(ctx, process, account, items, identifiers, in_use)
        return process, made, Built.of(pc, made)

    while True:
        # Every item is judged and its pass built in a worker thread, outside the
        # transaction (which must not wait on a thread): the transaction checks that the
        # userProvidedIds the items ask to keep unique are held as they were when judged,
        # and judges again if a request took one meanwhile.
        seen: set[str] = set()
        if wanted:
            async with ctx.store.transaction() as tx:
                seen = await user_ids_in_use(tx, pc, account, wanted)
        process, made, built = await to_thread.run_sync(build, set(seen))
        async with ctx.store.transaction() as tx:
            if wanted and await user_ids_in_use(tx, pc, account, wanted) != seen:
                continue
            # Refused (Passcreator's 429) before anything is written when the caps are
            # reached: the process is admitted first, and passes too large to fit refuse
            # before evicting.
            size = await admit_process(tx, ctx, process)
            await save_passes(tx, ctx, pc, made, built)
            await save_process(tx, ctx, process, size)
            break
    await hooks.passes_created(ctx, account, made)
    return _answer({"identifier": process.identifier})


@endpoint
async def update_passes(request: Request, ctx: Context, pc: Passcreator) -> Response:
    account = authenticate(request)
    body = await _json_body(request, ctx)
    values = models.check_update(body.get("data"))
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
    process_id = (await ctx.next_id("process")).uuid()
    # The query is judged outside the transaction, letting other requests run meanwhile; the
    # transaction updates the passes it chose as they are then (still the account's).
    identifiers = [item.identifier async for item in selected(ctx, ctx.store, pc, account, query)]
    async with ctx.store.transaction() as tx:
        now = ctx.now()
        chosen = []
        for identifier in identifiers:
            found = await load_pass(tx, pc, identifier)
            if found is not None and models.visible(found, account, now):
                chosen.append(found)
        process = models.new_process(ctx, process_id, account, len(chosen))
        process, changed = models.bulk_update(process, chosen, values, ctx.now())
        size = await admit_process(tx, ctx, process)  # refused before any write, when full
        await save_process(tx, ctx, process, size)
        await save_changed(tx, ctx, pc, list(changed))
    return _answer({"identifier": process.identifier})


@endpoint
async def list_passes(request: Request, ctx: Context, pc: Passcreator) -> Response:
    account = authenticate(request)
    query = _query_param(request)
    size = _number(request, "pageSize", ctx.options.page_size, MAX_PAGE_SIZE)
    page = _number(request, "page", 1, MAX_PAGE)
    start = (page - 1) * size
    # One more than a page tells whether there is a next one.
    found: list[Pass] = []
    seen = 0
    async for item in selected(ctx, ctx.store, pc, account, query):
        if seen >= start:
            found.append(item)
            if len(found) > size:
                break
        seen += 1
    items = [pass_body(ctx, item) for item in found[:size]]
    next_url = None
    if len(found) > size:
        params = {k: v for k, v in request.query_params.items() if k not in ("page", "pageSize")}
        params.update(page=str(page + 1), pageSize=str(size))
        next_url = f"{base_url(request)}/api/v3/pass?{urlencode(params)}"
    meta = {"page": {"number": page, "size": size, "next": next_url}}
    return _answer(items, count=len(items), meta=meta)


@endpoint
async def get_pass(request: Request, ctx: Context, pc: Passcreator) -> Response:
    account = authenticate(request)
    identifier = request.path_params["identifier"]
    found = models.owned_pass(await load_pass(ctx.store, pc, identifier), account, ctx.now())
    return _answer(pass_body(ctx, found))


@endpoint
async def update_pass(request: Request, ctx: Context, pc: Passcreator) -> Response:
    account = authenticate(request)
    _flag(request, "async", True)  # accepted; a single update always applies at once
    identifier = request.path_params["identifier"]
    models.owned_pass(await load_pass(ctx.store, pc, identifier), account, ctx.now())
    body = await _json_body(request, ctx)
    async with ctx.store.transaction() as tx:
        found = models.owned_pass(await load_pass(tx, pc, identifier), account, ctx.now())
        values = models.check_update(body.get("data"))
        changed = models.updated(found, values, ctx.now())
        await save_changed(tx, ctx, pc, [changed])
    return _answer(pass_body(ctx, changed))


@endpoint
async def get_process(request: Request, ctx: Context, pc: Passcreator) -> Response:
    account = authenticate(request)
    found = await load_process(ctx.store, pc, request.path_params["identifier"])
    body = errors.envelope(200, process_body(ctx, models.owned_process(found, account)))
    # No floats in a process body: orjson writes JSONResponse's bytes.
    return FastJSONResponse(body)


ROUTES = (
    Route("/api/v3/pass", list_passes, methods=["GET"]),
    Route("/api/v3/pass", create_pass, methods=["POST"]),
    Route("/api/v3/pass", update_passes, methods=["PATCH"]),
    Route("/api/v3/pass/{identifier}", get_pass, methods=["GET"]),
    Route("/api/v3/pass/{identifier}", update_pass, methods=["PATCH"]),
    Route("/api/v3/process/{identifier}", get_process, methods=["GET"]),
    *hooks.HOOK_ROUTES,
)
