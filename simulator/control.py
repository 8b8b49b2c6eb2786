"""The control plane under ``/_sim``: JSON in, JSON out.

=======================  =====================================================================
``GET /_sim/health``     liveness, the clock, the served providers and the answering pid
``GET /_sim/providers``  each provider's name, base path and URL, spec URL, test credentials,
                         operations, error catalogue and options
``POST /_sim/reset``     back to the fresh state, faults cleared (``?provider=NAME`` for one;
                         resetting all clears the journal too)
``GET /_sim/clock``      the clock's kind and current instant
``POST /_sim/clock/advance``  ``{"seconds": N}``
``POST /_sim/clock/set``      ``{"now": "2026-01-01T00:00:00Z"}``
``GET|POST|DELETE /_sim/faults``  list, schedule, clear (``?provider=NAME``) faults
``GET|DELETE /_sim/journal``      recorded traffic (filters ``provider``, ``operation``,
                                  ``since``: a sequence number or an ISO instant, ``tail``:
                                  the last N), clear
``GET|POST /_sim/options``        provider options; POST ``{"provider", "options": {...}}``
``GET|POST /_sim/snapshot``       the whole state as JSON; POST loads one (from any backend)
``GET|POST /_sim/sandboxes``      list the live sandboxes; create one (``{"name", "seed",
                                  "clock", "start", "options", "scenario"}``, all
                                  optional): 201
``GET /_sim/scenario.schema.json``  the JSON Schema of a scenario
``GET|DELETE /_sim/sandboxes/ID`` one sandbox; delete it and all it holds
``GET /_sim/webhooks``            every webhook delivery attempt (event, target, attempt, status,
                                  latency, error, signature header), oldest first
``POST /_sim/webhooks/ID/resend`` send event ID again now
``GET|POST /_sim/providers/check/webhook-endpoints``  Check's webhook endpoints: list, register
                                  one (``{"organisation"|"key", "url", "events"}``): 201
``DELETE /_sim/providers/check/webhook-endpoints/ID``  forget one and its events to come
``POST|GET /_sim/sink/NAME``      a built-in receiver: records what it is sent (``?status=N``
                                  answers N), lists it
``/_sim/sandboxes/ID/...``        every call above, on that sandbox (``default``: this one)
=======================  =====================================================================

When a control token is set (always, when bound to a non-loopback address), every call must
carry it as ``Authorization: Bearer <token>`` or ``X-Bulksim-Token: <token>`` (except a
POST to a sink, which is where webhooks arrive).

A call that needs a store that cannot be reached (a lost Redis) answers 503
``{"error": "store unavailable: ..."}``, and works again once the store is back.

Moving a clock (advance or set) delivers every webhook that falls due by the new instant,
in time order, before it answers (see :mod:`simulator.webhooks`).
"""

from __future__ import annotations

import hmac
import json
import math
import os
import re
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from simulator.clock import check_instant, format_iso, parse_iso
from simulator.faults import FaultError, FaultPlanFull
from simulator.sandboxes import SandboxError, Sandboxes, parse_spec, unknown_sandbox
from simulator.scenarios import schema
from simulator.settings import SettingsError
from simulator.state import SimulatorState, SnapshotError
from simulator.store import StoreUnavailable, Table
from simulator.webhooks import Deliveries

__all__ = ["control_app"]


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _state(request: Request) -> SimulatorState:
    state: SimulatorState = request.app.state.sim
    token = state.settings.control_token
    if token:
        given = request.headers.get("x-bulksim-token") or ""
        scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            given = given or bearer
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise ControlError(401, "control plane token required (X-Bulksim-Token)")
    return state


# Nesting beyond this in a control body is refused: no control call needs more, and decoding
# or walking a deeper one could exhaust the interpreter's stack.
MAX_DEPTH = 64


