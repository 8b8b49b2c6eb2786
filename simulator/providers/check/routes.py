"""Check's handlers, one per operationId of the spec: parse → load → decide → save → render.

Every handler runs inside ``endpoint``: it checks the API key, counts the request in the
organisation's rate window (answering 429 when enforcement is on) and puts the
``X-RateLimit-*`` headers on whatever the handler answers, errors included. The handler gets
the request, the typed context (clock, options, the store view), the instance's
:class:`~simulator.providers.check.models.Check` (seeds, one-shot files) and the
organisation.
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulator.clock import format_iso
from simulator.ids import IdFactory
from simulator.kit.budget import size_of
from simulator.kit.provider import context_of, header_of, query_of, store_of
from simulator.kit.rendering import EncodedJSONResponse, FastJSONResponse, floats_render_alike
from simulator.kit.uploads import read_form
from simulator.kit.webhooks import Signing, schedule, unschedule
from simulator.providers.check import endpoints, errors, fakes, models
from simulator.providers.check.formats import encodable, parse_upload, strict_json
from simulator.providers.check.models import (
    BATCH_CHUNKS,
    BATCH_STATUSES,
    BATCHES,
    ID_ALPHABET,
    SEED_COPIES,
    WINDOWS,
    Batch,
    BatchChunk,
    BatchHead,
    Check,
    CheckOptions,
    Context,
    FileItems,
    Org,
    Plan,
    RateWindow,
)
from simulator.providers.check.validation import parse_create
from simulator.store import Store

try:
    import orjson
except ImportError:  # pragma: no cover - where it cannot be installed
    orjson = None  # type: ignore[assignment]

__all__ = ["ROUTES"]

# Room for the multipart framing around a file of exactly the plan's size.
FORM_OVERHEAD = 64 * 1024
READ_CHUNK = 64 * 1024
DIGITS = re.compile(r"[0-9]{1,1000}")

Handler = Callable[[Request, Context, Check, Org], Awaitable[Response]]


def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """The route's endpoint: authenticates, counts the request and stamps the rate headers."""

    @functools.wraps(handler)
    async def run(request: Request) -> Response:
        ctx = context_of(request, CheckOptions)
        try:
            org = models.authenticate(header_of(request, b"authorization"))
        except errors.CheckError as exc:
            exc.extra_headers.update(errors.anonymous_rate_headers(ctx))
            return exc.response()
        try:
            window = await count_request(ctx, org)
        except errors.RateLimited as exc:
            return exc.response()
        try:
            response = await handler(request, ctx, store_of(request, Check), org)
        except errors.CheckError as exc:
            exc.extra_headers.update(window.headers())
            return exc.response()
        stamp(response, window)
        return response

    return run


def stamp(response: Response, window: RateWindow) -> None:
    """``response.headers.update(window.headers())``: appended as raw headers (in order, as
    update appends names the response lacks), unless the response already has one of them."""
    raw = response.raw_headers
    for name, _ in raw:
        if name.startswith(b"x-ratelimit-"):
            response.headers.update(window.headers())
            return
    raw.extend(window.raw_headers())


async def count_request(ctx: Context, org: Org) -> RateWindow:
    """Count one request in the organisation's window (a 429 when over and enforced).

    One atomic add (one round trip, and no retry however many connections count at once);
    a refused request is taken off again, so that only answered ones count.
    """
    now = ctx.now()
    limit = models.plan_of(ctx.options, org).requests_per_minute
    enforce = ctx.options.enforce_rate_limits
    window = models.window_of(now)
    key = window.key(org)
    count = await ctx.store.add(WINDOWS, key, expires_at=window.ends_at)
    try:
        return models.counted(window, count, now, limit, enforce)
    except errors.RateLimited:
        await ctx.store.add(WINDOWS, key, -1, expires_at=window.ends_at)
        raise


