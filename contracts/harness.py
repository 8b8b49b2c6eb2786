"""The simulator as a test drives it: in-process or served, always through ``/_sim``.

:class:`Simulator` is one API over both modes:

- :func:`in_process` runs the app inside the test (ASGI, no sockets); its clients use an
  in-process transport, and a ``drop`` fault reaches them as ``httpx.RemoteProtocolError``
  just as a cut connection does.
- :func:`serve_in_thread` runs uvicorn on a free loopback port in a background thread, for
  clients that need a real socket (requests, curl, another language).

Both give ``url(provider)``, ``credentials(provider)``, ``client(provider)``, ``clock``,
``faults``, ``journal``, ``options(...)`` and ``reset()``, mirroring the control plane.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import anyio.from_thread
import httpx
from starlette.applications import Starlette

from contracts.checks import (
    Acted,
    Behaviour,
    ClientNotConformant,
    Finding,
    check_deliveries,
    check_entries,
    describe_request,
)
from contracts.registry import suite_of
from simulator import (
    ConnectionDropped,
    FindingsSource,
    Provider,
    Settings,
    SimulatorState,
    available_providers,
    create_app,
    make_clock,
)
from simulator.clock import Clock as SimulatorClock
from simulator.clock import format_iso, parse_iso
from simulator.server import running_in_thread

__all__ = [
    "AsyncInProcessTransport",
    "Clock",
    "Faults",
    "InProcessTransport",
    "Journal",
    "RemoteClock",
    "ServedSimulators",
    "Simulator",
    "attach",
    "default_settings",
    "findings_source",
    "in_process",
    "serve_in_thread",
]

Entry = Mapping[str, Any]
T = TypeVar("T")


class InProcessTransport(httpx.BaseTransport):
    """A synchronous httpx transport into an ASGI app, run on a private event-loop thread."""

    def __init__(self, app: Starlette) -> None:
        self._asgi = httpx.ASGITransport(app=app)
        self._portal_cm: AbstractContextManager[anyio.from_thread.BlockingPortal] = (
            anyio.from_thread.start_blocking_portal()
        )
        self._portal = self._portal_cm.__enter__()
        self._lock = threading.Lock()

    async def _call(
        self, request: httpx.Request, body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        inner = httpx.Request(request.method, request.url, headers=request.headers, content=body)
        response = await self._asgi.handle_async_request(inner)
        content = b"".join([chunk async for chunk in response.stream])  # type: ignore[union-attr]
        return response.status_code, response.headers.raw, content

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        try:
            with self._lock:
                status, headers, content = self._portal.call(self._call, request, body)
        except ConnectionDropped:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            ) from None
        return httpx.Response(status, headers=headers, content=content, request=request)

    def close(self) -> None:
        """Clients share this transport: closing one of them must not stop it."""

    def shutdown(self) -> None:
        self._portal_cm.__exit__(None, None, None)


class AsyncInProcessTransport(httpx.AsyncBaseTransport):
    """An asyncio httpx transport into the same app and event-loop thread as ``transport``.

    The app keeps running on the in-process transport's own loop, so sync and async clients
    share one simulator; a ``drop`` fault reaches the client as ``httpx.RemoteProtocolError``.
    """

    def __init__(self, transport: InProcessTransport) -> None:
        self._sync = transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        future = self._sync._portal.start_task_soon(self._sync._call, request, body)
        try:
            status, headers, content = await asyncio.wrap_future(future)
        except ConnectionDropped:
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body", request=request
            ) from None
        return httpx.Response(status, headers=headers, content=content, request=request)


def _instant(body: Mapping[str, Any]) -> datetime:
    return datetime.fromtimestamp(body["epoch_ms"] / 1000, UTC)


@dataclass
class Clock:
    """The simulator's clock, through ``/_sim/clock``.

    ``now``, ``seconds`` and ``sleep`` read and move the simulator's clock object directly
    (both modes run it in this process): a polling client calls them often.
    """

    http: httpx.Client
    source: SimulatorClock
    control: str = "/_sim"

    def now(self) -> datetime:
        return self.source.now()

    def seconds(self) -> float:
        """Now as epoch seconds: pass as a client's ``now``."""
        return self.source.now().timestamp()

    def advance(self, seconds: float) -> datetime:
        return _instant(self._call("POST", f"{self.control}/clock/advance", {"seconds": seconds}))

    def set(self, instant: datetime | str) -> datetime:
        text = instant if isinstance(instant, str) else format_iso(instant)
        return _instant(self._call("POST", f"{self.control}/clock/set", {"now": text}))

    def sleep(self, seconds: float) -> None:
        """Pass as a client's ``sleep``: waiting becomes moving the simulator's clock."""
        if seconds > 0:
            self.source.advance(timedelta(seconds=seconds))

    async def async_sleep(self, seconds: float) -> None:
        """``sleep`` for asyncio clients: moves the clock, then lets other tasks run."""
        self.sleep(seconds)
        await asyncio.sleep(0)

    def _call(self, method: str, path: str, body: object = None) -> Any:
        response = self.http.request(method, path, json=body)
        response.raise_for_status()
        return response.json()


