"""The baseline: a minimal Starlette app returning a fixed JSON body, served as bulksim is."""

from __future__ import annotations

import sys

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

BODY = {"status": "ok", "message": "a fixed answer", "data": {"request_id": "0" * 32, "code": 200}}


async def fixed(request: Request) -> Response:
    return JSONResponse(BODY)


app = Starlette(routes=[Route("/fixed", fixed)])


if __name__ == "__main__":
    from simulator.server import run_uvicorn

    def announce(port: int) -> None:
        print(f"baseline serving on http://127.0.0.1:{port}", flush=True)

    sys.exit(run_uvicorn(app, "127.0.0.1", 0, announce))