async def load_batch(store: Store, check: Check, batch_id: str) -> Batch | None:
    """A batch from the store (its head and all its chunks); a seed, unless a client changed
    it (then its stored copy)."""
    seed = check.seeds.get(batch_id)
    if seed is not None:
        return await store.get(SEED_COPIES, batch_id) or seed
    head = await store.get(BATCHES, batch_id)
    return None if head is None else await _with_chunks(store, head, head.chunks())


async def load_head(store: Store, check: Check, batch_id: str) -> tuple[Batch | None, object]:
    """What a batch's poll and its results pages read first: a seed (or its changed copy), or
    a stored batch's head (its batch without items and outcomes); and the record read, for
    :func:`settled_answer` to know it again."""
    seed = check.seeds.get(batch_id)
    if seed is not None:
        batch = await store.get(SEED_COPIES, batch_id) or seed
        return batch, batch
    head = await store.get(BATCHES, batch_id)
    return (None, None) if head is None else (head.batch, head)


async def _with_chunks(store: Store, head: BatchHead, numbers: range) -> Batch | None:
    chunks: dict[int, BatchChunk] = {}
    for number in numbers:
        chunk = await store.get(BATCH_CHUNKS, models.chunk_key(head.id, number))
        if chunk is None:  # expired (or deleted) since the head was read: gone
            return None
        chunks[number] = chunk
    return models.joined(head, chunks)


async def save_batch(
    store: Store, options: CheckOptions, batch: Batch, size: int, *, expires_at: datetime
) -> None:
    """Store a batch: its head, its ``size`` (the whole batch's, for the caps) and its chunks,
    all to expire at ``expires_at``."""
    head, chunks = models.stored_parts(batch)
    await options.budget.put(store, BATCHES, batch.id, head, size, expires_at=expires_at)
    for number, chunk in enumerate(chunks):
        key = models.chunk_key(batch.id, number)
        await store.put(BATCH_CHUNKS, key, chunk, expires_at=expires_at)


async def all_batches(store: Store, check: Check) -> list[tuple[Batch, BatchHead | None]]:
    """The seeds (or their changed copies), then the stored batches, oldest first; a stored
    one as its head's batch (no items: enough for its summary, with the head beside)."""
    copies = dict((await store.scan(SEED_COPIES)).items)
    batches: list[tuple[Batch, BatchHead | None]] = [
        (copies.get(batch_id, seed), None) for batch_id, seed in check.seeds.items()
    ]
    after = None
    while True:
        page = await store.scan(BATCHES, after=after)
        batches.extend((head.batch, head) for _, head in page.items)
        if page.next is None:
            return batches
        after = page.next


async def new_batch_id(ctx: Context, check: Check) -> str:
    while True:
        batch_id = "batch_" + (await ctx.next_id("batch")).letters(12, ID_ALPHABET)
        if batch_id not in check.seeds:
            return batch_id


def _iso(instant: datetime | None) -> str | None:
    return None if instant is None else format_iso(instant)


# The limit and offset of the queries read last (a client polls with the same query), by the
# query's bytes and the default limit: a pure function of them. Valid ones only, the last few.
_PAGE_PARAMS: dict[tuple[bytes, int], tuple[int, int]] = {}
PAGE_PARAMS_KEPT = 64


def _page_params(request: Request, default_limit: int = 20) -> tuple[int, int]:
    """The page's ``limit`` (1 to 100, ``default_limit`` when absent) and ``offset`` (from 0),
    or Check's 422 naming each that is not such an integer."""
    key = (request.scope["query_string"], default_limit)
    found = _PAGE_PARAMS.get(key)
    if found is None:
        found = _parsed_page_params(request, default_limit)
        if len(_PAGE_PARAMS) >= PAGE_PARAMS_KEPT:
            del _PAGE_PARAMS[next(iter(_PAGE_PARAMS))]
        _PAGE_PARAMS[key] = found
    return found


