"""``lost-out-of-order``: a receiver given an event after a newer one must not end without it.

The harness orders events as the provider made them (the instant each first fell due) and
sees, in ``GET /_sim/webhooks``, that one reached the receiver after a newer one; the
receiver says what it acted on and what its state came from. A receiver that orders by
``createdAt`` passes; one that ignores events older than the newest it has seen, and one
where the last to arrive wins, are each caught by the check's name.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from contracts.checks import ClientNotConformant, check_deliveries
from contracts.harness import Simulator, in_process
from simulator.providers.check.models import KEYS_BY_PLAN
from tests.receivers import LATEST, Receiver, secret_of


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with in_process() as simulator:
        yield simulator


def two_batches_out_of_order(sim: Simulator, receiver: Receiver) -> list[str]:
    """Two batches a minute apart; the first one's event is held back behind the second's."""
    origin = sim.webhook_receiver(receiver.app())
    sim.faults.schedule("check", "webhook_out_of_order")
    made = []
    with sim.client("check", headers={"Authorization": f"Bearer {KEYS_BY_PLAN['pro']}"}) as http:
        for _ in range(2):
            body = {"items": [{"content": "A"}], "webhookUrl": f"{origin}/hooks"}
            response = http.post("/v1/batch", json=body)
            assert response.status_code == 202, response.text
            made.append(response.json()["id"])
            sim.clock.advance(60)
    sim.clock.advance(86400)
    return made


def test_the_events_did_arrive_out_of_order(sim: Simulator) -> None:
    receiver = Receiver(secret_of(sim))
    two_batches_out_of_order(sim, receiver)
    delivered = [a for a in sim.webhook_attempts() if a["outcome"] == "delivered"]
    held = [a for a in sim.webhook_attempts() if a["outcome"] == "held"]
    assert len(delivered) == 2
    assert [h["event"] for h in held] == [delivered[1]["event"]]  # the older one came second


def test_a_receiver_ordering_by_created_at_passes(sim: Simulator) -> None:
    receiver = Receiver(secret_of(sim))
    batches = two_batches_out_of_order(sim, receiver)
    assert set(receiver.batches) == set(batches)
    newest = sim.webhook_attempts()[-2]["event"]  # the newer event, delivered first
    assert receiver.state[LATEST] == newest
    sim.assert_receiver_conformant(acted_on=receiver.acted, state=lambda: receiver.state)


def test_a_receiver_that_drops_older_events_is_caught(sim: Simulator) -> None:
    receiver = Receiver(secret_of(sim), order="watermark")
    batches = two_batches_out_of_order(sim, receiver)
    assert len(receiver.batches) == 1  # the older batch's event was answered 200 and dropped
    found = sim.receiver_findings(acted_on=receiver.acted, state=receiver.state)
    assert [f.check for f in found] == ["lost-out-of-order"]
    assert "never acted on it" in found[0].message
    assert set(batches) - set(receiver.batches)  # what the receiver lost
    with pytest.raises(ClientNotConformant, match="lost-out-of-order"):
        sim.assert_receiver_conformant(acted_on=receiver.acted)


def test_a_receiver_where_the_last_to_arrive_wins_is_caught(sim: Simulator) -> None:
    receiver = Receiver(secret_of(sim), order="arrival")
    two_batches_out_of_order(sim, receiver)
    found = sim.receiver_findings(acted_on=receiver.acted, state=receiver.state)
    assert [f.check for f in found] == ["lost-out-of-order"]
    assert f"ended with {LATEST} as event" in found[0].message
    # Without its state, what it acted on looks complete: the state is what shows it.
    assert sim.receiver_findings(acted_on=receiver.acted) == []


def test_the_same_receivers_pass_when_events_arrive_in_order(sim: Simulator) -> None:
    for order in ("watermark", "arrival"):
        sim.reset()
        receiver = Receiver(secret_of(sim), order=order)
        origin = sim.webhook_receiver(receiver.app())
        with sim.client(
            "check", headers={"Authorization": f"Bearer {KEYS_BY_PLAN['pro']}"}
        ) as http:
            for _ in range(2):
                body = {"items": [{"content": "A"}], "webhookUrl": f"{origin}/hooks"}
                assert http.post("/v1/batch", json=body).status_code == 202
                sim.clock.advance(60)
        sim.clock.advance(86400)
        assert len(receiver.batches) == 2
        sim.assert_receiver_conformant(acted_on=receiver.acted, state=receiver.state)


def test_lost_out_of_order_is_not_judged_without_acted_on(sim: Simulator) -> None:
    receiver = Receiver(secret_of(sim), order="watermark")
    two_batches_out_of_order(sim, receiver)
    assert sim.receiver_findings() == []
    assert sim.receiver_findings(skip=["lost-out-of-order"], acted_on=receiver.acted) == []


def attempt(event: str, due: str, status: int | None = 200, **more: object) -> dict[str, object]:
    return {
        "event": event,
        "type": "batch.completed",
        "target": "http://r/hooks",
        "attempt": 1,
        "due": due,
        "status": status,
        "outcome": "delivered" if status == 200 else "held",
        **more,
    }


def test_an_older_event_refused_for_its_signature_is_not_counted_as_lost() -> None:
    attempts = [
        attempt("old", "2026-01-01T00:00:00Z", None),
        attempt("new", "2026-01-01T00:01:00Z"),
        attempt("old", "2026-01-01T00:01:00Z", 200, fault="webhook_bad_signature"),
    ]
    found = check_deliveries(attempts, ["new"])
    assert [f.check for f in found] == ["accepted-bad-signature"]
    # A genuine one, answered 200 and never acted on, is lost.
    attempts[2] = attempt("old", "2026-01-01T00:01:00Z")
    assert [f.check for f in check_deliveries(attempts, ["new"])] == ["lost-out-of-order"]
    # One arriving in order and never acted on is not this check's business.
    in_order = [attempt("old", "2026-01-01T00:00:00Z"), attempt("new", "2026-01-01T00:01:00Z")]
    assert check_deliveries(in_order, ["new"]) == []
