"""Webhook delivery: events that fall due on a sandbox's clock, sent, retried and recorded.

Providers schedule events (:mod:`simulator.kit.webhooks`) as records in their store view,
each due at an instant of the simulator's clock. :meth:`Deliveries.deliver_due` sends every
event due by now, in time order: the control plane calls it when it moves a clock (so an
advance returns after the deliveries it caused), and, served, a background task
(:meth:`Deliveries.run`) calls it for every sandbox as time passes.

- **Once.** A due record is taken from the store (consume once) before it is sent, so of
  several workers on one store exactly one sends it.
- **Success** is a 2xx within ``webhook_timeout`` seconds. Otherwise the next attempt is due
  ``webhook_retries[n - 1]`` seconds (on the clock) after attempt ``n`` was due, until the
  schedule runs out; an advance past several retries makes them all, in order. An event
  scheduled with ``retry=False`` gets one attempt only.
- **Targets** are loopback only (127.0.0.0/8, ::1, ``localhost``) unless
  ``webhook_allow_hosts`` names the host; any other is refused, recorded and never retried.
- **Every attempt** is kept (the newest :data:`KEPT` per provider) for ``GET /_sim/webhooks``.
- **Signatures** (``t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">``) carry the wall-clock
  time, which is what receivers check a timestamp against; with ``webhook_signature_time``
  ``simulated``, the simulator's clock.
- **Faults** of the webhook kinds (:mod:`simulator.faults`) strike deliveries: a duplicate,
  an event held back behind the next or sent late, dropped, a wrong signature, a stale
  timestamp, an answer taken to come after the timeout.

An origin mounted with :meth:`Deliveries.mount` (``http://host[:port]``) is an ASGI app in
this process, the receiver under test: deliveries to it go straight into it, no sockets.
A receiver's answer counts as late when it comes after ``webhook_timeout`` seconds on the
wall clock or on the simulator's clock (a receiver in process that waits by moving the
simulator's clock, as the harness's ``clock.sleep`` does).

A target under ``/_sim/`` on a loopback host at the simulator's own port (or none) is this
simulator's own sink: the request goes into the app itself, without a socket, so that the
sink works in process as well as served.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import hmac
import ipaddress
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp

from simulator.clock import format_iso, wall_clock_now
from simulator.faults import WEBHOOK, WEBHOOK_LATENCY_MS, Fault
from simulator.kit.webhooks import EVENTS, PENDING, Due, Event, Signing
from simulator.settings import Settings
from simulator.state import SimulatorState
from simulator.store import Store, StoreUnavailable, Table

if TYPE_CHECKING:  # httpx is loaded when the first delivery is made (or a target checked)
    import httpx

__all__ = ["ATTEMPTS", "KEPT", "Attempt", "Deliveries", "refusal", "signature"]

KEPT = 1000
USER_AGENT = "bulksim-webhooks/1"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One delivery attempt, as ``GET /_sim/webhooks`` shows it."""

    event_id: str
    type: str
    target: str
    attempt: int
    due: datetime
    outcome: str  # delivered | failed | refused
    status: int | None
    latency_ms: float | None
    error: str | None
    signature: str | None
    next_attempt: datetime | None
    fault: str | None = None  # the delivery fault that struck it, if one did
    timed_out: bool = False  # the receiver answered after the timeout, or not at all

    def as_dict(self, provider: str) -> dict[str, object]:
        return {
            "provider": provider,
            "event": self.event_id,
            "type": self.type,
            "target": self.target,
            "attempt": self.attempt,
            "due": format_iso(self.due),
            "outcome": self.outcome,
            "status": self.status,
            "latency_ms": self.latency_ms,
            "error": self.error,
            "signature": self.signature,
            "next_attempt": None if self.next_attempt is None else format_iso(self.next_attempt),
            "fault": self.fault,
            "timed_out": self.timed_out,
        }


ATTEMPTS = Table("webhooks/attempts", Attempt)


def signature(signing: Signing, body: str, unix: int) -> str:
    """``t=<unix>,v1=<hex HMAC-SHA256 of "<unix>.<body>" keyed by the secret>``."""
    mac = hmac.new(signing.secret.encode(), f"{unix}.{body}".encode(), hashlib.sha256)
    return f"t={unix},v1={mac.hexdigest()}"


