"""Sandboxes: whole isolated simulators side by side in one app.

A :class:`Sandbox` is a :class:`~simulator.state.SimulatorState` of its own (clock, seed and
ids, options, faults, journal, each provider's runtime) whose store is the app's store
scoped under ``sandboxes/<id>``. The state the app starts with is the sandbox ``default``,
served at today's paths; the others are served under ``/sandboxes/<id>/`` and controlled
under ``/_sim/sandboxes/<id>/``.

:class:`Sandboxes` keeps the live ones: at most ``sandbox_cap`` of them, each forgotten
after ``sandbox_idle_seconds`` without a request (measured on the wall clock: a sandbox's
own clock may stand still or jump a year). Deleting one clears its store view, so nothing
it held stays behind on any backend.

On a store that several processes share (``--workers``, two servers on one SQLite file or
one Redis), every process must know every sandbox: each is also an :class:`Entry` in the
store (what builds its state, and when it was last used), and :meth:`Sandboxes.find`, which
the app calls before a request that names a sandbox, reads it there (one read) and builds
the sandbox where this process has not yet; then the sandbox's state syncs its clock,
options and fault plan with the store as the default one does (see
:meth:`~simulator.state.SimulatorState.sync`). A sandbox deleted or expired through any
process is gone for all of them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Send

from simulator.clock import Clock, ManualClock, SystemClock, format_iso, wall_clock_now
from simulator.ids import IdFactory
from simulator.scenarios import Scenario, ScenarioError, apply, parse_scenario
from simulator.settings import SettingsError
from simulator.state import SimulatorState
from simulator.store import Store, Table, shared

if TYPE_CHECKING:
    from simulator.sandboxspec import SandboxSpec

__all__ = [
    "DEFAULT",
    "ENTRIES",
    "Entry",
    "Sandbox",
    "SandboxError",
    "Sandboxes",
    "Served",
    "parse_spec",
    "unknown_sandbox",
]

DEFAULT = "default"
PATH = "/sandboxes/"
CONTROL_PATH = "/_sim/sandboxes"


class SandboxError(Exception):
    """A refused sandbox request: ``status`` and a message naming what is wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_spec(body: object) -> SandboxSpec:
    """The create body, or a 400 naming the first bad field."""
    from pydantic import ValidationError

    from simulator.sandboxspec import SandboxSpec

    try:
        return SandboxSpec.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "body"
        raise SandboxError(400, f"{where}: {error['msg']}") from None


@dataclass(frozen=True, slots=True)
class Entry:
    """A sandbox as every process on a shared store knows it: what builds its state, and
    when it was last used (wall-clock seconds; written at most every ``idle / 16``)."""

    name: str | None
    seed: int
    clock: Literal["manual", "system"]
    start: datetime | None
    options: dict[str, dict[str, str]]
    created: datetime
    touched: float


# In the root store's ``_sim`` view, keyed by sandbox id.
ENTRIES = Table("sandboxes", Entry)


@dataclass(eq=False)
class Served:
    """What serves one state: its providers' apps by mount (``/<name>``, in registry order),
    its control plane, and the ``Date`` stamp of its clock on every answer."""

    gateways: Mapping[str, ASGIApp]
    control: ASGIApp
    stamp: Callable[[Send], Send]


Serve = Callable[[SimulatorState], Served]


@dataclass(eq=False)
class Sandbox:
    """One isolated simulator inside the app."""

    id: str
    name: str | None
    state: SimulatorState
    served: Served
    created: datetime
    touched: float

    @property
    def base_path(self) -> str:
        """Where its providers are served: ``""`` for the default, else ``/sandboxes/<id>``."""
        return self.state.base_path

    def describe(self, origin: str) -> dict[str, Any]:
        base = f"{origin}{self.base_path}"
        control = "/_sim" if self.id == DEFAULT else f"/_sim/sandboxes/{self.id}"
        settings = self.state.settings
        return {
            "id": self.id,
            "name": self.name,
            "seed": settings.seed,
            "clock": {"kind": self.state.clock.kind, "now": format_iso(self.state.clock.now())},
            "created": format_iso(self.created),
            "base_url": base,
            "control_url": f"{origin}{control}",
            "urls": {name: f"{base}/{name}" for name in self.state.runtimes},
        }