def _parsed_page_params(request: Request, default_limit: int) -> tuple[int, int]:
    problems: list[errors.Detail] = []
    values = []
    query = query_of(request)
    for name, default, low, high in (("limit", default_limit, 1, 100), ("offset", 0, 0, None)):
        raw = query.get(name)
        if raw is None:
            values.append(default)
            continue
        number = int(raw) if DIGITS.fullmatch(raw) else -1
        if number < low or (high is not None and number > high):
            upper = f"from {low} to {high}" if high is not None else f"of at least {low}"
            problems.append({"field": name, "message": f"must be an integer {upper}"})
        values.append(number)
    if problems:
        raise errors.ValidationFailed.fields(problems)
    return values[0], values[1]


def _pagination(total: int, limit: int, offset: int, shown: int) -> dict[str, object]:
    return {"total": total, "limit": limit, "offset": offset, "hasMore": offset + shown < total}


def _summary(batch: Batch, now: datetime, head: BatchHead | None = None) -> dict[str, object]:
    """The batch's summary; from ``head`` (the stored head of ``batch``) when given, its
    items and outcomes not read."""
    summary = models.summarize(batch, now, head)
    counts = summary.counts
    return {
        "id": batch.id,
        "name": batch.name,
        "status": summary.status,
        "totalItems": len(batch.items) if head is None else head.size,
        "processedItems": counts.processed,
        "successCount": counts.succeeded,
        "failureCount": counts.failed,
        "totalCostCents": counts.cost_cents,
        "createdAt": format_iso(batch.created_at),
        "startedAt": _iso(summary.started_at),
        "completedAt": _iso(summary.completed_at),
    }


async def _event_id(ctx: Context) -> str:
    return "evt_" + (await ctx.next_id("webhook-event")).hex32()[:24]


async def _schedule_event(
    ctx: Context,
    tx: Store,
    key: str,
    batch: Batch,
    event_type: str,
    target: str,
    data: dict[str, object],
    due: datetime,
) -> None:
    """One event to one target, due at ``due``, signed with the organisation's secret: its
    own event id (each target is sent, listed and resent on its own)."""
    event_id = await _event_id(ctx)
    await schedule(
        ctx,
        key,
        event_id=event_id,
        type=event_type,
        target=target,
        payload={"id": event_id, "type": event_type, "createdAt": format_iso(due), "data": data},
        due=due,
        signing=Signing(models.WEBHOOK_HEADER, models.webhook_secret(ctx.ids, batch.owner)),
        store=tx,
    )


async def _schedule_webhooks(ctx: Context, tx: Store, batch: Batch) -> None:
    """To the organisation's endpoints that take them, ``verification.completed`` (or
    ``verification.failed``) as each item ends; then ``batch.completed`` (or
    ``batch.failed``) to the batch's ``webhookUrl`` and to the endpoints that take it, due
    when the batch ends (after its last item's event, which falls due at the same instant)."""
    mine = [e for e in await endpoints.listing(tx) if e.organisation == batch.owner]
    takers = {
        kind: [e for e in mine if kind in e.events]
        for kind in ("verification.completed", "verification.failed")
    }
    if any(takers.values()):
        created_at = format_iso(batch.created_at)
        for index, outcome in enumerate(batch.outcomes):
            kind = "verification.failed" if outcome.failed else "verification.completed"
            if not takers[kind]:
                continue
            ended = batch.created_at + timedelta(seconds=batch.ends[index])
            data = {"batchId": batch.id, **_item(ctx, batch, index, ended, created_at)}
            for endpoint in takers[kind]:
                key = f"batch/{batch.id}/item/{index}/endpoint/{endpoint.id}"
                await _schedule_event(ctx, tx, key, batch, kind, endpoint.url, data, ended)
    ends = batch.ends_at
    batch_type = models.webhook_type(batch)
    summary = _summary(batch, ends)
    if batch.webhook_url:
        await _schedule_event(
            ctx, tx, f"batch/{batch.id}", batch, batch_type, batch.webhook_url, summary, ends
        )
    for endpoint in (e for e in mine if batch_type in e.events):
        key = f"batch/{batch.id}/endpoint/{endpoint.id}"
        await _schedule_event(ctx, tx, key, batch, batch_type, endpoint.url, summary, ends)


