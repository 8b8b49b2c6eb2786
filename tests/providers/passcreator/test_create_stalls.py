"""A large bulk create never holds the event loop: decoding its body and judging and building
its passes run off the loop's thread, and the loop turns meanwhile."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import httpx
import pytest

from simulator import Settings, create_app
from simulator.providers.passcreator import models, routes
from tests.conftest import START
from tests.providers.passcreator.conftest import KEY, PASSES, TEMPLATE

# 4,000 items of some 1 KB each: a 4 MB body, within the default caps.
ITEMS = 4000


def test_a_large_bulk_create_decodes_judges_and_builds_off_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where the heavy parts of a 4 MB bulk create run, recorded, not timed: its body is
    decoded, and its items judged and their passes built, on threads other than the one
    that runs the event loop, which meanwhile keeps turning (a coroutine beside the request
    counts its turns). How long a heavy request holds the loop in real time is the bench's
    to measure (``--only stalls``)."""
    ran_on: dict[str, set[int]] = {"parse_json": set(), "bulk_create": set()}

    def recorded(name: str, real: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            ran_on[name].add(threading.get_ident())
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(routes, "parse_json", recorded("parse_json", routes.parse_json))
    monkeypatch.setattr(models, "bulk_create", recorded("bulk_create", models.bulk_create))
    app = create_app(Settings(clock="manual", start=START))
    items = [
        {"templateId": TEMPLATE, "userProvidedId": f"u{n}", "firstName": "x" * 900}
        for n in range(ITEMS)
    ]
    body = json.dumps({"data": items}).encode()

    async def scenario() -> tuple[httpx.Response, int, int]:
        loop_thread = threading.get_ident()
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
            create = asyncio.ensure_future(
                client.post(
                    f"/passcreator{PASSES}",
                    content=body,
                    headers={**KEY, "Content-Type": "application/json"},
                )
            )
            turns = 0
            while not create.done():
                turns += 1
                await asyncio.sleep(0)
            return await create, turns, loop_thread

    response, turns, loop_thread = asyncio.run(scenario())
    assert response.status_code == 200, response.text
    assert response.json()["data"]["identifier"]  # the bulk process that makes them
    for name, threads in ran_on.items():
        assert threads, f"{name} never ran"
        assert loop_thread not in threads, f"{name} ran on the event loop's thread"
    # The loop turned while the threads worked: more than the request's own awaits.
    assert turns > 100
