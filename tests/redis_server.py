"""A real ``redis-server`` for the tests and the bench: started on a free loopback port, with
no persistence and a throwaway directory, and stopped afterwards.

``scripts/system-packages.sh`` (run by ``make test``) installs Debian's ``redis-server``;
where it is missing, the tests that need it skip and say so.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

__all__ = [
    "MISSING",
    "REDIS_SERVER",
    "RedisServer",
    "free_port",
    "redis_server",
    "redis_url",
    "running_redis",
]

REDIS_SERVER = shutil.which("redis-server")
MISSING = "redis-server is not installed (scripts/system-packages.sh installs Debian's package)"
READY = "Ready to accept connections"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class RedisServer:
    """One ``redis-server`` process; :meth:`stop` and :meth:`start` again keep its port."""

    directory: Path
    port: int = field(default_factory=free_port)
    # What runs it (``taskset -c 0``: the bench keeps it off the measured server's core).
    prefix: list[str] = field(default_factory=list)
    process: subprocess.Popen[str] | None = None
    drain: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS_SERVER is not None, MISSING
        command = [
            REDIS_SERVER,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
            "--loglevel", "notice",
        ]  # fmt: skip
        process = subprocess.Popen([*self.prefix, *command], stdout=subprocess.PIPE, text=True)
        assert process.stdout is not None
        seen = []
        # Its log says when it listens; an early exit ends the output instead.
        for line in process.stdout:
            seen.append(line)
            if READY in line:
                break
        else:
            process.wait()
            raise RuntimeError(f"redis-server did not start: {''.join(seen[-5:])}")
        self.process = process
        # The rest of its log is read and dropped, so that a full pipe never stalls it.
        self.drain = threading.Thread(target=process.stdout.read, daemon=True)
        self.drain.start()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
            assert self.process.stdout is not None
            assert self.drain is not None
            self.drain.join(timeout=30)
            self.process.stdout.close()
            self.process = None

    def flush(self) -> None:
        with redis.Redis.from_url(self.url) as client:
            client.flushall()


@contextmanager
def running_redis(directory: Path, prefix: list[str] | None = None) -> Iterator[RedisServer]:
    server = RedisServer(directory, prefix=prefix or [])
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """The session's ``redis-server``; skips the test when none is installed."""
    if REDIS_SERVER is None:
        pytest.skip(MISSING)
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session server's URL, emptied for this test."""
    redis_server.flush()
    return redis_server.url
