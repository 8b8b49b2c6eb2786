"""A small HTTP/1.1 keep-alive load generator: N connections, one request each in flight.

Run as its own process (``python -m tests.bench.loadgen``) so that it never shares a core's
time with the server it measures. It sends the same raw request over and over, reads each
response by its ``Content-Length``, and prints JSON: requests, seconds, rps, p50 and p99.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time


async def _connection(
    host: str,
    port: int,
    request: bytes,
    deadline: float,
    budget: list[int],
    latencies: list[float],
    errors: list[str],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline and budget[0] > 0:
            budget[0] -= 1
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if status >= 400:
                errors.append(str(status))
    finally:
        writer.close()


async def run(
    host: str, port: int, request: bytes, connections: int, seconds: float, requests: int
) -> dict[str, float]:
    """Load for ``seconds`` or until ``requests`` were sent, whichever comes first."""
    latencies: list[float] = []
    errors: list[str] = []
    budget = [requests]
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(
        *(
            _connection(host, port, request, deadline, budget, latencies, errors)
            for _ in range(connections)
        )
    )
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "errors": len(errors),
        "seconds": elapsed,
        "rps": len(ordered) / elapsed,
        "p50_ms": statistics.median(ordered) * 1000 if ordered else 0.0,
        "p99_ms": ordered[int(len(ordered) * 0.99) - 1] * 1000 if ordered else 0.0,
    }


def raw_request(method: str, host: str, port: int, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--requests", type=int, default=10**9)
    args = parser.parse_args()
    headers = dict(h.split(": ", 1) for h in args.header)
    request = raw_request("GET", "127.0.0.1", args.port, args.path, headers)
    result = asyncio.run(
        run("127.0.0.1", args.port, request, args.connections, args.seconds, args.requests)
    )
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
