"""Hostile input and concurrency: each gets the provider's own clear error, the server stays up.

The in-process cases go through every provider's upload or JSON endpoint; the served cases
send what no well-behaved client library would (huge headers, huge request lines, bytes that
are not UTF-8) over a raw socket to a real ``uvicorn``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from contracts.harness import Simulator, serve_in_thread
from contracts.registry import suite_of
from tests.conftest import AppFactory

Shape = Callable[[object], bool]


def deepvue_shape(body: object) -> bool:
    return isinstance(body, dict) and ("detail" in body or "sub_code" in body)


def passcreator_shape(body: object) -> bool:
    return isinstance(body, dict) and {"statusCode", "success", "errors"} <= set(body)


def check_shape(body: object) -> bool:
    return isinstance(body, dict) and "error" in body


def helloatlas_shape(body: object) -> bool:
    return isinstance(body, dict) and {"error_code", "error_message"} <= set(body)


SHAPES: dict[str, Shape] = {
    "deepvue": deepvue_shape,
    "passcreator": passcreator_shape,
    "check": check_shape,
    "helloatlas": helloatlas_shape,
}

DEEP_ARRAY = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"data":' + b"[" * 100_000 + b"]" * 100_000 + b"}"


@dataclass(frozen=True)
class Hostile:
    provider: str
    name: str
    method: str
    path: str
    body: bytes | None = None
    content_type: str = "application/json"
    upload: tuple[str, str, bytes] | None = None  # (field, filename, content)


CASES = [
    Hostile(
        "deepvue",
        "million empty lines",
        "POST",
        "/v1/verification/upi-basic/batch",
        upload=("batch_file", "a.csv", b"vpa\n" + b"\n" * 1_000_000),
    ),
    Hostile(
        "deepvue",
        "NUL byte in CSV",
        "POST",
        "/v1/verification/upi-basic/batch",
        upload=("batch_file", "a.csv", b"vpa\nx@ok\x00axis\n"),
    ),
    Hostile(
        "deepvue",
        "invalid UTF-8 CSV",
        "POST",
        "/v1/verification/upi-basic/batch",
        upload=("batch_file", "a.csv", b"vpa\n\xff\xfe@okaxis\n"),
    ),
    Hostile(
        "deepvue",
        "form body not UTF-8",
        "POST",
        "/v1/authorize",
        body=b"client_id=\xff&client_secret=\xfe",
        content_type="application/x-www-form-urlencoded",
    ),
    Hostile("passcreator", "deeply nested JSON", "POST", "/api/v3/pass", body=DEEP_OBJECT),
    Hostile(
        "passcreator",
        "invalid UTF-8 JSON",
        "POST",
        "/api/v3/pass",
        body=b'{"data":{"templateId":"\xff\xfe"}}',
    ),
    Hostile(
        "passcreator",
        "deeply nested filter",
        "PATCH",
        "/api/v3/pass",
        body=b'{"filter":{"query":' + DEEP_ARRAY + b'},"data":{}}',
    ),
    Hostile("check", "deeply nested JSON", "POST", "/v1/batch", body=DEEP_ARRAY),
    Hostile(
        "check",
        "deeply nested JSON file",
        "POST",
        "/v1/batch/upload",
        upload=("file", "a.json", DEEP_ARRAY),
    ),
    Hostile(
        "check", "invalid UTF-8 JSON", "POST", "/v1/batch", body=b'{"items":[{"content":"\xff"}]}'
    ),
    Hostile(
        "check",
        "million empty lines",
        "POST",
        "/v1/batch/upload",
        upload=("file", "a.csv", b"content\n" + b"\n" * 1_000_000),
    ),
    Hostile(
        "check",
        "NUL byte in CSV",
        "POST",
        "/v1/batch/upload",
        upload=("file", "a.csv", b"content\nab\x00c\n"),
    ),
    Hostile("helloatlas", "deeply nested JSON", "POST", "/v1/bulk/multiupload", body=DEEP_OBJECT),
    Hostile(
        "helloatlas",
        "invalid UTF-8 JSON",
        "POST",
        "/v1/bulk/multiupload",
        body=b'{"product_type":"\xff","file_urls":[]}',
    ),
    Hostile(
        "helloatlas",
        "deeply nested file_urls",
        "POST",
        "/v1/bulk/multiupload",
        body=b'{"product_type":"POC_CDL","file_urls":' + DEEP_ARRAY + b"}",
    ),
]


@pytest.fixture
def app(app_factory: AppFactory) -> Starlette:
    return app_factory()


def headers_for(app: Starlette, provider: str) -> dict[str, str]:
    with TestClient(app, base_url=f"http://testserver/{provider}") as http:
        listing = http.get("http://testserver/_sim/providers").json()["providers"]
        credentials = next(p["credentials"] for p in listing if p["name"] == provider)
        return suite_of(provider).auth_headers(http, credentials)  # type: ignore[arg-type]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.provider}-{c.name}")
def test_hostile_body_gets_the_providers_clear_error(app: Starlette, case: Hostile) -> None:
    headers = headers_for(app, case.provider)
    with TestClient(app, base_url=f"http://testserver/{case.provider}") as client:
        if case.upload is not None:
            field, filename, content = case.upload
            response = client.request(
                case.method, case.path, headers=headers, files={field: (filename, content)}
            )
        else:
            response = client.request(
                case.method,
                case.path,
                headers={**headers, "Content-Type": case.content_type},
                content=case.body,
            )
        assert 400 <= response.status_code < 500, response.text[:300]
        assert SHAPES[case.provider](response.json()), response.text[:300]
        assert client.get("http://testserver/_sim/health").status_code == 200
    assert not app.state.sim.crashes


def test_filename_with_path_separators_is_reduced_to_its_name(app: Starlette) -> None:
    headers = headers_for(app, "check")
    with TestClient(app, base_url="http://testserver/check") as client:
        for sent, kept in (
            ("../../etc/claims.csv", "claims.csv"),
            ("C:\\data\\claims.csv", "claims.csv"),
        ):
            response = client.post(
                "/v1/batch/upload", headers=headers, files={"file": (sent, b"content\nabc\n")}
            )
            assert response.status_code == 200
            assert response.json()["originalFileName"] == kept


# -- served: what only a raw socket can send ------------------------------------------------


@pytest.fixture(scope="module")
def served() -> Iterator[Simulator]:
    with serve_in_thread() as simulator:
        yield simulator


def raw_exchange(origin: str, request: bytes) -> bytes:
    """Send raw bytes, read the answer; the server may refuse and close before we finish."""
    host, port = origin.removeprefix("http://").split(":")
    chunks = []
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        # Refused mid-request: what it answered before closing is still readable.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /deepvue/v1/verification/batch-processing-status HTTP/1.1\r\nHost: x\r\n"
        + b"X-Huge: "
        + b"a" * 200_000
        + b"\r\nConnection: close\r\n\r\n",
        b"GET /deepvue/v1/verification/batch-processing-status?request_id="
        + b"a" * 200_000
        + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /passcreator/api/v3/process/\xff\xfe\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"NOT-HTTP\r\n\r\n",
    ],
    ids=["huge-header", "huge-query", "raw-bytes-in-path", "not-http"],
)
def test_hostile_request_line_is_refused_and_the_server_stays_up(
    served: Simulator, request_bytes: bytes
) -> None:
    answer = raw_exchange(served.origin, request_bytes)
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
    assert 400 <= status < 500 or answer == b"", answer[:200]
    assert httpx.get(f"{served.origin}/_sim/health").status_code == 200
    assert served.state is not None
    assert not served.state.crashes


def test_invalid_utf8_in_query_and_path_get_provider_errors(served: Simulator) -> None:
    headers = headers_from_served(served, "deepvue")
    query = httpx.get(
        f"{served.origin}/deepvue/v1/verification/batch-processing-status?request_id=%FF%FE%00",
        headers=headers,
    )
    assert query.status_code == 422
    assert query.json()["sub_code"] == "INVALID_REQUEST_ID"
    path = httpx.get(
        f"{served.origin}/passcreator/api/v3/process/%FF%FE", headers={"Authorization": "x"}
    )
    assert path.status_code in (401, 404)
    assert passcreator_shape(path.json())


def headers_from_served(served: Simulator, provider: str) -> dict[str, str]:
    with served.client(provider) as http:
        return suite_of(provider).auth_headers(http, served.credentials(provider))


# -- concurrency -------------------------------------------------------------------------------


def test_concurrent_clients_lose_and_double_nothing(app: Starlette) -> None:
    """Many clients at once across providers: every batch made once, each findable after."""
    deepvue = headers_for(app, "deepvue")
    passcreator = headers_for(app, "passcreator")
    check = headers_for(app, "check")
    listing = TestClient(app).get("/_sim/providers").json()["providers"]
    template_id = next(p for p in listing if p["name"] == "passcreator")["credentials"][
        "template_id"
    ]

    async def run() -> tuple[list[str], list[str], list[str]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:

            async def deepvue_batch(i: int) -> str:
                response = await client.post(
                    "/deepvue/v1/verification/upi-basic/batch",
                    headers=deepvue,
                    files={"batch_file": ("a.csv", f"vpa\nuser{i}@okaxis\n".encode())},
                )
                request_id: str = response.json()["request_id"]
                return request_id

            async def passcreator_process(i: int) -> str:
                response = await client.post(
                    "/passcreator/api/v3/pass",
                    headers=passcreator,
                    json={
                        "data": [
                            {"templateId": template_id, "userProvidedId": f"c-{i}-{k}"}
                            for k in range(3)
                        ]
                    },
                )
                identifier: str = response.json()["data"]["identifier"]
                return identifier

            async def check_batch(i: int) -> str:
                upload = await client.post(
                    "/check/v1/batch/upload",
                    headers=check,
                    files={"file": ("a.csv", f"content\nclaim {i}\n".encode())},
                )
                created = await client.post(
                    "/check/v1/batch", headers=check, json={"fileId": upload.json()["fileId"]}
                )
                batch_id: str = created.json()["id"]
                return batch_id

            return (
                list(await asyncio.gather(*(deepvue_batch(i) for i in range(40)))),
                list(await asyncio.gather(*(passcreator_process(i) for i in range(40)))),
                list(await asyncio.gather(*(check_batch(i) for i in range(40)))),
            )

    deepvue_ids, processes, check_ids = asyncio.run(run())
    for made in (deepvue_ids, processes, check_ids):
        assert len(set(made)) == 40
    with TestClient(app) as client:
        for request_id in deepvue_ids:
            response = client.get(
                "/deepvue/v1/verification/batch-processing-status",
                params={"request_id": request_id},
                headers=deepvue,
            )
            assert response.status_code == 200
        for identifier in processes:
            assert (
                client.get(f"/passcreator/api/v3/process/{identifier}", headers=passcreator).json()[
                    "data"
                ]["total"]
                == 3
            )
        listed = client.get("/check/v1/batch", params={"limit": 100}, headers=check).json()
        assert set(check_ids) <= {b["id"] for b in listed["data"]}
    assert not app.state.sim.crashes


# -- security ----------------------------------------------------------------------------------


def test_one_providers_credentials_are_refused_by_every_other(app: Starlette) -> None:
    deepvue = headers_for(app, "deepvue")["Authorization"].removeprefix("Bearer ")
    helloatlas = headers_for(app, "helloatlas")["Token"]
    passcreator = headers_for(app, "passcreator")["Authorization"]
    check = headers_for(app, "check")["Authorization"].removeprefix("Bearer ")
    deepvue_secret = headers_for(app, "deepvue")["x-api-key"]
    with TestClient(app) as client:
        deepvue_status = "/deepvue/v1/verification/batch-processing-status?request_id=x"
        for foreign in (helloatlas, passcreator, check):
            answer = client.get(
                deepvue_status,
                headers={"Authorization": f"Bearer {foreign}", "x-api-key": deepvue_secret},
            )
            assert answer.status_code in (401, 403), foreign
        for foreign in (deepvue, passcreator, check):
            answer = client.get(
                "/helloatlas/v1/bulk/extracts?batch_id=x", headers={"Token": foreign}
            )
            assert answer.status_code == 401
            assert answer.json()["error_code"] == "401"
        for foreign in (deepvue, helloatlas, f"Bearer {check}", check):
            answer = client.get("/passcreator/api/v3/process/x", headers={"Authorization": foreign})
            assert answer.status_code == 401
        for foreign in (deepvue, helloatlas, passcreator):
            answer = client.get("/check/v1/batch", headers={"Authorization": f"Bearer {foreign}"})
            assert answer.status_code == 401
            assert answer.json()["error"]["code"] == "unauthorized"


def test_jwt_secrets_differ_per_instance(app_factory: AppFactory) -> None:
    first, second = app_factory(), app_factory()
    token = headers_for(first, "helloatlas")["Token"]
    with TestClient(second) as client:
        answer = client.get("/helloatlas/v1/bulk/extracts?batch_id=x", headers={"Token": token})
    assert answer.status_code == 401
