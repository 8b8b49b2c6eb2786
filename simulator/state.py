"""SimulatorState: the one place a running simulator keeps what it knows.

One state is one sandbox (:mod:`simulator.sandboxes`): the app's own, the default, and one
per sandbox created on the control plane, each with its store scoped under its prefix.
It holds the clock, the seeded ids, the journal, the fault plan, the store and one
:class:`~simulator.kit.provider.ProviderRuntime` per served provider. There are no module
globals: two apps built in one process share nothing but a store handed to both.

On a store that several processes share (``--workers``, or two servers on one SQLite file),
the clock (a manual instant, or the system clock's offset) and the options changed at run
time are kept in the store too, as one :class:`Shared` record: :meth:`SimulatorState.sync`
reads it before each request (one store read; none on SQLite when nobody wrote it since,
and on Redis in one pipeline with the records the request will read; applied only when it is
another record than the one applied last) and writes a local
change (a clock advance, an option set) as a move of the shared record, so that concurrent
moves add up. It also
survives a restart. So do the fault plan (each fault a record; the plan's version, which
moves on each change and each strike, in the shared record, so that a process reads the plan
again only when it moved) and the journal (a ring in the store).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from simulator.clock import Clock, ManualClock, SystemClock
from simulator.faults import FaultPlan
from simulator.ids import IdFactory
from simulator.journal import Journal
from simulator.kit.provider import Provider, ProviderRuntime
from simulator.providers import Registered
from simulator.settings import Settings
from simulator.store import MemoryStore, Snapshot, Store, Table, shared

if TYPE_CHECKING:
    from pydantic import TypeAdapter

    from contracts.validate import SpecValidator

__all__ = ["Runtimes", "Shared", "SimulatorState", "SnapshotError"]

Sleep = Callable[[float], Awaitable[None]]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Overrides = dict[str, dict[str, str]]


@dataclass(frozen=True, slots=True)
class Shared:
    """The clock and the options changed at run time, as every process on one store sees them.

    ``clock`` is the manual clock's instant, or the system clock's offset from the wall clock
    (as an instant after the epoch); ``options`` the ``key=value`` changes per provider.
    """

    clock_kind: str
    clock: datetime
    options: Overrides = field(default_factory=dict)
    # How many times each provider was reset: another process rebuilds what it holds besides
    # the records (a token signer keyed from the store, the seeds) when this moves.
    resets: dict[str, int] = field(default_factory=dict)
    # How many times the fault plan changed (a fault scheduled, cleared or striking).
    faults: int = 0

    def moved(self, before: Shared, after: Shared) -> Shared:
        """This record with the change from ``before`` to ``after`` applied on top of it."""
        options = dict(self.options)
        for name in before.options.keys() | after.options.keys():
            if before.options.get(name) != after.options.get(name):
                options[name] = after.options.get(name, {})
        resets = dict(self.resets)
        for name, count in after.resets.items():
            resets[name] = resets.get(name, 0) + count - before.resets.get(name, 0)
        clock = self.clock + (after.clock - before.clock)
        faults = self.faults + after.faults - before.faults
        return Shared(self.clock_kind, clock, options, resets, faults)


SHARED = Table("shared", Shared)


def _validator_of(runtimes: Runtimes, name: str) -> Callable[[], SpecValidator]:
    """What reads a provider's spec validator when a journal entry is checked."""
    return lambda: runtimes[name].validator


class _AsOf:
    """The state's clock, read as ``instant`` until that is set to None: a runtime built
    when first needed builds what it holds (its seeded examples) as of the instant it would
    have been built at, the state's start or its last reset."""

    def __init__(self, clock: Clock, instant: datetime | None) -> None:
        self.clock = clock
        self.instant = instant

    @property
    def kind(self) -> str:
        return self.clock.kind

    def now(self) -> datetime:
        instant = self.instant
        return self.clock.now() if instant is None else instant

    def advance(self, delta: timedelta) -> None:
        self.clock.advance(delta)

    def set(self, instant: datetime) -> None:
        self.clock.set(instant)