async def _body(request: Request, limit: int | None = None) -> bytes:
    """The request body, read as it streams and never more than ``limit`` bytes (the
    ``control_body_bytes`` setting by default): 413 beyond it."""
    if limit is None:
        limit = request.app.state.sim.settings.control_body_bytes
    declared = request.headers.get("content-length", "")
    too_large = ControlError(413, f"body too large: a control call takes at most {limit} bytes")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > limit:
            raise too_large
    return bytes(received)


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _depth(value: object) -> int:
    """How deeply ``value`` nests (without recursion: the body may be deep)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            break
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        stack.extend((child, level + 1) for child in children)
    return deepest


async def _json_object(request: Request, limit: int | None = None) -> dict[str, Any]:
    raw = await _body(request, limit)
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise ControlError(400, f"body nests deeper than {MAX_DEPTH} levels") from None
    except ValueError:
        raise ControlError(400, "body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ControlError(400, "body must be a JSON object")
    if _depth(body) > MAX_DEPTH:
        raise ControlError(400, f"body nests deeper than {MAX_DEPTH} levels")
    return body


def _provider_param(request: Request, state: SimulatorState) -> str | None:
    name = request.query_params.get("provider") or None
    if name is not None and name not in state.runtimes:
        raise ControlError(404, f"unknown provider {name!r}; known: {', '.join(state.runtimes)}")
    return name


def origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


async def health(request: Request) -> Response:
    state = _state(request)
    return JSONResponse(
        {
            "status": "ok",
            # Which process answered (several serve one port with --workers).
            "pid": os.getpid(),
            "providers": list(state.runtimes),
            "clock": _clock_body(state),
            "time_scale": state.settings.time_scale,
        }
    )


async def providers(request: Request) -> Response:
    state = _state(request)
    base = origin(request)
    listing = []
    for name, runtime in state.runtimes.items():
        provider = runtime.provider
        listing.append(
            {
                "name": name,
                "title": provider.title,
                "base_path": f"{state.base_path}{provider.mount}",
                "base_url": f"{base}{state.base_path}{provider.mount}",
                "spec_url": f"{base}{state.base_path}{provider.mount}/openapi.json",
                "credentials": provider.credentials(runtime.context),
                "operations": provider.operations(),
                "errors": [e.__name__ for e in provider.errors],
                "options": asdict(runtime.context.options),
            }
        )
    return JSONResponse({"providers": listing})


async def reset(request: Request) -> Response:
    """Fresh state: seeded examples back, no faults (and, for all providers, no journal)."""
    state = _state(request)
    provider = _provider_param(request, state)
    names = await state.reset(provider)
    await state.faults.remove(provider)
    if provider is None:
        await state.journal.wipe()
    await state.sync()
    return JSONResponse({"reset": names})


def _clock_body(state: SimulatorState) -> dict[str, object]:
    now = state.clock.now()
    return {
        "kind": state.clock.kind,
        "now": format_iso(now),
        "epoch_ms": math.floor(now.timestamp() * 1000),
    }


async def clock(request: Request) -> Response:
    return JSONResponse(_clock_body(_state(request)))


async def clock_advance(request: Request) -> Response:
    state = _state(request)
    seconds = (await _json_object(request)).get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise ControlError(400, "seconds must be a non-negative number")
    if not math.isfinite(seconds) or seconds > 100 * 365 * 86400:
        raise ControlError(400, "seconds must be at most 100 years")
    try:
        check_instant(state.clock.now() + timedelta(seconds=seconds))
    except (ValueError, OverflowError) as exc:
        raise ControlError(400, f"cannot advance by {seconds} seconds: {exc}") from None
    state.clock.advance(timedelta(seconds=seconds))
    await state.sync()
    await _deliver(request, state)
    return JSONResponse(_clock_body(state))


async def clock_set(request: Request) -> Response:
    state = _state(request)
    now = (await _json_object(request)).get("now")
    if not isinstance(now, str):
        raise ControlError(400, 'now must be an ISO-8601 instant, e.g. "2026-01-01T00:00:00Z"')
    try:
        instant = parse_iso(now)
    except ValueError:
        raise ControlError(400, f"now is not an ISO-8601 instant: {now!r}") from None
    try:
        check_instant(instant)
    except ValueError as exc:
        raise ControlError(400, f"now={now!r}: {exc}") from None
    state.clock.set(instant)
    await state.sync()
    await _deliver(request, state)
    return JSONResponse(_clock_body(state))


def _deliveries(request: Request) -> Deliveries:
    deliveries: Deliveries | None = request.app.state.deliveries
    if deliveries is None:
        raise ControlError(404, "webhooks are not delivered by this app")
    return deliveries


async def _deliver(request: Request, state: SimulatorState) -> None:
    """Every webhook due by the clock's new instant, sent before the move is answered."""
    if request.app.state.deliveries is not None:
        await _deliveries(request).deliver_due(state)


