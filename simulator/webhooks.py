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
  schedule runs out; an advance past several retries makes them all, in order.
- **Targets** are loopback only (127.0.0.0/8, ::1, ``localhost``) unless
  ``webhook_allow_hosts`` names the host; any other is refused, recorded and never retried.
- **Every attempt** is kept (the newest :data:`KEPT` per provider) for ``GET /_sim/webhooks``.
- **Signatures** (``t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">``) carry the wall-clock
  time, which is what receivers check a timestamp against.

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
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from starlette.types import ASGIApp

from simulator.clock import format_iso, wall_clock_now
from simulator.kit.webhooks import EVENTS, PENDING, Due, Event, Signing
from simulator.settings import Settings
from simulator.state import SimulatorState
from simulator.store import Store, Table

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
        }


ATTEMPTS = Table("webhooks/attempts", Attempt)


def signature(signing: Signing, body: str, unix: int) -> str:
    """``t=<unix>,v1=<hex HMAC-SHA256 of "<unix>.<body>" keyed by the secret>``."""
    mac = hmac.new(signing.secret.encode(), f"{unix}.{body}".encode(), hashlib.sha256)
    return f"t={unix},v1={mac.hexdigest()}"


def refusal(target: str, settings: Settings) -> str | None:
    """Why ``target`` may not be sent to, or None when it may."""
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


class _Transport(httpx.AsyncBaseTransport):
    """Into the app itself for its own ``/_sim/`` paths on loopback; else over the network."""

    def __init__(self, settings: Settings, app: Callable[[], ASGIApp | None]) -> None:
        self.settings = settings
        self.app = app
        self.network = httpx.AsyncHTTPTransport()

    def _own(self, url: httpx.URL) -> bool:
        return (
            url.path.startswith("/_sim/")
            and refusal(str(url), Settings()) is None
            and url.port in (None, self.settings.port)
            and self.app() is not None
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        app = self.app()
        if app is not None and self._own(request.url):
            return await httpx.ASGITransport(app=app).handle_async_request(request)
        return await self.network.handle_async_request(request)

    async def aclose(self) -> None:
        await self.network.aclose()


class Deliveries:
    """Sends the events due on a state's clock; one per app, shared by its sandboxes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app: ASGIApp | None = None
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=_Transport(self.settings, lambda: self.app),
                timeout=self.settings.webhook_timeout,
                headers={"user-agent": USER_AGENT},
            )
        return self._client

    async def deliver_due(self, state: SimulatorState, *, limit: int = 100_000) -> int:
        """Send every event due by the clock's now, in time order; how many attempts."""
        now = state.clock.now()
        queue: list[tuple[datetime, int, str, str]] = []
        views = {name: rt.context.store for name, rt in state.runtimes.items()}
        for name, view in views.items():
            for key, due in await _all(view, PENDING):
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
            retry = await self._attempt(state, view, taken)
            made += 1
            if retry is not None:
                await view.put(PENDING, key, retry)
                if retry.due <= now:
                    heapq.heappush(queue, (retry.due, retry.seq, name, key))
        return made

    async def _attempt(self, state: SimulatorState, view: Store, due: Due) -> Due | None:
        event = due.event
        settings = state.settings
        refused = refusal(event.target, settings)
        sign = None
        if event.signing is not None:
            sign = signature(event.signing, event.body, int(wall_clock_now().timestamp()))
        status = latency = error = None
        if refused is not None:
            outcome, error = "refused", refused
        else:
            headers = {"content-type": "application/json"}
            if event.signing is not None and sign is not None:
                headers[event.signing.header] = sign
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
            except httpx.HTTPError as exc:
                outcome, error = "failed", f"{type(exc).__name__}: {exc}"
            latency = round((time.monotonic() - started) * 1000, 3)
        retry = None
        schedule = settings.webhook_retries
        if outcome == "failed" and due.attempt <= len(schedule):
            later = due.due + timedelta(seconds=schedule[due.attempt - 1])
            retry = Due(event, later, due.attempt + 1, due.seq)
        record = Attempt(
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
            None if retry is None else retry.due,
        )
        await view.push(ATTEMPTS, record, size=KEPT)
        return retry

    async def attempts(self, state: SimulatorState) -> list[dict[str, object]]:
        """Every provider's recorded attempts, oldest first."""
        rows: list[tuple[datetime, str, int, dict[str, object]]] = []
        for name, runtime in state.runtimes.items():
            for number, attempt in await runtime.context.store.recent(ATTEMPTS):
                rows.append((attempt.due, name, number, attempt.as_dict(name)))
        rows.sort(key=lambda row: row[:3])
        return [row[3] for row in rows]

    async def resend(self, state: SimulatorState, event_id: str) -> Event | None:
        """Send the event again now (a fresh first attempt), or None when it is unknown."""
        for runtime in state.runtimes.values():
            view = runtime.context.store
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


async def _all(view: Store, table: Table[Due]) -> list[tuple[str, Due]]:
    found: list[tuple[str, Due]] = []
    after = None
    while True:
        page = await view.scan(table, after=after, limit=500)
        found.extend(page.items)
        if page.next is None:
            return found
        after = page.next
