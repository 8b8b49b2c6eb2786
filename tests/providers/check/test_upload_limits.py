"""The plan's upload size is enforced while the body streams: an oversized upload is refused
without being read whole."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.conftest import AppFactory
from tests.providers.check.conftest import BASE, auth, error, upload

BOUNDARY = "checkboundary"
CHUNK = 64 * 1024
MB = 1024 * 1024
TOO_LARGE = {
    "error": {"code": "payload_too_large", "message": "File size exceeds maximum of 10 MB"}
}


class Body:
    """A multipart upload of ``chunks`` CSV chunks, counting the chunks the server pulled."""

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks
        self.sent = 0

    async def stream(self) -> AsyncIterator[bytes]:
        yield (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="big.csv"\r\nContent-Type: text/csv\r\n\r\ncontent\n'
        ).encode()
        row = b"The Earth is approximately 4.5 billion years old.\n"
        chunk = row * (CHUNK // len(row))
        for _ in range(self.chunks):
            self.sent += 1
            yield chunk
        yield f"\r\n--{BOUNDARY}--\r\n".encode()

    @property
    def size(self) -> int:
        return self.chunks * CHUNK


async def _send(app: Starlette, body: Body, headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        return await client.post(
            "/v1/batch/upload",
            headers={
                **auth(),
                "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                **headers,
            },
            content=body.stream(),
        )


def test_upload_batch_file_streamed_over_limit_stops_reading_early(app: Starlette) -> None:
    body = Body(chunks=20 * MB // CHUNK)  # 20 MB against the Pro plan's 10 MB
    response = asyncio.run(_send(app, body, {}))
    assert error(response, 413) == TOO_LARGE
    # Refused once the cap (10 MB plus room for the multipart framing) was crossed.
    assert body.sent * CHUNK <= 10 * MB + 64 * 1024 + 2 * CHUNK
    assert body.sent < body.chunks * 0.6


def test_upload_batch_file_declared_over_limit_is_refused_unread(app: Starlette) -> None:
    body = Body(chunks=20 * MB // CHUNK)
    response = asyncio.run(_send(app, body, {"Content-Length": str(body.size + 200)}))
    assert error(response, 413) == TOO_LARGE
    assert body.sent == 0


def test_upload_batch_file_just_under_limit_streams_whole(app_factory: AppFactory) -> None:
    app = app_factory(options=(("check.pro_max_file_mb", "1"),))
    body = Body(chunks=15)  # 960 KiB of rows
    response = asyncio.run(_send(app, body, {}))
    assert response.status_code == 400  # read whole, then more than 100 items
    assert body.sent == body.chunks
    assert response.json()["validationErrors"][0]["error"] == "File exceeds maximum of 100 items"


def test_upload_batch_file_one_byte_over_limit_returns_413(app_factory: AppFactory) -> None:
    app = app_factory(options=(("check.pro_max_file_mb", "0.01"),))
    limit = int(0.01 * MB)
    with TestClient(app, base_url=BASE) as client:
        exact = b"content\n" + b"x" * (limit - len(b"content\n"))
        assert upload(client, exact).status_code != 413
        response = upload(client, exact + b"x")
        assert error(response, 413) == {
            "error": {
                "code": "payload_too_large",
                "message": "File size exceeds maximum of 0.01 MB",
            }
        }


def test_upload_batch_file_enterprise_limit_is_its_own(app_factory: AppFactory) -> None:
    app = app_factory(
        options=(("check.pro_max_file_mb", "0.01"), ("check.enterprise_max_file_mb", "0.02"))
    )
    data = b"content\n" + b"x" * int(0.015 * MB)
    with TestClient(app, base_url=BASE) as client:
        assert upload(client, data).status_code == 413
        assert upload(client, data, plan="enterprise").status_code != 413
        too_big = upload(client, data * 2, plan="enterprise")
        assert error(too_big, 413)["error"]["message"] == "File size exceeds maximum of 0.02 MB"
