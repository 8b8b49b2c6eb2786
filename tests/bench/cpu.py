"""CPU time a poll costs, served, without a load generator or a socket.

    python -m tests.bench.cpu [--polls 5000] [--profile NAME] [--store URL]

Each poll is a keep-alive GET fed to the server's own HTTP protocol (uvicorn's httptools
protocol, as ``bulksim serve`` builds it, on uvloop) through an in-memory transport: the
parser, uvicorn's request cycle, every ASGI layer of bulksim and the answer's bytes are all
measured; the kernel's socket work (the same for every server) is not. The baseline is bare
Starlette (``tests.bench.baseline``) on uvicorn's own protocol, driven the same way. On a
shared, loaded machine this is the figure to read: process CPU time per poll, not req/s.
``--profile NAME`` prints cProfile's top functions for one row. ``--store URL`` runs the
rows on that store (``sqlite:///bench.db``, ``redis://127.0.0.1:6400/0``; emptied before each
row) instead of the memory store: what a poll costs on a shared backend.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import pstats
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import uvicorn
import uvloop
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from simulator import Settings, create_app
from simulator.server import uvicorn_config
from simulator.store import Store, open_store
from tests.bench import baseline


class Transport(asyncio.Transport):
    """Counts what the protocol writes; ``done`` is set when an answer is complete."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0
        self.done: asyncio.Future[None] | None = None
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += len(data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8700)}.get(
            name, default
        )

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


