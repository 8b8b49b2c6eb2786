"""Receiver fuzzing: Hypothesis draws delivery schedules (events, delivery faults, clock
advances, the client's polls); the reference receiver passes them all, and each wrong
receiver, one per mistake class, fails with the check that names its mistake, shrunk to a
small schedule printed with the commands that replay it. Fixed seeds: derandomized runs."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator

import pytest
from hypothesis import Phase
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts.checks import ClientNotConformant
from contracts.harness import Simulator, in_process, serve_in_thread
from contracts.strategies import DeliverySchedule, fuzz_receiver
from simulator.server import running_in_thread
from tests.receivers import MISTAKES, Receiver, Work, secret_of


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with in_process() as simulator:
        yield simulator


def judge(
    sim: Simulator, schedule: DeliverySchedule, build: Callable[[str, Work], Receiver]
) -> None:
    async def work() -> None:
        await sim.clock.async_sleep(30)  # longer than the delivery timeout

    receiver = build(secret_of(sim), work)
    origin = sim.webhook_receiver(receiver.app())
    schedule.run(sim, f"{origin}/hooks")
    sim.assert_receiver_conformant(acted_on=receiver.acted, state=receiver.state)


def test_the_reference_receiver_passes_every_drawn_schedule(sim: Simulator) -> None:
    @fuzz_receiver("check", max_examples=40, derandomize=True)
    def fuzzed(schedule: DeliverySchedule) -> None:
        judge(sim, schedule, lambda secret, work: Receiver(secret))

    fuzzed()


@pytest.mark.parametrize(("mistake", "check", "build"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_each_wrong_receiver_is_caught_by_name(
    sim: Simulator, mistake: str, check: str, build: Callable[[str, Work], Receiver]
) -> None:
    @fuzz_receiver(
        "check",
        max_examples=100,
        derandomize=True,
        phases=(Phase.generate, Phase.shrink),
    )
    def fuzzed(schedule: DeliverySchedule) -> None:
        judge(sim, schedule, build)

    with pytest.raises(ClientNotConformant) as caught:
        fuzzed()
    assert check in {f.check for f in caught.value.findings}
    notes = "\n".join(getattr(caught.value, "__notes__", []))
    assert "DeliverySchedule(provider='check'" in notes
    assert "to replay against a served bulksim:\nRECEIVER_URL=" in notes
    assert "curl -s --fail-with-body -X POST http://127.0.0.1:8700/check/v1/batch" in notes
    # Shrunk: the fewest steps that still show the mistake (one fault and one or two events).
    assert notes.count("'step': ") <= 4, notes


def closing(app: ASGIApp) -> ASGIApp:
    """``app``, answering with ``Connection: close``: no connection outlives a delivery."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        async def closing_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message["headers"], (b"connection", b"close")]}
            await send(message)

        await app(scope, receive, closing_send)

    return wrapped


SCHEDULE = DeliverySchedule(
    "check",
    (
        {"step": "fault", "kind": "webhook_out_of_order", "count": 1, "latency_ms": 600_000},
        {"step": "event"},
        {"step": "advance", "seconds": 30},
        {"step": "poll"},
        {"step": "fault", "kind": "webhook_duplicate", "count": 1},
        {"step": "event"},
        {"step": "fault", "kind": "webhook_bad_signature", "count": 1},
        {"step": "event"},
    ),
)


def outcomes(sim: Simulator) -> list[tuple[object, ...]]:
    return [
        (a["type"], a["attempt"], a["outcome"], a["status"], a["fault"])
        for a in sim.webhook_attempts()
    ]


def test_the_printed_replay_does_what_the_schedule_did(sim: Simulator) -> None:
    """The replay, run by bash against a served bulksim and a served receiver, makes the same
    attempts with the same outcomes as the schedule played in process."""
    receiver = Receiver(secret_of(sim))
    origin = sim.webhook_receiver(receiver.app())
    SCHEDULE.run(sim, f"{origin}/hooks")
    played = outcomes(sim)
    assert {"held", "delivered"} <= {row[2] for row in played}
    assert any(row[4] == "webhook_bad_signature" and row[3] == 400 for row in played)

    # The receiver outlives the simulator, whose deliveries keep a connection open to it.
    served_receiver = Receiver(secret_of(sim))
    served_app = closing(served_receiver.app())
    with running_in_thread(served_app) as receiver_origin, serve_in_thread() as served:
        assert secret_of(served) == served_receiver.secret  # the same seed: the same secret
        script = SCHEDULE.replay(f"{origin}/hooks", served.credentials("check"), served.origin)
        script = script.replace("http://127.0.0.1:9000/hooks", f"{receiver_origin}/hooks")
        done = subprocess.run(
            ["bash", "-e", "-c", script], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert outcomes(served) == played
        assert len(served_receiver.acted) == len(receiver.acted) == 3
