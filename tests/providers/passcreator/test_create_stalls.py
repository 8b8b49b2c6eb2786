"""A large bulk create never holds the served event loop: decoding its body and judging and
building its passes run off the loop, and only the store writes run in the transaction."""

from __future__ import annotations

import json

import httpx

from simulator import Settings, create_app
from simulator.server import running_in_thread
from tests.conftest import START
from tests.providers.passcreator.conftest import KEY, PASSES, TEMPLATE
from tests.providers.probing import held_loop_at_most, timed

# 4,000 items of some 1 KB each: a 4 MB body, within the default caps.
ITEMS = 4000


def test_a_large_bulk_create_never_holds_the_served_loop() -> None:
    """Health probes sent while a large bulk create is decoded, judged and stored wait no
    longer than a fraction of it (or a few plain creates): the loop keeps serving."""
    app = create_app(Settings(clock="manual", start=START))
    url = f"/passcreator{PASSES}"
    with running_in_thread(app) as origin, httpx.Client(base_url=origin, timeout=120) as client:
        plain_body = {"data": [{"templateId": TEMPLATE, "firstName": "x"}]}
        plain = min(timed(client, "POST", url, json=plain_body, headers=KEY) for _ in range(3))
        items = [
            {"templateId": TEMPLATE, "userProvidedId": f"u{n}", "firstName": "x" * 900}
            for n in range(ITEMS)
        ]
        # Encoded here, before the probes start: this process serves the app too, and its
        # own JSON work would be timed along with the server's.
        body = json.dumps({"data": items}).encode()
        headers = {**KEY, "Content-Type": "application/json"}
        heavy, probes = held_loop_at_most(client, plain, "POST", url, content=body, headers=headers)
    assert heavy > 10 * plain
    assert max(probes) < max(10 * plain, heavy / 4), (max(probes), plain, heavy)