@dataclass
class RemoteClock:
    """A simulator's clock read and moved over HTTP: a server in another process."""

    http: httpx.Client
    control: str = "/_sim"

    def _body(self, method: str, path: str, body: object = None) -> Any:
        response = self.http.request(method, f"{self.control}/clock{path}", json=body)
        response.raise_for_status()
        return response.json()

    @property
    def kind(self) -> str:
        kind: str = self._body("GET", "")["kind"]
        return kind

    def now(self) -> datetime:
        return _instant(self._body("GET", ""))

    def advance(self, delta: timedelta) -> None:
        self._body("POST", "/advance", {"seconds": delta.total_seconds()})

    def set(self, instant: datetime) -> None:
        self._body("POST", "/set", {"now": format_iso(instant)})


@dataclass
class Faults:
    """Scheduled faults, through ``/_sim/faults``."""

    http: httpx.Client
    control: str = "/_sim"

    def schedule(
        self, provider: str, kind: str, operation: str = "*", **fields: object
    ) -> dict[str, Any]:
        """Schedule one fault: ``schedule("deepvue", "rate_limit", retry_after=5, count=2)``."""
        spec = {"provider": provider, "kind": kind, "operation": operation, **fields}
        response = self.http.post(f"{self.control}/faults", json=spec)
        if response.status_code != 201:
            raise ValueError(response.json().get("error", response.text))
        created: dict[str, Any] = response.json()
        return created

    def list(self, provider: str | None = None) -> list[dict[str, Any]]:
        params = {"provider": provider} if provider else {}
        listing = self.http.get(f"{self.control}/faults", params=params).json()
        faults: list[dict[str, Any]] = listing["faults"]
        return faults

    def clear(self, provider: str | None = None) -> int:
        params = {"provider": provider} if provider else {}
        cleared: int = self.http.delete(f"{self.control}/faults", params=params).json()["cleared"]
        return cleared


@dataclass
class Journal:
    """Recorded traffic, through ``/_sim/journal``."""

    http: httpx.Client
    control: str = "/_sim"

    def entries(
        self,
        provider: str | None = None,
        operation: str | None = None,
        since: int | None = None,
        tail: int | None = None,
    ) -> list[dict[str, Any]]:
        params: dict[str, str] = {}
        if tail:
            params["tail"] = str(tail)
        if provider:
            params["provider"] = provider
        if operation:
            params["operation"] = operation
        if since is not None:
            params["since"] = str(since)
        response = self.http.get(f"{self.control}/journal", params=params)
        response.raise_for_status()
        entries: list[dict[str, Any]] = response.json()["entries"]
        return entries

    def last_seq(self) -> int:
        entries = self.entries(tail=1)
        return int(entries[-1]["seq"]) if entries else 0

    def clear(self) -> int:
        cleared: int = self.http.delete(f"{self.control}/journal").json()["cleared"]
        return cleared


