"""Webhooks as a provider sees them: an event, due at an instant of the simulator's clock.

A provider knows when a batch will be over the moment it creates it, so it schedules the
event then, due at that instant (:func:`schedule`), under a key of its own (``batch/<id>``)
that it can :func:`unschedule` by (a cancel). The event is a record in the provider's view
of the store; :mod:`simulator.webhooks` delivers it once it falls due (on a clock advance,
or as time passes), retries it on the clock and records every attempt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from simulator.kit.context import ProviderContext
from simulator.store import Store, Table

__all__ = ["EVENTS", "PENDING", "Due", "Event", "Signing", "schedule", "unschedule"]


@dataclass(frozen=True, slots=True)
class Signing:
    """How an event is signed: ``header: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">``."""

    header: str
    secret: str


@dataclass(frozen=True, slots=True)
class Event:
    """What is sent: the raw body (JSON, as the receiver gets it) to ``target``; a failed
    attempt is retried on the schedule unless ``retry`` is False (the provider's choice)."""

    id: str
    type: str
    target: str
    body: str
    created: datetime
    signing: Signing | None = None
    retry: bool = True


@dataclass(frozen=True, slots=True)
class Due:
    """One attempt to come: the event, when it falls due, which attempt (from 1), and the
    order it was scheduled in (for events due at one instant). ``held``: an out-of-order
    fault holds it back until the provider's next event is sent (``due`` is the latest)."""

    event: Event
    due: datetime
    attempt: int
    seq: int
    held: bool = False


PENDING = Table("webhooks/pending", Due)
EVENTS = Table("webhooks/events", Event)


def _body(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


async def schedule(
    ctx: ProviderContext[Any],
    key: str,
    *,
    event_id: str,
    type: str,
    target: str,
    payload: Any,
    due: datetime,
    signing: Signing | None = None,
    store: Store | None = None,
    retry: bool = True,
) -> Event:
    """Deliver ``payload`` to ``target`` at ``due`` (on ``store``: a transaction, or the
    provider's view); a second schedule under ``key`` replaces the first. ``retry`` False:
    one attempt only."""
    view = ctx.store if store is None else store
    event = Event(event_id, type, target, _body(payload), ctx.now(), signing, retry)
    seq = await view.incr("webhooks/seq")
    await view.put(EVENTS, event_id, event)
    await view.put(PENDING, key, Due(event, due, 1, seq))
    return event


async def unschedule(store: Store, key: str) -> bool:
    """Forget the delivery scheduled under ``key`` (e.g. the batch was cancelled)."""
    return await store.delete(PENDING, key)
