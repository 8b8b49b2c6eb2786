"""Deepvue's handlers, one per operationId of the spec: parse → load → decide → save → render.

Each handler takes the request, the typed context (clock, options, the store view) and the
instance's :class:`~simulator.providers.deepvue.models.Deepvue` (token signer, seeds). It
parses the request, loads records from ``ctx.store``, lets ``models`` decide (raising
Deepvue's errors), saves what changed and renders the answer; nothing else.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Awaitable, Callable
from datetime import datetime

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulator.clock import format_iso
from simulator.kit.budget import size_of
from simulator.kit.provider import base_url, context_of, header_of, query_of, store_of
from simulator.kit.rendering import FastJSONResponse
from simulator.kit.uploads import read_form, read_upload
from simulator.kit.webhooks import schedule
from simulator.providers.deepvue import errors, models
from simulator.providers.deepvue.batchfile import output_csv, parse_batch_file
from simulator.providers.deepvue.models import (
    BATCHES,
    OUTPUT_FOLDER,
    Batch,
    Client,
    Context,
    Deepvue,
    DeepvueOptions,
)

__all__ = ["ROUTES"]

Handler = Callable[[Request, Context, Deepvue], Awaitable[Response]]


def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """The route's endpoint: hands the handler its context, and stamps batch errors."""

    @functools.wraps(handler)
    async def run(request: Request) -> Response:
        ctx = context_of(request, DeepvueOptions)
        try:
            return await handler(request, ctx, store_of(request, Deepvue))
        except errors.BatchError as exc:
            if exc.transaction_id is None:
                exc.stamp(epoch_ms(ctx), await transaction_id(ctx))
            raise

    return run


def epoch_ms(ctx: Context, now: datetime | None = None) -> int:
    """Unix time in milliseconds, of ``now`` (an instant the request already read) or of
    the clock."""
    return math.floor((now or ctx.now()).timestamp() * 1000)


async def transaction_id(ctx: Context) -> str:
    return (await ctx.next_id("transaction")).hex32()