def _require_batches(plan: Plan) -> None:
    if not plan.batches:
        raise errors.QuotaExceeded()


async def _file_chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(READ_CHUNK):
        yield chunk


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _json_body(request: Request, plan: Plan) -> object:
    """The request's JSON body, read with the plan's size cap while it streams."""
    limit = plan.max_file_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise errors.PayloadTooLarge.body_size(plan.max_file_mb)
    received = bytearray()
    async for chunk in request.stream():
        received.extend(chunk)
        if len(received) > limit:
            raise errors.PayloadTooLarge.body_size(plan.max_file_mb)
    if not received.strip():
        raise errors.BadRequest("Request body is required (JSON)")
    try:
        body = strict_json(bytes(received))
    except ValueError:
        raise errors.BadRequest() from None
    if not encodable(body):
        raise errors.BadRequest("Request body must be valid JSON in UTF-8")
    return body


@endpoint
async def upload_batch_file(request: Request, ctx: Context, check: Check, org: Org) -> Response:
    plan = models.plan_of(ctx.options, org)
    _require_batches(plan)
    if not ctx.options.file_storage:
        raise errors.FileStorageUnavailable()

    def too_large() -> errors.CheckError:
        return errors.PayloadTooLarge.file(plan.max_file_mb)

    form = await read_form(
        request,
        max_bytes=plan.max_file_bytes + FORM_OVERHEAD,
        too_large=too_large,
        malformed=lambda problem: errors.BadRequest(f"Invalid multipart body: {problem}"),
        max_fields=20,
    )
    try:
        upload = form.get("file")
        if isinstance(upload, UploadFile):
            if upload.size is not None and upload.size > plan.max_file_bytes:
                raise too_large()
            # Only the name: a client may send a path ("../../claims.csv", "C:\\claims.csv").
            filename = re.split(r"[\\/]", upload.filename or "")[-1]
            chunks = _file_chunks(upload)
            media = upload.content_type or ""
        elif isinstance(upload, str) and upload:
            filename, chunks, media = "", _one_chunk(upload.encode()), ""
        else:
            raise errors.FileRequired()
        parsed = await parse_upload(chunks, filename, media, ctx.options.file_limits)
    finally:
        await form.close()
    file_id = (await ctx.next_id("file")).uuid()
    ref = models.new_file(org, plan, parsed.items, ctx.now())
    async with ctx.store.transaction() as tx:
        await check.files.put(
            tx,
            file_id,
            ref,
            FileItems(tuple(parsed.items)),
            max_files=ctx.options.max_files,
            max_bytes=ctx.options.max_stored_file_bytes,
            too_large=functools.partial(models.file_store_full, ctx.options),
        )
    warnings = len(parsed.warnings)
    message = (
        f"File uploaded with {warnings} validation warning(s). Items with errors were skipped."
        if warnings
        else "File uploaded successfully"
    )
    return JSONResponse(
        {
            "fileId": file_id,
            "originalFileName": filename or "file",
            "format": parsed.format,
            "itemCount": len(parsed.items),
            "validationErrors": parsed.warnings,
            "expiresAt": format_iso(ref.expires_at),
            "message": message,
        }
    )


