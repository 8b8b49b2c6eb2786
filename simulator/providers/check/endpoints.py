"""Webhook endpoints registered for an organisation: Check's dashboard setting (Settings →
Webhooks), here set on the control plane (``/_sim/providers/check/webhook-endpoints``).

An endpoint is a URL and the event types it takes. Events are scheduled when a batch is
created, so an endpoint gets the events of the batches created after it was registered;
deleting it forgets its events still to come. Kept in Check's view of the store, so it is
per sandbox and works on every backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from simulator.clock import format_iso
from simulator.kit.webhooks import PENDING
from simulator.providers.check.models import TEST_KEYS, Context
from simulator.store import Store, Table

__all__ = [
    "DOCUMENTED_EVENTS",
    "ENDPOINTS",
    "SENT_EVENTS",
    "Endpoint",
    "EndpointError",
    "forget_pending",
    "listing",
    "register",
    "remove",
]

# Every event type the webhooks page names (an endpoint may subscribe to any of them) and
# the ones the simulator sends: escalations and usage limits are not modelled.
DOCUMENTED_EVENTS = (
    "batch.completed",
    "batch.failed",
    "verification.completed",
    "verification.failed",
    "verification.escalated",
    "escalation.resolved",
    "usage.limit.warning",
    "usage.limit.reached",
)
SENT_EVENTS = ("batch.completed", "batch.failed", "verification.completed", "verification.failed")
MAX_URL = 2048
# Endpoints per organisation (the dashboard's limit is not documented).
MAX_ENDPOINTS = 16


class EndpointError(Exception):
    """A refused control call: its status and a message for the caller."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    organisation: str
    url: str
    events: tuple[str, ...]
    created_at: datetime

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "organisation": self.organisation,
            "url": self.url,
            "events": list(self.events),
            "createdAt": format_iso(self.created_at),
        }


ENDPOINTS = Table("webhook-endpoints", Endpoint)
ORGANISATIONS = {org.id for org in TEST_KEYS.values()}


def _organisation(body: Mapping[str, Any]) -> str:
    org, key = body.get("organisation"), body.get("key")
    if (org is None) == (key is None):
        raise EndpointError(400, 'give one of "organisation" (an organisation id) or "key"')
    if key is not None:
        found = TEST_KEYS.get(key) if isinstance(key, str) else None
        if found is None:
            raise EndpointError(400, "key is not one of Check's test keys (see /_sim/providers)")
        return found.id
    if not isinstance(org, str) or org not in ORGANISATIONS:
        known = ", ".join(sorted(ORGANISATIONS))
        raise EndpointError(400, f"organisation must be one of {known}")
    return org


def _url(body: Mapping[str, Any]) -> str:
    url = body.get("url")
    if not isinstance(url, str) or not url:
        raise EndpointError(400, "url is required: the http(s) URL events are posted to")
    if len(url) > MAX_URL:
        raise EndpointError(400, f"url must be at most {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        host = None
    else:
        if parts.scheme not in ("http", "https"):
            host = None
    if not host:
        raise EndpointError(400, "url must be an absolute http:// or https:// URL")
    return url


def _events(body: Mapping[str, Any]) -> tuple[str, ...]:
    events = body.get("events", list(SENT_EVENTS))
    if not isinstance(events, list) or not events:
        raise EndpointError(400, "events must be a non-empty list of event types")
    unknown = [e for e in events if e not in DOCUMENTED_EVENTS]
    if unknown:
        raise EndpointError(
            400, f"unknown event type {unknown[0]!r}; known: {', '.join(DOCUMENTED_EVENTS)}"
        )
    return tuple(dict.fromkeys(events))


async def _all(store: Store) -> list[Endpoint]:
    found: list[Endpoint] = []
    after: str | None = None
    while True:
        page = await store.scan(ENDPOINTS, after=after, limit=100)
        found.extend(endpoint for _, endpoint in page.items)
        if page.next is None:
            return found
        after = page.next


async def register(ctx: Context, body: Mapping[str, Any]) -> Endpoint:
    """A new endpoint from a control call's body (``organisation`` or ``key``, ``url``,
    ``events``: every event the simulator sends when left out)."""
    unknown = sorted(set(body) - {"organisation", "key", "url", "events"})
    if unknown:
        raise EndpointError(400, f"unknown field {unknown[0]!r}")
    org, url, events = _organisation(body), _url(body), _events(body)
    async with ctx.store.transaction() as tx:
        mine = [e for e in await _all(tx) if e.organisation == org]
        if len(mine) >= MAX_ENDPOINTS:
            raise EndpointError(409, f"an organisation has at most {MAX_ENDPOINTS} endpoints")
        endpoint_id = "we_" + (await ctx.next_id("webhook-endpoint")).hex32()[:24]
        endpoint = Endpoint(endpoint_id, org, url, events, ctx.now())
        await tx.put(ENDPOINTS, endpoint_id, endpoint)
    return endpoint


async def listing(store: Store) -> list[Endpoint]:
    """Every endpoint, oldest first."""
    return await _all(store)


async def forget_pending(store: Store, keep: Any) -> int:
    """Unschedule every event still to come whose key ``keep(key)`` is False; how many."""
    doomed: list[str] = []
    after: str | None = None
    while True:
        page = await store.scan(PENDING, after=after, limit=500)
        doomed.extend(key for key, _ in page.items if not keep(key))
        if page.next is None:
            break
        after = page.next
    for key in doomed:
        await store.delete(PENDING, key)
    return len(doomed)


async def remove(store: Store, endpoint_id: str) -> bool:
    """Delete the endpoint and its events still to come; whether it existed."""
    if not await store.delete(ENDPOINTS, endpoint_id):
        return False
    await forget_pending(store, lambda key: not key.endswith(f"/endpoint/{endpoint_id}"))
    return True
