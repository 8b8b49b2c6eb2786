"""The baseline: bare Starlette returning a fixed JSON body, on plain uvicorn.

``python -m tests.bench.baseline`` serves it on uvicorn with uvloop and httptools, the
fastest uvicorn serves; ``--slow`` serves it on asyncio and h11, the pure-Python pair. Nothing
of bulksim is imported: this is the ceiling bulksim is measured against.
"""

from __future__ import annotations

import argparse
import csv
import io
import socket

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

BODY = {"status": "ok", "message": "a fixed answer", "data": {"request_id": "0" * 32, "code": 200}}


async def fixed(request: Request) -> Response:
    return JSONResponse(BODY)


async def upload(request: Request) -> Response:
    """The least any server does with a CSV upload: parse the form, then the csv."""
    async with request.form() as form:
        file = form["file"]
        assert not isinstance(file, str)
        text = (await file.read()).decode()
    rows = sum(1 for _ in csv.reader(io.StringIO(text)))
    return JSONResponse({"rows": rows})


app = Starlette(routes=[Route("/fixed", fixed), Route("/upload", upload, methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.baseline")
    parser.add_argument("--slow", action="store_true", help="asyncio and h11")
    args = parser.parse_args()
    # IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only when it knows they are TCP.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    print(f"baseline serving on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(
        app,
        loop="asyncio" if args.slow else "uvloop",
        http="h11" if args.slow else "httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
