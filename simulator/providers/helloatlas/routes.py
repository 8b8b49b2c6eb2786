"""HelloAtlas's handlers: parse, call the store, render. One per operationId of the spec."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from simulator.kit.pagination import PageParamError, parse_page_request
from simulator.kit.provider import store_of
from simulator.providers.helloatlas import errors
from simulator.providers.helloatlas.models import Batch, Client, HelloAtlasStore
from simulator.providers.helloatlas.upload import read_multiupload

__all__ = ["ROUTES"]

# Entries per chunk of a streamed multiupload answer; an answer of one chunk gets a length.
ENTRIES_PER_CHUNK = 2048
_PLAIN = re.compile(r'[^"\\\x00-\x1f\x7f-\uffff]*')


def _store(request: Request) -> HelloAtlasStore:
    return store_of(request, HelloAtlasStore)


def _authenticate(request: Request, store: HelloAtlasStore) -> Client:
    token = request.headers.get("token", "").strip()
    if not token:
        raise errors.MissingToken()
    return store.verify(token)


async def generate_bulk_auth_token(request: Request) -> Response:
    store = _store(request)
    client_id = request.headers.get("client-id", "").strip()
    client_secret = request.headers.get("client-secret", "").strip()
    if not client_id or not client_secret:
        raise errors.MissingClientCredentials()
    token, expires_in = store.issue_token(client_id, client_secret)
    return JSONResponse({"access_token": token, "expires_in": expires_in}, status_code=201)


async def bulk_multiupload(request: Request) -> Response:
    store = _store(request)
    client = _authenticate(request, store)
    upload = await read_multiupload(
        request, max_bytes=store.options.max_upload_bytes, max_files=store.options.max_files
    )
    batch = store.create_batch(client.client_id, upload)
    chunks = _batch_entries(store, batch)
    if batch.count <= ENTRIES_PER_CHUNK:
        return Response(b"".join(chunks), status_code=201, media_type="application/json")
    return StreamingResponse(chunks, status_code=201, media_type="application/json")


def _batch_entries(store: HelloAtlasStore, batch: Batch) -> Iterator[bytes]:
    """``[{"batch_id", "document_id", "file_uuid"}, ...]`` in chunks, as JSONResponse writes."""
    head = f'{{"batch_id":{_json_str(batch.batch_id)},"document_id":'
    document_id = batch.documents.document_id
    yield b"["
    for start in range(0, batch.count, ENTRIES_PER_CHUNK):
        stop = min(start + ENTRIES_PER_CHUNK, batch.count)
        uuids = store.file_uuids(batch, start, stop)
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


async def get_bulk_extracts(request: Request) -> Response:
    store = _store(request)
    client = _authenticate(request, store)
    params = request.query_params
    batch_id = params.get("batch_id", "").strip()
    if not batch_id:
        raise errors.MissingParameter(field="batch_id")
    batch = store.batch_for(batch_id, client.client_id)
    try:
        page = parse_page_request(params.get("page"), params.get("per_page"), store.rules)
    except PageParamError as exc:
        raise errors.InvalidPageParameter(field=exc.param, reason=exc.reason) from None
    return Response(store.page_bytes(batch, page), media_type="application/json")


ROUTES = (
    Route("/v1/bulk/authtoken", generate_bulk_auth_token, methods=["POST"]),
    Route("/v1/bulk/multiupload", bulk_multiupload, methods=["POST"]),
    Route("/v1/bulk/extracts", get_bulk_extracts, methods=["GET"]),
)
