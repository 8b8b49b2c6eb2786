"""Deepvue's handlers: parse, call the store, render. One per operationId of the spec."""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulator.kit.provider import base_url, store_of
from simulator.kit.uploads import read_form, read_upload
from simulator.providers.deepvue import errors
from simulator.providers.deepvue.models import OUTPUT_FOLDER, Client, DeepvueStore, expiry_text

__all__ = ["ROUTES"]


def _store(request: Request) -> DeepvueStore:
    return store_of(request, DeepvueStore)


def _authenticate(request: Request, store: DeepvueStore) -> Client:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.NotAuthenticated()
    return store.verify(token.strip(), request.headers.get("x-api-key"))


async def authorize(request: Request) -> Response:
    store = _store(request)
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
    client_id, client_secret = (str(fields["client_id"]), str(fields["client_secret"]))
    token, expiry = store.authorize(client_id, client_secret)
    return JSONResponse(
        {"access_token": token, "token_type": "bearer", "expiry": expiry_text(expiry)}
    )


async def submit_upi_basic_batch(request: Request) -> Response:
    store = _store(request)
    client = _authenticate(request, store)

    def too_large() -> errors.BatchError:
        limit = store.options.max_upload_bytes
        return store.error(
            errors.FileTooLarge, f"Batch file exceeds the maximum upload size of {limit} bytes"
        )

    form = await read_form(
        request,
        max_bytes=store.options.max_upload_bytes + 64 * 1024,
        too_large=too_large,
        malformed=lambda _: errors.BodyParseError(),
    )
    try:
        upload = form.get("batch_file")
        if not isinstance(upload, UploadFile):
            raise errors.FieldRequired(("body", "batch_file"))
        data = await read_upload(upload, store.options.max_upload_bytes, too_large)
        rows = store.parse_batch_file(upload.filename or "", data)
    finally:
        await form.close()
    batch = store.submit(client.client_id, rows, request.query_params.get("webhook_url"))
    return JSONResponse(
        {
            "code": 201,
            "timestamp": store.epoch_ms(),
            "transaction_id": batch.request_id,
            "request_id": batch.request_id,
            "message": "batch processing in progress",
            "sub_code": "SUCCESS",
            "output_batch_file": "",
        },
        status_code=201,
    )


async def get_batch_processing_status(request: Request) -> Response:
    store = _store(request)
    client = _authenticate(request, store)
    request_id = request.query_params.get("request_id")
    if request_id is None:
        raise errors.FieldRequired(("query", "request_id"))
    batch = store.batch_for(request_id.strip(), client.client_id)
    done = batch.done(store.now())
    base = base_url(request)
    return JSONResponse(
        {
            "transaction_id": store.transaction_id(),
            "timestamp": store.epoch_ms(),
            "code": 200,
            "message": "Batch Upload status fetched successfully",
            "sub_code": "SUCCESS",
            "data": {
                "request_id": batch.request_id,
                "status": 200 if done else 201,
                "product_id": "",
                "message": "batch processing completed" if done else "batch processing in progress",
                "batch_output_file_url": (
                    f"{base}/bulk-data-processing/{OUTPUT_FOLDER}/{batch.request_id}.csv"
                    if done
                    else None
                ),
            },
        }
    )


async def download_batch_output_file(request: Request) -> Response:
    store = _store(request)
    folder = request.path_params["folder"]
    file_name = request.path_params["file_name"]
    key = f"{folder}/{file_name}"
    content = None
    if folder == OUTPUT_FOLDER and file_name.endswith(".csv"):
        content = store.output_csv(file_name.removesuffix(".csv"))
    if content is None:
        raise errors.NoSuchKey(key)
    return Response(content, media_type="text/csv")


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