async def webhooks(request: Request) -> Response:
    """Every recorded delivery attempt, oldest first."""
    state = _state(request)
    return JSONResponse({"attempts": await _deliveries(request).attempts(state)})


async def webhook_resend(request: Request) -> Response:
    state = _state(request)
    event_id = request.path_params["event"]
    event = await _deliveries(request).resend(state, event_id)
    if event is None:
        raise ControlError(404, f"no webhook event {event_id!r} (GET /_sim/webhooks lists them)")
    return JSONResponse({"resent": event_id, "target": event.target})


def _check(request: Request) -> Any:
    runtime = _state(request).runtimes.get("check")
    if runtime is None:
        raise ControlError(404, "Check is not served by this app")
    return runtime.context


async def check_webhook_endpoints(request: Request) -> Response:
    """Check's webhook endpoints (its dashboard setting): GET lists, POST registers one."""
    ctx = _check(request)
    from simulator.providers.check import endpoints as check_endpoints  # loaded with Check

    try:
        if request.method == "POST":
            made = await check_endpoints.register(ctx, await _json_object(request))
            return JSONResponse(made.as_json(), status_code=201)
        listed = await check_endpoints.listing(ctx.store)
    except check_endpoints.EndpointError as exc:
        raise ControlError(exc.status, exc.message) from None
    return JSONResponse({"endpoints": [e.as_json() for e in listed]})


async def check_webhook_endpoint(request: Request) -> Response:
    endpoint_id = request.path_params["endpoint"]
    ctx = _check(request)
    from simulator.providers.check import endpoints as check_endpoints  # loaded with Check

    if not await check_endpoints.remove(ctx.store, endpoint_id):
        raise ControlError(404, f"no webhook endpoint {endpoint_id!r}")
    return JSONResponse({"deleted": endpoint_id})


@dataclass(frozen=True, slots=True)
class SinkEntry:
    """One request a sink received."""

    at: str
    method: str
    headers: dict[str, str]
    body: str


SINK_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
SINK_KEPT = 1000


async def sink(request: Request) -> Response:
    """A receiver for clients that only need a URL: POST records (and answers ``?status=N``,
    200 by default); GET lists what it received, oldest first."""
    state: SimulatorState = request.app.state.sim
    name = request.path_params["name"]
    if not SINK_NAME.fullmatch(name):
        raise ControlError(400, "a sink's name is 1 to 64 letters, digits, '.', '_' or '-'")
    ring = Table(f"sink/{name}", SinkEntry)
    view = state.store.scoped("_sim", now=state.clock.now)
    if request.method == "GET":
        _state(request)
        received = await view.recent(ring)
        return JSONResponse({"name": name, "received": [asdict(e) for _, e in received]})
    status_text = request.query_params.get("status", "200")
    if not status_text.isdigit() or not 200 <= int(status_text) <= 599:
        raise ControlError(400, "status must be an HTTP status from 200 to 599")
    body = await _body(request)
    entry = SinkEntry(
        format_iso(state.clock.now()),
        request.method,
        dict(request.headers),
        body.decode("utf-8", errors="replace"),
    )
    await view.push(ring, entry, size=SINK_KEPT)
    return JSONResponse({"received": True}, status_code=int(status_text))


async def faults(request: Request) -> Response:
    state = _state(request)
    if request.method == "POST":
        spec = await _json_object(request)
        try:
            fault = await state.faults.add(spec, state.operations(), state.error_names())
        except FaultPlanFull as exc:
            raise ControlError(409, str(exc)) from None
        except FaultError as exc:
            raise ControlError(400, str(exc)) from None
        await state.sync()  # every process sees it before this answer leaves
        return JSONResponse(fault.as_dict(), status_code=201)
    provider = _provider_param(request, state)
    if request.method == "DELETE":
        cleared = await state.faults.remove(provider)
        await state.sync()
        return JSONResponse({"cleared": cleared})
    return JSONResponse({"faults": [f.as_dict() for f in state.faults.list(provider)]})


