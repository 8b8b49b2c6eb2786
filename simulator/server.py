"""Serving the simulator on a real socket: the one place that knows uvicorn.

The CLI (``bulksim serve``), the harness's :func:`~contracts.harness.serve_in_thread` and
the benchmark's baseline all serve through this module, so they serve alike:

- :func:`listening_socket` binds before anyone is told the port, so no client races start-up.
- :func:`uvicorn_config` is bulksim's uvicorn configuration, built in this one function.
- :func:`run_uvicorn` serves until interrupted; :func:`running_in_thread` serves in a
  background thread while a ``with`` block runs.
- :func:`served` and the protocols from :func:`http_protocol` make a ``drop`` fault cut the
  connection before a single byte of the answer is written: no status line, no headers.
  The protocols also bound every connection (:class:`ConnectionLimits`, kept by one sweep
  per server) and write what one turn of the event loop answered together (``_Outbox``).
- :class:`~simulator.gateway.HttpDate` gives every response a ``Date`` header from the
  simulator's clock (uvicorn's own, from the wall clock, is turned off).
- :func:`configure_logging` sets up bulksim's request log (``bulksim.access``, one line per
  provider request, text or JSON) and keeps uvicorn's start-up chatter out of it.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import importlib.util
import itertools
import json
import logging
import socket
import sys
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TextIO, cast

from starlette.types import ASGIApp, Receive, Scope, Send

from simulator.gateway import ACCESS_LOG, ConnectionDropped, HttpDate

if TYPE_CHECKING:
    import uvicorn

__all__ = [
    "DEFAULT_LIMITS",
    "DROP_EXTENSION",
    "HEAD_LIMIT",
    "LOG_LEVELS",
    "UVICORN_SETTINGS",
    "ConnectionLimits",
    "HttpDate",
    "configure_logging",
    "http_protocol",
    "limit_connections",
    "listening_socket",
    "run_uvicorn",
    "running_in_thread",
    "served",
    "uvicorn_config",
]

HttpKind = Literal["auto", "h11", "httptools"]
LogFormat = Literal["text", "json"]
# httptools (C) when it is installed, h11 (pure Python) where it cannot be.
DEFAULT_HTTP: HttpKind = "auto"
# A request head still unfinished after this many bytes is refused with a 400, on either
# parser (h11's own bound, uvicorn's default; docs/control-plane.md says so).
HEAD_LIMIT = 16 * 1024
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
# The ASGI scope extension through which the server lets the app cut the connection.
DROP_EXTENSION = "bulksim.drop"


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound, listening TCP socket: connections queue from here on, before anyone is told.

    It is made with ``proto=IPPROTO_TCP`` because asyncio sets TCP_NODELAY on accepted
    connections only when the listening socket says it is TCP; without it every keep-alive
    response waits some 40 ms on the peer's delayed ACK.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


# -- dropping a connection ------------------------------------------------------------------


def served(app: ASGIApp) -> ASGIApp:
    """For a real server: a ``drop`` fault closes the connection with nothing written.

    The gateway raises :class:`~simulator.gateway.ConnectionDropped` before it sends any part
    of the answer. uvicorn would answer an app that raises (or returns without answering)
    with a 500 and log a traceback, so the server's protocol (see :func:`http_protocol`)
    hands each request a way to close its connection instead; the client sees the
    connection closed with no response at all.
    """

    async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await app(scope, receive, send)
        except ConnectionDropped:
            held = scope.get("extensions", {}).get(DROP_EXTENSION)
            cycle = None if held is None else held()
            if cycle is None:  # a server without bulksim's protocol cannot drop cleanly
                raise
            # uvicorn writes nothing more for a disconnected cycle: no 500, no log line.
            cycle.disconnected = True
            cycle.transport.close()

    return wrapper


def _offer_drop(cycle: Any) -> None:
    """Let the app drop this request's connection: the request's cycle, in its scope.

    :func:`served` marks it disconnected, so uvicorn writes nothing more, sends no 500 and
    logs nothing for it, then closes its transport. It is held weakly: a strong reference
    from the cycle's scope back to the cycle would make every request a reference cycle for
    the garbage collector to find (its pauses showed in the p99).
    """
    cycle.scope.setdefault("extensions", {})[DROP_EXTENSION] = weakref.ref(cycle)


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """How long a connection may keep the server waiting, and how many it may hold open.

    - ``keep_alive_timeout``: an idle keep-alive connection is closed after this many
      seconds without a new request (uvicorn's ``timeout_keep_alive``).
    - ``head_timeout``: a request head (request line and headers) must arrive whole within
      this many seconds of its first byte, or of the connection being opened; else the
      connection is closed.
    - ``body_timeout``: while a request body is being read, a connection that sends no byte
      of it for this many seconds is closed (never while the server itself has stopped
      reading because the app has not taken what came).
    - ``max_connections``: open connections at most. One more sheds the connection that has
      owed the server bytes (a head, a body) or sat idle the longest, never one whose
      request is being answered; when every one is being answered, the new one is closed.
      (uvicorn's own ``limit_concurrency`` answers 503 to every request once that many
      connections are open, so idle connections alone could deny service; it is not used.)
    """

    keep_alive_timeout: float = 5.0
    head_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 1000


DEFAULT_LIMITS = ConnectionLimits()
# The uvicorn.Config attribute that carries bulksim's limits to the protocols (it travels to
# spawned workers with the config).
LIMITS_ATTRIBUTE = "bulksim_limits"


def head_size(method: bytes, target: bytes, headers: Iterable[tuple[bytes, bytes]]) -> int:
    """A request head's size as sent: ``METHOD TARGET HTTP/1.1``, ``name: value`` lines and
    the blank line, each ending in CRLF; the same count on either parser."""
    headers = list(headers)
    return (
        len(method)
        + len(target)
        + len(b"  HTTP/1.1\r\n\r\n")
        + sum(map(len, itertools.chain.from_iterable(headers)))
        + 4 * len(headers)
    )


class HeadTooLarge(Exception):
    """A complete request head over :data:`HEAD_LIMIT`: refused as a malformed request."""


class _Guard:
    """One connection's state and its place in the shedding order.

    ``state`` says what the connection is doing: ``head`` (owes the rest of a head, or a
    first one), ``body`` (owes the rest of a body), ``busy`` (its request is being answered)
    or ``idle`` (between requests, until the keep-alive timeout). ``since`` is when it
    entered that state (or, owing a body, when the body last moved); of the connections not
    ``busy``, the one with the oldest is shed first. No timer is set per request: the
    server's :class:`_Sweeper` looks at every guard a few times per timeout, and closes a
    connection left ``idle`` past its keep-alive timeout too.
    """

    __slots__ = ("paused", "since", "state", "sweeper", "transport")

    def __init__(
        self, sweeper: _Sweeper, transport: asyncio.Transport, paused: Callable[[], bool]
    ) -> None:
        self.sweeper = sweeper
        self.transport = transport
        self.paused = paused
        self.state = "head"
        self.since = sweeper.loop.time()
        sweeper.watch(self)

    def received(self) -> None:
        state = self.state
        if state == "idle":
            self.state, self.since = "head", self.sweeper.loop.time()
        elif state == "body":
            self.since = self.sweeper.loop.time()

    def head_done(self) -> None:
        self.state, self.since = "body", self.sweeper.loop.time()

    def body_done(self) -> None:
        if self.state == "body":
            self.state = "busy"

    def response_done(self) -> None:
        self.state, self.since = "idle", self.sweeper.loop.time()

    def resumed(self) -> None:
        """A request read while another was answered is answered now, and reading resumes:
        what the connection still owes (a head, a body) is timed from now."""
        if self.state != "busy":
            self.since = self.sweeper.loop.time()

    def closed(self) -> None:
        self.sweeper.guards.discard(self)

    @property
    def sheddable(self) -> bool:
        return self.state != "busy" and not self.transport.is_closing()


class _Sweeper:
    """Closes the connections of one server that owe a head or a body for too long, or sit
    idle past the keep-alive timeout.

    It runs while the server has connections, every tenth of the shortest timeout (between
    0.1 and 1 second), so a connection is closed within its timeout and that tenth. (uvicorn
    arms a timer per answer for the keep-alive timeout instead; setting and cancelling it
    cost a poll about 5 % of its CPU.)
    """

    def __init__(self, limits: ConnectionLimits, loop: asyncio.AbstractEventLoop) -> None:
        self.limits = limits
        self.loop = loop
        self.guards: set[_Guard] = set()
        shortest = min(limits.head_timeout, limits.body_timeout, limits.keep_alive_timeout)
        self.every = min(1.0, max(0.1, shortest / 10))
        self.timer: asyncio.TimerHandle | None = None
        self.outbox = _Outbox(loop)

    def watch(self, guard: _Guard) -> None:
        self.guards.add(guard)
        if self.timer is None:
            self.timer = self.loop.call_later(self.every, self.sweep)

    def sweep(self) -> None:
        self.timer = None
        now = self.loop.time()
        limits = self.limits
        # Since when each state may have lasted at most (a busy connection, ever).
        by = {
            "head": now - limits.head_timeout,
            "body": now - limits.body_timeout,
            "idle": now - limits.keep_alive_timeout,
        }
        for guard in list(self.guards):
            state = guard.state
            if state in by and guard.since <= by[state]:
                if state == "body" and guard.paused():
                    # The server stopped reading (flow control), not the client.
                    guard.since = now
                elif not guard.transport.is_closing():
                    guard.transport.close()
        if self.guards:
            self.timer = self.loop.call_later(self.every, self.sweep)


class _Outbox:
    """What one server's connections write during one turn of its event loop, written
    together once the turn's callbacks have run.

    A write made at once may wake the client for each answer: under load, a client waiting
    on a server slower than itself is woken once per answer, and the kernel's work to wake
    it lands on the server's core (under ``wrk -c64`` it doubled a poll's system time).
    The answers of one turn, written back to back, wake it once. A request alone pays one
    more callback for it (about 2 us). Each connection's writes keep their order, and
    closing a connection writes what waits first. Bounded: once :attr:`LIMIT` bytes wait,
    they are written at once, so a large or streamed answer meets the transport's own flow
    control as it would without waiting. (The bound holds a turn's answers to 64
    connections' pages of some 40 kB: below it, those are written in several goes, and
    each go wakes the client again.)
    """

    LIMIT = 4 * 1024 * 1024

    __slots__ = ("loop", "pending", "scheduled", "size")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pending: list[tuple[asyncio.Transport, bytes]] = []
        self.size = 0
        self.scheduled = False

    def put(self, transport: asyncio.Transport, data: bytes | bytearray | memoryview) -> None:
        # Kept until the turn ends: a copy of a buffer its writer may still change.
        chunk = data if type(data) is bytes else bytes(data)
        self.pending.append((transport, chunk))
        self.size += len(chunk)
        if self.size >= self.LIMIT:
            self.flush()
        elif not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self._turn_ended)

    def _turn_ended(self) -> None:
        self.scheduled = False
        self.flush()

    def flush(self) -> None:
        """Write what waits, each connection's in order (a closed one's is dropped). A
        connection's parts that wait one after another (an answer's head and body) go in
        one ``writelines``: one system call for them (uvloop's is a ``writev``), not one
        each."""
        pending, self.pending, self.size = self.pending, [], 0
        end = len(pending)
        at = 0
        while at < end:
            transport, chunk = pending[at]
            after = at + 1
            while after < end and pending[after][0] is transport:
                after += 1
            if not transport.is_closing():
                if after == at + 1:
                    transport.write(chunk)
                else:
                    transport.writelines([part for _, part in pending[at:after]])
            at = after


class _Batched:
    """A connection's transport as uvicorn's protocol and its requests see it: what they
    write waits in the server's :class:`_Outbox` for the end of the loop's turn; closing
    writes it first. Everything else is the transport's own."""

    __slots__ = ("_outbox", "_transport")

    def __init__(self, transport: asyncio.Transport, outbox: _Outbox) -> None:
        self._transport = transport
        self._outbox = outbox

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._outbox.put(self._transport, data)

    def writelines(self, lines: Iterable[bytes | bytearray | memoryview]) -> None:
        self.write(b"".join(lines))

    def close(self) -> None:
        self._outbox.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


_SWEEPERS: weakref.WeakKeyDictionary[Any, _Sweeper] = weakref.WeakKeyDictionary()


def _sweeper(protocol: Any) -> _Sweeper:
    """The sweeper (and outbox) of the protocol's server on the protocol's loop."""
    sweeper = _SWEEPERS.get(protocol.server_state)
    if sweeper is None or sweeper.loop is not protocol.loop:
        limits: ConnectionLimits = getattr(protocol.config, LIMITS_ATTRIBUTE, DEFAULT_LIMITS)
        sweeper = _SWEEPERS[protocol.server_state] = _Sweeper(limits, protocol.loop)
    return sweeper


def _batched(protocol: Any, transport: asyncio.Transport) -> asyncio.Transport:
    """``transport``, its writes batched per turn of the loop (see :class:`_Outbox`)."""
    return cast(asyncio.Transport, _Batched(transport, _sweeper(protocol).outbox))


def _guard(protocol: Any, transport: asyncio.Transport) -> _Guard:
    """Start guarding a new connection; shed one if there are now too many."""
    sweeper = _sweeper(protocol)
    limits = sweeper.limits
    guard = _Guard(sweeper, transport, lambda: bool(protocol.flow.read_paused))
    live = [c for c in protocol.connections if not c.transport.is_closing()]
    if len(live) > limits.max_connections:
        waiting = [c for c in live if c is not protocol and c._guard.sheddable]
        if waiting:
            min(waiting, key=lambda c: c._guard.since).transport.close()
        else:
            transport.close()
    return guard


@functools.cache
def http_protocol(kind: HttpKind = "auto") -> type[asyncio.Protocol]:
    """uvicorn's HTTP/1.1 protocol (h11 or httptools) that lets the app drop a connection.

    ``auto`` picks httptools when it is installed, as uvicorn's own ``auto`` does, and h11
    (pure Python) where it is not. Each request's cycle is made (and its task scheduled, not
    yet run) while the protocol parses; the subclass adds the drop extension to the new
    cycle's scope right then. Both refuse a request head of more than :data:`HEAD_LIMIT`
    bytes with the same plain 400, whether it arrives in one piece or many, and both keep
    the :class:`ConnectionLimits` the config carries (its timeouts and connection cap).
    """
    if kind == "auto":
        kind = "httptools" if importlib.util.find_spec("httptools") else "h11"
    if kind == "httptools":
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        class DroppingHttpToolsProtocol(HttpToolsProtocol):
            # Bytes received of a request head not yet complete. httptools itself would
            # buffer a head that never ends without bound; h11 stops it at HEAD_LIMIT.
            _head_bytes = 0
            _reading_head = True
            _heads = 0
            # Whether a message completed in the read being parsed, and whether the head
            # being read began at the start of a read (so ``_head_bytes`` counts all of it).
            _completed = False
            _counted = True
            _guard: _Guard

            def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
                super().connection_made(_batched(self, transport))
                self._guard = _guard(self, transport)

            def connection_lost(self, exc: Exception | None) -> None:
                self._guard.closed()
                super().connection_lost(exc)

            def data_received(self, data: bytes) -> None:
                self._guard.received()
                self._completed = False
                if self._reading_head:
                    self._head_bytes += len(data)
                heads = self._heads
                super().data_received(data)
                if (
                    self._reading_head
                    and heads == self._heads
                    and self._head_bytes > HEAD_LIMIT
                    and not self.transport.is_closing()
                ):
                    message = "Invalid HTTP request received."
                    self.logger.warning(message)
                    self.send_400_response(message)

            def on_message_begin(self) -> None:
                # A head that begins after a message completed in the same read is not
                # counted from its first byte: its size is then measured when it is whole.
                self._counted = not self._completed
                super().on_message_begin()

            def on_headers_complete(self) -> None:
                # A head counted whole within the limit is within it (the bytes received
                # since it began hold it all); any other is measured.
                counted = self._counted and self._head_bytes <= HEAD_LIMIT
                self._reading_head = False
                self._head_bytes = 0
                self._heads += 1
                if not counted and (
                    head_size(self.parser.get_method(), self.url, self.headers) > HEAD_LIMIT
                ):
                    # httptools hands it on as a parser error: uvicorn's plain 400.
                    raise HeadTooLarge
                self._guard.head_done()
                before = self.cycle
                super().on_headers_complete()
                if self.cycle is not before:
                    _offer_drop(self.cycle)

            def on_message_complete(self) -> None:
                # What follows in this read is a new head, counted from the next read on: a
                # head behind a request in the same read is refused within HEAD_LIMIT and
                # one read (at most 256 KiB) of its start. Still bounded.
                self._completed = True
                self._reading_head = True
                self._guard.body_done()
                super().on_message_complete()

            def on_response_complete(self) -> None:
                # uvicorn's own, less the keep-alive timer it arms after every answer: the
                # sweeper closes a connection left idle past the keep-alive timeout.
                self.server_state.total_requests += 1
                if self.transport.is_closing():
                    return
                self.flow.resume_reading()
                if self.pipeline:
                    # A request read meanwhile is answered next: the connection is not idle.
                    self._guard.resumed()
                    cycle, app = self.pipeline.pop()
                    self._start_asgi_task(cycle, app)
                else:
                    self._guard.response_done()

        return DroppingHttpToolsProtocol

    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class BoundedConnection(h11.Connection):
        """h11 bounds a head that is still incomplete; this bounds a complete one too."""

        def next_event(self) -> Any:
            event = super().next_event()
            if (
                isinstance(event, h11.Request)
                and head_size(event.method, event.target, event.headers.raw_items()) > HEAD_LIMIT
            ):
                raise h11.RemoteProtocolError("Request head too large", error_status_hint=431)
            return event

    class DroppingH11Protocol(H11Protocol):
        _guard: _Guard

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.conn = BoundedConnection(h11.SERVER, HEAD_LIMIT)

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(_batched(self, transport))
            self._guard = _guard(self, transport)

        def connection_lost(self, exc: Exception | None) -> None:
            self._guard.closed()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            self._guard.received()
            super().data_received(data)

        def handle_events(self) -> None:
            # h11 pauses after each request until its response is done: one new cycle at most.
            before = self.cycle
            super().handle_events()
            if self.cycle is not before:
                _offer_drop(self.cycle)
                self._guard.head_done()
            if self._guard.state == "body" and self.conn.their_state is not h11.SEND_BODY:
                self._guard.body_done()

        def on_response_complete(self) -> None:
            self._guard.response_done()
            super().on_response_complete()

    return DroppingH11Protocol


# -- uvicorn --------------------------------------------------------------------------------


# What bulksim always asks of uvicorn (see uvicorn_config); --workers asks the same.
UVICORN_SETTINGS: dict[str, Any] = {
    # uvloop where it is installed, asyncio's own loop where it cannot be.
    "loop": "auto",
    "h11_max_incomplete_event_size": HEAD_LIMIT,
    "lifespan": "off",
    "server_header": False,
    "date_header": False,
    "access_log": False,
    "log_config": None,
    # X-Forwarded-* only when asked for (``--proxy-headers``): uvicorn's default reads them on
    # every request from 127.0.0.1, about 2 us of a poll.
    "proxy_headers": False,
}


def uvicorn_config(
    app: ASGIApp,
    *,
    http: HttpKind = DEFAULT_HTTP,
    log_level: str | None = None,
    limits: ConnectionLimits = DEFAULT_LIMITS,
    **options: Any,
) -> uvicorn.Config:
    """bulksim's uvicorn settings, in one place.

    No lifespan, no ``Server`` header, no wall-clock ``Date`` (the app sends the simulator's),
    no uvicorn access log (bulksim has its own), and uvicorn's logging left as
    :func:`configure_logging` (or the embedding program) set it. ``log_level`` sets uvicorn's
    own loggers only. ``limits`` are the connection timeouts and cap (see
    :func:`limit_connections`). ``options`` go to ``uvicorn.Config`` as they are (HTTPS: see
    :meth:`simulator.tls.TlsFiles.uvicorn_options`).
    """
    import uvicorn

    settings = {**UVICORN_SETTINGS, **options}
    config = uvicorn.Config(served(app), http=http_protocol(http), log_level=log_level, **settings)
    return limit_connections(config, limits)


def limit_connections(config: uvicorn.Config, limits: ConnectionLimits) -> uvicorn.Config:
    """Give ``config`` bulksim's :class:`ConnectionLimits`: the protocols from
    :func:`http_protocol` read them from the config (the keep-alive timeout is also uvicorn's
    own, which its h11 protocol keeps with a timer per answer)."""
    # uvicorn types it int; it is handed to call_later, which takes fractions too.
    config.timeout_keep_alive = limits.keep_alive_timeout  # type: ignore[assignment]
    setattr(config, LIMITS_ATTRIBUTE, limits)
    return config


def run_uvicorn(
    app: ASGIApp,
    host: str,
    port: int,
    announce: Callable[[int], None] | None = None,
    *,
    http: HttpKind = DEFAULT_HTTP,
    limits: ConnectionLimits = DEFAULT_LIMITS,
    **options: Any,
) -> int:
    """Serve ``app`` until interrupted; ``announce`` is told the port once it is bound."""
    import uvicorn

    try:
        sock = listening_socket(host, port)
    except OSError as exc:
        print(f"bulksim: cannot bind {host}:{port}: {exc.strerror}", file=sys.stderr)  # noqa: T201
        return 2
    if announce is not None:
        announce(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn_config(app, http=http, limits=limits, **options))
    # What start-up made (specs, fakes, stores) lives as long as the process: out of the
    # collector's way, so a full collection under load scans only what serving made. (No
    # collection first: it costs start-up time and would free a few hundred objects.)
    gc.freeze()
    server.run(sockets=[sock])
    return 0


@contextmanager
def running_in_thread(
    app: ASGIApp,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    http: HttpKind = DEFAULT_HTTP,
    limits: ConnectionLimits = DEFAULT_LIMITS,
    **options: Any,
) -> Iterator[str]:
    """uvicorn serving ``app`` in a background thread; yields its origin, stops on exit.

    ``options`` go to :func:`uvicorn_config` (HTTPS: see
    :meth:`simulator.tls.TlsFiles.uvicorn_options`); the origin is ``http://`` either way.
    """
    import uvicorn

    sock = listening_socket(host, port)  # connections queue: no need to wait for start-up
    server = uvicorn.Server(uvicorn_config(app, http=http, limits=limits, **options))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    shown = f"[{host}]" if ":" in host else host
    try:
        yield f"http://{shown}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


# -- logging --------------------------------------------------------------------------------


class TextFormatter(logging.Formatter):
    """``LEVEL logger: message``; a request line is the message itself."""

    def format(self, record: logging.LogRecord) -> str:
        if hasattr(record, "access"):
            return record.getMessage()
        text = f"{record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class JsonFormatter(logging.Formatter):
    """One JSON object a line: a request line's fields, or level, logger and message."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, object] = {"level": record.levelname.lower(), "logger": record.name}
        access = getattr(record, "access", None)
        if isinstance(access, dict):
            fields.update(access)
        else:
            fields["message"] = record.getMessage()
            if record.exc_info:
                fields["exception"] = self.formatException(record.exc_info)
        return json.dumps(fields, separators=(",", ":"))


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is emitted, not when it was built.

    A program that embeds the server (a test run capturing output, say) may swap stderr;
    a handler holding the old stream would write to a closed file.
    """

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        """The stream is always the current stderr; ``StreamHandler.__init__`` sets it."""


def configure_logging(
    level: str = "info", log_format: LogFormat = "text", access_log: bool = True
) -> None:
    """Send bulksim's and uvicorn's logs to stderr, in text or JSON.

    At ``info`` (the default) the request log shows and uvicorn's start-up lines do not (the
    banner says it all); uvicorn speaks at ``debug`` and ``trace``, and its warnings and
    errors always show. ``access_log=False`` silences the request log whatever the level.
    Call it before :func:`~simulator.app.create_app`: each gateway reads the request log's
    level once, when it is built.
    """
    from uvicorn.config import LOG_LEVELS as UVICORN_LEVELS

    number = UVICORN_LEVELS[level]
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    uvicorn_level = number if number < logging.INFO else max(number, logging.WARNING)
    for name, logger_level in (("bulksim", number), ("uvicorn", uvicorn_level)):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
        logger.setLevel(logger_level)
    ACCESS_LOG.setLevel(logging.NOTSET if access_log else logging.CRITICAL + 1)
