"""Deepvue through HTTP on a Redis store: one app, two apps on one Redis, Redis lost and back.

Each app gets a :class:`RedisStore` of its own (its own connections, as two processes have)
on the same Redis, so what they share goes through Redis and nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from simulator import ManualClock, Settings, create_app
from simulator.store import StoreUnavailable
from simulator.store.redis import RedisStore
from tests.providers.deepvue.conftest import BASE, advance, auth
from tests.providers.deepvue.test_batches import STATUS, status, submit
from tests.redis_server import MISSING, REDIS_SERVER, free_port, running_redis

CSV = b"vpa\nrahul@okaxis\nsita@okhdfc\n"


@contextmanager
def clients(clock: ManualClock, *urls: str) -> Iterator[list[TestClient]]:
    """One app per URL, each on its own ``RedisStore``, all with one seed and one clock."""
    with ExitStack() as stack:
        apps = [
            create_app(Settings(seed=7), clock=clock, store=RedisStore.from_url(url))
            for url in urls
        ]
        yield [stack.enter_context(TestClient(app, base_url=BASE)) for app in apps]
        for app in apps:
            assert not app.state.sim.crashes, list(app.state.sim.crashes)


def test_authorize_submit_and_poll_on_redis(redis_url: str, clock: ManualClock) -> None:
    with clients(clock, redis_url) as (deepvue,):
        headers = auth(deepvue)
        request_id = str(submit(deepvue, headers, CSV)["request_id"])
        assert status(deepvue, headers, request_id)["status"] == 201
        advance(deepvue, 3600)
        done = status(deepvue, headers, request_id)
        assert done["status"] == 200
        output = deepvue.get(str(done["batch_output_file_url"]))
        assert output.status_code == 200
        assert "rahul@okaxis" in output.text


def test_two_apps_on_one_redis_share_tokens_batches_and_ids(
    redis_url: str, clock: ManualClock
) -> None:
    with clients(clock, redis_url, redis_url) as (one, two):
        headers = auth(one)
        assert status(two, headers, "06d0d7c340ed460d96103aaa0b26f0de")["status"] == 200
        ids = [str(submit(c, headers, CSV)["request_id"]) for c in (one, two, two, one)]
        assert len(set(ids)) == 4
        for request_id in ids:
            assert status(one, headers, request_id) == status(two, headers, request_id)
        advance(two, 3600)
        done = status(one, headers, ids[1])
        assert done["status"] == 200
        url = str(done["batch_output_file_url"])
        assert one.get(url).text == two.get(url).text
    # The same seed on an empty Redis hands out the same ids in the same order.
    with clients(clock, redis_url.replace("/0", "/1")) as (alone,):
        headers = auth(alone)
        assert [str(submit(alone, headers, CSV)["request_id"]) for _ in range(4)] == ids


def test_an_unreachable_redis_is_one_clear_error_at_start() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    with pytest.raises(StoreUnavailable, match=r"cannot reach Redis") as raised:
        RedisStore.from_url(url)
    assert url in str(raised.value)
    assert "\n" not in str(raised.value)


def test_redis_lost_while_serving_is_deepvues_503_and_it_recovers(
    tmp_path: Path, clock: ManualClock
) -> None:
    if REDIS_SERVER is None:
        pytest.skip(MISSING)
    with running_redis(tmp_path) as server, clients(clock, server.url) as (deepvue,):
        headers = auth(deepvue)
        request_id = str(submit(deepvue, headers, CSV)["request_id"])
        server.stop()
        lost = deepvue.get(STATUS, params={"request_id": request_id}, headers=headers)
        assert (lost.status_code, lost.json()) == (503, {"detail": "Service Unavailable"})
        refused = deepvue.post(
            "/v1/verification/upi-basic/batch",
            headers=headers,
            files={"batch_file": ("vpas.csv", CSV, "text/csv")},
        )
        assert (refused.status_code, refused.json()) == (503, {"detail": "Service Unavailable"})
        server.start()
        # Back (empty: this Redis keeps nothing on disk); the same connections' pool serves.
        headers = auth(deepvue)
        request_id = str(submit(deepvue, headers, CSV)["request_id"])
        assert status(deepvue, headers, request_id)["status"] == 201


def test_reset_empties_deepvue_on_redis(redis_url: str, clock: ManualClock) -> None:
    with clients(clock, redis_url, redis_url) as (one, two):
        headers = auth(one)
        request_id = str(submit(one, headers, CSV)["request_id"])
        reset = one.post("http://testserver/_sim/reset", params={"provider": "deepvue"})
        assert reset.status_code == 200, reset.text
        gone = two.get(STATUS, params={"request_id": request_id}, headers=auth(two))
        assert gone.status_code == 422
        assert gone.json()["sub_code"] == "INVALID_REQUEST_ID"