async def journal(request: Request) -> Response:
    state = _state(request)
    if request.method == "DELETE":
        return JSONResponse({"cleared": await state.journal.wipe()})
    await state.journal.refresh()
    params = request.query_params
    since_text = params.get("since")
    since = None
    if since_text:
        try:
            since = int(since_text) if since_text.isdigit() else parse_iso(since_text)
        except ValueError:
            raise ControlError(400, "since must be a sequence number or an ISO instant") from None
    tail_text = params.get("tail", "")
    if tail_text and not tail_text.isdigit():
        raise ControlError(400, "tail must be a whole number")
    entries = state.journal.select(
        provider=_provider_param(request, state),
        operation=params.get("operation") or None,
        since=since,
        tail=int(tail_text) if tail_text else None,
    )
    listing = await state.journal.listing(entries, state.journal.size)  # off the event loop
    return Response(listing, media_type="application/json")


async def options(request: Request) -> Response:
    """GET: every provider's options; POST ``{"provider": ..., "options": {...}}``: change some."""
    state = _state(request)
    if request.method == "POST":
        body = await _json_object(request)
        name = body.get("provider")
        changes = body.get("options")
        if not isinstance(name, str) or name not in state.runtimes:
            raise ControlError(400, f"provider must be one of {', '.join(state.runtimes)}")
        if not isinstance(changes, dict) or not changes:
            raise ControlError(400, 'options must be an object, e.g. {"processing_seconds": 5}')
        raw = {str(k): _option_text(v) for k, v in changes.items()}
        try:
            state.set_options(name, raw)
        except SettingsError as exc:
            raise ControlError(400, str(exc)) from None
        await state.sync()
    return JSONResponse({name: asdict(rt.context.options) for name, rt in state.runtimes.items()})


async def snapshot(request: Request) -> Response:
    """GET: the whole state (store, clock, options) as JSON; POST: load one in its place."""
    state = _state(request)
    if request.method == "POST":
        try:
            limit = state.settings.snapshot_body_bytes
            await state.restore(await _json_object(request, limit))
        except SnapshotError as exc:
            raise ControlError(400, str(exc)) from None
        return JSONResponse({"restored": list(state.runtimes)})
    return JSONResponse(await state.snapshot())


def _option_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise ControlError(400, f"option values must be strings, numbers or booleans, not {value!r}")


def _sandboxes(request: Request) -> Sandboxes:
    _state(request)
    sandboxes: Sandboxes = request.app.state.sandboxes
    return sandboxes


async def sandboxes(request: Request) -> Response:
    """GET: the default and every live sandbox; POST: create one (201)."""
    registry = _sandboxes(request)
    base = origin(request)
    if request.method == "POST":
        spec = parse_spec(await _json_object(request))
        sandbox = await registry.create(spec)
        return JSONResponse(sandbox.describe(base), status_code=201)
    listing = registry.listing()
    return JSONResponse(
        {
            "cap": registry.cap,
            "idle_seconds": registry.idle_seconds,
            "live": len(listing) - 1,
            "sandboxes": [s.describe(base) for s in listing],
        }
    )


async def sandbox(request: Request) -> Response:
    """GET: one sandbox; DELETE: forget it and clear its store."""
    registry = _sandboxes(request)
    sandbox_id = request.path_params["sandbox"]
    if request.method == "DELETE":
        if not await registry.delete(sandbox_id):
            return unknown_sandbox(sandbox_id)
        return JSONResponse({"deleted": sandbox_id})
    found = registry.get(sandbox_id)
    if found is None:
        return unknown_sandbox(sandbox_id)
    return JSONResponse(found.describe(origin(request)))


class _SandboxControl:
    """``/_sim/sandboxes/<id>/...``: that sandbox's own control plane (these handlers,
    bound to its state)."""

    def __init__(self, registry: Sandboxes) -> None:
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sandbox_id = scope["path_params"]["sandbox"]
        found = self.registry.get(sandbox_id)
        if found is None:
            await unknown_sandbox(sandbox_id)(scope, receive, send)
            return
        await found.served.control(scope, receive, send)


CHECK_ENDPOINTS = "/providers/check/webhook-endpoints"
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
JSON_TYPE = re.compile(r"application/(?:[\w.+-]+\+)?json", re.IGNORECASE)


