"""Ids across restarts: a run without an explicit seed on the memory store hands out ids of its
own, so an id kept from an earlier run cannot name a new object; a given seed replays them."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.test_persistence import CLIENT, bulksim, submit

FORM = {"client_id": CLIENT.client_id, "client_secret": CLIENT.client_secret}


def first_batch_id(*flags: str) -> str:
    """The request_id of the first Deepvue batch of a fresh ``bulksim serve FLAGS``."""
    with bulksim(*flags) as (_, origin), httpx.Client(base_url=f"{origin}/deepvue") as deepvue:
        token = deepvue.post("/v1/authorize", data=FORM).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "x-api-key": CLIENT.client_secret}
        return submit(deepvue, headers)


def test_two_starts_without_a_seed_hand_out_different_ids() -> None:
    assert first_batch_id() != first_batch_id()


def test_two_starts_with_one_seed_hand_out_the_same_ids() -> None:
    assert first_batch_id("--seed", "5") == first_batch_id("--seed", "5")


def test_a_persistent_store_continues_its_counter(tmp_path: Path) -> None:
    store = ("--store", f"sqlite:///{tmp_path / 'state.db'}")
    assert first_batch_id(*store) != first_batch_id(*store)
