"""The peers ``make bench-peers`` measures: WireMock and Prism, serving a static poll answer.

``make bench-peers`` installs both from the npm registry into ``.cache/bench-peers`` (the
``wiremock`` package ships WireMock's jar, run here on the machine's Java). Each serves the
same stub: a GET of a Deepvue-like status poll answered with a fixed JSON body.
"""

from __future__ import annotations

import glob
import json
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import httpx

CACHE = Path(".cache/bench-peers")
JAR = "node_modules/wiremock/build/wiremock-standalone-*.jar"
PRISM = "node_modules/.bin/prism"
PATH = "/deepvue/v1/verification/batch-processing-status"
BODY = {
    "code": 200,
    "message": "Success",
    "data": {
        "request_id": "06d0d7c340ed460d96103aaa0b26f0de",
        "status": "completed",
        "total_records": 2,
        "completed_records": 2,
        "failed_records": 0,
    },
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ready(process: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the peer exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"{url}: no answer after 120 s")


Running = tuple[str, int]  # the stub's URL, and the peer's process id


@contextmanager
def _running(command: list[str], url: str) -> Iterator[Running]:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _ready(process, url)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def missing() -> str | None:
    """What to do first when a peer is not installed, else None."""
    if not glob.glob(str(CACHE / JAR)) or not (CACHE / PRISM).exists():
        return "bench: WireMock and Prism are not installed: run make bench-peers"
    return None


def wiremock_jar() -> str:
    jars = sorted(glob.glob(str(CACHE / JAR)))
    if not jars:
        raise RuntimeError("WireMock is not installed: run make bench-peers")
    return jars[-1]


def wiremock(*options: str) -> Callable[[list[str]], AbstractContextManager[Running]]:
    @contextmanager
    def run(prefix: list[str]) -> Iterator[Running]:
        with tempfile.TemporaryDirectory() as root:
            (Path(root) / "mappings").mkdir()
            stub = {
                "request": {"method": "GET", "urlPath": PATH},
                "response": {
                    "status": 200,
                    "jsonBody": BODY,
                    "headers": {"Content-Type": "application/json"},
                },
            }
            (Path(root) / "mappings/poll.json").write_text(json.dumps(stub))
            port = _free_port()
            command = [*prefix, "java", "-jar", wiremock_jar(), "--port", str(port)]
            command += ["--bind-address", "127.0.0.1", "--root-dir", root, *options]
            with _running(command, f"http://127.0.0.1:{port}{PATH}?request_id=x") as running:
                yield running

    return run


@contextmanager
def prism(prefix: list[str]) -> Iterator[Running]:
    binary = CACHE / PRISM
    if not binary.exists():
        raise RuntimeError("Prism is not installed: run make bench-peers")
    spec = {
        "openapi": "3.1.0",
        "info": {"title": "poll", "version": "1"},
        "paths": {
            PATH: {
                "get": {
                    "parameters": [
                        {"name": "request_id", "in": "query", "schema": {"type": "string"}}
                    ],
                    "responses": {
                        "200": {
                            "description": "the status",
                            "content": {"application/json": {"example": BODY}},
                        }
                    },
                }
            }
        },
    }
    with tempfile.TemporaryDirectory() as root:
        path = Path(root) / "poll.json"
        path.write_text(json.dumps(spec))
        port = _free_port()
        command = [*prefix, str(binary), "mock", "-h", "127.0.0.1", "-p", str(port)]
        command += ["-v", "warn", str(path)]
        with _running(command, f"http://127.0.0.1:{port}{PATH}?request_id=x") as running:
            yield running


PEERS: dict[str, Callable[[list[str]], AbstractContextManager[Running]]] = {
    "WireMock (default: request journal on)": wiremock(),
    "WireMock --no-request-journal": wiremock("--no-request-journal"),
    "Prism mock (-v warn)": prism,
}