def request_bytes(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1:8700", "User-Agent: wrk"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def drive(config: uvicorn.Config, request: bytes, polls: int) -> tuple[float, int]:
    """CPU seconds per poll, and the answer's size, over ``polls`` keep-alive requests."""
    loop = asyncio.get_running_loop()
    protocol_class: Any = config.http_protocol_class
    protocol = protocol_class(config=config, server_state=ServerState(), app_state={}, _loop=loop)
    transport = Transport()
    protocol.connection_made(transport)
    # A poll is over when its answer is complete (the cycle says so), not at its first write:
    # on a shared store the answer's last part waits for the journal's entry to be stored.
    complete = protocol.on_response_complete

    def completed() -> None:
        complete()
        if transport.done is not None and not transport.done.done():
            transport.done.set_result(None)

    protocol.on_response_complete = completed

    async def one() -> None:
        transport.done = done = loop.create_future()
        protocol.data_received(request)
        await done
        # The cycle finishes after its last write (on_response_complete): let it.
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    for _ in range(200):
        await one()
    first = transport.written
    await one()
    size = transport.written - first
    gc.collect()
    started = time.process_time()
    for _ in range(polls):
        await one()
    spent = time.process_time() - started
    protocol.connection_lost(None)
    return spent / polls, size


Prepare = Callable[[httpx.AsyncClient], Awaitable[tuple[str, dict[str, str]]]]


async def deepvue(client: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    creds = await credentials(client, "deepvue")
    authorized = await client.post(
        "/deepvue/v1/authorize",
        data={"client_id": creds["client_id"], "client_secret": creds["client_secret"]},
    )
    token = authorized.json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "x-api-key": creds["client_secret"]}
    files = {"batch_file": ("vpas.csv", b"vpa\nrahul@okaxis\npriya@oksbi\n", "text/csv")}
    made = await client.post(
        "/deepvue/v1/verification/upi-basic/batch", headers=headers, files=files
    )
    submitted = made.json()["request_id"]
    return f"/deepvue/v1/verification/batch-processing-status?request_id={submitted}", headers


async def passcreator(client: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    key = (await credentials(client, "passcreator"))["api_key"]
    process = "627d21f7-e1a0-4085-84cb-130906cd097c"
    return f"/passcreator/api/v3/process/{process}", {"Authorization": key}


async def helloatlas(client: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    creds = await credentials(client, "helloatlas")
    auth = {"Client-Id": creds["client_id"], "Client-Secret": creds["client_secret"]}
    token = (await client.post("/helloatlas/v1/bulk/authtoken", headers=auth)).json()
    urls = [
        {"file_url": f"https://files.example/doc{i}.jpg", "document_id": str(i + 1)}
        for i in range(500)
    ]
    made = await client.post(
        "/helloatlas/v1/bulk/multiupload",
        json={"product_type": "POC_CDL", "file_urls": urls},
        headers={"Token": token["access_token"]},
    )
    batch = made.json()[0]["batch_id"]
    await client.post("/_sim/clock/advance", json={"seconds": 3600})
    token = (await client.post("/helloatlas/v1/bulk/authtoken", headers=auth)).json()
    path = f"/helloatlas/v1/bulk/extracts?batch_id={batch}&page=1&per_page=50"
    return path, {"Token": token["access_token"]}


async def check_batch(client: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    headers = {"Authorization": f"Bearer {(await credentials(client, 'check'))['api_key']}"}
    items = [{"content": f"Claim number {i}: the sea is salty."} for i in range(100)]
    made = await client.post(
        "/check/v1/batch", headers=headers, json={"items": items, "methods": {"reasoning": 1.0}}
    )
    made.raise_for_status()
    await client.post("/_sim/clock/advance", json={"seconds": 86_400})
    return f"/check/v1/batch/{made.json()['id']}", headers


async def check_results(client: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    path, headers = await check_batch(client)
    return f"{path}/results?limit=100", headers


async def credentials(client: httpx.AsyncClient, provider: str) -> dict[str, Any]:
    listing = (await client.get("/_sim/providers")).json()["providers"]
    found: dict[str, Any] = next(p for p in listing if p["name"] == provider)["credentials"]
    return found


POLLS: dict[str, Prepare] = {
    "deepvue": deepvue,
    "passcreator": passcreator,
    "helloatlas": helloatlas,
    "check-batch": check_batch,
    "check-results": check_results,
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.cpu")
    parser.add_argument("--polls", type=int, default=5000)
    parser.add_argument("--profile", help="print cProfile's top functions for this row")
    parser.add_argument("--only", nargs="*", help="rows to run (baseline always runs)")
    parser.add_argument("--store", default="memory", help="the store URL (emptied per row)")
    args = parser.parse_args()
    uvloop.install()

    bare = uvicorn.Config(
        baseline.app, loop="uvloop", http="httptools", lifespan="off", access_log=False
    )
    bare.load()
    base = row("baseline", bare, request_bytes("/fixed", {}), args, 0.0)
    for name, prepare in POLLS.items():
        if args.only and name not in args.only:
            continue
        # As ``bulksim serve`` runs it: the journal on, the request log off. Each row on an
        # empty store, built when its turn comes (the store is emptied for the next one).
        store = open_store(args.store)
        asyncio.run(_emptied(store))
        app = create_app(Settings(seed=0, store=args.store), store=store)
        config = uvicorn_config(app, log_level="warning")
        config.load()
        request = request_bytes(*asyncio.run(_prepared(app, prepare)))
        row(name, config, request, args, base)
        close = getattr(store, "close", None)
        if close is not None:
            close()


def row(
    name: str, config: uvicorn.Config, request: bytes, args: argparse.Namespace, base: float
) -> float:
    """Drive one row and print it (against ``base``, the bare poll's CPU, or itself)."""
    assert config.http_protocol_class is not HttpToolsProtocol or name == "baseline"
    profiler = cProfile.Profile(time.process_time) if args.profile == name else None
    if profiler is not None:
        profiler.enable()
    per_poll, size = asyncio.run(drive(config, request, args.polls))
    if profiler is not None:
        profiler.disable()
        pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "tottime")).print_stats(
            int(os.environ.get("TOP", "35"))
        )
    base = base or per_poll
    print(
        f"{name:<14} {per_poll * 1e6:7.1f} us/poll  {base / per_poll:5.2f}x bare  {size:6d} bytes",
        flush=True,
    )
    return per_poll


async def _emptied(store: Store) -> None:
    await store.clear()
    aclose = getattr(store, "aclose", None)
    if aclose is not None:
        await aclose()


async def _prepared(app: Any, prepare: Prepare) -> tuple[str, dict[str, str]]:
    """Set the poll up through the app in-process."""
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8700") as client:
        return await prepare(client)


if __name__ == "__main__":
    main()
