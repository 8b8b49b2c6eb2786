"""The Provider record: everything ``create_app`` needs to know about one provider.

A provider is a folder under ``simulator/providers`` whose ``__init__`` defines ``PROVIDER``;
adding one means that folder plus one line in the registry.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from contracts.specs import spec_document, spec_file
from simulator.clock import Clock
from simulator.ids import IdFactory
from simulator.kit.context import ProviderContext
from simulator.kit.errors import ProviderError
from simulator.kit.resources import ResourcesHook
from simulator.settings import Settings, build_options
from simulator.store import Store

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    from contracts.validate import SpecValidator

__all__ = [
    "Provider",
    "ProviderContext",
    "ProviderRuntime",
    "base_url",
    "context_of",
    "endpoint_for",
    "header_of",
    "query_of",
    "store_of",
]

S = TypeVar("S")
OptionsT = TypeVar("OptionsT")


@dataclass(frozen=True, slots=True)
class NoOptions:
    """A provider without options."""


@dataclass(frozen=True)
class Provider:
    """One simulated provider: its routes, state, error catalogue and test credentials."""

    name: str
    title: str
    routes: tuple[BaseRoute, ...]
    store_factory: Callable[[ProviderContext], object]
    errors: tuple[type[ProviderError], ...]
    error_for_status: Callable[[int, ProviderContext], ProviderError]
    rate_limited: Callable[[int, ProviderContext], ProviderError]
    credentials: Callable[[ProviderContext], Mapping[str, object]]
    options_type: type = NoOptions
    secret_headers: frozenset[str] = frozenset()
    secret_fields: frozenset[str] = frozenset()
    unsupported: Mapping[str, str] = field(default_factory=dict)
    # Its live batches, processes and files for the dashboard (kit.resources); None: none.
    resources: ResourcesHook | None = None
    # Where the rest of the provider is, for a provider that keeps it elsewhere; by default
    # ``contracts/specs/<name>.yaml`` and the module ``contracts.suites.<name>``. The suite
    # is named, never imported: it sits in the layer above, and only the harness reads it.
    spec: Traversable | None = None
    suite: str | None = None

    @property
    def mount(self) -> str:
        return f"/{self.name}"

    @property
    def spec_file(self) -> Traversable:
        """The provider's OpenAPI spec."""
        return self.spec if self.spec is not None else spec_file(self.name)

    @property
    def suite_module(self) -> str:
        """The dotted name of the provider's contract suite (see ``contracts.registry``)."""
        return self.suite or f"contracts.suites.{self.name}"

    def error_named(self, name: str) -> type[ProviderError] | None:
        return next((e for e in self.errors if e.__name__ == name), None)

    def operations(self) -> list[str]:
        """Route names, which are the snake_case operationIds of the spec."""
        return [r.name for r in self.routes if isinstance(r, Route)]


class ProviderRuntime:
    """A provider inside one app: its context (a view of the store under its own prefix) and
    what ``store_factory`` builds from it; ``reset`` empties the view and builds that anew.
    """

    @property
    def spec_document(self) -> dict[str, Any]:
        """The provider's OpenAPI document, read on first use (shared: it never changes)."""
        return spec_document(self.provider.spec_file)

    @property
    def validator(self) -> SpecValidator:
        """Validates recorded requests against the spec (built once, on first use: it is slow)."""
        return _validator(self.provider.spec_file)

    def __init__(
        self, provider: Provider, clock: Clock, ids: IdFactory, settings: Settings, store: Store
    ):
        options: Any = build_options(
            provider.options_type, provider.name, settings.options_for(provider.name)
        )
        self.provider = provider
        self._root_ids = ids
        view = store.scoped(provider.name, now=clock.now)
        self.context = ProviderContext(clock, ids.child(provider.name), settings, options, view)
        self.initial_options = options
        self.store: object = provider.store_factory(self.context)

    async def reset(self) -> None:
        """Construct again: an empty store view, fresh ids, the options the simulator started
        with, and what ``store_factory`` builds."""
        async with self.context.store.transaction() as tx:
            await tx.clear()
            self.context.ids = self._root_ids.child(self.provider.name)
            self.context.options = self.initial_options
            self.store = self.provider.store_factory(self.context)

    def set_options(self, raw: Mapping[str, str]) -> Any:
        """Change some options from now on (``key=value`` strings); others keep their value."""
        changed: Any = build_options(self.provider.options_type, self.provider.name, raw)
        given = {key: getattr(changed, key) for key in raw}
        self.context.options = dataclasses.replace(self.context.options, **given)
        return self.context.options


