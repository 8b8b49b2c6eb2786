"""``bulksim serve --workers N``: N uvicorn worker processes accepting on one socket.

uvicorn's own supervisor (``uvicorn.supervisors.Multiprocess``) starts the workers, checks
their health, restarts one that dies and stops them all on a signal. Each worker is a fresh
process (spawned, not forked) that builds its own app from the settings with
:func:`worker_app`, and so opens the store itself: the workers share what the store holds
(records, ids, token keys), which is why the store must be one they can share (not memory).

Everything a spawned worker is handed is named by import path, so that it can be pickled:
the app factory (``functools.partial(worker_app, ...)``) and the HTTP protocol classes below.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import uvicorn
from starlette.types import ASGIApp
from uvicorn.supervisors import Multiprocess

from simulator.app import create_app
from simulator.dashboard import FindingsSource
from simulator.server import (
    DEFAULT_LIMITS,
    UVICORN_SETTINGS,
    ConnectionLimits,
    configure_logging,
    http_protocol,
    limit_connections,
    listening_socket,
    served,
)
from simulator.settings import Settings

__all__ = ["run_workers", "worker_app"]

# The dropping protocol a single server runs (see simulator.server.http_protocol: httptools
# where it is installed), importable by name in a worker.
WorkerProtocol = http_protocol()


def worker_app(
    settings: Settings,
    log_level: str,
    log_format: str,
    access_log: bool,
    findings: Callable[[], FindingsSource] | None = None,
) -> ASGIApp:
    """A worker's app: its logging as the command asked, then the simulator on the store, its
    dashboard judging behaviour with what ``findings()`` makes (a module-level function, so
    that it travels to the worker by name)."""
    configure_logging(log_level, "json" if log_format == "json" else "text", access_log)
    return served(create_app(settings, findings=findings() if findings else None))


def run_workers(
    settings: Settings,
    logging: tuple[str, str, bool],
    announce: Callable[[int], None],
    *,
    limits: ConnectionLimits = DEFAULT_LIMITS,
    findings: Callable[[], FindingsSource] | None = None,
    **options: Any,
) -> int:
    """Serve with ``settings.workers`` processes until interrupted; ``limits`` travel to each
    worker with the config, and ``findings`` (see :func:`worker_app`) to each worker's app;
    ``options`` go to uvicorn as they are (HTTPS files, proxy headers)."""
    try:
        sock = listening_socket(settings.host, settings.port)
    except OSError as exc:
        where = f"{settings.host}:{settings.port}"
        print(f"bulksim: cannot bind {where}: {exc.strerror}", file=sys.stderr)  # noqa: T201
        return 2
    config = uvicorn.Config(
        functools.partial(worker_app, settings, *logging, findings),
        factory=True,
        workers=settings.workers,
        http=f"{__name__}:WorkerProtocol",
        **{**UVICORN_SETTINGS, **options},
    )
    limit_connections(config, limits)
    announce(sock.getsockname()[1])
    Multiprocess(config, sockets=[sock]).run()
    return 0