@endpoint
async def create_batch(request: Request, ctx: Context, check: Check, org: Org) -> Response:
    plan = models.plan_of(ctx.options, org)
    _require_batches(plan)
    body = await _json_body(request, plan)
    create = parse_create(body, plan, ctx.options.max_content_chars)
    if create.file_id is not None and not ctx.options.file_storage:
        raise errors.FileStorageUnavailable()
    batch_id = await new_batch_id(ctx, check)
    options = ctx.options
    # The fileId is consumed (once, of any number of concurrent creates) and the batch saved
    # in one unit: nothing else is awaited in between.
    async with ctx.store.transaction() as tx:
        now = ctx.now()
        items = create.items
        file_id = create.file_id
        if file_id is not None:
            peeked = await check.files.peek(tx, file_id)
            if peeked is None:  # unknown, used or expired: the file's own error
                await check.files.consume(tx, file_id, org.id, now, models.fits(plan))
            assert peeked is not None
            items = peeked.items
        batch = models.new_batch(
            ctx, batch_id, org.id, items, create, now, options.concurrency, plan.retention
        )
        # Refused, never evicted: a batch is kept until its plan's retention ends. Checked
        # before the fileId is used, so that a refused create leaves the file usable.
        size = size_of(batch)
        await options.budget.admit(tx, BATCHES, size, full=models.store_full)
        if file_id is not None:
            await check.files.consume(tx, file_id, org.id, now, models.fits(plan))
        expires_at = batch.expires_at(options.max_batches)
        await save_batch(tx, options, batch, size, expires_at=expires_at)
        await _schedule_webhooks(ctx, tx, batch)
    counts = batch.counts(now)
    return JSONResponse(
        {
            "id": batch.id,
            "status": batch.status(now),
            "name": batch.name,
            "totalItems": len(batch.items),
            "processedItems": counts.processed,
            "successCount": counts.succeeded,
            "failureCount": counts.failed,
            "methods": dict(batch.methods),
            "createdAt": format_iso(batch.created_at),
            "message": "Batch created successfully. Items are being processed.",
        },
        status_code=202,
    )


@endpoint
async def list_batches(request: Request, ctx: Context, check: Check, org: Org) -> Response:
    limit, offset = _page_params(request)
    status = request.query_params.get("status")
    if status is not None and status not in BATCH_STATUSES:
        raise errors.ValidationFailed.field("status", f"must be one of {', '.join(BATCH_STATUSES)}")
    now = ctx.now()
    mine = [found for found in await all_batches(ctx.store, check) if found[0].owner == org.id]
    if status is not None:
        mine = [(b, head) for b, head in mine if models.summarize(b, now, head).status == status]
    batches = models.newest_first(mine)
    page = batches[offset : offset + limit]
    return JSONResponse(
        {
            "data": [_summary(batch, now, head) for batch, head in page],
            "pagination": _pagination(len(batches), limit, offset, len(page)),
        }
    )


@endpoint
async def _get_batch(request: Request, ctx: Context, check: Check, org: Org) -> Response:
    # A summary reads only what a stored batch's head holds: its chunks are not read.
    found, record = await load_head(ctx.store, check, request.path_params["id"])
    batch = models.owned(found, org)
    key = (batch.id, "batch")
    kept = settled_answer(ctx, batch, record, key)
    if kept is not None:
        return EncodedJSONResponse(kept)
    now = ctx.now()
    methods = dict(batch.methods)
    options = batch.options.as_json()
    head = record if isinstance(record, BatchHead) else None
    body = {**_summary(batch, now, head), "methods": methods, "options": options}
    alike = floats_render_alike([*methods.values(), *options.values()])
    response = (FastJSONResponse if alike else JSONResponse)(body)
    keep_if_settled(ctx, batch, record, key, bytes(response.body), now)
    return response


async def get_batch(request: Request) -> Response:
    # ``/v1/batch/upload`` is the upload's path: other methods on it are 405, not a batch id.
    if request.path_params["id"] == "upload":
        error = errors.StatusError(405)
        error.extra_headers.update(errors.anonymous_rate_headers(context_of(request, CheckOptions)))
        error.extra_headers["allow"] = "POST"
        return error.response()
    return await _get_batch(request)


