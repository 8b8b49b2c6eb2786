"""Create latency against the number of objects already stored (``--only creates``).

Each provider's create is timed with 100, 1,000 and 10,000 objects of its kind in its store:
a create must not cost more as the store fills. The simulator runs in this process, on the
memory store and a manual clock (nothing expires while it is measured), and is reached
through its ASGI app, so the figures are the server's own work, not the network's. The store
is filled by loading a snapshot: the records one create stored, copied under new keys.

Nothing here asserts; the figures are for reading.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from typing import Any

from starlette.testclient import TestClient

from simulator import ManualClock, Settings, create_app

SIZES = (100, 1_000, 10_000)
TIMED = 50
ROUNDS = 5
# Caps above every size measured, so that the creates timed are accepted.
OPTIONS = (
    ("deepvue.max_batches", "100000"),
    ("check.max_batches", "100000"),
    ("helloatlas.max_batches", "100000"),
    ("passcreator.max_processes", "100000"),
)

Create = Callable[[TestClient, dict[str, Any]], None]


def credentials(client: TestClient, provider: str) -> dict[str, Any]:
    listing = client.get("/_sim/providers").json()["providers"]
    found: dict[str, Any] = next(p for p in listing if p["name"] == provider)["credentials"]
    return found


def ok(response: Any) -> None:
    if response.status_code >= 300:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text[:200]}")


def deepvue_headers(client: TestClient) -> dict[str, Any]:
    creds = credentials(client, "deepvue")
    response = client.post(
        "/deepvue/v1/authorize",
        data={"client_id": creds["client_id"], "client_secret": creds["client_secret"]},
    )
    token = response.json()["access_token"]
    return {"Authorization": f"Bearer {token}", "x-api-key": creds["client_secret"]}


def deepvue_create(client: TestClient, headers: dict[str, Any]) -> None:
    files = {"batch_file": ("vpas.csv", b"vpa\nrahul@okaxis\n", "text/csv")}
    ok(client.post("/deepvue/v1/verification/upi-basic/batch", headers=headers, files=files))


def check_headers(client: TestClient) -> dict[str, Any]:
    return {"Authorization": f"Bearer {credentials(client, 'check')['api_key']}"}


def check_create(client: TestClient, headers: dict[str, Any]) -> None:
    body = {"items": [{"content": "The sea is salty."}], "methods": {"reasoning": 1.0}}
    ok(client.post("/check/v1/batch", headers=headers, json=body))


def helloatlas_headers(client: TestClient) -> dict[str, Any]:
    creds = credentials(client, "helloatlas")
    response = client.post(
        "/helloatlas/v1/bulk/authtoken",
        headers={"Client-Id": creds["client_id"], "Client-Secret": creds["client_secret"]},
    )
    return {"Token": response.json()["access_token"]}


def helloatlas_create(client: TestClient, headers: dict[str, Any]) -> None:
    body = {
        "product_type": "POC_CDL",
        "file_urls": [{"file_url": "https://files.example/doc.jpg", "document_id": "1"}],
    }
    ok(client.post("/helloatlas/v1/bulk/multiupload", headers=headers, json=body))


def passcreator_headers(client: TestClient) -> dict[str, Any]:
    listing = client.get("/_sim/providers").json()["providers"]
    found = next(p for p in listing if p["name"] == "passcreator")
    headers: dict[str, Any] = {"Authorization": found["credentials"]["api_key"]}
    headers["template"] = found["credentials"]["template_id"]
    return headers


def passcreator_create(client: TestClient, headers: dict[str, Any]) -> None:
    template = headers["template"]
    body = {"data": [{"templateId": template, "userProvidedId": None}]}
    auth = {"Authorization": headers["Authorization"]}
    ok(client.post("/passcreator/api/v3/pass", headers=auth, json=body))


CASES: list[tuple[str, str, Callable[[TestClient], dict[str, Any]], Create]] = [
    ("Deepvue batch submit (batches stored)", "deepvue", deepvue_headers, deepvue_create),
    ("Check batch create (batches stored)", "check", check_headers, check_create),
    (
        "HelloAtlas multiupload (batches stored)",
        "helloatlas",
        helloatlas_headers,
        helloatlas_create,
    ),
    (
        "Passcreator bulk create (processes stored)",
        "passcreator",
        passcreator_headers,
        passcreator_create,
    ),
]


@contextmanager
def simulator() -> Iterator[TestClient]:
    clock = ManualClock(datetime(2026, 3, 9, 8, 0, tzinfo=UTC))
    app = create_app(Settings(seed=7, options=OPTIONS), clock=clock)
    with TestClient(app) as client:
        yield client


def filled(
    client: TestClient, provider: str, create: Create, headers: dict[str, Any], n: int
) -> None:
    """Store ``n`` objects of the provider's kind: one created, ``n - 1`` copies of its records."""
    state = client.app.state.sim  # type: ignore[attr-defined]
    assert client.portal is not None
    before = client.portal.call(state.snapshot)
    create(client, headers)
    after = client.portal.call(state.snapshot)
    known = {(r[0], r[1]) for r in before["store"]["records"]}
    made = [
        r
        for r in after["store"]["records"]
        if (r[0], r[1]) not in known and r[0].startswith(f"{provider}/")
    ]
    copies = [[t, f"{k}~{i}", v, at] for i in range(1, n) for t, k, v, at in made]
    after["store"]["records"] += copies
    client.portal.call(state.restore, after)


def latency(client: TestClient, create: Create, headers: dict[str, Any]) -> list[float]:
    for _ in range(5):  # warm-up
        create(client, headers)
    times = []
    for _ in range(TIMED):
        start = time.perf_counter()
        create(client, headers)
        times.append((time.perf_counter() - start) * 1000)
    return times


def creates() -> dict[str, dict[int, float]]:
    """Median create latency (ms) per provider and number of objects stored; printed as a table."""
    print(
        f"create latency, the least of {ROUNDS} medians of {TIMED} creates, in process on the"
        " memory store",
        flush=True,
    )
    head = "| create | " + " | ".join(f"{n:,} stored, ms" for n in SIZES) + " | x at 10,000 |"
    print(head + "\n|---|" + "---:|" * (len(SIZES) + 1), flush=True)
    figures: dict[str, dict[int, float]] = {}
    for name, provider, prepare, create in CASES:
        row: dict[int, float] = {}
        with ExitStack() as stack:
            clients = {n: stack.enter_context(simulator()) for n in SIZES}
            headers = {n: prepare(client) for n, client in clients.items()}
            for n, client in clients.items():
                filled(client, provider, create, headers[n], n)
            # Rounds taking turns between the sizes, so that the shared machine's noise falls
            # on each alike; the least median of a round is kept (noise only adds).
            medians: dict[int, list[float]] = {n: [] for n in SIZES}
            for _ in range(ROUNDS):
                for n, client in clients.items():
                    medians[n].append(statistics.median(latency(client, create, headers[n])))
            row = {n: min(found) for n, found in medians.items()}
        figures[name] = row
        cells = " | ".join(f"{row[n]:.2f}" for n in SIZES)
        print(f"| {name} | {cells} | {row[SIZES[-1]] / row[SIZES[0]]:.2f} |", flush=True)
    return figures