@dataclass
class Simulator:
    """A running simulator, driven the way a test (or a user at a shell) would.

    It is one sandbox of a simulator: the default one (today's paths, ``/_sim``) or another
    (providers under ``/sandboxes/<id>``, its control plane under ``/_sim/sandboxes/<id>``).
    ``state`` is the sandbox's state when the simulator runs in this process, None when it
    is attached to a server elsewhere (:func:`attach`).
    """

    origin: str
    http: httpx.Client
    client_factory: Callable[..., httpx.Client]
    state: SimulatorState | None
    sockets: bool = True  # False in-process: its URLs reach it only through its own clients
    async_client_factory: Callable[..., httpx.AsyncClient] = httpx.AsyncClient
    base: str = ""  # where its providers are, below the origin
    control: str = "/_sim"  # its control plane
    start: datetime | None = None  # where a manual clock starts (and Scenario.apply puts it)
    sandbox_id: str = "default"
    # The state of one of this simulator's sandboxes, when it runs in this process.
    local_state: Callable[[str], SimulatorState | None] = field(default=lambda _: None, repr=False)
    # Mounts an ASGI app as a webhook receiver at an origin, when the app runs in this process.
    mount_receiver: Callable[[str, Any], None] | None = field(default=None, repr=False)
    clock: Clock = field(init=False)
    faults: Faults = field(init=False)
    journal: Journal = field(init=False)
    _listing: dict[str, dict[str, Any]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        source = self.state.clock if self.state else RemoteClock(self.http, self.control)
        self.clock = Clock(self.http, source, self.control)
        self.faults = Faults(self.http, self.control)
        self.journal = Journal(self.http, self.control)
        if self.start is None and self.state is not None:
            self.start = self.state.settings.start

    @contextmanager
    def sandbox(self, settings: Settings | None = None, **body: Any) -> Iterator[Simulator]:
        """A new sandbox of this simulator, deleted on exit (with all it held).

        ``settings`` gives its seed, clock, start and provider options (the harness's
        defaults when None); ``body`` adds or overrides fields of ``POST /_sim/sandboxes``.
        """
        settings = settings or default_settings()
        options: dict[str, dict[str, str]] = {}
        for name, value in settings.options:
            provider, _, key = name.partition(".")
            options.setdefault(provider, {})[key] = value
        spec: dict[str, Any] = {"seed": settings.seed, "clock": settings.clock}
        if settings.start is not None:
            spec["start"] = format_iso(settings.start)
        if options:
            spec["options"] = options
        spec.update(body)
        response = self.http.post("/_sim/sandboxes", json=spec)
        if response.status_code != 201:
            raise ValueError(response.json().get("error", response.text))
        created = response.json()
        sandbox_id = created["id"]
        start = parse_iso(created["clock"]["now"]) if created["clock"]["kind"] == "manual" else None
        child = Simulator(
            self.origin,
            self.http,
            self.client_factory,
            self.local_state(sandbox_id),
            sockets=self.sockets,
            async_client_factory=self.async_client_factory,
            base=f"/sandboxes/{sandbox_id}",
            control=f"/_sim/sandboxes/{sandbox_id}",
            start=start,
            sandbox_id=sandbox_id,
            mount_receiver=self.mount_receiver,
        )
        try:
            yield child
        finally:
            self.http.delete(f"/_sim/sandboxes/{sandbox_id}")

    def providers(self) -> dict[str, dict[str, Any]]:
        """What ``/_sim/providers`` says of each provider, by name."""
        if not self._listing:
            listing = self.http.get(f"{self.control}/providers").json()["providers"]
            self._listing = {p["name"]: p for p in listing}
        return self._listing

    def url(self, provider: str) -> str:
        """The provider's base URL: point a client here instead of the real host.

        In-process (``bulksim_app``) the URL's host does not exist: it works only through
        :meth:`client` and :meth:`async_client`. Give a client that opens its own sockets
        (requests, urllib, aiohttp) the served simulator's URL (``bulksim_server``) instead.
        """
        return f"{self.origin}{self.base}/{provider}"

    def credentials(self, provider: str) -> dict[str, Any]:
        """The provider's test credentials, as ``/_sim/providers`` lists them."""
        credentials: dict[str, Any] = self.providers()[provider]["credentials"]
        return credentials

    def client(self, provider: str | None = None, **kwargs: Any) -> httpx.Client:
        """An ``httpx.Client`` whose base URL is the provider's (or the sandbox's base)."""
        base = self.url(provider) if provider else f"{self.origin}{self.base}"
        return self.client_factory(base_url=base, **kwargs)

    def async_client(self, provider: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` whose base URL is the provider's (or the sandbox's base)."""
        base = self.url(provider) if provider else f"{self.origin}{self.base}"
        return self.async_client_factory(base_url=base, **kwargs)

    def options(self, provider: str, **values: object) -> dict[str, Any]:
        """Change provider options from now on: ``options("deepvue", processing_seconds=5)``."""
        body = {"provider": provider, "options": values}
        response = self.http.post(f"{self.control}/options", json=body)
        if response.status_code != 200:
            raise ValueError(response.json().get("error", response.text))
        current: dict[str, Any] = response.json()[provider]
        return current

    def reset(self, provider: str | None = None) -> None:
        """Fresh state (seeded examples included), no faults, an empty journal."""
        params = {"provider": provider} if provider else {}
        self.http.post(f"{self.control}/reset", params=params).raise_for_status()

    @property
    def time_scale(self) -> float:
        """The served settings' ``time_scale`` (how processing durations are scaled)."""
        if self.state is not None:
            return self.state.settings.time_scale
        scale: float = self.http.get(f"{self.control}/health").json().get("time_scale", 1.0)
        return scale

    def behaviours(self) -> dict[str, Behaviour]:
        """Each served provider's behaviour description, from the suite its record names (a
        server attached by URL is asked for its providers' names)."""
        if self.state is not None:
            # A record as given; a registry entry by its name (its suite is named after it).
            served = self.state.providers
            return {p.name: behaviour_of(p if isinstance(p, Provider) else p.name) for p in served}
        return {name: behaviour_of(name) for name in self.providers()}

    def findings(
        self,
        provider: str | None = None,
        *,
        since: int | None = None,
        min_poll_interval: float | None = None,
        skip: Iterable[str] = (),
    ) -> list[Finding]:
        """Every spec violation and behaviour mistake in the journal (after ``since``).

        Polls closer together than ``min_poll_interval`` seconds are a hot loop; by default
        1 s times the settings' ``time_scale``, which shortens the simulated work alike.
        """
        if min_poll_interval is None:
            min_poll_interval = 1.0 * self.time_scale
        behaviours = self.behaviours()
        if provider is not None:
            behaviours = {provider: behaviours[provider]}
        entries = self.journal.entries(provider=provider, since=since)
        return check_entries(entries, behaviours, min_poll_interval=min_poll_interval, skip=skip)

    def assert_client_conformant(
        self,
        provider: str | None = None,
        *,
        since: int | None = None,
        min_poll_interval: float | None = None,
        skip: Iterable[str] = (),
    ) -> None:
        """Fail, listing each offending request, if the client broke the spec or a rule.

        ``min_poll_interval`` is the shortest wait between two polls of one resource that is
        not a hot loop: 1 s times the settings' ``time_scale`` unless given. ``skip`` names
        checks to leave out (see :mod:`contracts.checks`), e.g. a test that deliberately stops
        polling early can skip ``"stopped-polling"``.
        """
        found = self.findings(provider, since=since, min_poll_interval=min_poll_interval, skip=skip)
        if found:
            raise ClientNotConformant(found)

    def run_client(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run the client under test; if it raises, say what the provider had just answered.

        A client that gives up on a 429, a 5xx, a dropped connection or a status it does not
        know fails with :class:`ClientCrashed`, whose message names that answer.
        """
        since = self.journal.last_seq()
        try:
            return call(*args, **kwargs)
        except Exception as exc:
            if not self.sockets and _opened_a_socket(exc):
                raise ClientCrashed(
                    f"the client opened a socket to {self.origin}, the in-process simulator "
                    "(bulksim_app), which has none: its URLs work only through "
                    "bulksim_app.client(...) or async_client(...). For clients that open "
                    f"sockets (requests, urllib, aiohttp), use bulksim_server. ({_crash(exc)})"
                ) from exc
            raise ClientCrashed(diagnose(exc, self.journal.entries(since=since))) from exc

    # -- the client's webhook receiver ------------------------------------------------------

    def webhook_receiver(self, app: Any, name: str = "receiver") -> str:
        """Deliver webhooks straight into ``app`` (the client's ASGI receiver), no sockets:
        give the returned origin (plus the receiver's path) as the webhook URL.

        Only for a simulator in this process (``bulksim_app`` or ``bulksim_server``); a
        receiver served elsewhere is given by its own loopback URL instead.
        """
        if self.mount_receiver is None:
            raise ValueError(
                "this simulator runs elsewhere: serve the receiver and give its loopback URL"
            )
        if not name.replace("-", "").isalnum() or not name.isascii():
            raise ValueError(f"a receiver's name is letters, digits and '-', not {name!r}")
        origin = f"http://{name.lower()}.receiver.invalid"
        self.mount_receiver(origin, app)
        return origin

    def webhook_attempts(self) -> list[dict[str, Any]]:
        """Every delivery attempt, oldest first, as ``GET /_sim/webhooks`` lists them."""
        response = self.http.get(f"{self.control}/webhooks")
        response.raise_for_status()
        attempts: list[dict[str, Any]] = response.json()["attempts"]
        return attempts

    def receiver_findings(
        self,
        *,
        acted_on: Callable[[], Iterable[Acted]] | Iterable[Acted] | None = None,
        state: Callable[[], Mapping[str, str]] | Mapping[str, str] | None = None,
        skip: Iterable[str] = (),
    ) -> list[Finding]:
        """Every mistake of the client's webhook receiver in the deliveries so far (see
        :func:`contracts.checks.check_deliveries`).

        ``acted_on``: every event id the receiver acted on, once per time, each an id or
        ``(id, subject)`` (the batch it was about, say), or a function returning them (e.g.
        reading the receiver's table); without it, ``processed-duplicate`` and
        ``lost-out-of-order`` are not judged. ``state``: each subject the receiver keeps, and
        the id of the event its current state came from (or a function returning that).
        """
        acted = acted_on() if callable(acted_on) else acted_on
        kept = state() if callable(state) else state
        return check_deliveries(
            self.webhook_attempts(),
            None if acted is None else list(acted),
            state=None if kept is None else dict(kept),
            skip=skip,
        )

    def assert_receiver_conformant(
        self,
        *,
        acted_on: Callable[[], Iterable[Acted]] | Iterable[Acted] | None = None,
        state: Callable[[], Mapping[str, str]] | Mapping[str, str] | None = None,
        skip: Iterable[str] = (),
    ) -> None:
        """Fail, naming each mistake, if the receiver accepted a bad signature or a stale
        timestamp, acted on an event twice, answered after the timeout, or lost an event
        that came out of order."""
        found = self.receiver_findings(acted_on=acted_on, state=state, skip=skip)
        if found:
            raise ClientNotConformant(found)

    def assert_webhook_delivered(
        self,
        type: str | None = None,
        *,
        target: str | None = None,
        event: str | None = None,
    ) -> dict[str, Any]:
        """The latest delivered attempt of the event matching ``type``, ``target`` (a prefix
        of the URL) and ``event`` (its id); fails listing the attempts made when none was."""
        attempts = self.webhook_attempts()
        matching = [
            a
            for a in attempts
            if (type is None or a["type"] == type)
            and (target is None or str(a["target"]).startswith(target))
            and (event is None or a["event"] == event)
        ]
        delivered = [a for a in matching if a["outcome"] == "delivered"]
        if delivered:
            return delivered[-1]
        wanted = ", ".join(
            f"{k}={v!r}" for k, v in (("type", type), ("target", target), ("event", event)) if v
        )
        made = "\n".join(
            f"- {a['type']} {a['event']} → {a['target']}: attempt {a['attempt']} {a['outcome']}"
            + (f" ({a['error']})" if a.get("error") else "")
            for a in attempts
        )
        raise AssertionError(
            f"no webhook delivered{' with ' + wanted if wanted else ''}; attempts made:\n"
            + (made or "- none")
        )

    def raise_crashes(self) -> None:
        """Re-raise, in the test, an exception a provider handler hit (it answered 500)."""
        if self.state is not None and self.state.crashes:
            crash = self.state.crashes.popleft()
            self.state.crashes.clear()
            raise AssertionError(f"the simulator crashed while answering: {crash!r}") from crash


class ClientCrashed(AssertionError):
    """The client under test raised; the message names the answer it could not handle."""


def _crash(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _opened_a_socket(exc: BaseException) -> bool:
    """Whether ``exc`` comes from connecting a socket (requests, urllib, aiohttp, httpx)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError | httpx.ConnectError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def diagnose(exc: BaseException, entries: list[dict[str, Any]]) -> str:
    """Why a client probably failed, from the last answers it got."""
    crash = _crash(exc)
    if not entries:
        return f"the client raised {crash} before sending any request"
    last = entries[-1]
    status = last["response"]["status"]
    where = describe_request(last)
    fault = last.get("fault") or ""
    if last.get("dropped") or fault in ("drop", "drop_after"):
        return f"the client does not survive a dropped connection (retry it): {crash} after {where}"
    if status is None:
        return f"the client raised {crash} after {where}, which was never answered"
    if fault == "malformed":
        return (
            f"the client does not survive a response body that is not JSON: {crash} after {where}"
        )
    if status == 429:
        wait = last["response"]["headers"].get("retry-after", "?")
        return (
            f"the client gave up on a 429 rate limit instead of retrying after Retry-After "
            f"({wait}s): {crash} after {where}"
        )
    if status >= 500:
        return (
            f"the client gave up on a {status} server error instead of retrying with backoff: "
            f"{crash} after {where}"
        )
    body = json.dumps(last["response"]["body"])[:300]
    if status < 400:
        return (
            f"the client cannot handle a documented answer: it raised {crash} after {where} "
            f"answered {body}"
        )
    return f"the client raised {crash} after {where} answered {body}"


def behaviour_of(provider: str | Provider) -> Behaviour:
    """What the checks know of ``provider``: its suite's ``BEHAVIOUR`` (none without one)."""
    try:
        module = suite_of(provider)
    except LookupError:
        return Behaviour()
    behaviour: Behaviour = getattr(module, "BEHAVIOUR", Behaviour())
    return behaviour


def findings_source(providers: Sequence[str | Provider] | None = None) -> FindingsSource:
    """The checks of :func:`~contracts.checks.check_entries`, with each provider's suite's
    behaviour (bulksim's own providers by default), as the dashboard takes them: ``bulksim
    serve`` and the harness's simulators hand it to ``create_app(findings=...)``.

    Spec violations are left to the dashboard (each entry shows its own); a poll loop is hot
    below 1 s times the sandbox's ``time_scale``, as in :meth:`Simulator.findings`. The
    suites are imported here, once, so that the page's first render does not wait for them."""
    chosen = available_providers() if providers is None else providers
    behaviours = {p if isinstance(p, str) else p.name: behaviour_of(p) for p in chosen}

    def judge(entries: Sequence[Entry], *, time_scale: float) -> list[dict[str, Any]]:
        found = check_entries(
            entries, behaviours, min_poll_interval=1.0 * time_scale, skip=("spec",)
        )
        return [dataclasses.asdict(f) for f in found]

    return judge


START = "2026-03-09T08:14:08Z"


def default_settings(**changes: Any) -> Settings:
    """The harness's settings, with ``changes``: start from these when overriding them.

    A manual clock at :data:`START` and seed 0, so every run is the same run, and a journal
    of 10 000 entries keeping 128 KiB of each body, so the checks see whole pages of results
    (the simulator's own default keeps 16 KiB). ``clock="system"`` drops the fixed start.
    """
    if changes.get("clock") == "system":
        changes.setdefault("start", None)
    base = Settings(
        clock="manual",
        start=parse_iso(START),
        seed=0,
        journal_size=10_000,
        journal_body_bytes=128 * 1024,
    )
    return dataclasses.replace(base, **changes).checked()


def _manual_settings(settings: Settings | None) -> Settings:
    return settings or default_settings()


def _local_states(app: Starlette) -> Callable[[str], SimulatorState | None]:
    """The state of each of ``app``'s sandboxes, by id (None once it is gone)."""

    def local_state(sandbox_id: str) -> SimulatorState | None:
        found = app.state.sandboxes.get(sandbox_id)
        state: SimulatorState | None = found.state if found is not None else None
        return state

    return local_state


@contextmanager
def in_process(
    settings: Settings | None = None, *, providers: Sequence[Provider] | None = None
) -> Iterator[Simulator]:
    """The simulator inside this process: no sockets, no threads but the transport's loop.

    ``providers``: the records to serve, as ``create_app`` takes them (bulksim's own by
    default).
    """
    settings = _manual_settings(settings)
    clock = make_clock(settings)

    async def latency(seconds: float) -> None:
        # In-process, a latency fault passes on the simulator's clock: nothing really waits.
        if clock.kind == "manual":
            clock.advance(timedelta(seconds=seconds))
        else:
            await asyncio.sleep(seconds)

    app = create_app(
        settings,
        clock=clock,
        sleep=latency,
        providers=providers,
        findings=findings_source(providers),
    )
    state: SimulatorState = app.state.sim
    transport = InProcessTransport(app)
    origin = "http://bulksim.local"  # no such host: see Simulator.url

    def factory(**kwargs: Any) -> httpx.Client:
        return httpx.Client(transport=transport, **kwargs)

    def async_factory(**kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=AsyncInProcessTransport(transport), **kwargs)

    http = factory(base_url=origin)
    try:
        yield Simulator(
            origin,
            http,
            factory,
            state,
            sockets=False,
            async_client_factory=async_factory,
            local_state=_local_states(app),
            mount_receiver=app.state.deliveries.mount,
        )
    finally:
        http.close()
        transport.shutdown()


class ServedSimulators:
    """Served simulators, one per distinct :class:`Settings`, all stopped on :meth:`close`.

    Tests whose directories ask for different settings each get a simulator serving theirs;
    tests that ask for the same settings share one. Given ``url``, every test shares the
    simulator already running there (``bulksim serve``), whatever its settings.
    """

    def __init__(self, url: str | None = None, token: str | None = None) -> None:
        self._stack = ExitStack()
        self._served: dict[Settings, Simulator] = {}
        self.url = url
        self.token = token

    def get(self, settings: Settings) -> Simulator:
        """The simulator serving ``settings``, started (or attached to) on first use."""
        key = default_settings() if self.url else settings
        if key not in self._served:
            served = attach(self.url, self.token) if self.url else serve_in_thread(settings)
            self._served[key] = self._stack.enter_context(served)
        return self._served[key]

    def close(self) -> None:
        self._served.clear()
        self._stack.close()

    def __enter__(self) -> ServedSimulators:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def serve_in_thread(
    settings: Settings | None = None, *, providers: Sequence[Provider] | None = None
) -> Iterator[Simulator]:
    """uvicorn on a free loopback port in a background thread, stopped on exit
    (``providers`` as for :func:`in_process`)."""
    settings = _manual_settings(settings)
    app = create_app(settings, providers=providers, findings=findings_source(providers))

    def factory(**kwargs: Any) -> httpx.Client:
        return httpx.Client(**kwargs)

    with running_in_thread(app) as origin, factory(base_url=origin, timeout=30) as http:
        yield Simulator(
            origin,
            http,
            factory,
            app.state.sim,
            local_state=_local_states(app),
            mount_receiver=app.state.deliveries.mount,
        )


@contextmanager
def attach(url: str, token: str | None = None) -> Iterator[Simulator]:
    """A simulator already running elsewhere (``bulksim serve``), reached at ``url``.

    ``token`` is its control token, sent on every control-plane call. Its clock is read and
    moved over HTTP; exceptions inside it are not seen here (its 500s are).
    """
    headers = {"X-Bulksim-Token": token} if token else {}
    origin = url.rstrip("/")

    def factory(**kwargs: Any) -> httpx.Client:
        return httpx.Client(**kwargs)

    with httpx.Client(base_url=origin, headers=headers, timeout=30) as http:
        health = http.get("/_sim/health")
        if health.status_code == 401:
            raise ValueError(
                f"the bulksim at {origin} answered 401: control plane token required "
                "(--bulksim-token or BULKSIM_TOKEN)"
            )
        if health.status_code != 200:
            raise ValueError(f"no bulksim control plane at {origin}/_sim: {health.status_code}")
        yield Simulator(origin, http, factory, None)
