"""HelloAtlas's handlers, one per operationId of the spec: parse → load → decide → save → render.

Each handler takes the request, the typed context (clock, options, the store view) and the
instance's :class:`~simulator.providers.helloatlas.models.HelloAtlas` (token signer, document
faker, cache of finished pages, seeds). It parses the request, loads records from
``ctx.store``, lets ``models`` decide (raising HelloAtlas's errors), saves what changed and
renders the answer; nothing else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from simulator.kit.pagination import PageParamError, PageRequest, PageWindow, parse_page_request
from simulator.kit.provider import endpoint_for, header_of, query_of
from simulator.kit.rendering import EncodedJSONResponse
from simulator.providers.helloatlas import errors, models
from simulator.providers.helloatlas.fakes import FAILED, UNIDENTIFIED
from simulator.providers.helloatlas.models import (
    BATCHES,
    Batch,
    Client,
    Context,
    HelloAtlas,
    HelloAtlasOptions,
)
from simulator.providers.helloatlas.multiupload import read_multiupload

__all__ = ["ROUTES"]

EARLIEST = datetime.min.replace(tzinfo=UTC)

# Entries per chunk of a streamed multiupload answer; an answer of one chunk gets a length.
ENTRIES_PER_CHUNK = 2048
_PLAIN = re.compile(r'[^"\\\x00-\x1f\x7f-\uffff]*')

# A handler takes the request, its typed context and the instance's services.
endpoint = endpoint_for(HelloAtlasOptions, HelloAtlas)


async def authenticate(request: Request, ctx: Context, helloatlas: HelloAtlas) -> Client:
    token = (header_of(request, b"token") or "").strip()
    if not token:
        raise errors.MissingToken()
    return models.verify(await helloatlas.signer.keyed(ctx.store), token)


async def load_batch(ctx: Context, helloatlas: HelloAtlas, batch_id: str) -> Batch | None:
    return await ctx.store.get(BATCHES, batch_id) or helloatlas.seeds.get(batch_id)


@endpoint
async def generate_bulk_auth_token(
    request: Request, ctx: Context, helloatlas: HelloAtlas
) -> Response:
    client_id = request.headers.get("client-id", "").strip()
    client_secret = request.headers.get("client-secret", "").strip()
    if not client_id or not client_secret:
        raise errors.MissingClientCredentials()
    client = models.authorize(client_id, client_secret)
    ttl = ctx.options.token_ttl_seconds
    token, _ = (await helloatlas.signer.keyed(ctx.store)).issue(client.client_id, ttl)
    return JSONResponse({"access_token": token, "expires_in": ttl}, status_code=201)


@endpoint
async def bulk_multiupload(request: Request, ctx: Context, helloatlas: HelloAtlas) -> Response:
    client = await authenticate(request, ctx, helloatlas)
    options = ctx.options
    upload = await read_multiupload(
        request, max_bytes=options.max_upload_bytes, max_files=options.max_files
    )
    budget = options.budget(len(helloatlas.seeds))
    size = upload.documents.nbytes()
    while True:
        now = ctx.now()
        batch_id = models.batch_id(await ctx.next_id("batch"), now)
        if batch_id in helloatlas.seeds:
            continue
        batch = models.new_batch(ctx, batch_id, client.client_id, upload, now)
        expires_at = options.retention.expires_at(batch.created_at)
        async with ctx.store.transaction() as tx:
            # Refused, never evicted: a batch is kept until its retention ends.
            await budget.admit(tx, BATCHES, size, full=models.store_full)
            if await budget.put_if_absent(
                tx, BATCHES, batch_id, batch, size, expires_at=expires_at
            ):
                break
    chunks = _batch_entries(helloatlas, batch)
    if batch.count <= ENTRIES_PER_CHUNK:
        return Response(b"".join(chunks), status_code=201, media_type="application/json")
    return StreamingResponse(chunks, status_code=201, media_type="application/json")


def _batch_entries(helloatlas: HelloAtlas, batch: Batch) -> Iterator[bytes]:
    """``[{"batch_id", "document_id", "file_uuid"}, ...]`` in chunks, as JSONResponse writes."""
    head = f'{{"batch_id":{_json_str(batch.batch_id)},"document_id":'
    document_id = batch.documents.document_id
    yield b"["
    for start in range(0, batch.count, ENTRIES_PER_CHUNK):
        stop = min(start + ENTRIES_PER_CHUNK, batch.count)
        uuids = helloatlas.fakes.file_uuids(batch.batch_id, start, stop)
        entries = ",".join(
            f'{head}{_json_str(document_id(index))},"file_uuid":"{file_uuid}"}}'
            for index, file_uuid in zip(range(start, stop), uuids, strict=True)
        )
        yield (f",{entries}" if start else entries).encode()
    yield b"]"


def _json_str(text: str) -> str:
    if _PLAIN.fullmatch(text):
        return f'"{text}"'
    return json.dumps(text, ensure_ascii=False)


@endpoint
async def get_bulk_extracts(request: Request, ctx: Context, helloatlas: HelloAtlas) -> Response:
    client = await authenticate(request, ctx, helloatlas)
    params = query_of(request)
    batch_id = params.get("batch_id", "").strip()
    if not batch_id:
        raise errors.MissingParameter(field="batch_id")
    batch = models.owned(await load_batch(ctx, helloatlas, batch_id), client.client_id)
    try:
        page = parse_page_request(params.get("page"), params.get("per_page"), ctx.options.rules)
    except PageParamError as exc:
        raise errors.InvalidPageParameter(field=exc.param, reason=exc.reason) from None
    return EncodedJSONResponse(page_bytes(ctx, helloatlas, batch, page))


# -- rendering the extracts page -------------------------------------------------------------


def page_bytes(ctx: Context, helloatlas: HelloAtlas, batch: Batch, request: PageRequest) -> bytes:
    """The extracts response body for one page, as JSON bytes.

    A page whose documents have all finished can no longer change (its batch's timing is
    fixed at upload, and no option changes a finished document), so it is kept (in a
    bounded cache) and reading it again costs a lookup, not generating it again.
    """
    now = ctx.now()
    cached = helloatlas.pages.get(batch, request.page, request.per_page, now)
    if cached is not None:
        return cached
    body, final_at = page(ctx, helloatlas, batch, request, now)
    data = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    if final_at is not None:
        helloatlas.pages.put(batch, request.page, request.per_page, data, final_at)
    return data


def page(
    ctx: Context, helloatlas: HelloAtlas, batch: Batch, request: PageRequest, now: datetime
) -> tuple[dict[str, object], datetime | None]:
    """One page of ``batch`` at ``now``, and the instant from which it is final (None: some
    document is still processing)."""
    window = PageWindow(request.page, request.per_page, batch.count)
    fixed = helloatlas.fixed.get(batch.batch_id, {})
    omit = ctx.options.pending_documents == "omit"
    data = []
    final_at = EARLIEST
    pending = False
    for index in window.indices():
        item, ready_at = document(helloatlas, batch, index, now, fixed)
        final_at = max(final_at, ready_at)
        if item is not None:
            data.append(item)
        else:
            pending = True
            if not omit:
                data.append({"document_id": batch.documents.document_id(index), "file_data": None})
    body = {
        "data": data,
        "page": window.page,
        "per_page": window.per_page,
        "total_pages": window.total_pages,
        "total_items": window.total_items,
        "has_next": window.has_next,
        "has_prev": window.has_prev,
    }
    return body, None if pending else final_at


def document(
    helloatlas: HelloAtlas,
    batch: Batch,
    index: int,
    now: datetime,
    fixed: Mapping[int, Mapping[str, object]],
) -> tuple[dict[str, object] | None, datetime]:
    """Document ``index`` as the extracts page shows it at ``now`` (None: still processing),
    and when it finishes."""
    document_id = batch.documents.document_id(index)
    if index in fixed:
        return {"document_id": document_id, "file_data": dict(fixed[index])}, EARLIEST
    traits = batch.documents.traits(index)
    ready_at = helloatlas.finishes_at(batch, index, traits)
    if now < ready_at:
        return None, ready_at
    if traits.outcome != "extracted":
        text = FAILED if traits.outcome == "failed" else UNIDENTIFIED
        failed: dict[str, object] = {
            "document_id": document_id,
            "file_data": None,
            **errors.envelope(422, text),
        }
        return failed, ready_at
    file_data = helloatlas.fakes.file_data(batch.batch_id, index, batch.created_at, traits)
    return {"document_id": document_id, "file_data": file_data}, ready_at


ROUTES = (
    Route("/v1/bulk/authtoken", generate_bulk_auth_token, methods=["POST"]),
    Route("/v1/bulk/multiupload", bulk_multiupload, methods=["POST"]),
    Route("/v1/bulk/extracts", get_bulk_extracts, methods=["GET"]),
)