def refusal(request: Request, state: SimulatorState) -> ControlError | None:
    """Why a web page must not drive the control plane with this request, if it must not.

    - Without a control token, the ``Host`` must name the address the request reached, the
      bound one or localhost: a page served from another name that resolves here (DNS
      rebinding) is refused (403).
    - An ``Origin`` other than the control plane's own (a page on another site) is refused
      (403).
    - A POST carries JSON or nothing: a ``text/plain`` or form body, which any page can send
      without asking, is refused (415). Sinks are exempt: they record whatever arrives.
    """
    if not state.settings.control_token:
        host = (request.url.hostname or "").lower()
        server = request.scope.get("server")
        allowed = {*LOCAL_HOSTS, state.settings.host.lower()}
        if server:
            allowed.add(str(server[0]).lower())
        if host not in allowed:
            return ControlError(
                403, f"host {host!r} is not this server's address; use localhost or a token"
            )
    given = request.headers.get("origin")
    if given is not None and given.rstrip("/").lower() != origin(request).lower():
        return ControlError(403, f"requests from origin {given!r} are refused")
    if request.method == "POST" and not request.url.path.startswith(
        f"{request.scope.get('root_path', '')}/sink/"
    ):
        media = request.headers.get("content-type", "").partition(";")[0].strip()
        has_body = request.headers.get("content-length", "0") != "0" or (
            "transfer-encoding" in request.headers
        )
        if (media or has_body) and not JSON_TYPE.fullmatch(media):
            return ControlError(
                415, "a control call's body must be JSON (Content-Type: application/json)"
            )
    return None


class _Guard:
    """Applies :func:`refusal` before any control call is handled."""

    def __init__(self, app: ASGIApp, state: SimulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refused = refusal(Request(scope), self.state)
            if refused is not None:
                response = JSONResponse({"error": refused.message}, status_code=refused.status)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _control_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ControlError)
    return JSONResponse({"error": exc.message}, status_code=exc.status)


async def _sandbox_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SandboxError)
    return JSONResponse({"error": exc.message}, status_code=exc.status)


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    # The store's backend is away (a lost Redis): say so, until it is back.
    return JSONResponse({"error": f"store unavailable: {exc}"}, status_code=503)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def scenario_schema(request: Request) -> Response:
    """The JSON Schema a scenario is checked against."""
    _state(request)
    return JSONResponse(schema())


def control_app(
    state: SimulatorState,
    registry: Sandboxes | None = None,
    deliveries: Deliveries | None = None,
) -> Starlette:
    """The ``/_sim`` sub-app over ``state``; with ``registry``, also ``/_sim/sandboxes``;
    with ``deliveries``, webhooks are sent when the clock moves."""
    routes: list[BaseRoute] = []
    if registry is not None:
        routes = [
            Route("/sandboxes", sandboxes, methods=["GET", "POST"]),
            Route("/sandboxes/{sandbox}", sandbox, methods=["GET", "DELETE"]),
            Mount("/sandboxes/{sandbox}", _SandboxControl(registry)),
        ]
    app = Starlette(
        routes=[
            *routes,
            Route("/health", health, methods=["GET"]),
            Route("/providers", providers, methods=["GET"]),
            Route("/reset", reset, methods=["POST"]),
            Route("/clock", clock, methods=["GET"]),
            Route("/clock/advance", clock_advance, methods=["POST"]),
            Route("/clock/set", clock_set, methods=["POST"]),
            Route("/faults", faults, methods=["GET", "POST", "DELETE"]),
            Route("/journal", journal, methods=["GET", "DELETE"]),
            Route("/options", options, methods=["GET", "POST"]),
            Route("/snapshot", snapshot, methods=["GET", "POST"]),
            Route("/webhooks", webhooks, methods=["GET"]),
            Route(CHECK_ENDPOINTS, check_webhook_endpoints, methods=["GET", "POST"]),
            Route(f"{CHECK_ENDPOINTS}/{{endpoint}}", check_webhook_endpoint, methods=["DELETE"]),
            Route("/webhooks/{event}/resend", webhook_resend, methods=["POST"]),
            Route("/sink/{name}", sink, methods=["GET", "POST", "PUT"]),
            Route("/scenario.schema.json", scenario_schema, methods=["GET"]),
        ],
        middleware=[Middleware(_Guard, state=state)],
        exception_handlers={
            ControlError: _control_error,
            SandboxError: _sandbox_error,
            HTTPException: _http_error,
            StoreUnavailable: _store_unavailable,
        },
    )
    app.router.redirect_slashes = False
    app.state.sim = state
    app.state.sandboxes = registry
    app.state.deliveries = deliveries
    return app