def refusal(target: str, settings: Settings) -> str | None:
    """Why ``target`` may not be sent to, or None when it may."""
    import httpx

    try:
        url = httpx.URL(target)
    except httpx.InvalidURL:
        return f"not a URL: {target!r}"
    if url.scheme not in ("http", "https") or not url.host:
        return f"not an http(s) URL: {target!r}"
    host = url.host.lower()
    if host == "localhost" or host in settings.webhook_allow_hosts:
        return None
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).is_loopback:
            return None
    return (
        f"host {host!r} is not loopback and not in webhook_allow_hosts "
        "(BULKSIM_WEBHOOK_ALLOW_HOSTS): refused"
    )


@cache
def _transport_class() -> Any:
    """The transport's class, made on first use: it subclasses httpx's, which is loaded then."""
    import httpx

    class _Transport(httpx.AsyncBaseTransport):
        """Into the app itself for its own ``/_sim/`` paths on loopback; else over the network."""

        def __init__(
            self,
            settings: Settings,
            app: Callable[[], ASGIApp | None],
            receivers: dict[str, ASGIApp] | None = None,
        ) -> None:
            self.settings = settings
            self.app = app
            self.receivers = {} if receivers is None else receivers
            self.network = httpx.AsyncHTTPTransport()

        def _own(self, url: httpx.URL) -> bool:
            return (
                url.path.startswith("/_sim/")
                and refusal(str(url), Settings()) is None
                and url.port in (None, self.settings.port)
                and self.app() is not None
            )

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            mounted = self.receivers.get(origin_of(request.url))
            if mounted is not None:
                return await httpx.ASGITransport(app=mounted).handle_async_request(request)
            app = self.app()
            if app is not None and self._own(request.url):
                return await httpx.ASGITransport(app=app).handle_async_request(request)
            return await self.network.handle_async_request(request)

        async def aclose(self) -> None:
            await self.network.aclose()

    return _Transport