@endpoint
async def get_batch_results(request: Request, ctx: Context, check: Check, org: Org) -> Response:
    limit, offset = _page_params(request)
    found, record = await load_head(ctx.store, check, request.path_params["id"])
    batch = models.owned(found, org)
    # Rendering 100 items is some 10 µs each: a page that can no longer change is kept.
    key = (batch.id, "results", limit, offset)
    page = settled_answer(ctx, batch, record, key)
    if page is None:
        now = ctx.now()
        if isinstance(record, BatchHead):  # the items it shows, the others stand-ins
            read = await _with_chunks(ctx.store, record, record.chunks(offset, limit))
            batch = models.owned(read, org)
        page = _encoded(render_results(ctx, batch, limit, offset))
        keep_if_settled(ctx, batch, record, key, page, now)
    return EncodedJSONResponse(page)


@dataclass(frozen=True, slots=True)
class _Settled:
    """An answer about a batch once nothing in it can change: every item of the batch has
    ended (or was skipped), so the answer (its poll's body, a results page) is a pure
    function of the batch's record, the ids and what was asked, for as long as the clock
    stays at or past ``from_elapsed``."""

    record: object
    ids: IdFactory
    from_elapsed: float
    page: bytes


# The settled answers last encoded: by (batch id, "batch") the poll's body, by (batch id,
# "results", limit, offset) a results page. An entry serves only the very record it was made
# from (a cancelled batch is a new record) and only while the clock is past the batch's last
# end: a clock moved back renders again.
_SETTLED: dict[tuple[object, ...], _Settled] = {}
SETTLED_PAGES = 32


def settled_answer(
    ctx: Context, batch: Batch, record: object, key: tuple[object, ...]
) -> bytes | None:
    """The answer kept under ``key`` for ``record`` (what the batch was read from: the very
    object in memory, or an equal head read again from a shared store) if it has settled;
    ``batch`` needs only its schedule (a head's batch will do)."""
    kept = _SETTLED.get(key)
    if (
        kept is not None
        and (kept.record is record or kept.record == record)
        and kept.ids is ctx.ids
        and batch.elapsed(ctx.now()) >= kept.from_elapsed
    ):
        return kept.page
    return None


def keep_if_settled(
    ctx: Context,
    batch: Batch,
    record: object,
    key: tuple[object, ...],
    page: bytes,
    now: datetime,
) -> None:
    """Keep ``page``, the answer under ``key`` for ``record``, rendered as of ``now`` or
    later (the clock read before rendering it), if the batch had settled by ``now``."""
    # Every item over: past the last end (each item starts before it ends, and after the
    # queue), which the batch works out once.
    settled = max(batch.last_end, batch.queue_seconds)
    if batch.elapsed(now) >= settled:
        if len(_SETTLED) >= SETTLED_PAGES:
            del _SETTLED[next(iter(_SETTLED))]
        _SETTLED[key] = _Settled(record, ctx.ids, settled, page)


def _encoded(content: object) -> bytes:
    """The bytes Starlette's ``JSONResponse`` renders, encoded with orjson where it is
    installed (some ten times faster on a page of 100)."""
    if orjson is not None:
        try:
            return orjson.dumps(content)
        except TypeError:  # what orjson does not encode (an integer past 64 bits)
            pass
    return bytes(JSONResponse(content).body)