async def authenticate(request: Request, ctx: Context, deepvue: Deepvue) -> Client:
    scheme, _, token = (header_of(request, b"authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.NotAuthenticated()
    signer = await deepvue.signer.keyed(ctx.store)
    return models.verify(signer, token.strip(), header_of(request, b"x-api-key"))


async def load_batch(ctx: Context, deepvue: Deepvue, request_id: str) -> Batch | None:
    return await ctx.store.get(BATCHES, request_id) or deepvue.seeds.get(request_id)


def output_path(batch: Batch) -> str:
    """Where a finished batch's output CSV is, under the provider's base URL."""
    return f"/bulk-data-processing/{OUTPUT_FOLDER}/{batch.request_id}.csv"


@endpoint
async def authorize(request: Request, ctx: Context, deepvue: Deepvue) -> Response:
    form = await read_form(
        request,
        max_bytes=64 * 1024,
        too_large=errors.BadRequest,
        malformed=lambda _: errors.BodyParseError(),
    )
    fields = {name: form.get(name) for name in ("client_id", "client_secret")}
    missing = [("body", name) for name, value in fields.items() if not isinstance(value, str)]
    await form.close()
    if missing:
        raise errors.FieldRequired(*missing)
    client = models.authorize(str(fields["client_id"]), str(fields["client_secret"]))
    signer = await deepvue.signer.keyed(ctx.store)
    token, expiry = signer.issue(client.client_id, ctx.options.token_ttl_seconds)
    return FastJSONResponse(
        {"access_token": token, "token_type": "bearer", "expiry": format_iso(expiry)}
    )


@endpoint
async def submit_upi_basic_batch(request: Request, ctx: Context, deepvue: Deepvue) -> Response:
    client = await authenticate(request, ctx, deepvue)
    limit = ctx.options.max_upload_bytes

    def too_large() -> errors.BatchError:
        return errors.FileTooLarge(f"Batch file exceeds the maximum upload size of {limit} bytes")

    form = await read_form(
        request,
        max_bytes=limit + 64 * 1024,
        too_large=too_large,
        malformed=lambda _: errors.BodyParseError(),
    )
    try:
        upload = form.get("batch_file")
        if not isinstance(upload, UploadFile):
            raise errors.FieldRequired(("body", "batch_file"))
        data = await read_upload(upload, limit, too_large)
        rows = parse_batch_file(upload.filename or "", data, ctx.options.max_rows)
    finally:
        await form.close()
    request_id = (await ctx.next_id("batch")).hex32()
    webhook_url = request.query_params.get("webhook_url")
    batch = models.new_batch(ctx, request_id, client.client_id, rows, webhook_url)
    retention, budget = ctx.options.retention, ctx.options.budget
    size = size_of(batch)
    async with ctx.store.transaction() as tx:
        # Refused, never evicted: a batch is kept until its retention ends.
        await budget.admit(tx, BATCHES, size, full=models.store_full)
        expires_at = retention.expires_at(batch.ready_at)
        await budget.put(tx, BATCHES, request_id, batch, size, expires_at=expires_at)
    if webhook_url:
        # Undocumented payload (inferred): the status endpoint's body once the batch is done.
        ready = batch.ready_at
        body = status_body(
            batch,
            True,
            base_url(request),
            await transaction_id(ctx),
            math.floor(ready.timestamp() * 1000),
        )
        await schedule(
            ctx,
            f"batch/{request_id}",
            event_id=request_id,
            type="batch.completed",
            target=webhook_url,
            payload=body,
            due=ready,
        )
    return FastJSONResponse(
        {
            "code": 201,
            "timestamp": epoch_ms(ctx),
            "transaction_id": batch.request_id,
            "request_id": batch.request_id,
            "message": "batch processing in progress",
            "sub_code": "SUCCESS",
            "output_batch_file": "",
        },
        status_code=201,
    )


@endpoint
async def get_batch_processing_status(request: Request, ctx: Context, deepvue: Deepvue) -> Response:
    client = await authenticate(request, ctx, deepvue)
    request_id = query_of(request).get("request_id")
    if request_id is None:
        raise errors.FieldRequired(("query", "request_id"))
    found = await load_batch(ctx, deepvue, request_id.strip())
    batch = models.owned(found, client.client_id)
    now = ctx.now()  # one instant for the whole answer
    done = batch.done(now)
    base = base_url(request) if done else ""  # only a finished batch's body shows it
    return FastJSONResponse(
        status_body(batch, done, base, await transaction_id(ctx), epoch_ms(ctx, now))
    )


def status_body(
    batch: Batch, done: bool, base: str, transaction: str, timestamp_ms: int
) -> dict[str, object]:
    """The batch-processing-status body (and, when done, the webhook's, inferred)."""
    return {
        "transaction_id": transaction,
        "timestamp": timestamp_ms,
        "code": 200,
        "message": "Batch Upload status fetched successfully",
        "sub_code": "SUCCESS",
        "data": {
            "request_id": batch.request_id,
            "status": 200 if done else 201,
            "product_id": "",
            "message": models.status_message(done),
            "batch_output_file_url": f"{base}{output_path(batch)}" if done else None,
        },
    }


@endpoint
async def download_batch_output_file(request: Request, ctx: Context, deepvue: Deepvue) -> Response:
    folder = request.path_params["folder"]
    file_name = request.path_params["file_name"]
    batch = None
    if folder == OUTPUT_FOLDER and file_name.endswith(".csv"):
        batch = await load_batch(ctx, deepvue, file_name.removesuffix(".csv"))
    if batch is None or not batch.done(ctx.now()):
        raise errors.NoSuchKey(f"{folder}/{file_name}")
    return Response(output_csv(ctx.ids, batch.request_id, batch.rows), media_type="text/csv")


ROUTES = (
    Route("/v1/authorize", authorize, methods=["POST"]),
    Route("/v1/verification/upi-basic/batch", submit_upi_basic_batch, methods=["POST"]),
    Route("/v1/verification/batch-processing-status", get_batch_processing_status, methods=["GET"]),
    Route(
        "/bulk-data-processing/{folder}/{file_name}",
        download_batch_output_file,
        methods=["GET"],
    ),
)
