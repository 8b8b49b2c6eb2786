"""The journal's behaviour findings on the dashboard: judged by the harness's checks, which the
layer above hands the app (``create_app(findings=...)``, as ``bulksim serve`` does)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from contracts.harness import default_settings, findings_source
from simulator import create_app
from simulator.server import running_in_thread

UI = "/_sim/ui"
REQUEST_ID = "673f7487fc0e4949b54e443a0bcc767d"  # Deepvue's seeded batch, still in progress


def _hot_loop(http: httpx.Client) -> None:
    """Deepvue's seeded in-progress batch polled five times at one instant of the clock."""
    listing = http.get("/_sim/providers").json()["providers"]
    creds = next(p["credentials"] for p in listing if p["name"] == "deepvue")
    token = http.post(
        "/deepvue/v1/authorize",
        data={"client_id": creds["client_id"], "client_secret": creds["client_secret"]},
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "x-api-key": creds["client_secret"]}
    for _ in range(5):
        poll = http.get(
            "/deepvue/v1/verification/batch-processing-status",
            params={"request_id": REQUEST_ID},
            headers=headers,
        )
        assert poll.status_code == 200, poll.text


def _row(html: str, seq: int) -> str:
    match = re.search(rf'<li class="entry[^"]*"\s+data-seq="{seq}".*?</details>', html, re.S)
    assert match, f"row #{seq} not on the page"
    return match.group(0)


@pytest.fixture
def served() -> Iterator[httpx.Client]:
    """Served like ``bulksim serve``: with the harness's checks as the findings source."""
    app = create_app(default_settings(), findings=findings_source())
    with running_in_thread(app) as origin, httpx.Client(base_url=origin, timeout=30) as http:
        yield http


@pytest.fixture
def bare() -> Iterator[httpx.Client]:
    app = create_app(default_settings())
    with running_in_thread(app) as origin, httpx.Client(base_url=origin, timeout=30) as http:
        yield http


def test_a_hot_poll_loop_is_a_finding_on_its_row(served: httpx.Client) -> None:
    _hot_loop(served)
    html = served.get(UI).text
    # #1 authorize, #2..#6 the polls: the second poll is the first one too soon.
    hot = _row(html, 3)
    assert 'class="entry finding' in hot
    assert re.search(r'<b class="check">hot-poll</b> polled \S+ 5 times less than 1s apart', hot)
    assert "hot-poll" not in _row(html, 2)
    assert "hot-poll" not in _row(html, 1)
    assert "findings-off" not in html
    # The newest poll of a batch still in progress is where the client stopped, for now.
    assert '<b class="check">stopped-polling</b>' in _row(html, 6)


def test_live_gives_each_shown_rows_findings_again(served: httpx.Client) -> None:
    _hot_loop(served)
    live = served.get(f"{UI}/live", params={"since": 4}).json()
    assert [f["check"] for f in live["findings"]["3"]] == ["hot-poll"]
    assert live["findings"]["2"] == []
    assert '<b class="check">stopped-polling</b>' in _row(live["rows"], 6)


def test_a_bare_app_shows_no_findings_and_says_so(bare: httpx.Client) -> None:
    _hot_loop(bare)
    html = bare.get(UI).text
    assert 'id="findings-off"' in html
    assert "Behaviour findings are not available" in html
    assert "hot-poll" not in html
    assert 'class="entry finding' not in html
    assert bare.get(f"{UI}/live").json()["findings"] == {}