class Deliveries:
    """Sends the events due on a state's clock; one per app, shared by its sandboxes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app: ASGIApp | None = None
        self.receivers: dict[str, ASGIApp] = {}
        self._client: httpx.AsyncClient | None = None

    def mount(self, origin: str, app: ASGIApp | None) -> None:
        """Deliver what is sent to ``origin`` (``http://host[:port]``) into ``app``, in this
        process; None unmounts it (its deliveries are then refused unless loopback)."""
        import httpx

        key = origin_of(httpx.URL(origin))
        if app is None:
            self.receivers.pop(key, None)
        else:
            self.receivers[key] = app

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx

            transport = _transport_class()(self.settings, lambda: self.app, self.receivers)
            self._client = httpx.AsyncClient(
                transport=transport,
                timeout=self.settings.webhook_timeout,
                headers={"user-agent": USER_AGENT},
            )
        return self._client

    async def deliver_due(self, state: SimulatorState, *, limit: int = 100_000) -> int:
        """Send every event due by the clock's now, in time order; how many attempts."""
        now = state.clock.now()
        queue: list[tuple[datetime, int, str, str]] = []
        held: dict[str, list[str]] = {}  # by provider: events an out-of-order fault holds
        views = state.views()  # loads no provider: a webhook is a record in its view
        for name, view in views.items():
            for key, due in await _all(view, PENDING):
                if due.held:
                    held.setdefault(name, []).append(key)
                if due.due <= now:
                    queue.append((due.due, due.seq, name, key))
        heapq.heapify(queue)
        made = 0
        while queue and made < limit:
            _, _, name, key = heapq.heappop(queue)
            view = views[name]
            taken = await view.take(PENDING, key)
            if taken is None:  # another worker sent it
                continue
            if taken.due > now:  # rescheduled meanwhile: not due yet
                await view.put(PENDING, key, taken)
                continue
            later, sent = await self._attempt(state, name, view, taken)
            made += 1
            if later is not None:
                await view.put(PENDING, key, later)
                if later.held:
                    held.setdefault(name, []).append(key)
                elif later.due <= now:
                    heapq.heappush(queue, (later.due, later.seq, name, key))
            if sent:  # the events held back behind this one go right after it
                for other in held.pop(name, []):
                    released = await _release(view, other, taken.due)
                    if released is not None:
                        heapq.heappush(queue, (released.due, released.seq, name, other))
        return made

    async def _fault(self, state: SimulatorState, provider: str) -> Fault | None:
        """The webhook fault that strikes this delivery of ``provider``'s, if any."""
        faults = state.faults
        if not faults.armed:
            return None
        try:
            fault = await faults.take(provider, WEBHOOK)
            if faults.store is not None:
                await state.synced_after()
        except StoreUnavailable:
            return None
        return fault

    async def _attempt(
        self, state: SimulatorState, provider: str, view: Store, due: Due
    ) -> tuple[Due | None, bool]:
        """Make one attempt (as a fault says, if one strikes); the next one to come, if any,
        and whether the receiver got it."""
        event = due.event
        settings = state.settings
        fault = await self._fault(state, provider)
        kind = fault.kind if fault is not None else None
        struck = None if fault is None else _described(fault)
        refused = None if self._mounted(event.target) else refusal(event.target, settings)
        if refused is None and fault is not None and kind in NOT_SENT:
            withheld, why, kept = _withheld(fault, due)
            await view.push(
                ATTEMPTS, _record(due, withheld, None, None, why, None, kept, struck), size=KEPT
            )
            return kept, False
        sign = None
        if event.signing is not None:
            signing = event.signing
            signed_at = (
                state.clock.now() if settings.webhook_signature_time == "simulated" else None
            )
            unix = int((signed_at or wall_clock_now()).timestamp())
            if kind == "webhook_bad_signature":
                signing = Signing(signing.header, WRONG_SECRET_PREFIX + signing.secret)
            if kind == "webhook_stale_timestamp" and fault is not None:
                unix -= fault.latency_ms // 1000
            sign = signature(signing, event.body, unix)
        status: int | None = None
        latency: float | None = None
        error: str | None = None
        sent = timed_out = False
        if refused is not None:
            outcome, error = "refused", refused
        else:
            sent = True
            outcome, status, latency, error, timed_out = await self._post(event, sign, state)
            if kind == "webhook_duplicate":
                await view.push(
                    ATTEMPTS,
                    _record(due, outcome, status, latency, error, sign, None, struck, timed_out),
                    size=KEPT,
                )
                outcome, status, latency, error, timed_out = await self._post(event, sign, state)
            if kind == "webhook_slow":
                outcome = "failed"
                error = f"answered after the {settings.webhook_timeout} s timeout (fault)"
        retry = None
        schedule = settings.webhook_retries
        if outcome == "failed" and event.retry and due.attempt <= len(schedule):
            next_due = due.due + timedelta(seconds=schedule[due.attempt - 1])
            retry = Due(event, next_due, due.attempt + 1, due.seq)
        record = _record(due, outcome, status, latency, error, sign, retry, struck, timed_out)
        await view.push(ATTEMPTS, record, size=KEPT)
        return retry, sent

    def _mounted(self, target: str) -> bool:
        import httpx

        try:
            return origin_of(httpx.URL(target)) in self.receivers
        except httpx.InvalidURL:
            return False

    async def _post(
        self, event: Event, sign: str | None, state: SimulatorState
    ) -> tuple[str, int | None, float | None, str | None, bool]:
        """POST the event: its outcome, status, latency (ms), error and whether the answer
        came too late (or never)."""
        import httpx

        settings = state.settings
        headers = {"content-type": "application/json"}
        if event.signing is not None and sign is not None:
            headers[event.signing.header] = sign
        status = error = None
        timed_out = False
        simulated = state.clock.now()
        started = time.monotonic()
        try:
            answer = await self.client.post(
                event.target, content=event.body.encode(), headers=headers
            )
            status = answer.status_code
            outcome = "delivered" if 200 <= status < 300 else "failed"
            if outcome == "failed":
                error = f"answered {status}"
        except httpx.TimeoutException:
            outcome, error = "failed", f"no answer within {settings.webhook_timeout} s"
            timed_out = True
        except httpx.HTTPError as exc:
            outcome, error = "failed", f"{type(exc).__name__}: {exc}"
        latency = round((time.monotonic() - started) * 1000, 3)
        waited = (state.clock.now() - simulated).total_seconds()
        if status is not None and waited > settings.webhook_timeout:
            outcome, timed_out = "failed", True
            error = (
                f"answered {status} after {waited:g} s on the simulator's clock, "
                f"beyond the {settings.webhook_timeout} s timeout"
            )
        return outcome, status, latency, error, timed_out

    async def attempts(self, state: SimulatorState) -> list[dict[str, object]]:
        """Every provider's recorded attempts, oldest first."""
        rows: list[tuple[datetime, str, int, dict[str, object]]] = []
        for name, view in state.views().items():
            for number, attempt in await view.recent(ATTEMPTS):
                rows.append((attempt.due, name, number, attempt.as_dict(name)))
        rows.sort(key=lambda row: row[:3])
        return [row[3] for row in rows]

    async def resend(self, state: SimulatorState, event_id: str) -> Event | None:
        """Send the event again now (a fresh first attempt), or None when it is unknown."""
        for view in state.views().values():
            event = await view.get(EVENTS, event_id)
            if event is not None:
                seq = await view.incr("webhooks/seq")
                await view.put(
                    PENDING, f"resend/{event_id}/{seq}", Due(event, state.clock.now(), 1, seq)
                )
                await self.deliver_due(state)
                return event
        return None

    async def run(self, states: Callable[[], Iterable[SimulatorState]], every: float = 1.0) -> None:
        """Served: deliver what falls due in every sandbox, once a second, until cancelled."""
        while True:
            for state in list(states()):
                with contextlib.suppress(Exception):
                    await self.deliver_due(state, limit=1000)
            await asyncio.sleep(every)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


NOT_SENT = ("webhook_drop", "webhook_late", "webhook_out_of_order")
WRONG_SECRET_PREFIX = "wrong-"  # a webhook_bad_signature fault signs with a secret not theirs


def _described(fault: Fault) -> str:
    if fault.kind in WEBHOOK_LATENCY_MS:
        return f"{fault.kind}:{fault.latency_ms}ms"
    return fault.kind


def _withheld(fault: Fault, due: Due) -> tuple[str, str, Due | None]:
    """An attempt a fault keeps from the receiver: its outcome, why, and when it comes."""
    if fault.kind == "webhook_drop":
        return "dropped", "dropped (fault): never sent, never retried", None
    later = due.due + timedelta(milliseconds=fault.latency_ms)
    if fault.kind == "webhook_late":
        return "late", "held back (fault): sent later on the clock", replace(due, due=later)
    return (
        "held",
        "held back (fault) until the provider's next event is sent",
        replace(due, due=later, held=True),
    )


def _record(
    due: Due,
    outcome: str,
    status: int | None,
    latency: float | None,
    error: str | None,
    sign: str | None,
    later: Due | None,
    fault: str | None,
    timed_out: bool = False,
) -> Attempt:
    event = due.event
    return Attempt(
        event.id,
        event.type,
        event.target,
        due.attempt,
        due.due,
        outcome,
        status,
        latency,
        error,
        sign,
        None if later is None else later.due,
        fault,
        timed_out,
    )


def origin_of(url: httpx.URL) -> str:
    """``scheme://host[:port]``, lower case: what :meth:`Deliveries.mount` is keyed by."""
    port = "" if url.port is None else f":{url.port}"
    return f"{url.scheme}://{url.host.lower()}{port}"


async def _release(view: Store, key: str, after: datetime) -> Due | None:
    """Due right after ``after``: the event held under ``key``, if it is still held."""
    held = await view.take(PENDING, key)
    if held is None:
        return None
    if not held.held:
        await view.put(PENDING, key, held)
        return None
    released = replace(held, due=after, seq=await view.incr("webhooks/seq"), held=False)
    await view.put(PENDING, key, released)
    return released


async def _all(view: Store, table: Table[Due]) -> list[tuple[str, Due]]:
    found: list[tuple[str, Due]] = []
    after = None
    while True:
        page = await view.scan(table, after=after, limit=500)
        found.extend(page.items)
        if page.next is None:
            return found
        after = page.next