def _item(
    ctx: Context, batch: Batch, index: int, now: datetime, created_at: str
) -> dict[str, object]:
    """Item ``index`` as the results page shows it at ``now``."""
    item = batch.items[index]
    status = batch.item_status(index, now)
    body: dict[str, object] = {
        "id": f"item_{index + 1:03d}",
        "itemIndex": index,
        "idempotencyKey": item.idempotency_key,
        "content": item.content,
        "itemContext": item.context,
        "status": status,
        "verificationId": None,
        "verdict": None,
        "confidence": None,
        "decision": None,
        "costCents": None,
        "processingTimeMs": None,
        "errorMessage": None,
        "createdAt": created_at,
        "completedAt": None,
    }
    if status not in ("completed", "failed"):
        return body
    outcome = batch.outcomes[index]
    body["processingTimeMs"] = outcome.processing_ms
    body["completedAt"] = format_iso(batch.created_at + timedelta(seconds=batch.ends[index]))
    if status == "failed":
        body.update(costCents=0, errorMessage=outcome.error_message, retryCount=outcome.retry_count)
        return body
    assert outcome.verdict is not None
    assert outcome.confidence is not None
    options = batch.options
    decision = fakes.decide(
        outcome.verdict,
        outcome.confidence,
        options.accept_threshold,
        options.escalate_threshold,
    )
    body.update(
        verificationId=models.verification_id(ctx, batch, index),
        verdict=outcome.verdict,
        confidence=outcome.confidence,
        decision=decision,
        costCents=outcome.cost_cents,
    )
    return body


def render_results(ctx: Context, batch: Batch, limit: int, offset: int) -> dict[str, object]:
    """The results page: the batch's counts and its items ``offset`` to ``offset + limit``."""
    now = ctx.now()
    counts = batch.counts(now)
    indices = range(len(batch.items))[offset : offset + limit]
    created_at = format_iso(batch.created_at)
    items = [_item(ctx, batch, index, now, created_at) for index in indices]
    return {
        "batch": {
            "id": batch.id,
            "status": batch.status(now),
            "totalItems": len(batch.items),
            "processedItems": counts.processed,
            "successCount": counts.succeeded,
            "failureCount": counts.failed,
        },
        "items": items,
        "pagination": _pagination(len(batch.items), limit, offset, len(indices)),
    }


def _kept_after_cancel(batch: Batch, key: str) -> bool:
    """Whether the event scheduled under ``key`` still comes once ``batch`` is cancelled:
    not its batch events, nor the events of the items it skips (those already processing
    still end)."""
    prefix = f"batch/{batch.id}/"
    if not key.startswith(prefix):
        return True
    kind, _, rest = key[len(prefix) :].partition("/")
    if kind != "item":
        return False
    index = int(rest.partition("/")[0])
    return batch.item_status(index, batch.ends_at) != "skipped"


@endpoint
async def cancel_batch(request: Request, ctx: Context, check: Check, org: Org) -> Response:
    batch_id = request.path_params["id"]
    max_batches = ctx.options.max_batches
    async with ctx.store.transaction() as tx:
        batch = models.owned(await load_batch(tx, check, batch_id), org)
        cancelled = models.cancelled(batch, ctx.now())
        if batch_id in check.seeds:
            await tx.put(SEED_COPIES, batch_id, cancelled)
        else:
            # Its head, size and chunks are stored again with its new expiry.
            expires_at = cancelled.expires_at(max_batches)
            await save_batch(tx, ctx.options, cancelled, size_of(cancelled), expires_at=expires_at)
        await unschedule(tx, f"batch/{batch_id}")
        if any(e.organisation == org.id for e in await endpoints.listing(tx)):
            await endpoints.forget_pending(tx, functools.partial(_kept_after_cancel, cancelled))
    return JSONResponse(
        {"id": cancelled.id, "status": "cancelled", "message": "Batch cancelled successfully"}
    )


ROUTES = (
    Route("/v1/batch/upload", upload_batch_file, methods=["POST"]),
    Route("/v1/batch", create_batch, methods=["POST"]),
    Route("/v1/batch", list_batches, methods=["GET"]),
    Route("/v1/batch/{id}", get_batch, methods=["GET"]),
    Route("/v1/batch/{id}/results", get_batch_results, methods=["GET"]),
    Route("/v1/batch/{id}/cancel", cancel_batch, methods=["POST"]),
)
