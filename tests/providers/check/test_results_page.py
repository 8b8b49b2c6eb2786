"""The results page: rendered once it can no longer change, and exactly as the clock says."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from simulator import ManualClock, Settings, create_app
from simulator.providers.check import models
from simulator.store import SqliteStore, Store, Table, open_store
from tests.conftest import START
from tests.providers.check.conftest import BASE, advance, auth, created

CLAIMS = [{"content": f"Claim number {i}: the sea is salty."} for i in range(5)]


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Each verification id the results pages draw (one per completed item rendered)."""
    calls: list[int] = []
    real = models.verification_id

    def counting(ctx: Any, batch: Any, index: int) -> str:
        calls.append(index)
        return real(ctx, batch, index)

    monkeypatch.setattr(models, "verification_id", counting)
    return calls


def page(check: TestClient, batch_id: str, **params: object) -> bytes:
    response = check.get(
        f"/v1/batch/{batch_id}/results",
        headers=auth(),
        params=params,  # type: ignore[arg-type]
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.content


def test_a_settled_page_is_rendered_once_and_answered_the_same(
    check: TestClient, drawn: list[int]
) -> None:
    batch = created(check, {"items": CLAIMS, "methods": {"reasoning": 1.0}})["id"]
    advance(check, 86_400)
    first = page(check, batch, limit=100)
    rendered = len(drawn)
    assert rendered > 0  # some items completed: their ids were drawn for the first page
    assert all(page(check, batch, limit=100) == first for _ in range(5))
    assert len(drawn) == rendered  # nothing drawn again
    # Another range of the same batch is its own page.
    assert page(check, batch, limit=2, offset=1) != first
    assert len(drawn) > rendered


def test_a_page_still_moving_follows_the_clock_and_a_clock_moved_back(
    check: TestClient, drawn: list[int]
) -> None:
    batch = created(check, {"items": CLAIMS, "methods": {"reasoning": 1.0}})["id"]
    now = check.get("http://testserver/_sim/clock").json()["now"]
    statuses = []
    for _ in range(3):
        statuses.append([item["status"] for item in check_json(page(check, batch))["items"]])
        advance(check, 30)
    advance(check, 86_400)
    settled = page(check, batch)
    assert {item["status"] for item in check_json(settled)["items"]} <= {"completed", "failed"}
    # Back to the batch's start: the page is as it was then, not as it was last rendered.
    response = check.post("http://testserver/_sim/clock/set", json={"now": now})
    assert response.status_code == 200, response.text
    again = check_json(page(check, batch))
    assert [item["status"] for item in again["items"]] == statuses[0]
    assert again["batch"]["processedItems"] == 0
    advance(check, 86_400)
    assert page(check, batch) == settled


def test_a_cancelled_batch_is_a_new_page(check: TestClient) -> None:
    batch = created(check, {"items": CLAIMS * 20, "methods": {"reasoning": 1.0}})["id"]
    advance(check, 1)
    before = check_json(page(check, batch, limit=100))
    response = check.post(f"/v1/batch/{batch}/cancel", headers=auth())
    assert response.status_code == 200, response.text
    advance(check, 86_400)
    after = check_json(page(check, batch, limit=100))
    assert after["batch"]["status"] == "cancelled"
    assert "skipped" in {item["status"] for item in after["items"]}
    assert after != before
    assert check_json(page(check, batch, limit=100)) == after


def pages_read(
    store: Store, clock: ManualClock, drawn: list[int], reads: list[tuple[str, str]]
) -> list[bytes]:
    """A batch of 250 items on ``store``: a page of items 100 to 199 while it runs, then,
    settled, the page of items 200 to 249 twice; ``reads`` gets each record each one read."""
    app = create_app(Settings(seed=7), clock=clock, store=store)
    answers = []
    with TestClient(app, base_url=BASE) as check:
        items = [{"content": f"Claim number {i}: the sea is salty."} for i in range(250)]
        batch = created(check, {"items": items, "methods": {"reasoning": 1.0}})["id"]
        advance(check, 30)
        reads.clear()
        answers.append(page(check, batch, limit=100, offset=100))
        assert reads == [("batch_heads", batch), ("batch_chunks", f"{batch}/1")]
        advance(check, 86_400)
        reads.clear()
        answers.append(page(check, batch, limit=100, offset=200))
        assert reads == [("batch_heads", batch), ("batch_chunks", f"{batch}/2")]
        rendered = len(drawn)
        reads.clear()
        answers.append(page(check, batch, limit=100, offset=200))
        assert reads == [("batch_heads", batch)]  # settled: the page kept, no item read
        assert len(drawn) == rendered  # nor rendered again
    if isinstance(store, SqliteStore):
        store.close()
    return answers


def test_a_page_reads_the_batch_head_and_only_the_chunks_it_shows_on_every_store(
    store_url: str, drawn: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stored batch is its head and its items in chunks of 100: a page reads the head and
    the chunks it shows, and a settled page is kept on a shared store too. The pages are the
    same bytes as the memory store's."""
    reads: list[tuple[str, str]] = []
    stores = [open_store(store_url), open_store("memory")]
    for kind in {type(store) for store in stores}:
        real = kind.get

        async def reading(self: Any, table: Table[Any], key: str, real: Any = real) -> Any:
            if table.name in ("batch_heads", "batch_chunks"):
                reads.append((table.name, key))
            return await real(self, table, key)

        monkeypatch.setattr(kind, "get", reading)
    shared, memory = (pages_read(store, ManualClock(START), drawn, reads) for store in stores)
    assert shared == memory


def check_json(content: bytes) -> dict[str, Any]:
    import json

    body: dict[str, Any] = json.loads(content)
    return body


def test_a_snapshot_with_batches_stored_whole_still_loads_and_lists(store_url: str) -> None:
    """A snapshot from before batches were stored as a head and chunks (the whole batch
    under ``batches``) loads, and Check answers its list and its batches without a crash:
    those batches are not read (a 404), the seeds and new ones are."""
    whole = Table("batches", models.Batch)
    with TestClient(create_app(Settings(seed=7), clock=ManualClock(START))) as source:
        made = source.post(
            "/check/v1/batch", headers=auth(), json={"items": CLAIMS, "methods": {"reasoning": 1}}
        )
        assert made.status_code == 202, made.text
        snapshot = source.get("/_sim/snapshot").json()
    records = []
    for table, key, value, at in snapshot["store"]["records"]:
        if table == "check/batch_heads":
            head = models.BATCHES.codec.load(value)
            chunk = models.BATCH_CHUNKS.codec.load(
                next(v for t, k, v, _ in snapshot["store"]["records"] if k == f"{key}/0")
            )
            batch = models.joined(head, {0: chunk})
            records.append(["check/batches", key, whole.codec.dump(batch), at])
        elif table not in ("check/batch_chunks", "check/batch_heads/sizes"):
            records.append([table, key, value, at])
    snapshot["store"]["records"] = records
    store = open_store(store_url)
    app = create_app(Settings(seed=7), clock=ManualClock(START), store=store)
    with TestClient(app, base_url=BASE) as check:
        loaded = check.post("http://testserver/_sim/snapshot", json=snapshot)
        assert loaded.status_code == 200, loaded.text
        listed = check.get("/v1/batch", headers=auth())
        assert listed.status_code == 200, listed.text
        gone = check.get(f"/v1/batch/{made.json()['id']}/results", headers=auth())
        assert gone.status_code == 404, gone.text
        again = created(check, {"items": CLAIMS, "methods": {"reasoning": 1.0}})["id"]
        assert again in {
            batch["id"] for batch in check.get("/v1/batch", headers=auth()).json()["data"]
        }
    assert not app.state.sim.crashes, list(app.state.sim.crashes)
    if isinstance(store, SqliteStore):
        store.close()


def poll(check: TestClient, batch_id: str) -> tuple[bytes, dict[str, str]]:
    response = check.get(f"/v1/batch/{batch_id}", headers=auth())
    assert response.status_code == 200, response.text
    return response.content, dict(response.headers)


def test_a_settled_batchs_poll_is_rendered_once_and_follows_the_clock_back(
    check: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch whose items have all ended answers its poll with the same body, rendered once
    (its rate headers still counted per request); a clock moved back before its end shows it
    processing again, and a cancelled batch is a new record with a new body."""
    summarized: list[str] = []
    real = models.summarize

    def counting(batch: Any, now: Any, head: Any = None) -> Any:
        summarized.append(batch.id)
        return real(batch, now, head)

    monkeypatch.setattr(models, "summarize", counting)
    batch = created(check, {"items": CLAIMS, "methods": {"reasoning": 1.0}})["id"]
    start = check.get("http://testserver/_sim/clock").json()["now"]
    advance(check, 86_400)
    first, headers = poll(check, batch)
    assert check_json(first)["status"] in ("completed", "failed")
    rendered = len(summarized)
    answers = [poll(check, batch) for _ in range(5)]
    assert [body for body, _ in answers] == [first] * 5
    assert len(summarized) == rendered  # not rendered again
    for _, kept in answers:
        assert kept["content-type"] == headers["content-type"] == "application/json"
        assert kept["content-length"] == headers["content-length"]
    remaining = [int(kept["x-ratelimit-remaining"]) for _, kept in answers]
    left = int(headers["x-ratelimit-remaining"])
    assert remaining == [left - n for n in range(1, 6)]  # each request still counted
    # Back to the batch's start: processing, as the clock says, not the body kept.
    response = check.post("http://testserver/_sim/clock/set", json={"now": start})
    assert response.status_code == 200, response.text
    assert check_json(poll(check, batch)[0])["status"] in ("queued", "processing")
    advance(check, 86_400)
    assert poll(check, batch)[0] == first
    # A cancelled batch is a new record: its own body.
    other = created(check, {"items": CLAIMS * 20, "methods": {"reasoning": 1.0}})["id"]
    advance(check, 1)
    assert check.post(f"/v1/batch/{other}/cancel", headers=auth()).status_code == 200
    advance(check, 86_400)
    cancelled = check_json(poll(check, other)[0])
    assert cancelled["status"] == "cancelled"
    assert check_json(poll(check, other)[0]) == cancelled
