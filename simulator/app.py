"""``create_app``: the Starlette app that serves every provider and the control plane."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from functools import partial

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from simulator.clock import Clock, ManualClock, SystemClock, wall_clock_now
from simulator.control import control_app
from simulator.dashboard import FindingsSource, dashboard_routes
from simulator.gateway import SPEC_ROUTE, Gateway, HttpDate
from simulator.ids import IdFactory
from simulator.kit.errors import ProviderError
from simulator.kit.provider import Provider, ProviderApp, ProviderRuntime
from simulator.providers import PROVIDERS, ProviderLoadError, Registered
from simulator.sandboxes import CONTROL_PATH as SANDBOX_CONTROL_PATH
from simulator.sandboxes import PATH as SANDBOX_PATH
from simulator.sandboxes import Sandbox, Sandboxes, Served, unknown_sandbox
from simulator.settings import Settings, SettingsError
from simulator.state import SimulatorState, Sleep
from simulator.store import Store, StoreError, StoreUnavailable, open_store
from simulator.webhooks import Deliveries

_log = logging.getLogger("bulksim")

# Where a sandbox's id starts in its providers' paths.
_SANDBOX_ID = len(SANDBOX_PATH)

__all__ = ["available_providers", "create_app", "make_clock", "provider_names"]


def make_clock(settings: Settings) -> Clock:
    """The clock ``settings`` ask for."""
    if settings.clock == "manual":
        return ManualClock(settings.start or wall_clock_now())
    return SystemClock()


def store_of(settings: Settings) -> Store:
    """The store ``settings.store`` names, opened; a URL that cannot be used fails in one line."""
    try:
        return open_store(settings.store)
    except StoreError as exc:
        raise SettingsError(str(exc)) from None


def available_providers() -> tuple[Provider, ...]:
    """Every provider bulksim can serve, in registry order (``simulator/providers``): their
    records, each provider's package loaded (an app loads only those it needs, when it
    needs them)."""
    return tuple(entry.load() for entry in PROVIDERS)


def provider_names() -> tuple[str, ...]:
    """The name of every provider bulksim can serve, in registry order, loading none."""
    return tuple(entry.name for entry in PROVIDERS)


def select_providers(
    available: Sequence[Provider | Registered], names: Sequence[str]
) -> list[Provider | Registered]:
    """The providers named (all when none is), in registry order; unknown names fail."""
    known = {p.name: p for p in available}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SettingsError(f"unknown provider {unknown[0]!r}; known: {', '.join(known)}")
    return [p for p in available if not names or p.name in names]


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    ids: IdFactory | None = None,
    providers: Sequence[Provider | Registered] | None = None,
    sleep: Sleep | None = None,
    store: Store | None = None,
    findings: FindingsSource | None = None,
) -> Starlette:
    """Build the simulator.

    ``clock``, ``ids`` and ``sleep`` are injected so that tests run on a manual clock with a
    fixed seed and never wait; by default they follow ``settings``. ``store`` is where the
    providers keep their records (by default the one ``settings.store`` names, a fresh
    :class:`~simulator.store.MemoryStore` unless it says otherwise);
    two apps handed the same store and seed share their records, ids and token keys.
    ``findings`` judges a client's behaviour on the journal's rows for the dashboard (the
    harness's checks, handed down by the layer above; without it the dashboard shows spec
    violations only). ``app.state.sim`` is the :class:`~simulator.state.SimulatorState`.
    """
    settings = (settings or Settings()).checked()
    available: Sequence[Provider | Registered] = PROVIDERS if providers is None else providers
    chosen = select_providers(available, settings.providers)
    state = SimulatorState(
        settings=settings,
        clock=clock or make_clock(settings),
        ids=ids or IdFactory(settings.seed, stream=settings.id_stream),
        providers=chosen,
        store=store if store is not None else store_of(settings),
    )
    if sleep is not None:
        state.sleep = sleep
    deliveries = Deliveries(settings)

    def serve(served: SimulatorState) -> Served:
        date = HttpDate(served.clock)
        control = control_app(served, sandboxes if served is state else None, deliveries)
        # Each gateway dates its answer itself, after the journal has seen it.
        # Each provider's gateway is built on its first request (its package loaded then).
        mounts: dict[str, ASGIApp] = {}
        for name in served.runtimes:
            mounts[f"/{name}"] = _Deferred(served, name, date, mounts)
        return Served(mounts, control, date.stamp)

    sandboxes = Sandboxes(state, serve)
    app = SimulatorApp(
        sandboxes, dashboard_routes(state, sandboxes, deliveries, findings=findings), deliveries
    )
    deliveries.app = app
    sandboxes.app = app
    app.state.sim = state
    app.state.sandboxes = sandboxes
    app.state.deliveries = deliveries  # the harness mounts in-process webhook receivers on it
    return app


class SimulatorApp(Starlette):
    """The simulator's root: a provider's requests go straight to its gateway by prefix.

    The default sandbox's providers are at ``/<provider>``, another sandbox's at
    ``/sandboxes/<id>/<provider>`` (``/sandboxes/default/...`` is the default's too): the
    sandbox's prefix joins the ASGI ``root_path``, so the URLs a provider writes into its
    bodies point back into the same sandbox. The control plane, the dashboard, a single
    provider served at the root, and every path no provider owns go through Starlette's
    router (whose 404 names the providers). Dispatching by prefix keeps one routing layer
    off every provider call (and the dashboard out of it entirely), and a path holding a
    newline (which ``Mount``'s pattern does not match) still reaches its provider. Every
    answer carries ``Date`` from its sandbox's clock.
    """

    def __init__(
        self,
        sandboxes: Sandboxes,
        dashboard: Sequence[BaseRoute] = (),
        deliveries: Deliveries | None = None,
    ) -> None:
        served = sandboxes.default.served
        routes: list[BaseRoute] = [*dashboard, Mount("/_sim", served.control)]
        if len(served.gateways) == 1:
            # One provider served alone also answers at the root, as the real host does.
            (alone,) = served.gateways.values()
            routes.append(Mount("", alone))
        super().__init__(
            routes=routes,
            exception_handlers={HTTPException: _root_http_error},
            lifespan=None if deliveries is None else partial(_delivering, deliveries, sandboxes),
        )
        self.router.redirect_slashes = False
        self.sandboxes = sandboxes
        self.sim = sandboxes.default.state
        self.prefixes = served.gateways
        self.stamp = served.stamp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        if self.sim.sharing:
            await self._shared(scope, receive, send)
            return
        await self._answer(scope, receive, send)

    async def _shared(self, scope: Scope, receive: Receive, send: Send) -> None:
        """On a shared store: the clock and options as the store holds them, before and after
        (a change made while answering) each request.

        A store that cannot be reached is answered by the provider's own 503 when the request
        reaches it; the sync around it is skipped, not turned into a traceback."""
        query = scope.get("query_string", b"").decode("latin-1")
        with suppress(StoreUnavailable):
            await self.sim.sync(f"{scope['method']} {scope['path']}?{query}")
        try:
            await self._answer(scope, receive, send)
        finally:
            self.sim.answered()
        with suppress(StoreUnavailable):
            await self.sim.synced_after()

    def _answer(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """An HTTP request's answer, to await: a default sandbox's provider's request goes
        straight to its gateway (whose call is returned as it is: a poll makes no coroutine
        of the app's own beyond ``__call__``), any other to :meth:`_elsewhere`."""
        root = scope.get("root_path", "")
        path = scope["path"]
        path = path[len(root) :] if root and path.startswith(root) else path
        gateway = _mounted(self.prefixes, scope, root, path)
        if gateway is not None:
            return gateway(scope, receive, send)
        return self._elsewhere(scope, receive, send, root, path)

    async def _elsewhere(
        self, scope: Scope, receive: Receive, send: Send, root: str, path: str
    ) -> None:
        """An HTTP request for none of the default sandbox's providers (at ``path`` under
        ``root``): another sandbox's, the control plane's, the dashboard's, or a 404."""
        if path.startswith(SANDBOX_PATH):
            # Resolved in line (one dict lookup on a store of this process's own): a poll in
            # a sandbox costs what one in the default does.
            sandboxes = self.sandboxes
            sandbox_id = path[_SANDBOX_ID:].partition("/")[0]
            if sandboxes.sharing:
                sandbox = await sandboxes.find(sandbox_id)
            else:
                sandbox = sandboxes.get(sandbox_id)
            if sandbox is None:
                await unknown_sandbox(sandbox_id)(scope, receive, send)
                return
            # ``/sandboxes/default/...`` is the default's (whose own base path is "").
            end = _SANDBOX_ID + len(sandbox_id)
            base, inner = path[:end], path[end:]
            gateway = _mounted(sandbox.served.gateways, scope, root + base, inner)
            if gateway is not None:
                await gateway(scope, receive, send)
            else:
                await self._outside_providers(sandbox, scope, receive, send, root, path)
            if sandboxes.sharing:
                await sandboxes.after(sandbox)
            return
        if self.sandboxes.sharing and path.startswith(SANDBOX_CONTROL_PATH):
            # Another process may have made (or deleted) the sandbox: as the store says.
            found = await self.sandboxes.before_control(path)
            await super().__call__(scope, receive, self.stamp(send))
            if found is not None:
                await self.sandboxes.after(found)
            return
        send = self.stamp(send)
        await super().__call__(scope, receive, send)

    async def _outside_providers(
        self, sandbox: Sandbox, scope: Scope, receive: Receive, send: Send, root: str, path: str
    ) -> None:
        """``/sandboxes/<id>/...`` under none of its providers' prefixes: a provider served
        alone answers it, else a JSON 404 naming them."""
        served = sandbox.served
        base = f"{SANDBOX_PATH}{sandbox.id}"
        send = served.stamp(send)
        if len(served.gateways) == 1:
            child = {**scope, "path_params": {}, "root_path": root + base}
            (gateway,) = served.gateways.values()
            await gateway(child, receive, send)
            return
        mounts = [f"{base}{mount}" for mount in served.gateways]
        response = JSONResponse(
            {"error": f"no provider serves {path}", "providers": mounts}, status_code=404
        )
        await response(scope, receive, send)


@asynccontextmanager
async def _delivering(
    deliveries: Deliveries, sandboxes: Sandboxes, app: Starlette
) -> AsyncIterator[None]:
    """Served: webhooks fall due as time passes; a background task sends them."""
    task = asyncio.create_task(
        deliveries.run(
            lambda: [s.state for s in sandboxes.listing() if s.state.clock.kind == "system"]
        )
    )
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        await deliveries.aclose()


def _mounted(mounts: Mapping[str, ASGIApp], scope: Scope, root: str, path: str) -> ASGIApp | None:
    """The provider whose mount (``/<name>``) ``path`` is under, with ``scope`` made its
    request's (as Starlette's router applies a mount's child scope, in place: the request's
    scope is its own, and nothing reads it as it was once it is handed on); or None."""
    end = path.find("/", 1)
    prefix = path if end < 0 else path[:end]
    gateway = mounts.get(prefix)
    if gateway is not None:
        if "app_root_path" not in scope:
            scope["app_root_path"] = scope.get("root_path", "")
        scope["path_params"] = {}
        scope["root_path"] = root + prefix
    return gateway


class _Deferred:
    """A provider's gateway until its first request, which builds the real one (loading the
    provider's package) and puts it in its place in ``mounts``, what the app dispatches on:
    later requests go straight to it. Built once, however many first requests arrive
    together; a provider that fails to load answers 500 naming it (and is tried again on
    the next request)."""

    def __init__(
        self,
        state: SimulatorState,
        name: str,
        date: HttpDate,
        mounts: dict[str, ASGIApp],
    ) -> None:
        self.state = state
        self.name = name
        self.date = date
        self.mounts = mounts
        self.gateway: ASGIApp | None = None
        self.lock = threading.Lock()

    def build(self) -> ASGIApp:
        if self.gateway is None:
            with self.lock:
                if self.gateway is None:
                    runtime = self.state.runtimes[self.name]
                    self.gateway = provider_app(runtime, self.state, self.date)
                    self.mounts[f"/{self.name}"] = self.gateway
        return self.gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            gateway = self.build()
        except ProviderLoadError as exc:
            if scope["type"] != "http":
                raise
            self.state.crashes.append(exc)
            _log.error("%s", exc, exc_info=exc.__cause__)
            response = JSONResponse({"error": str(exc)}, status_code=500)
            await response(scope, receive, self.date.stamp(send))
            return
        await gateway(scope, receive, send)


def provider_app(
    runtime: ProviderRuntime, state: SimulatorState, date: HttpDate | None = None
) -> Gateway:
    """A provider's own sub-app, which answers every error in the provider's envelope.

    The gateway dispatches to its routes and meets every exception with its handlers itself
    (one layer, not Starlette's middleware stack); the app is each request's ``request.app``.
    """
    provider = runtime.provider
    ctx = runtime.context

    async def provider_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ProviderError)
        return exc.response()

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        response = provider.error_for_status(exc.status_code, ctx).response()
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers = {k: v for k, v in headers.items() if k.lower() != "allow"}
            headers["allow"] = ", ".join(_path_methods(routes, request))
        response.headers.update(_ordered_allow(headers))
        return response

    async def store_unavailable(request: Request, exc: Exception) -> Response:
        # The store's backend is away (a lost Redis): the provider's own 503, until it is back.
        return provider.error_for_status(503, ctx).response()

    async def client_left(request: Request, exc: Exception) -> Response:
        # The client closed the connection mid-body: its doing, not a crash (the journal
        # marks the entry disconnected); this answer reaches nobody.
        return Response(status_code=400)

    async def internal_error(request: Request, exc: Exception) -> Response:
        state.crashes.append(exc)
        return provider.error_for_status(500, ctx).response()

    async def openapi_spec(request: Request) -> Response:
        return JSONResponse(runtime.spec_document)

    routes = [*provider.routes, Route("/openapi.json", openapi_spec, name=SPEC_ROUTE)]

    app = ProviderApp(
        runtime,
        routes=routes,
        exception_handlers={
            ProviderError: provider_error,
            HTTPException: http_error,
            StoreUnavailable: store_unavailable,
            ClientDisconnect: client_left,
            Exception: internal_error,
        },
    )
    return Gateway(app, runtime, state, date)


METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _path_methods(routes: Sequence[BaseRoute], request: Request) -> set[str]:
    """Every method the routes of this path allow (Starlette names only the first route's).

    A route whose path is fixed text shadows the routes that match it through a parameter:
    ``/v1/batch/upload`` is not ``/v1/batch/{id}``.
    """
    matching = [r for r in routes if r.matches(request.scope)[0] is not Match.NONE]
    fixed = [r for r in matching if not getattr(r, "param_convertors", None)]
    methods: set[str] = set()
    for route in fixed or matching:
        methods |= getattr(route, "methods", None) or set()
    return methods


def _method_rank(method: str) -> int:
    return METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER)


def _ordered_allow(headers: Mapping[str, str] | None) -> dict[str, str]:
    """Starlette lists allowed methods from a set; give them one stable order."""
    out = dict(headers or {})
    for key in [k for k in out if k.lower() == "allow"]:
        methods = {m.strip() for m in out.pop(key).split(",")}
        out["allow"] = ", ".join(sorted(methods, key=_method_rank))
    return out


async def _root_http_error(request: Request, exc: Exception) -> Response:
    """Outside every provider's routes; a path under a provider's prefix gets its envelope.

    (Starlette's ``Mount`` does not match a path holding a newline, so such requests for a
    provider land here.)
    """
    assert isinstance(exc, HTTPException)
    state: SimulatorState = request.app.state.sim
    path = request.url.path
    names = list(state.runtimes)  # the providers' names: none is loaded to find the owner
    owner = next((name for name in names if path.startswith(f"/{name}/")), None)
    if owner is None and len(names) == 1:
        owner = names[0]
    if owner is not None:
        runtime = state.runtimes[owner]
        response = runtime.provider.error_for_status(exc.status_code, runtime.context).response()
        response.headers.update(_ordered_allow(exc.headers))
        return response
    mounts = [f"/{name}" for name in names]
    return JSONResponse(
        {"error": f"no provider serves {path}", "providers": mounts},
        status_code=exc.status_code,
        headers=exc.headers,
    )
