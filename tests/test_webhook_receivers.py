"""The harness's checks of a client's webhook receiver: deliveries go straight into the
receiver's ASGI app in process; a reference receiver passes every delivery fault, and one
wrong receiver per mistake class is caught by the check's name."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contracts.checks import ClientNotConformant
from contracts.harness import Simulator, in_process
from simulator.clock import wall_clock_now
from simulator.providers.check.models import KEYS_BY_PLAN
from tests.receivers import secret_of

TOLERANCE = 300  # seconds a signature's timestamp may be off


@dataclass
class Receiver:
    """A client's receiver for Check's webhooks, as a user would write one; each flag turned
    off is one mistake."""

    secret: str
    verify: bool = True
    check_time: bool = True
    dedupe: bool = True
    work: Callable[[], Awaitable[None]] | None = None  # slow work done before answering
    acted: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hooks", self.receive, methods=["POST"])])

    async def receive(self, request: Request) -> Response:
        body = (await request.body()).decode()
        parts = dict(
            part.split("=", 1)
            for part in request.headers.get("x-check-signature", "").split(",")
            if "=" in part
        )
        stamp, mac = parts.get("t", ""), parts.get("v1", "")
        expected = hmac.new(self.secret.encode(), f"{stamp}.{body}".encode(), hashlib.sha256)
        if self.verify and not hmac.compare_digest(mac, expected.hexdigest()):
            return JSONResponse({"error": "bad signature"}, status_code=400)
        if self.check_time and (
            not stamp.isdigit() or abs(wall_clock_now().timestamp() - int(stamp)) > TOLERANCE
        ):
            return JSONResponse({"error": "stale"}, status_code=400)
        event_id = json.loads(body)["id"]
        if self.dedupe and event_id in self.seen:
            return JSONResponse({"ok": True, "duplicate": True})
        self.seen.add(event_id)
        if self.work is not None:
            await self.work()
        self.acted.append(event_id)
        return JSONResponse({"ok": True})


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with in_process() as simulator:
        yield simulator


def run_batches(sim: Simulator, url: str, count: int) -> list[str]:
    """Create ``count`` Check batches one second apart, let the clock run a day: their ids."""
    made = []
    with sim.client("check", headers={"Authorization": f"Bearer {KEYS_BY_PLAN['pro']}"}) as http:
        for _ in range(count):
            response = http.post("/v1/batch", json={"items": [{"content": "A"}], "webhookUrl": url})
            assert response.status_code == 202, response.text
            made.append(response.json()["id"])
            sim.clock.advance(1)
    sim.clock.advance(86400)
    return made


def events_of(sim: Simulator) -> set[str]:
    return {a["event"] for a in sim.webhook_attempts()}


def test_deliveries_go_straight_into_the_receivers_app(sim: Simulator) -> None:
    receiver = Receiver(secret_of(sim))
    origin = sim.webhook_receiver(receiver.app())
    run_batches(sim, f"{origin}/hooks", 2)
    assert len(receiver.acted) == 2
    attempt = sim.assert_webhook_delivered("batch.completed", target=origin)
    assert attempt["status"] == 200
    assert attempt["event"] == receiver.acted[-1]
    sim.assert_receiver_conformant(acted_on=receiver.acted)


def test_the_reference_receiver_passes_every_delivery_fault(sim: Simulator) -> None:
    receiver = Receiver(secret_of(sim))
    origin = sim.webhook_receiver(receiver.app())
    kinds = [
        "webhook_duplicate",
        "webhook_bad_signature",
        "webhook_stale_timestamp",
        "webhook_slow",
        "webhook_out_of_order",
        "webhook_late",
    ]
    for kind in kinds:
        sim.faults.schedule("check", kind)
    run_batches(sim, f"{origin}/hooks", len(kinds) + 1)
    assert [f["hits"] for f in sim.faults.list("check")] == []  # every one struck and spent
    assert sorted(receiver.acted) == sorted(events_of(sim))  # each event acted on once
    assert len(receiver.acted) == len(kinds) + 1
    sim.assert_receiver_conformant(acted_on=lambda: receiver.acted)


def with_mistake(**mistake: bool) -> Callable[[str], Receiver]:
    return lambda secret: Receiver(
        secret,
        verify=mistake.get("verify", True),
        check_time=mistake.get("check_time", True),
        dedupe=mistake.get("dedupe", True),
    )


MISTAKES = [
    ("accepted-bad-signature", "webhook_bad_signature", with_mistake(verify=False)),
    ("accepted-stale-timestamp", "webhook_stale_timestamp", with_mistake(check_time=False)),
    ("processed-duplicate", "webhook_duplicate", with_mistake(dedupe=False)),
    ("processed-duplicate", "webhook_slow", with_mistake(dedupe=False)),
]


@pytest.mark.parametrize(("check", "kind", "wrong"), MISTAKES, ids=[m[1] for m in MISTAKES])
def test_a_wrong_receiver_is_caught_by_name(
    sim: Simulator, check: str, kind: str, wrong: Callable[[str], Receiver]
) -> None:
    receiver = wrong(secret_of(sim))
    origin = sim.webhook_receiver(receiver.app())
    sim.faults.schedule("check", kind)
    run_batches(sim, f"{origin}/hooks", 1)
    found = sim.receiver_findings(acted_on=receiver.acted)
    assert [f.check for f in found] == [check]
    with pytest.raises(ClientNotConformant, match=check):
        sim.assert_receiver_conformant(acted_on=receiver.acted)


@pytest.mark.parametrize("kind", sorted({m[1] for m in MISTAKES}))
def test_the_reference_receiver_passes_each_of_those_faults(sim: Simulator, kind: str) -> None:
    receiver = Receiver(secret_of(sim))
    origin = sim.webhook_receiver(receiver.app())
    sim.faults.schedule("check", kind)
    run_batches(sim, f"{origin}/hooks", 1)
    assert sim.receiver_findings(acted_on=receiver.acted) == []
    assert len(receiver.acted) == 1


def test_a_receiver_that_works_before_answering_is_a_slow_ack(sim: Simulator) -> None:
    async def work() -> None:
        await sim.clock.async_sleep(30)  # longer than the 10 s delivery timeout

    receiver = Receiver(secret_of(sim), work=work)
    origin = sim.webhook_receiver(receiver.app())
    run_batches(sim, f"{origin}/hooks", 1)
    found = sim.receiver_findings(acted_on=receiver.acted)
    assert {f.check for f in found} == {"slow-ack"}
    first = sim.webhook_attempts()[0]
    assert first["outcome"] == "failed"
    assert first["timed_out"] is True
    assert first["next_attempt"] is not None  # sent again: it was counted as failed
    assert len(receiver.acted) == 1  # the repeats were recognised, not acted on


def test_processed_duplicate_is_not_judged_without_acted_on(sim: Simulator) -> None:
    receiver = Receiver(secret_of(sim), dedupe=False)
    origin = sim.webhook_receiver(receiver.app())
    sim.faults.schedule("check", "webhook_duplicate")
    run_batches(sim, f"{origin}/hooks", 1)
    assert len(receiver.acted) == 2
    assert sim.receiver_findings() == []


def test_assert_webhook_delivered_lists_the_attempts_when_none_was(sim: Simulator) -> None:
    receiver = Receiver(secret_of(sim))
    origin = sim.webhook_receiver(receiver.app())
    sim.faults.schedule("check", "webhook_drop")
    run_batches(sim, f"{origin}/hooks", 1)
    with pytest.raises(
        AssertionError, match=re.escape("no webhook delivered with type='batch.completed'")
    ):
        sim.assert_webhook_delivered("batch.completed")
    with pytest.raises(AssertionError, match="dropped"):
        sim.assert_webhook_delivered(target=origin)
    assert receiver.acted == []


def test_an_unmounted_receiver_is_refused_not_sent(sim: Simulator) -> None:
    run_batches(sim, "http://nobody.receiver.invalid/hooks", 1)
    [attempt] = sim.webhook_attempts()
    assert attempt["outcome"] == "refused"
