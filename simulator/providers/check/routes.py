"""Check's handlers: parse, call the store, render. One per operationId of the spec.

Every handler runs inside ``authenticated``: it checks the API key, counts the request in the
organisation's rate window (answering 429 when enforcement is on) and puts the
``X-RateLimit-*`` headers on whatever the handler answers, errors included.
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulator.clock import format_iso
from simulator.kit.provider import store_of
from simulator.kit.uploads import read_form
from simulator.providers.check import errors, fakes
from simulator.providers.check.formats import encodable, parse_upload, strict_json
from simulator.providers.check.models import BATCH_STATUSES, Batch, CheckStore, Org, Plan
from simulator.providers.check.validation import parse_create

__all__ = ["ROUTES"]

# Room for the multipart framing around a file of exactly the plan's size.
FORM_OVERHEAD = 64 * 1024
READ_CHUNK = 64 * 1024
DIGITS = re.compile(r"[0-9]{1,1000}")

Handler = Callable[[Request, CheckStore, Org], Awaitable[Response]]

try:
    import orjson
except ImportError:  # pragma: no cover - where it cannot be installed
    orjson = None  # type: ignore[assignment]


class PageResponse(JSONResponse):
    """A results page (up to 100 items): the bytes Starlette's ``JSONResponse`` renders,
    encoded with orjson where it is installed (some ten times faster on a page of 100)."""

    def render(self, content: Any) -> bytes:
        if orjson is not None:
            try:
                return orjson.dumps(content)
            except TypeError:  # what orjson does not encode: Starlette says why
                pass
        return super().render(content)


def _store(request: Request) -> CheckStore:
    return store_of(request, CheckStore)


def authenticated(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        store = _store(request)
        try:
            org = store.authenticate(request.headers.get("authorization"))
        except errors.CheckError as exc:
            exc.extra_headers.update(errors.anonymous_rate_headers(store.ctx))
            return exc.response()
        with request.app.state.runtime.lock:
            window = store.hit(org)
        if window.retry_after is not None:
            limited = errors.RateLimited(window.retry_after)
            limited.extra_headers.update(window.headers())
            return limited.response()
        try:
            response = await handler(request, store, org)
        except errors.CheckError as exc:
            exc.extra_headers.update(window.headers())
            return exc.response()
        response.headers.update(window.headers())
        return response

    return endpoint


def _iso(instant: datetime | None) -> str | None:
    return None if instant is None else format_iso(instant)


def _page_params(request: Request, default_limit: int = 20) -> tuple[int, int]:
    problems: list[errors.Detail] = []
    values = []
    for name, default, low, high in (("limit", default_limit, 1, 100), ("offset", 0, 0, None)):
        raw = request.query_params.get(name)
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


def _summary(batch: Batch, now: datetime) -> dict[str, object]:
    counts = batch.counts(now)
    return {
        "id": batch.id,
        "name": batch.name,
        "status": batch.status(now),
        "totalItems": len(batch.items),
        "processedItems": counts.processed,
        "successCount": counts.succeeded,
        "failureCount": counts.failed,
        "totalCostCents": counts.cost_cents,
        "createdAt": format_iso(batch.created_at),
        "startedAt": _iso(batch.started_at(now)),
        "completedAt": _iso(batch.completed_at(now)),
    }


def _item(
    store: CheckStore, batch: Batch, index: int, now: datetime, created: str
) -> dict[str, object]:
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
        "createdAt": created,
        "completedAt": None,
    }
    if status not in ("completed", "failed"):
        return body
    outcome = store.outcome(batch, index)
    body["processingTimeMs"] = outcome.processing_ms
    body["completedAt"] = format_iso(batch.created_at + timedelta(seconds=batch.ends[index]))
    if status == "failed":
        body.update(costCents=0, errorMessage=outcome.error_message, retryCount=outcome.retry_count)
        return body
    assert outcome.verdict is not None
    assert outcome.confidence is not None
    options = batch.options
    decision = fakes.decide(
        outcome.verdict, outcome.confidence, options.accept_threshold, options.escalate_threshold
    )
    body.update(
        verificationId=store.verification_id(batch, index),
        verdict=outcome.verdict,
        confidence=outcome.confidence,
        decision=decision,
        costCents=outcome.cost_cents,
    )
    return body


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


@authenticated
async def upload_batch_file(request: Request, store: CheckStore, org: Org) -> Response:
    plan = store.plan_of(org)
    _require_batches(plan)
    if not store.options.file_storage:
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
        parsed = await parse_upload(chunks, filename, media, store.file_limits)
    finally:
        await form.close()
    with request.app.state.runtime.lock:
        file_id, expires_at = store.store_file(org, parsed.items)
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
            "expiresAt": format_iso(expires_at),
            "message": message,
        }
    )


@authenticated
async def create_batch(request: Request, store: CheckStore, org: Org) -> Response:
    plan = store.plan_of(org)
    _require_batches(plan)
    body = await _json_body(request, plan)
    create = parse_create(body, plan, store.options.max_content_chars)
    if create.file_id is not None and not store.options.file_storage:
        raise errors.FileStorageUnavailable()
    # No await from here on: the fileId is checked and consumed in one synchronous step.
    with request.app.state.runtime.lock:
        batch = store.create_batch(org, create)
        now = store.now()
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
                "methods": batch.methods,
                "createdAt": format_iso(batch.created_at),
                "message": "Batch created successfully. Items are being processed.",
            },
            status_code=202,
        )


@authenticated
async def list_batches(request: Request, store: CheckStore, org: Org) -> Response:
    limit, offset = _page_params(request)
    status = request.query_params.get("status")
    if status is not None and status not in BATCH_STATUSES:
        raise errors.ValidationFailed.field("status", f"must be one of {', '.join(BATCH_STATUSES)}")
    with request.app.state.runtime.lock:
        batches = store.list_batches(org, status)
    now = store.now()
    page = batches[offset : offset + limit]
    return JSONResponse(
        {
            "data": [_summary(batch, now) for batch in page],
            "pagination": _pagination(len(batches), limit, offset, len(page)),
        }
    )


@authenticated
async def _get_batch(request: Request, store: CheckStore, org: Org) -> Response:
    batch = store.batch_for(org, request.path_params["id"])
    now = store.now()
    return JSONResponse(
        {**_summary(batch, now), "methods": batch.methods, "options": batch.options.as_json()}
    )


async def get_batch(request: Request) -> Response:
    # ``/v1/batch/upload`` is the upload's path: other methods on it are 405, not a batch id.
    if request.path_params["id"] == "upload":
        error = errors.StatusError(405)
        error.extra_headers.update(errors.anonymous_rate_headers(_store(request).ctx))
        error.extra_headers["allow"] = "POST"
        return error.response()
    return await _get_batch(request)


@authenticated
async def get_batch_results(request: Request, store: CheckStore, org: Org) -> Response:
    limit, offset = _page_params(request)
    batch = store.batch_for(org, request.path_params["id"])
    now = store.now()
    counts = batch.counts(now)
    indices = range(len(batch.items))[offset : offset + limit]
    created = format_iso(batch.created_at)
    return PageResponse(
        {
            "batch": {
                "id": batch.id,
                "status": batch.status(now),
                "totalItems": len(batch.items),
                "processedItems": counts.processed,
                "successCount": counts.succeeded,
                "failureCount": counts.failed,
            },
            "items": [_item(store, batch, index, now, created) for index in indices],
            "pagination": _pagination(len(batch.items), limit, offset, len(indices)),
        }
    )


@authenticated
async def cancel_batch(request: Request, store: CheckStore, org: Org) -> Response:
    with request.app.state.runtime.lock:
        batch = store.cancel(org, request.path_params["id"])
    return JSONResponse(
        {"id": batch.id, "status": "cancelled", "message": "Batch cancelled successfully"}
    )


ROUTES = (
    Route("/v1/batch/upload", upload_batch_file, methods=["POST"]),
    Route("/v1/batch", create_batch, methods=["POST"]),
    Route("/v1/batch", list_batches, methods=["GET"]),
    Route("/v1/batch/{id}", get_batch, methods=["GET"]),
    Route("/v1/batch/{id}/results", get_batch_results, methods=["GET"]),
    Route("/v1/batch/{id}/cancel", cancel_batch, methods=["POST"]),
)
