"""``create_app``: the Starlette app that serves every provider and the control plane."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from simulator.clock import Clock, ManualClock, SystemClock, wall_clock_now
from simulator.control import control_app
from simulator.dashboard import dashboard_routes
from simulator.gateway import SPEC_ROUTE, Gateway
from simulator.ids import IdFactory
from simulator.kit.errors import ProviderError
from simulator.kit.provider import Provider, ProviderRuntime
from simulator.sandboxes import PATH as SANDBOX_PATH
from simulator.sandboxes import Sandboxes, Served, unknown_sandbox
from simulator.server import HttpDate
from simulator.settings import Settings, SettingsError
from simulator.state import SimulatorState, Sleep
from simulator.store import MemoryStore, Store

__all__ = ["available_providers", "create_app", "make_clock"]


def make_clock(settings: Settings) -> Clock:
    """The clock ``settings`` ask for."""
    if settings.clock == "manual":
        return ManualClock(settings.start or wall_clock_now())
    return SystemClock()


def available_providers() -> tuple[Provider, ...]:
    """Every provider bulksim can serve, in registry order (``simulator/providers``)."""
    from simulator.providers import PROVIDERS

    return PROVIDERS


def select_providers(available: Sequence[Provider], names: Sequence[str]) -> list[Provider]:
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
    providers: Sequence[Provider] | None = None,
    sleep: Sleep | None = None,
    store: Store | None = None,
) -> Starlette:
    """Build the simulator.

    ``clock``, ``ids`` and ``sleep`` are injected so that tests run on a manual clock with a
    fixed seed and never wait; by default they follow ``settings``. ``store`` is where the
    providers keep their records (a fresh :class:`~simulator.store.MemoryStore` by default);
    two apps handed the same store and seed share their records, ids and token keys.
    ``app.state.sim`` is the :class:`~simulator.state.SimulatorState`.
    """
    settings = (settings or Settings()).checked()
    available = providers if providers is not None else available_providers()
    chosen = select_providers(available, settings.providers)
    state = SimulatorState(
        settings=settings,
        clock=clock or make_clock(settings),
        ids=ids or IdFactory(settings.seed),
        providers=chosen,
        store=store if store is not None else MemoryStore(),
    )
    if sleep is not None:
        state.sleep = sleep

    def serve(served: SimulatorState) -> Served:
        gateways = [provider_app(runtime, served) for runtime in served.runtimes.values()]
        control = control_app(served, sandboxes if served is state else None)
        mounts = [(g.runtime.provider.mount, g) for g in gateways]
        return Served(mounts, control, HttpDate(served.clock).stamp)

    sandboxes = Sandboxes(state, serve)
    app = SimulatorApp(sandboxes, dashboard_routes(state))
    app.state.sim = state
    app.state.sandboxes = sandboxes
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

    def __init__(self, sandboxes: Sandboxes, dashboard: Sequence[BaseRoute] = ()) -> None:
        served = sandboxes.default.served
        routes: list[BaseRoute] = [*dashboard, Mount("/_sim", served.control)]
        if len(served.gateways) == 1:
            # One provider served alone also answers at the root, as the real host does.
            routes.append(Mount("", served.gateways[0][1]))
        super().__init__(routes=routes, exception_handlers={HTTPException: _root_http_error})
        self.router.redirect_slashes = False
        self.sandboxes = sandboxes
        self.prefixes = served.gateways
        self.stamp = served.stamp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            root = scope.get("root_path", "")
            path = scope["path"]
            path = path[len(root) :] if root and path.startswith(root) else path
            if path.startswith(SANDBOX_PATH):
                await self._sandbox(scope, receive, send, root, path)
                return
            send = self.stamp(send)
            if await _dispatch(self.prefixes, scope, receive, send, root, path):
                return
        await super().__call__(scope, receive, send)

    async def _sandbox(
        self, scope: Scope, receive: Receive, send: Send, root: str, path: str
    ) -> None:
        """``/sandboxes/<id>/<provider>/...``: the sandbox's provider, below its prefix."""
        sandbox_id, _, _ = path[len(SANDBOX_PATH) :].partition("/")
        sandbox = self.sandboxes.get(sandbox_id)
        if sandbox is None:
            response: Response = unknown_sandbox(sandbox_id)
        else:
            served = sandbox.served
            send = served.stamp(send)
            base = f"{SANDBOX_PATH}{sandbox_id}"
            inner = path[len(base) :]
            if await _dispatch(served.gateways, scope, receive, send, root + base, inner):
                return
            if len(served.gateways) == 1:
                child = {**scope, "path_params": {}, "root_path": root + base}
                await served.gateways[0][1](child, receive, send)
                return
            mounts = [f"{base}{mount}" for mount, _ in served.gateways]
            response = JSONResponse(
                {"error": f"no provider serves {path}", "providers": mounts}, status_code=404
            )
        await response(scope, receive, send)


async def _dispatch(
    prefixes: Sequence[tuple[str, ASGIApp]],
    scope: Scope,
    receive: Receive,
    send: Send,
    root: str,
    path: str,
) -> bool:
    """Hand the request to the provider whose mount ``path`` is under; whether one was."""
    for prefix, gateway in prefixes:
        if path.startswith(prefix) and path[len(prefix) : len(prefix) + 1] in ("", "/"):
            child = {
                **scope,
                "path_params": {},
                "app_root_path": scope.get("app_root_path", scope.get("root_path", "")),
                "root_path": root + prefix,
            }
            await gateway(child, receive, send)
            return True
    return False


def provider_app(runtime: ProviderRuntime, state: SimulatorState) -> Gateway:
    """A provider's own sub-app, which answers every error in the provider's envelope."""
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

    async def internal_error(request: Request, exc: Exception) -> Response:
        state.crashes.append(exc)
        return provider.error_for_status(500, ctx).response()

    async def openapi_spec(request: Request) -> Response:
        return JSONResponse(runtime.spec_document)

    routes = [*provider.routes, Route("/openapi.json", openapi_spec, name=SPEC_ROUTE)]

    app = Starlette(
        routes=routes,
        exception_handlers={
            ProviderError: provider_error,
            HTTPException: http_error,
            Exception: internal_error,
        },
    )
    app.router.redirect_slashes = False
    app.state.runtime = runtime
    return Gateway(app, runtime, state)


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
    runtimes = list(state.runtimes.values())
    owner = next((rt for rt in runtimes if path.startswith(f"{rt.provider.mount}/")), None)
    if owner is None and len(runtimes) == 1:
        owner = runtimes[0]
    if owner is not None:
        response = owner.provider.error_for_status(exc.status_code, owner.context).response()
        response.headers.update(_ordered_allow(exc.headers))
        return response
    mounts = [rt.provider.mount for rt in runtimes]
    return JSONResponse(
        {"error": f"no provider serves {path}", "providers": mounts},
        status_code=exc.status_code,
        headers=exc.headers,
    )
