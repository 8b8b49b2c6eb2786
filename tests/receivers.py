"""Webhook receivers for Check's events, written as a client's developer would write one.

:class:`Receiver` is the reference: it verifies ``X-Check-Signature`` (the documented
algorithm, with the standard library's ``hmac``), refuses a timestamp more than five minutes
off its own clock, skips an event id it has handled, answers before doing slow work, and
orders events by their own ``createdAt``. Each :data:`MISTAKES` entry turns one of those off:
the receiver a test expects the harness to catch by that check's name.

What it keeps: each batch's last status (subject: the batch id), and the account's latest
finished batch (subject :data:`LATEST`), which is where the order of events matters. It
reports ``acted`` (``(event id, subject)`` per time it acted on an event) and ``state``
(subject → the id of the event its state came from), as the harness's receiver checks take
them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contracts.harness import Simulator
from simulator.clock import parse_iso, wall_clock_now

TOLERANCE = 300  # seconds a signature's timestamp may be off
LATEST = "latest-batch"  # the subject an order mistake shows on

Order = Literal["created", "arrival", "watermark"]


def secret_of(sim: Simulator) -> str:
    """The webhook secret of Check's Pro test organisation, which signs its events."""
    secret: str = sim.credentials("check")["webhook_secrets"]["org_pro_test"]
    return secret


@dataclass
class Receiver:
    """A receiver of Check's webhooks at ``/hooks``; each flag changed is one mistake.

    ``order``: ``created`` (right: the newest ``createdAt`` wins), ``arrival`` (the last to
    arrive wins) or ``watermark`` (an event older than the newest seen is ignored).
    ``work`` is slow work: done before answering when ``work_first``, else after.
    """

    secret: str
    verify: bool = True
    check_time: bool = True
    dedupe: bool = True
    order: Order = "created"
    work: Callable[[], Awaitable[None]] | None = None
    acted: list[tuple[str, str]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    batches: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (event, status)
    latest: tuple[str, str] | None = None  # (createdAt, event id)
    newest_seen: str = ""

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hooks", self.receive, methods=["POST"])])

    @property
    def state(self) -> dict[str, str]:
        kept = {batch: event for batch, (event, _) in self.batches.items()}
        if self.latest is not None:
            kept[LATEST] = self.latest[1]
        return kept

    def _verified(self, request: Request, body: str) -> bool:
        parts = dict(
            part.split("=", 1)
            for part in request.headers.get("x-check-signature", "").split(",")
            if "=" in part
        )
        stamp, mac = parts.get("t", ""), parts.get("v1", "")
        expected = hmac.new(self.secret.encode(), f"{stamp}.{body}".encode(), hashlib.sha256)
        if self.verify and not hmac.compare_digest(mac, expected.hexdigest()):
            return False
        return not self.check_time or (
            stamp.isdigit() and abs(wall_clock_now().timestamp() - int(stamp)) <= TOLERANCE
        )

    async def receive(self, request: Request) -> Response:
        body = (await request.body()).decode()
        if not self._verified(request, body):
            return JSONResponse({"error": "signature"}, status_code=400)
        event = json.loads(body)
        event_id = event["id"]
        if self.dedupe and event_id in self.seen:
            return JSONResponse({"ok": True, "duplicate": True})
        self.seen.add(event_id)
        if self.work is not None:
            await self.work()  # before answering: a slow acknowledgement
        created = parse_iso(event["createdAt"]).isoformat()
        if self.order == "watermark" and created < self.newest_seen:
            return JSONResponse({"ok": True, "ignored": "older than the newest seen"})
        self.newest_seen = max(self.newest_seen, created)
        batch = event["data"]["id"]
        self.batches[batch] = (event_id, event["data"]["status"])
        if self.order != "created" or self.latest is None or created >= self.latest[0]:
            self.latest = (created, event_id)
        self.acted.append((event_id, LATEST))
        return JSONResponse({"ok": True})


Work = Callable[[], Awaitable[None]]


def wrong(**mistake: object) -> Callable[[str, Work], Receiver]:
    """A receiver with ``mistake`` (a ``work`` of True: it works before answering)."""

    def build(secret: str, work: Work) -> Receiver:
        flags = dict(mistake)
        slow = work if flags.pop("work", False) else None
        return Receiver(secret, work=slow, **flags)  # type: ignore[arg-type]

    return build


# (what is wrong, the check that names it, the receiver): one per mistake class
MISTAKES: list[tuple[str, str, Callable[[str, Work], Receiver]]] = [
    ("no-signature-check", "accepted-bad-signature", wrong(verify=False)),
    ("no-timestamp-check", "accepted-stale-timestamp", wrong(check_time=False)),
    ("no-dedupe", "processed-duplicate", wrong(dedupe=False)),
    ("works-before-answering", "slow-ack", wrong(work=True)),
    ("drops-older-events", "lost-out-of-order", wrong(order="watermark")),
    ("last-arrival-wins", "lost-out-of-order", wrong(order="arrival")),
]