class ProviderApp(Starlette):
    """A provider's own app (its routes and error handlers): each of its requests'
    ``request.app``, holding the runtime behind them."""

    def __init__(self, runtime: ProviderRuntime, **options: Any) -> None:
        super().__init__(**options)
        self.runtime = runtime


def runtime_of(request: Request) -> ProviderRuntime:
    """The provider runtime behind ``request`` (its app is the provider's own)."""
    app = request.scope["app"]
    if not isinstance(app, ProviderApp):  # pragma: no cover - wiring error, not input
        raise TypeError(f"expected a provider's app, found {type(app).__name__}")
    return app.runtime


def store_of(request: Request, kind: type[S]) -> S:
    """The provider store behind ``request``, typed."""
    store = runtime_of(request).store
    if not isinstance(store, kind):  # pragma: no cover - wiring error, not input
        raise TypeError(f"expected {kind.__name__}, found {type(store).__name__}")
    return store


def context_of(request: Request, options: type[OptionsT]) -> ProviderContext[OptionsT]:
    """The provider's context behind ``request``, typed by its options class."""
    ctx: ProviderContext[OptionsT] = runtime_of(request).context
    if not isinstance(ctx.options, options):  # pragma: no cover - wiring error, not input
        raise TypeError(f"expected {options.__name__}, found {type(ctx.options).__name__}")
    return ctx


def endpoint_for(
    options: type[OptionsT], services: type[S]
) -> Callable[
    [Callable[[Request, ProviderContext[OptionsT], S], Awaitable[Response]]],
    Callable[[Request], Awaitable[Response]],
]:
    """A decorator that turns ``handler(request, ctx, services)`` into the route's endpoint,
    handing it the provider's typed context and the instance's services."""

    def endpoint(
        handler: Callable[[Request, ProviderContext[OptionsT], S], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def run(request: Request) -> Response:
            return await handler(request, context_of(request, options), store_of(request, services))

        return run

    return endpoint


def _validator(spec: Traversable) -> SpecValidator:
    return _validator_of(cast(Hashable, spec))  # every kind of Traversable there is hashes


@cache
def _validator_of(spec: Any) -> SpecValidator:
    from contracts.validate import SpecValidator

    return SpecValidator(spec_document(spec))


def base_url(request: Request) -> str:
    """The provider's base URL as the client reached it: origin plus mount (no trailing /).

    Read from the scope (the Host header, else the server address) rather than by building
    ``request.url``, which parses a whole URL: this is on the path of every status poll.
    """
    scope = request.scope
    host = header_of(request, b"host")
    if not host:
        server_host, server_port = scope.get("server") or ("localhost", 80)
        host = f"{server_host}:{server_port}"
    return f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}"


@cache
def snake_case(name: str) -> str:
    """``getBatchStatus`` → ``get_batch_status``: how route names follow operationIds."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def header_of(request: Request, name: bytes) -> str | None:
    """The request's header ``name`` (in lowercase), the first of that name, as
    ``request.headers.get`` finds it (which also takes the scope's names as lowercase, as
    servers give them), without building the headers' mapping: a poll reads one or two."""
    for key, value in request.scope["headers"]:
        if key == name:
            found: str = value.decode("latin-1")
            return found
    return None


def query_of(request: Request) -> dict[str, str]:
    """The request's query as ``request.query_params`` maps it (``parse_qsl`` with blank
    values kept; a repeated name's last value), as a plain dict: a poll reads a name or two
    and needs no multi-dict. A query with nothing to unquote (no ``%`` or ``+``) is split
    on ``&`` and ``=`` as ``parse_qsl`` would split it."""
    text: str = request.scope["query_string"].decode("latin-1")
    if "%" in text or "+" in text:
        return dict(parse_qsl(text, keep_blank_values=True))
    query = {}
    for part in text.split("&"):
        if part:
            name, _, value = part.partition("=")
            query[name] = value
    return query