@dataclass(eq=False)
class Sandboxes:
    """The default sandbox and the live others, bounded in number and idle time."""

    root: SimulatorState
    serve: Serve
    monotonic: Callable[[], float] = time.monotonic
    # The wall clock of the entries on a shared store (comparable between processes).
    wall: Callable[[], float] = field(default=lambda: wall_clock_now().timestamp())
    live: dict[str, Sandbox] = field(default_factory=dict)
    # Clearing an expired sandbox's store runs in the background; its task is kept here.
    clearing: set[asyncio.Task[None]] = field(default_factory=set)
    # The whole app, through which a scenario makes its objects (set by create_app).
    app: ASGIApp | None = None

    @cached_property
    def default(self) -> Sandbox:
        """The app's own state, at today's paths (served when first asked for, so that
        ``serve`` may refer to this registry)."""
        served = self.serve(self.root)
        return Sandbox(DEFAULT, None, self.root, served, wall_clock_now(), self.monotonic())

    @cached_property
    def sharing(self) -> bool:
        """Whether other processes serve the same sandboxes (the store is shared)."""
        return shared(self.root.store)

    @cached_property
    def entries(self) -> Store:
        """Where the entries are kept: the root store's ``_sim`` view."""
        return self.root.store.scoped("_sim")

    @property
    def cap(self) -> int:
        return self.root.settings.sandbox_cap

    @property
    def idle_seconds(self) -> float:
        return self.root.settings.sandbox_idle_seconds

    def get(self, sandbox_id: str) -> Sandbox | None:
        """The sandbox, marked as used now; None when unknown or idle too long."""
        sandbox = self.live.get(sandbox_id)
        if sandbox is None:
            return self.default if sandbox_id == DEFAULT else None
        now = self.monotonic()
        if now - sandbox.touched > self.root.settings.sandbox_idle_seconds:
            self._forget(sandbox)
            return None
        sandbox.touched = now
        return sandbox

    async def find(self, sandbox_id: str) -> Sandbox | None:
        """:meth:`get`, and on a shared store the sandbox as the store knows it: built here
        when another process made it, gone when another deleted it, its state synced."""
        if not self.sharing or sandbox_id == DEFAULT:
            return self.get(sandbox_id)
        entry = await self.entries.get(ENTRIES, sandbox_id)
        if entry is None:
            self.live.pop(sandbox_id, None)
            return None
        wall = self.wall()
        if wall - entry.touched > self.idle_seconds:
            await self.delete(sandbox_id)
            return None
        sandbox = self.live.get(sandbox_id)
        if sandbox is None:
            sandbox = self._rebuild(sandbox_id, entry)
        if wall - entry.touched > self.idle_seconds / 16:
            await self.entries.update(
                ENTRIES, sandbox_id, lambda held: dataclasses.replace(held, touched=wall)
            )
        sandbox.touched = self.monotonic()
        await sandbox.state.sync()
        return sandbox

    async def load_all(self) -> None:
        """On a shared store: every live sandbox of the store known here, none other (the
        idle ones expired)."""
        if not self.sharing:
            return
        held: dict[str, Entry] = {}
        after = None
        while True:
            page = await self.entries.scan(ENTRIES, after=after, limit=500)
            held.update(page.items)
            if page.next is None:
                break
            after = page.next
        wall = self.wall()
        for sandbox_id in [i for i in self.live if i not in held]:
            self.live.pop(sandbox_id)
        for sandbox_id, entry in held.items():
            if wall - entry.touched > self.idle_seconds:
                await self.delete(sandbox_id)
            elif sandbox_id not in self.live:
                self._rebuild(sandbox_id, entry)

    async def before_control(self, path: str) -> Sandbox | None:
        """On a shared store, before a ``/_sim/sandboxes...`` request: the listing as the
        store has it, or the sandbox it names found (and synced), which it returns."""
        rest = path[len(CONTROL_PATH) :].strip("/")
        if not rest:
            await self.load_all()
            return None
        return await self.find(rest.partition("/")[0])

    async def after(self, sandbox: Sandbox) -> None:
        """After a request to ``sandbox``: what it changed written to a shared store
        (unless the request deleted it)."""
        if self.sharing and self.live.get(sandbox.id) is sandbox:
            await sandbox.state.synced_after()

    def _rebuild(self, sandbox_id: str, entry: Entry) -> Sandbox:
        """The sandbox another process made, built here from its entry."""
        from simulator.sandboxspec import SandboxSpec

        spec = SandboxSpec(
            name=entry.name,
            seed=entry.seed,
            clock=entry.clock,
            start=entry.start,
            options={name: dict(values) for name, values in entry.options.items()},
        )
        state = self._state(sandbox_id, spec)
        sandbox = Sandbox(
            sandbox_id, entry.name, state, self.serve(state), entry.created, self.monotonic()
        )
        self.live[sandbox_id] = sandbox
        return sandbox

    def listing(self) -> list[Sandbox]:
        self._expire()
        return [self.default, *self.live.values()]

    async def create(self, spec: SandboxSpec) -> Sandbox:
        """A new sandbox as ``spec`` says, or a :class:`SandboxError` naming the refusal."""
        await self.load_all()
        self._expire()
        if self.cap <= 0:
            raise SandboxError(
                409, "sandboxes are off on this server: its sandbox cap is 0 (--sandbox-cap)"
            )
        if len(self.live) >= self.cap:
            raise SandboxError(
                429,
                f"sandbox cap reached: {len(self.live)} live sandboxes of at most {self.cap} "
                "(--sandbox-cap / BULKSIM_SANDBOX_CAP); delete one or wait for one to expire",
            )
        scenario = None
        if spec.scenario is not None:
            try:
                scenario = parse_scenario(spec.scenario)
            except ScenarioError as exc:
                raise SandboxError(400, str(exc)) from None
            spec = _with_scenario(spec, scenario)
        sandbox_id = secrets.token_hex(8)
        state = self._state(sandbox_id, spec)
        now = self.monotonic()
        sandbox = Sandbox(sandbox_id, spec.name, state, self.serve(state), wall_clock_now(), now)
        self.live[sandbox_id] = sandbox
        if self.sharing:
            options = {
                provider: {key: _option_text(value) for key, value in values.items()}
                for provider, values in spec.options.items()
            }
            start = state.clock.now() if state.clock.kind == "manual" else None
            entry = Entry(
                spec.name, state.settings.seed, state.settings.clock, start, options,
                sandbox.created, self.wall(),
            )  # fmt: skip
            await self.entries.put(ENTRIES, sandbox_id, entry)
            await state.sync()
        if scenario is not None:
            try:
                await self.start_from(sandbox, scenario)
            except ScenarioError as exc:
                await self.delete(sandbox_id)
                raise SandboxError(400, f"scenario.{exc}") from None
        return sandbox

    async def start_from(self, sandbox: Sandbox, scenario: Scenario) -> None:
        """Make the scenario's objects and faults in ``sandbox`` through the app."""
        assert self.app is not None, "create_app sets the app"
        control = "/_sim" if sandbox.id == DEFAULT else f"/_sim/sandboxes/{sandbox.id}"
        await apply(scenario, self.app, sandbox.state, sandbox.base_path, control)

    def _state(self, sandbox_id: str, spec: SandboxSpec) -> SimulatorState:
        root = self.root.settings
        kind = spec.clock or root.clock
        if spec.start is not None and kind != "manual":
            raise SandboxError(400, "start: only applies to a manual clock (clock: manual)")
        clock: Clock
        if kind == "manual":
            clock = ManualClock(spec.start or root.start or wall_clock_now())
        else:
            clock = SystemClock()
        added = tuple(
            (f"{provider}.{key}", _option_text(value))
            for provider, values in spec.options.items()
            for key, value in values.items()
        )
        unknown = [name for name in spec.options if name not in self.root.runtimes]
        if unknown:
            known = ", ".join(self.root.runtimes)
            raise SandboxError(400, f"options.{unknown[0]}: unknown provider; known: {known}")
        seed = root.seed if spec.seed is None else spec.seed
        settings = dataclasses.replace(
            root,
            seed=seed,
            clock=kind,
            start=clock.now() if kind == "manual" else None,
            options=root.options + added,
        )
        try:
            state = SimulatorState(
                settings=settings,
                clock=clock,
                ids=IdFactory(seed),
                providers=self.root.providers,
                store=self.root.store.scoped(f"sandboxes/{sandbox_id}", now=clock.now),
                base_path=f"{PATH}{sandbox_id}",
            )
        except SettingsError as exc:
            raise SandboxError(400, f"options: {exc}") from None
        if self.root.sleep is not asyncio.sleep and kind == "manual":
            # The app waits on simulated time (in process): a sandbox waits on its own.
            state.sleep = _clock_sleep(clock)
        return state

    async def delete(self, sandbox_id: str) -> bool:
        """Forget the sandbox and clear everything its store view holds."""
        if sandbox_id == DEFAULT:
            raise SandboxError(409, "the default sandbox cannot be deleted (reset it instead)")
        sandbox = self.live.pop(sandbox_id, None)
        known = sandbox is not None
        if self.sharing:
            known = await self.entries.delete(ENTRIES, sandbox_id) or known
        if not known:
            return False
        await self.root.store.scoped(f"sandboxes/{sandbox_id}").clear()
        return True

    def _expire(self) -> None:
        now = self.monotonic()
        for sandbox in [s for s in self.live.values() if now - s.touched > self.idle_seconds]:
            self._forget(sandbox)

    def _forget(self, sandbox: Sandbox) -> None:
        """Drop an idle sandbox now; its store view is cleared in the background (on a
        shared store, only this process's copy is dropped: another may be using it, and
        :meth:`find` judges its idleness from the entry)."""
        self.live.pop(sandbox.id, None)
        if self.sharing:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - the app always runs on a loop
            return
        task = loop.create_task(sandbox.state.store.clear())
        self.clearing.add(task)
        task.add_done_callback(self.clearing.discard)


def unknown_sandbox(sandbox_id: str) -> JSONResponse:
    """The 404 of a sandbox id that is not live, on provider paths and the control plane."""
    return JSONResponse(
        {
            "error": f"no sandbox {sandbox_id!r}: it was never created, was deleted, or "
            "expired after being idle (GET /_sim/sandboxes lists the live ones)"
        },
        status_code=404,
    )


def _with_scenario(spec: SandboxSpec, scenario: Scenario) -> SandboxSpec:
    """The spec with the scenario's clock, start, seed and options in place of its own."""
    options = {k: dict(v) for k, v in spec.options.items()}
    for provider, values in scenario.options.items():
        options.setdefault(provider, {}).update(values)
    clock = scenario.clock or spec.clock
    if scenario.objects and clock is None:
        clock = "manual"
    return spec.model_copy(
        update={
            "clock": clock,
            "start": scenario.start or spec.start,
            "seed": spec.seed if scenario.seed is None else scenario.seed,
            "options": options,
        }
    )


def _clock_sleep(clock: Clock) -> Callable[[float], Awaitable[None]]:
    async def sleep(seconds: float) -> None:
        clock.advance(timedelta(seconds=seconds))

    return sleep


def _option_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