class Runtimes(Mapping[str, ProviderRuntime]):
    """Each served provider's runtime by name, in the order served, each built on first use.

    Names, ``in`` and ``len`` never load a provider; reading a runtime (``[name]``, ``get``,
    ``items``, ``values``) loads its provider's package the first time and builds the
    runtime, once however many ask at the same time. :meth:`loaded` is what is built so far.
    """

    def __init__(
        self,
        providers: Sequence[Provider | Registered],
        build: Callable[[Provider], ProviderRuntime],
    ) -> None:
        self._providers = {p.name: p for p in providers}
        self._build = build
        self._built: dict[str, ProviderRuntime] = {}
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> ProviderRuntime:
        try:
            return self._built[name]
        except KeyError:
            pass
        provider = self._providers[name]  # KeyError: not served here
        with self._lock:
            runtime = self._built.get(name)
            if runtime is None:
                record = provider.load() if isinstance(provider, Registered) else provider
                runtime = self._build(record)
                self._built[name] = runtime
        return runtime

    def __contains__(self, name: object) -> bool:
        return name in self._providers

    def __iter__(self) -> Iterator[str]:
        return iter(self._providers)

    def __len__(self) -> int:
        return len(self._providers)

    def loaded(self) -> dict[str, ProviderRuntime]:
        """The runtimes built so far (a provider not yet needed has none), by name."""
        return dict(self._built)


@dataclass(frozen=True, slots=True)
class _Ring:
    last: int
    values: list[tuple[int, Any]]


@dataclass(frozen=True, slots=True)
class _StoreShape:
    records: list[tuple[str, str, Any, datetime | None]]
    counters: dict[str, int]
    rings: dict[str, _Ring]


@dataclass(frozen=True, slots=True)
class _SnapshotShape:
    """What ``POST /_sim/snapshot`` accepts: what ``GET /_sim/snapshot`` gave."""

    bulksim_snapshot: int
    seed: int
    state: Shared
    store: _StoreShape


@cache
def _snapshot_adapter() -> TypeAdapter[_SnapshotShape]:
    """Built on the first restore, not at start-up (pydantic with it)."""
    from pydantic import TypeAdapter

    return TypeAdapter(_SnapshotShape)


class SnapshotError(ValueError):
    """A snapshot that cannot be loaded here; the message says why."""


