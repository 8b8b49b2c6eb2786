"""Acme's handlers, one per operationId: parse → load → decide → save → render."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulator.kit.provider import context_of
from tests.fifth.acme import errors, models
from tests.fifth.acme.fakes import score
from tests.fifth.acme.models import BATCHES, AcmeOptions, Batch, Context

__all__ = ["ROUTES"]


def authenticate(request: Request) -> str:
    return models.account_of(request.headers.get("x-acme-key"))


def render(ctx: Context, batch: Batch) -> Response:
    if not batch.progress.done(ctx.now()):
        return JSONResponse({"id": batch.batch_id, "status": "processing"}, status_code=201)
    results = [
        {"item": item, "score": score(ctx.ids, batch.batch_id, i)}
        for i, item in enumerate(batch.items)
    ]
    return JSONResponse({"id": batch.batch_id, "status": "done", "results": results})


async def submit_batch(request: Request) -> Response:
    ctx = context_of(request, AcmeOptions)
    account = authenticate(request)
    try:
        items = json.loads(await request.body())["items"]
    except (ValueError, TypeError, KeyError):
        raise errors.StatusError(400) from None
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise errors.StatusError(400)
    batch_id = (await ctx.next_id("batch")).hex32()
    batch = models.new_batch(ctx, batch_id, account, items)
    retention = ctx.options.retention
    await retention.make_room(ctx.store, BATCHES)
    expires_at = retention.expires_at(batch.progress.finished_at)
    await ctx.store.put(BATCHES, batch_id, batch, expires_at=expires_at)
    return JSONResponse({"id": batch_id, "status": "processing"}, status_code=201)


async def get_batch(request: Request) -> Response:
    ctx = context_of(request, AcmeOptions)
    account = authenticate(request)
    found = await ctx.store.get(BATCHES, request.path_params["batch_id"])
    return render(ctx, models.owned(found, account))


ROUTES = (
    Route("/v1/batches", submit_batch, methods=["POST"]),
    Route("/v1/batches/{batch_id}", get_batch, methods=["GET"]),
)
