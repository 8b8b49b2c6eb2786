"""The gateway every provider request passes through.

It finds the operation (the route name) a request is for, applies a scheduled fault if one
strikes, records the request and its response in the journal, and writes one line to the
request log (``bulksim.access``). It is pure ASGI so that it adds little to the hot path, and
it keeps at most ``journal_body_bytes`` of each body. The request log's level is read once,
when the gateway is built: when it is off, a request pays nothing for it.
"""

from __future__ import annotations

import inspect
import json
import logging
import marshal
from collections.abc import Awaitable, Callable
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from time import perf_counter
from typing import TYPE_CHECKING, NoReturn

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import Message, Receive, Scope, Send

from simulator.clock import Clock, format_iso
from simulator.faults import Fault
from simulator.journal import ALWAYS_SECRET_FIELDS, Entry, credential_values
from simulator.kit.provider import ProviderRuntime
from simulator.settings import Drift, parse_drift
from simulator.state import SimulatorState
from simulator.store import StoreUnavailable

if TYPE_CHECKING:  # the validator is loaded when a journal entry is first read
    from contracts.validate import SpecValidator

__all__ = ["ACCESS_LOG", "ConnectionDropped", "Gateway", "HttpDate"]

ACCESS_LOG = logging.getLogger("bulksim.access")

MALFORMED_BODY = b'{"data": {"status": "in prog'
SPEC_ROUTE = "openapi_spec"  # served by the simulator itself, not part of any provider's spec


class ConnectionDropped(Exception):
    """A ``drop`` fault: the connection is to be closed with no response at all.

    Raised before any part of the answer is sent; a server closes the connection (see
    :func:`simulator.server.served`), an in-process transport raises as a cut connection does.
    """


_SECOND = timedelta(seconds=1)
_NEVER = datetime(1, 1, 1, tzinfo=UTC)  # no second yet: every instant is outside it


class HttpDate:
    """The ``Date`` header value (RFC 7231) for the simulator's clock, formatted once a second.

    uvicorn's own ``Date``, from the wall clock, is turned off: every answer carries this one,
    read from the clock when the answer starts (never kept longer than its second).
    """

    __slots__ = ("_clock", "_second", "_until", "_value")

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        # The value holds from ``_second`` (whole) until ``_until``, a second later.
        self._second = self._until = _NEVER
        self._value = b""

    def value(self) -> bytes:
        now = self._clock.now()
        if self._second <= now < self._until:
            return self._value
        second = self._second = now.replace(microsecond=0)
        self._until = second + _SECOND
        self._value = format_datetime(second.astimezone(UTC), usegmt=True).encode("ascii")
        return self._value

    def dated(self, start: Message, headers: list[tuple[bytes, bytes]]) -> Message:
        """A copy of the ``http.response.start`` message, with this clock's ``Date`` alone."""
        return {**start, "headers": self.added(headers)}

    def added(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """A copy of ``headers`` with this clock's ``Date`` alone."""
        for name, _ in headers:
            if name.lower() == b"date":
                headers = [(k, v) for k, v in headers if k.lower() != b"date"]
                break
        return [*headers, (b"date", self.value())]

    def stamp(self, send: Send) -> Send:
        """``send``, with this clock's ``Date`` added to the response's headers."""

        async def dated_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = self.dated(message, message.get("headers", []))
            await send(message)

        return dated_send


Endpoint = Callable[[Request], Awaitable[Response]]
_PLAIN_CALL = Response.__call__
ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]


class _Route:
    """What a method and path resolve to in one provider: computed once, never an answer."""

    __slots__ = ("child", "endpoint", "full", "operation", "route")

    def __init__(
        self,
        operation: str,
        full: bool,
        route: BaseRoute | None = None,
        child: Scope | None = None,
    ) -> None:
        self.operation = operation
        self.full = full
        self.route = route
        self.child = child or {}
        endpoint = getattr(route, "endpoint", None)
        # A coroutine function is called directly (what ``request_response`` would do);
        # any other kind of endpoint goes through the route's own ASGI app.
        self.endpoint: Endpoint | None = (
            endpoint if full and inspect.iscoroutinefunction(endpoint) else None
        )