@dataclass
class SimulatorState:
    """Clock, ids, journal, faults, the store and each provider's runtime in one simulator."""

    settings: Settings
    clock: Clock
    ids: IdFactory
    # The records, or the registry's entries, loaded when first needed (see Runtimes).
    providers: Sequence[Provider | Registered]
    store: Store = field(default_factory=MemoryStore)
    sleep: Sleep = asyncio.sleep
    # Where its providers are served below the origin: "" (today's paths) for the default
    # sandbox, "/sandboxes/<id>" for another (see simulator.sandboxes).
    base_path: str = ""
    journal: Journal = field(init=False)
    faults: FaultPlan = field(init=False)
    runtimes: Runtimes = field(init=False)
    # Exceptions no handler caught (each answered as the provider's 500): a bug to surface.
    crashes: deque[BaseException] = field(default_factory=lambda: deque(maxlen=100))
    # Options changed at run time, per provider (``set_options``), until its reset.
    overrides: Overrides = field(default_factory=dict, init=False)
    resets: dict[str, int] = field(default_factory=dict, init=False)
    # When each provider's runtime would have been built (the start, or its last reset or
    # restore): one built later builds its seeded examples as of then.
    _born: dict[str, datetime] = field(default_factory=dict, init=False, repr=False)
    _synced: Shared | None = field(default=None, init=False, repr=False)
    # The store's mark (``SqliteStore.mark``) when the shared record was last read: while it
    # stays, nobody wrote the record since, and a sync with nothing to write reads nothing.
    _mark: Hashable | None = field(default=None, init=False, repr=False)
    # The shared record as last read and applied (the store's value, the very object).
    _applied: Shared | None = field(default=None, init=False, repr=False)
    # Each sync's read (or write) of the shared record is numbered as it is made, and the
    # number of the one applied last kept: concurrent requests' reads come back in any
    # order, and one made before another that was applied may hold an older record.
    _reads: int = field(default=0, init=False, repr=False)
    _applied_read: int = field(default=0, init=False, repr=False)
    sharing: bool = field(default=False, init=False)
    _view: Store = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # The clock and options are kept in the store when it is shared and the clock is one
        # of bulksim's own.
        self.sharing = shared(self.store) and isinstance(self.clock, ManualClock | SystemClock)
        started = self.clock.now()
        self._born = {p.name: started for p in self.providers}
        self.runtimes = Runtimes(self.providers, self._runtime)
        for name in self.runtimes:
            if self.settings.options_for(name):
                self.runtimes[name]  # its options are read now: a bad one fails here, at start
        view = self.store.scoped("_sim") if self.sharing else None
        self.journal = Journal(
            self.settings.journal_size,
            store=view,
            validators={name: _validator_of(self.runtimes, name) for name in self.runtimes},
        )
        self.faults = FaultPlan(self.settings.seed, store=view, cap=self.settings.max_faults)
        self._view = self.store.scoped("_sim")

    def _runtime(self, provider: Provider) -> ProviderRuntime:
        """A provider's runtime, built when first needed: as it would have been at start,
        with the options changed at run time since then."""
        as_of = _AsOf(self.clock, self._born.get(provider.name))
        runtime = ProviderRuntime(provider, as_of, self.ids, self.settings, self.store)
        as_of.instant = None  # what it keeps (a token signer) reads the clock from now on
        runtime.context.clock = self.clock
        runtime.context.store = self.store.scoped(provider.name, now=self.clock.now)
        if self.overrides.get(provider.name):
            runtime.set_options(self.overrides[provider.name])
        return runtime

    def views(self) -> dict[str, Store]:
        """Each served provider's store view (as its runtime's context holds it), by name,
        without loading a provider: what webhooks read and write."""
        built = self.runtimes.loaded()
        return {
            name: built[name].context.store
            if name in built
            else self.store.scoped(name, now=self.clock.now)
            for name in self.runtimes
        }

    async def reset(self, provider: str | None = None) -> list[str]:
        """Back to the fresh state (seeded examples included); returns what was reset."""
        names = [provider] if provider else list(self.runtimes)
        built = self.runtimes.loaded()
        for name in names:
            if name in built:
                await built[name].reset()
            else:
                # Not built yet: emptying its view is the whole reset (it is built fresh,
                # as of now).
                async with self.views()[name].transaction() as tx:
                    await tx.clear()
                self._born[name] = self.clock.now()
            self.overrides.pop(name, None)
            self.resets[name] = self.resets.get(name, 0) + 1
        await self.sync()
        return names

    def set_options(self, provider: str, raw: Mapping[str, str]) -> object:
        """Change some of a provider's options from now on (``key=value`` strings)."""
        options = self.runtimes[provider].set_options(raw)
        self.overrides[provider] = {**self.overrides.get(provider, {}), **raw}
        return options

    # -- what processes on one store share ---------------------------------------------------

    def _local(self) -> Shared:
        clock = self.clock
        instant = EPOCH + clock.offset if isinstance(clock, SystemClock) else clock.now()
        options = {name: dict(raw) for name, raw in self.overrides.items()}
        return Shared(clock.kind, instant, options, dict(self.resets), self.faults.version)

    def _apply(self, held: Shared) -> None:
        clock = self.clock
        if held.clock_kind == clock.kind:
            if isinstance(clock, SystemClock):
                clock.offset = held.clock - EPOCH
            elif isinstance(clock, ManualClock):
                clock.current = held.clock
        # Only the runtimes built so far: one built later starts from the store as it is then.
        built = self.runtimes.loaded()
        for name in self.runtimes:
            if held.resets.get(name, 0) != self.resets.get(name, 0):
                # Reset elsewhere: the records are gone; rebuild what is built from them.
                if name in built:
                    built[name].store = built[name].provider.store_factory(built[name].context)
                else:
                    self._born[name] = self.clock.now()
        self.resets = {n: count for n, count in held.resets.items() if n in self.runtimes}
        if held.options != self.overrides:
            for name, runtime in built.items():
                runtime.context.options = runtime.initial_options
                if held.options.get(name):
                    runtime.set_options(held.options[name])
            self.overrides = {n: dict(raw) for n, raw in held.options.items() if n in self.runtimes}

    async def sync(self, request: str | None = None) -> None:
        """Agree with the store on the clock and the options (a no-op on a store of one's own).

        A change made here since the last sync (by the control plane, or a latency fault
        passing on the clock) is written as a move of the shared record; then the shared
        record is applied here. The first sync adopts what the store holds (a restart picks
        up the clock and options where they were), unless it is for another kind of clock.

        ``request`` (method, path and query of the request about to be answered) lets a
        store read, in the same round trip, the records the last answer to it read (Redis:
        ``read_ahead``); :meth:`answered` says when the request is over.
        """
        if not self.sharing:
            return
        view = self._view
        local = self._local()
        mark = view.mark(SHARED)
        if mark is not None and mark == self._mark and local == self._synced:
            return  # nothing changed here, and nobody wrote the record since it was read
        self._mark = None
        read = self._numbered()
        if request is not None:
            held = await view.read_ahead(SHARED, "state", request)
        else:
            held = await view.get(SHARED, "state")
        # Both read after the store: meanwhile another request of this process may have
        # claimed a change, or applied a record it read (which is no change made here).
        last, local = self._synced, self._local()
        if (
            held is self._applied
            and held is not None
            and local == last
            and held.faults == self.faults.version
            and self._local() == last
        ):
            # The very record applied last (its stored form unchanged: the store hands out
            # the value it decoded then) and nothing changed here since, nor meanwhile:
            # applying it again would change nothing.
            self._mark = mark
            return
        if held is None or held.clock_kind != local.clock_kind:
            read = self._numbered()
            await view.put(SHARED, "state", local)
            held = local
        elif last is not None and local != last:
            # Claimed before awaiting the store: a request of this process that syncs
            # meanwhile writes only what it changed itself, and no change is counted twice.
            self._synced = local
            read = self._numbered()
            moved = await view.update(SHARED, "state", lambda now: now.moved(last, local))
            held = moved or local
        if read < self._applied_read:
            # A read made after this one was applied meanwhile: this record may be older
            # than what this process holds. The next sync reads the store again.
            return
        self._applied_read = read
        # A change made here while the store was awaited stays, to be written next.
        base, now = self._synced, self._local()
        pending = base is not None and now != base
        self._apply(held.moved(base, now) if pending and base is not None else held)
        if held.faults != self.faults.version and not pending:
            await self.faults.reload()
            self.faults.version = held.faults
        self._synced = held if pending else self._local()
        self._applied = held
        # Valid only if nothing was written meanwhile, here or elsewhere (a write moves it).
        self._mark = mark

    def _numbered(self) -> int:
        """The number of a read (or write) of the shared record about to be made."""
        self._reads += 1
        return self._reads

    def answered(self) -> None:
        """The request the last :meth:`sync` was for is over (its answer sent or failed)."""
        self._view.read_behind()

    async def synced_after(self) -> None:
        """After a request: write what it changed here (nothing to read when nothing did)."""
        if self.sharing and self._local() != self._synced:
            await self.sync()

    def operations(self) -> dict[str, list[str]]:
        return {name: rt.provider.operations() for name, rt in self.runtimes.items()}

    def error_names(self) -> dict[str, list[str]]:
        return {
            name: [e.__name__ for e in rt.provider.errors] for name, rt in self.runtimes.items()
        }

    # -- snapshots -------------------------------------------------------------------------

    async def snapshot(self) -> dict[str, Any]:
        """The whole state as JSON: the store (every provider's records, counters and rings),
        the clock and the options changed at run time. The journal and faults are not in it."""
        await self.sync()
        return {
            "bulksim_snapshot": 1,
            "seed": self.settings.seed,
            "state": SHARED.codec.dump(self._local()),
            "store": await self.store.snapshot(),
        }

    async def restore(self, data: object) -> None:
        """Load a :meth:`snapshot` (taken on any backend) in place of the whole state."""
        from pydantic import ValidationError

        try:
            shape = _snapshot_adapter().validate_python(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise SnapshotError(f"not a bulksim snapshot: {where}: {first['msg']}") from None
        if shape.seed != self.settings.seed:
            raise SnapshotError(
                f"the snapshot was taken with seed {shape.seed}; this simulator runs seed "
                f"{self.settings.seed} (its ids and token keys would not match)"
            )
        assert isinstance(data, dict)
        view = self.store.scoped("_sim")
        before: Shared | None = None
        if self.sharing:
            before = await view.get(SHARED, "state")
        snapshot: Snapshot = data["store"]
        await self.store.restore(snapshot)
        built = self.runtimes.loaded()
        for name in self.runtimes:
            # Token keys and seeds are built from the store: build them from the restored one.
            if name in built:
                built[name].store = built[name].provider.store_factory(built[name].context)
            else:
                self._born[name] = self.clock.now()
        self._synced = None
        self._mark = None
        self._applied = None
        held = shape.state
        if self.sharing:
            # The other processes on the store rebuild theirs too (see ``Shared.resets``).
            known = before.resets if before is not None else {}
            resets = {name: known.get(name, 0) + 1 for name in self.runtimes}
            version = (before.faults if before is not None else 0) + 1
            held = Shared(self.clock.kind, held.clock, held.options, resets, version)
            await view.put(SHARED, "state", held)
        elif held.clock_kind != self.clock.kind:
            held = Shared(self.clock.kind, self._local().clock, held.options)
        self.resets = dict(held.resets)
        self._apply(held)
        if self.sharing:
            # The plan and the journal are the restored store's.
            await self.faults.reload()
            self.faults.version = held.faults
            self.journal.forget()
        self._synced = self._local() if self.sharing else None