class Gateway:
    """Wraps one provider's routes with operation lookup, faults and the journal.

    It dispatches the request itself: the route is matched once per method and path (the
    routes never change; only the match is remembered, never an answer), the endpoint is
    called with a :class:`~starlette.requests.Request` and every exception meets one layer,
    the provider app's own exception handlers (its envelope for its errors, for a 404 or 405,
    for a store that is away; its 500 for a crash, which is recorded in ``state.crashes`` and
    raised on, as Starlette's ``ServerErrorMiddleware`` does). ``app`` is still each
    request's ``scope["app"]`` (a :class:`~simulator.kit.provider.ProviderApp`, which holds
    the runtime) and serves other scope types.
    """

    def __init__(
        self,
        app: Starlette,
        runtime: ProviderRuntime,
        state: SimulatorState,
        date: HttpDate | None = None,
    ) -> None:
        self.app = app
        # With a date, every answer gets the simulator's ``Date`` (after the journal saw it).
        self.date = date
        self.runtime = runtime
        self.state = state
        self.routes = app.routes
        self.router = app.router
        handlers = dict(app.exception_handlers)
        self._crash: ErrorHandler | None = handlers.pop(500, None) or handlers.pop(Exception, None)
        self._handlers: dict[type[Exception], ErrorHandler] = {
            k: v for k, v in handlers.items() if isinstance(k, type)
        }
        provider = runtime.provider
        self.faultable = frozenset(provider.operations())
        self.drifts: dict[str, list[Drift]] = {}
        for text in state.settings.drift:
            drift = parse_drift(text)
            if drift.provider == provider.name:
                self.drifts.setdefault(drift.operation, []).append(drift)
        self.secret_headers = provider.secret_headers
        self.secret_fields = ALWAYS_SECRET_FIELDS | provider.secret_fields
        self.known_secrets = credential_values(provider.credentials(runtime.context))
        self._matched: dict[tuple[str, str, str], _Route] = {}
        self.access_log = ACCESS_LOG.isEnabledFor(logging.INFO)

    def _validator(self) -> SpecValidator:
        return self.runtime.validator

    def _resolve(self, scope: Scope) -> _Route:
        key = (scope["method"], scope["path"], scope.get("root_path", ""))
        known = self._matched.get(key)
        if known is None:
            if len(self._matched) >= 4096:
                self._matched.clear()
            known = self._matched[key] = self._match(scope)
        return known

    def _match(self, scope: Scope) -> _Route:
        partial = None
        for route in self.routes:
            match, child = route.matches(scope)
            if match is Match.FULL:
                return _Route(getattr(route, "name", "unknown"), True, route, child)
            if match is Match.PARTIAL and partial is None:
                partial = _Route(getattr(route, "name", "unknown"), False, route)
        return partial or _Route("unknown", False)

    async def _app(self, found: _Route, scope: Scope, receive: Receive, send: Send) -> None:
        """The provider's answer: its route's endpoint, or its error for what went wrong."""
        produced = await self._produce(found, scope, receive, send)
        if produced is not None:
            await self._respond(produced[0], produced[1], send)

    async def _produce(
        self, found: _Route, scope: Scope, receive: Receive, send: Send
    ) -> tuple[Request, Response] | None:
        """The provider's answer as a whole body for the caller to send; or None when it was
        sent already (an answer that streams, or a route that is an ASGI app of its own)."""
        scope["app"] = self.app
        if "router" not in scope:
            scope["router"] = self.router
        request = Request(scope, receive, send)
        endpoint = found.endpoint
        if endpoint is not None:
            scope["route"] = found.route
            scope.update(found.child)
            scope["path_params"] = dict(found.child["path_params"])  # each request its own
            try:
                response = await endpoint(request)
            except Exception as exc:
                return await self._handled(request, exc, send)
        elif found.full:
            assert found.route is not None
            scope["route"] = found.route
            scope.update(found.child)
            scope["path_params"] = dict(found.child["path_params"])
            await self._respond(request, found.route.handle, send)
            return None
        else:
            # No route has this path (404), or none this method (405; the handler names
            # every method the path allows).
            status = 404 if found.route is None else 405
            return await self._handled(request, HTTPException(status_code=status), send)
        if type(response).__call__ is not _PLAIN_CALL:
            await self._respond(request, response, send)
            return None
        return request, response

    async def _handled(
        self, request: Request, exc: Exception, send: Send
    ) -> tuple[Request, Response] | None:
        """The provider's answer to ``exc``, raised before anything was sent (as
        :meth:`_produce` gives it); a crash is answered with its 500 and raised on."""
        handler = self._handler(exc)
        if handler is None:
            await self._crashed(request, exc, send, False)
        response = await handler(request, exc)
        # Reused exception instances accumulate tracebacks across requests.
        exc.__traceback__ = None
        if type(response).__call__ is not _PLAIN_CALL:
            await self._respond(request, response, send)
            return None
        return request, response

    def _handler(self, exc: Exception) -> ErrorHandler | None:
        for kind in type(exc).__mro__:
            handler = self._handlers.get(kind)
            if handler is not None:
                return handler
        return None

    async def _respond(
        self,
        request: Request,
        answer: Response | Callable[[Scope, Receive, Send], Awaitable[None]],
        send: Send,
        outlet: _Outlet | None = None,
    ) -> None:
        """Send ``answer``; an exception meets the handlers, knowing whether it had started.

        With ``outlet``, ``send`` is the server's own: a whole body is recorded and dated
        by the outlet and sent here, with no wrapper around ``send``; any other answer goes
        through the outlet's ``send``."""
        if type(answer).__call__ is _PLAIN_CALL:
            # A whole body (what every provider answers): its two messages sent here, as
            # ``Response.__call__`` sends them, without a wrapper to learn whether it started.
            assert isinstance(answer, Response)
            headers, body = answer.raw_headers, answer.body
            if outlet is not None:
                headers = outlet.whole(answer.status_code, headers, body)
            started = False
            try:
                start = {
                    "type": "http.response.start",
                    "status": answer.status_code,
                    "headers": headers,
                }
                message = {"type": "http.response.body", "body": body}
                if isinstance(outlet, _Tap) and outlet.hold:
                    # Sent whole once the journal's entry is published: its head and body
                    # in one write, where a head sent now would leave alone.
                    outlet.held = [start, message]
                    started = True
                else:
                    await send(start)
                    started = True
                    await send(message)
                if answer.background is not None:
                    await answer.background()
            except Exception as exc:
                await self._failed(request, exc, send, started, outlet)
            return
        if outlet is not None:
            send = outlet.send
        started = False

        async def sender(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await answer(request.scope, request.receive, sender)
        except Exception as exc:
            await self._failed(request, exc, send, started)

    async def _failed(
        self,
        request: Request,
        exc: Exception,
        send: Send,
        started: bool,
        outlet: _Outlet | None = None,
    ) -> None:
        """Answer ``exc`` with the provider's handler for it; a crash is answered with its 500
        (when nothing was sent yet) and raised on. ``outlet`` as for :meth:`_respond`."""
        handler = self._handler(exc)
        if handler is not None:
            if not started:
                response = await handler(request, exc)
                await self._respond(request, response, send, outlet)
                # Reused exception instances accumulate tracebacks across requests.
                exc.__traceback__ = None
                return
            try:
                raise RuntimeError(
                    "Caught handled exception, but response already started."
                ) from exc
            except RuntimeError as runtime_error:
                exc = runtime_error
        await self._crashed(request, exc, outlet.send if outlet else send, started)

    async def _crashed(
        self, request: Request, exc: Exception, send: Send, started: bool
    ) -> NoReturn:
        """A crash: answered with the provider's 500 (when nothing was sent yet), recorded by
        the crash handler, and raised on."""
        if self._crash is None:
            raise exc
        response = await self._crash(request, exc)
        if not started:
            await response(request.scope, request.receive, send)
        raise exc

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a request (dated when the gateway has a ``date``)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        name = self.runtime.provider.name
        found = self._resolve(scope)
        operation, full = found.operation, found.full
        fault = None
        faults = self.state.faults
        if full and faults.armed and operation in self.faultable:
            try:
                fault = await faults.take(name, operation)
                if faults.store is not None:
                    # The plan moved (a count spent): every process sees it from now on.
                    await self.state.synced_after()
            except StoreUnavailable:
                pass  # the provider answers its own 503 when it reaches the store
        drifts = self.drifts.get(operation) if full and self.drifts else None
        if self.access_log:
            await self._logged(found, fault, drifts, scope, receive, send, self.date)
        else:
            await self._journaled(found, fault, drifts, scope, receive, send, self.date)

    async def _logged(
        self,
        found: _Route,
        fault: Fault | None,
        drifts: list[Drift] | None,
        scope: Scope,
        receive: Receive,
        send: Send,
        date: HttpDate | None,
    ) -> None:
        """Answer, then write the request's line to the request log."""
        operation = found.operation
        instant = self.state.clock.now()
        started = perf_counter()
        status: int | None = None
        dropped = False

        async def status_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._journaled(found, fault, drifts, scope, receive, status_send, date)
        except ConnectionDropped:
            dropped = True
            raise
        finally:
            fields = {
                "time": format_iso(instant),
                "provider": self.runtime.provider.name,
                "operation": operation,
                "method": scope["method"],
                # The path alone: a query string or a header may carry a credential.
                "path": scope["path"],
                "status": status,
                "dropped": dropped,
                "duration_ms": round((perf_counter() - started) * 1000, 2),
                "fault": fault.describe() if fault else None,
            }
            ACCESS_LOG.info(
                "%s %s %s %s %s.%s %.2fms%s",
                fields["time"],
                fields["method"],
                fields["path"],
                "dropped" if dropped else (status or "-"),
                fields["provider"],
                operation,
                fields["duration_ms"],
                f" fault={fields['fault']}" if fault else "",
                extra={"access": fields},
            )

    async def _journaled(
        self,
        found: _Route,
        fault: Fault | None,
        drifts: list[Drift] | None,
        scope: Scope,
        receive: Receive,
        send: Send,
        date: HttpDate | None,
    ) -> None:
        """Answer, recording the request and its answer in the journal (when it is on)."""
        if not self.state.settings.journal:
            if fault is None and not drifts and date is not None:
                dated = _Dated(send, date)
                produced = await self._produce(found, scope, receive, dated.send)
                if produced is not None:
                    await self._respond(produced[0], produced[1], send, dated)
                return
            if date is not None:
                send = date.stamp(send)
            await self._answer(
                found, fault, scope, receive, _drifting(send, drifts) if drifts else send
            )
            return

        state = self.state
        journal = state.journal
        declared, chunked = _framing(scope["headers"])
        bodiless = declared is None and chunked is None
        if bodiless and fault is None and not drifts and not journal.shared:
            await self._sketched(found, scope, receive, send, date)
            return
        operation = found.operation
        started = perf_counter()
        entry = Entry(
            seq=journal.next_seq(),
            time=state.clock.now(),
            provider=self.runtime.provider.name,
            operation=operation,
            method=scope["method"],
            path=scope["path"],
            query=scope.get("query_string", b"").decode("latin-1"),
            raw_request_headers=scope["headers"],
            secret_headers=self.secret_headers,
            request_body=b"",
            request_size=0,
            fault=fault.describe() if fault else None,
            secret_fields=self.secret_fields,
            known_secrets=self.known_secrets,
            local_path=scope["path"][len(scope.get("root_path", "")) :] or "/",
            validator=self.validator_for(operation),
        )
        # On a shared store the entry is published before the answer's last part leaves, so
        # that a client that has its answer finds the request in the journal of any process.
        tap = _Tap(
            entry,
            declared,
            chunked,
            receive,
            send,
            state.settings.journal_body_bytes,
            date,
            journal.shared,
        )
        if not journal.shared:
            journal.record(entry)
        if fault is not None and fault.kind not in ("latency", "drop_after"):
            # The provider will not read what the client sent: read it now, while the server
            # still hands it over (once an answer is complete, it only reports a disconnect).
            await tap.read_unread()
        try:
            # A request without a body has nothing for the tap to keep of what it reads.
            tapped = receive if tap.body_done else tap.receive
            if fault is None and not drifts:
                produced = await self._produce(found, scope, tapped, tap.send)
                if produced is not None:
                    await self._respond(produced[0], produced[1], send, tap)
            else:
                # Drift applies before the tap, so the journal shows what the client received.
                await self._answer(
                    found, fault, scope, tapped, _drifting(tap.send, drifts) if drifts else tap.send
                )
        except ConnectionDropped:
            entry.dropped = True
            raise
        finally:
            if not tap.body_done:
                await tap.read_unread()
            tap.finish()
            entry.duration_ms = (perf_counter() - started) * 1000
            if journal.shared:
                with suppress(StoreUnavailable):  # the answer still leaves
                    await journal.publish(entry)
                await tap.release()

    async def _sketched(
        self, found: _Route, scope: Scope, receive: Receive, send: Send, date: HttpDate | None
    ) -> None:
        """Answer a request with no body, fault or drift, on a journal of this process's own:
        recorded as a sketch (its entry is made when the journal is read), which is also the
        way its answer leaves."""
        state = self.state
        started = perf_counter()
        sketch = _Sketch(self, found.operation, scope, state.journal.next_seq(), send, date)
        state.journal.sketch(sketch)
        try:
            produced = await self._produce(found, scope, receive, sketch.send)
            if produced is not None:
                await self._respond(produced[0], produced[1], send, sketch)
        finally:
            sketch.done((perf_counter() - started) * 1000)

    def validator_for(self, operation: str) -> Callable[[], SpecValidator] | None:
        """What checks a journal entry of ``operation`` against the spec (None: not checked)."""
        if self.state.settings.validate_requests and operation != SPEC_ROUTE:
            return self._validator
        return None

    async def _answer(
        self, found: _Route, fault: Fault | None, scope: Scope, receive: Receive, send: Send
    ) -> None:
        if fault is None:
            await self._app(found, scope, receive, send)
            return
        ctx = self.runtime.context
        provider = self.runtime.provider
        response: Response
        if fault.kind == "latency":
            await self.state.sleep(fault.latency_ms / 1000)
            await self._app(found, scope, receive, send)
            return
        if fault.kind in ("drop", "drop_after"):
            if fault.kind == "drop_after":
                await self._app(found, scope, receive, _discard)
            raise ConnectionDropped(f"{provider.name}.{fault.operation}")
        if fault.kind == "malformed":
            response = Response(MALFORMED_BODY, 200, media_type="application/json")
        elif fault.kind == "rate_limit":
            response = provider.rate_limited(fault.retry_after, ctx).response()
            response.headers.setdefault("retry-after", str(fault.retry_after))
        elif fault.kind == "status":
            response = provider.error_for_status(fault.status or 500, ctx).response()
        else:
            error = provider.error_named(fault.error or "")
            if error is None:  # pragma: no cover - validated when scheduled
                raise LookupError(fault.error)
            response = error.for_fault(ctx).response()
        await response(scope, receive, send)


class _Keeping:
    """An answer's way out that keeps what leaves (its status and headers, and at most
    ``journal_body_bytes`` of its body) and gives it the simulator's ``Date`` on its way;
    what keeps it is the subclass's (:meth:`_started`, :meth:`_keep`)."""

    __slots__ = ()
    _send: Send
    _date: HttpDate | None

    def _started(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        raise NotImplementedError

    def _keep(self, chunk: bytes | memoryview) -> None:
        raise NotImplementedError

    def _holds(self, message: Message) -> bool:
        """Whether the body's ``message`` waits instead of leaving now."""
        return False

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.body":
            chunk = message.get("body", b"")
            if chunk:
                self._keep(chunk)
            if self._holds(message):
                return
        elif kind == "http.response.start":
            headers = message.get("headers", [])
            self._started(message["status"], headers)
            if self._date is not None:
                message = self._date.dated(message, headers)
        await self._send(message)

    def whole(
        self, status: int, headers: list[tuple[bytes, bytes]], body: bytes | memoryview
    ) -> list[tuple[bytes, bytes]]:
        """Keep a whole answer, as :meth:`send` keeps its two messages; the headers to send
        (dated)."""
        self._started(status, headers)
        if body:
            self._keep(body)
        return headers if self._date is None else self._date.added(headers)


class _Tap(_Keeping):
    """One request's taps into the journal: what the client sent, and what it was answered.

    Its ``receive`` and ``send`` stand between the app and the server, keeping at most
    ``cap`` bytes of each body; ``send`` also gives the answer the simulator's ``Date``
    (when ``date`` is given) after the journal has seen it.
    """

    __slots__ = (
        "_date",
        "_receive",
        "_send",
        "body_done",
        "body_whole",
        "cap",
        "chunked",
        "declared",
        "entry",
        "held",
        "hold",
        "request",
        "response",
    )

    def __init__(
        self,
        entry: Entry,
        declared: str | None,
        chunked: bytes | None,
        receive: Receive,
        send: Send,
        cap: int,
        date: HttpDate | None,
        hold: bool = False,
    ) -> None:
        self.entry = entry
        # With ``hold``, the answer's last part (a whole answer: both its messages) waits in
        # ``held`` until :meth:`release`.
        self.hold = hold
        self.held: list[Message] = []
        self._receive = receive
        self._send = send
        self._date = date
        self.cap = cap
        self.request: bytes | bytearray = b""
        self.response: bytes | bytearray = b""
        # The body's framing (see :func:`_framing`).
        self.declared = declared
        self.chunked = chunked
        bodiless = declared is None and chunked is None
        self.body_done = bodiless  # nothing more of the body will come
        self.body_whole = bodiless  # the body's last part came

    async def receive(self) -> Message:
        message = await self._receive()
        kind = message["type"]
        if kind == "http.request":
            chunk = message.get("body", b"")
            if chunk:
                self.entry.request_size += len(chunk)
                self.request = _kept(self.request, chunk, self.cap)
            self.body_done = self.body_whole = not message.get("more_body", False)
        elif kind == "http.disconnect":
            if not self.body_whole:
                self.entry.disconnected = True  # the client left mid-upload
            self.body_done = True
        return message

    async def send(self, message: Message) -> None:
        if self.entry.disconnected:
            # Whatever the app answers a client that has left never reaches it: not recorded.
            await self._send(message)
            return
        await super().send(message)

    def _started(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.entry.status = status
        self.entry.raw_response_headers = headers

    def _keep(self, chunk: bytes | memoryview) -> None:
        self.entry.response_size += len(chunk)
        self.response = _kept(self.response, chunk, self.cap)

    def _holds(self, message: Message) -> bool:
        if self.hold and not message.get("more_body", False):
            self.held = [message]
            return True
        return False

    def whole(
        self, status: int, headers: list[tuple[bytes, bytes]], body: bytes | memoryview
    ) -> list[tuple[bytes, bytes]]:
        """As :meth:`_Keeping.whole`; with ``hold``, whoever sends it holds it whole until
        :meth:`release`. A client that has left: nothing recorded, nothing held."""
        if self.entry.disconnected:
            self.hold = False
            return headers if self._date is None else self._date.added(headers)
        return super().whole(status, headers, body)

    async def read_unread(self) -> None:
        """Read a body nobody read (a fault answered, or the handler had no use for it): it
        is still what the client sent, so keep it when it is small.

        A body declared no larger than the cap is read whole; one sent in chunks (no length
        declared) is read until it ends or passes the cap."""
        declared = self.declared
        if declared is not None:
            if declared.isdigit() and int(declared) <= self.cap:
                while not self.body_done:
                    await self.receive()
        elif self.chunked is not None:
            while self.entry.request_size <= self.cap and not self.body_done:
                await self.receive()

    def finish(self) -> None:
        """Keep the bodies in the entry (once the body nobody read was read, if small)."""
        self.entry.request_body = bytes(self.request)
        self.entry.response_body = bytes(self.response)
        # A body that did not all arrive is not judged (it is not what the client sent).
        self.entry.body_seen = self.body_whole

    async def release(self) -> None:
        """Send what was held back until the entry was published."""
        held, self.held = self.held, []
        for message in held:
            await self._send(message)


class _Sketch(_Keeping):
    """A request with no body, fault or drift, on a journal of this process's own: the
    journal's sketch of it (the parts at hand; its :class:`~simulator.journal.Entry` is made
    when the journal is read, see :meth:`entry`), and its answer's way out, as a
    :class:`_Tap` is (at most ``journal_body_bytes`` of the body kept; the answer dated)."""

    __slots__ = (
        "_date",
        "_send",
        "body",
        "duration_ms",
        "gateway",
        "headers",
        "method",
        "operation",
        "packed",
        "path",
        "query",
        "request_headers",
        "root",
        "seq",
        "size",
        "status",
        "time",
    )

    def __init__(
        self,
        gateway: Gateway,
        operation: str,
        scope: Scope,
        seq: int,
        send: Send,
        date: HttpDate | None,
    ) -> None:
        self.gateway = gateway
        self.operation = operation
        self.seq = seq
        self.time = gateway.state.clock.now()
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.query: bytes = scope.get("query_string", b"")
        self.root: str = scope.get("root_path", "")
        self.request_headers: list[tuple[bytes, bytes]] = scope["headers"]
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: bytes | bytearray = b""
        self.size = 0
        self.duration_ms: float | None = None
        self.packed = b""  # the request's parts, once answered (see :meth:`done`)
        self._send = send
        self._date = date

    @property
    def answered(self) -> bool:
        return self.duration_ms is not None

    def _started(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.status = status
        self.headers = headers

    def _keep(self, chunk: bytes | memoryview) -> None:
        self.size += len(chunk)
        self.body = _kept(self.body, chunk, self.gateway.state.settings.journal_body_bytes)

    def done(self, duration_ms: float) -> None:
        """The answer is done: nothing more leaves (the server's ``send`` is let go of), and
        the request's parts are packed into one object.

        A ring of a thousand sketches would otherwise hold some twenty thousand small objects
        (each header a tuple of two bytes), each freed a thousand requests later, long out of
        every cache: packing them while they are fresh costs less than freeing them then."""
        self.duration_ms = duration_ms
        del self._send
        parts = (self.path, self.query, self.root, self.request_headers, self.headers)
        self.packed = marshal.dumps(parts, 2)
        self.path = self.root = ""
        self.query = b""
        self.request_headers = self.headers = []

    def entry(self) -> Entry:
        gateway = self.gateway
        if self.packed:
            path, query, root, request_headers, headers = marshal.loads(self.packed)
        else:
            path, query, root = self.path, self.query, self.root
            request_headers, headers = self.request_headers, self.headers
        return Entry(
            seq=self.seq,
            time=self.time,
            provider=gateway.runtime.provider.name,
            operation=self.operation,
            method=self.method,
            path=path,
            query=query.decode("latin-1"),
            raw_request_headers=request_headers,
            secret_headers=gateway.secret_headers,
            request_body=b"",
            request_size=0,
            status=self.status,
            response_size=self.size,
            raw_response_headers=headers,
            response_body=bytes(self.body),
            secret_fields=gateway.secret_fields,
            known_secrets=gateway.known_secrets,
            local_path=path[len(root) :] or "/",
            validator=gateway.validator_for(self.operation),
            duration_ms=self.duration_ms,
        )


class _Dated:
    """An answer's way out when the journal is off: the simulator's ``Date`` added (an
    outlet as :class:`_Tap` is, recording nothing)."""

    __slots__ = ("_date", "_send")

    def __init__(self, send: Send, date: HttpDate) -> None:
        self._send = send
        self._date = date

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            message = self._date.dated(message, message.get("headers", []))
        await self._send(message)

    def whole(
        self, status: int, headers: list[tuple[bytes, bytes]], body: bytes | memoryview
    ) -> list[tuple[bytes, bytes]]:
        return self._date.added(headers)


_Outlet = _Tap | _Sketch | _Dated


def _framing(headers: list[tuple[bytes, bytes]]) -> tuple[str | None, bytes | None]:
    """A request's body framing: its declared length and its transfer encoding, each None
    when the request names none (a request that names neither has no body)."""
    declared: str | None = None
    chunked: bytes | None = None
    for key, value in headers:
        name = key.lower()
        if name == b"content-length":
            declared = value.decode("latin-1").strip()
        elif name == b"transfer-encoding":
            chunked = value
    return declared, chunked


def _kept(kept: bytes | bytearray, chunk: bytes | memoryview, cap: int) -> bytes | bytearray:
    """``kept`` and as much of ``chunk`` as fits in ``cap`` bytes (a first chunk is kept as it
    is when it fits, else its first ``cap`` bytes are copied once)."""
    room = cap - len(kept)
    if room <= 0:
        return kept
    if not kept:
        if len(chunk) <= room and isinstance(chunk, bytes):
            return chunk
        return _cut(chunk, room)
    grown = kept if isinstance(kept, bytearray) else bytearray(kept)
    grown.extend(chunk[:room])
    return grown


# The last body cut short to keep, how short, and its cut. A page a provider keeps once it
# can no longer change (HelloAtlas's finished pages, Check's settled results) is answered as
# the same bytes object every time it is asked for: it is cut once, not at every answer.
_last_cut: tuple[bytes | memoryview, int, bytes] = (b"", 0, b"")


def _cut(chunk: bytes | memoryview, room: int) -> bytes:
    """The first ``room`` bytes of ``chunk``, longer than that."""
    global _last_cut
    last, last_room, cut = _last_cut
    if chunk is last and room == last_room:
        return cut
    cut = bytes(chunk[:room])
    if isinstance(chunk, bytes):  # a buffer that may change is never taken for the same
        _last_cut = (chunk, room, cut)
    return cut


async def _discard(message: Message) -> None:
    """The answer of a request whose connection is about to drop: it never leaves."""


def _drifting(send: Send, drifts: list[Drift]) -> Send:
    """Hold back a successful JSON answer and change it as the drift settings say."""
    start: Message = {}
    body = bytearray()

    async def drifted_send(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = dict(message)
            return
        body.extend(message.get("body", b""))
        if message.get("more_body", False):
            return
        status, content = start["status"], bytes(body)
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        is_json = any(k.lower() == b"content-type" and b"json" in v for k, v in headers)
        if 200 <= status < 300 and is_json:
            status, content = _apply_drifts(status, content, drifts)
        headers.append((b"content-length", str(len(content)).encode()))
        await send({**start, "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    return drifted_send


def _apply_drifts(status: int, content: bytes, drifts: list[Drift]) -> tuple[int, bytes]:
    document = json.loads(content)
    for drift in drifts:
        if drift.kind == "status":
            status = int(drift.value)
            continue
        *parents, leaf = drift.value.split(".")
        holder = document
        for part in parents:
            holder = holder.get(part) if isinstance(holder, dict) else None
        if isinstance(holder, dict):
            holder.pop(leaf, None)
    return status, json.dumps(document, separators=(",", ":")).encode()
