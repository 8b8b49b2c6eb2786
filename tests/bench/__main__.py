"""``make bench``: measure the simulator against a minimal Starlette app, in one run.

Every server here is a separate process started the way a user starts it (``bulksim serve``,
or the baseline with the same uvicorn settings); the load generator is yet another process.
Figures are printed as a table with ratios to the baseline measured in this run, and as
JSON (``--json PATH``). Nothing here asserts: the machine is shared and noisy, the figures
are for reading.

    python -m tests.bench [--seconds 5] [--connections 32] [--json bench.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.bench.dashboard import dashboard

PYTHON = sys.executable
DEEPVUE_DONE = "06d0d7c340ed460d96103aaa0b26f0de"
PASSCREATOR_PROCESS = "627d21f7-e1a0-4085-84cb-130906cd097c"


@dataclass
class Server:
    process: subprocess.Popen[str]
    origin: str
    port: int

    def rss_kb(self) -> int:
        return _status_kb(self.process.pid, "VmRSS")

    def peak_kb(self) -> int:
        return _status_kb(self.process.pid, "VmHWM")

    def credentials(self, provider: str) -> dict[str, Any]:
        listing = httpx.get(f"{self.origin}/_sim/providers").json()["providers"]
        credentials: dict[str, Any] = next(p for p in listing if p["name"] == provider)[
            "credentials"
        ]
        return credentials


def _status_kb(pid: int, field_name: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise LookupError(field_name)


@contextmanager
def serve(*args: str) -> Iterator[Server]:
    """``bulksim serve --port 0 ARGS`` (or the baseline, for ``("baseline",)``)."""
    if args == ("baseline",):
        command = [PYTHON, "-m", "tests.bench.baseline"]
    else:
        # The request log is off, as in the baseline: a line a request would be measured too.
        command = [PYTHON, "-m", "simulator", "serve", "--port", "0", "--access-log", "off", *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    first = process.stdout.readline()
    origin = next(word for word in first.split() if word.startswith("http://"))
    try:
        yield Server(process, origin, int(origin.rsplit(":", 1)[1]))
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stdout.close()


def load(
    server: Server,
    path: str,
    headers: dict[str, str],
    seconds: float,
    connections: int,
    requests: int | None = None,
) -> dict[str, float]:
    command = [
        PYTHON,
        "-m",
        "tests.bench.loadgen",
        "--port",
        str(server.port),
        "--path",
        path,
        "--seconds",
        str(seconds),
        "--connections",
        str(connections),
    ]
    command += [arg for k, v in headers.items() for arg in ("--header", f"{k}: {v}")]
    if requests is not None:
        command += ["--requests", str(requests)]
    result: dict[str, float] = json.loads(
        subprocess.run(command, capture_output=True, text=True, check=True).stdout
    )
    return result


@dataclass
class Figures:
    rows: list[tuple[str, str, str]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def add(self, name: str, figure: str, note: str = "") -> None:
        self.rows.append((name, figure, note))
        print(f"  {name:<52} {figure:<34} {note}", flush=True)


# -- the scenarios -----------------------------------------------------------------------------


def deepvue_poll(server: Server) -> tuple[str, dict[str, str]]:
    creds = server.credentials("deepvue")
    token = httpx.post(
        f"{server.origin}/deepvue/v1/authorize",
        data={"client_id": creds["client_id"], "client_secret": creds["client_secret"]},
    ).json()["access_token"]
    path = f"/deepvue/v1/verification/batch-processing-status?request_id={DEEPVUE_DONE}"
    return path, {"Authorization": f"Bearer {token}", "x-api-key": creds["client_secret"]}


def passcreator_poll(server: Server) -> tuple[str, dict[str, str]]:
    key = server.credentials("passcreator")["api_key"]
    return f"/passcreator/api/v3/process/{PASSCREATOR_PROCESS}", {"Authorization": key}


def helloatlas_token(server: Server) -> str:
    creds = server.credentials("helloatlas")
    response = httpx.post(
        f"{server.origin}/helloatlas/v1/bulk/authtoken",
        headers={"Client-Id": creds["client_id"], "Client-Secret": creds["client_secret"]},
    )
    token: str = response.json()["access_token"]
    return token


def helloatlas_batch(server: Server, token: str, documents: int) -> str:
    """Upload a batch of ``documents`` files, streaming the JSON body; returns its batch_id."""

    def body() -> Iterator[bytes]:
        yield b'{"product_type":"POC_CDL","file_urls":['
        step = 10_000
        for start in range(0, documents, step):
            chunk = ",".join(
                f'{{"file_url":"https://files.example/doc{i}.jpg","document_id":"{i + 1}"}}'
                for i in range(start, min(documents, start + step))
            )
            yield (chunk + ("," if start + step < documents else "")).encode()
        yield b"]}"

    response = httpx.post(
        f"{server.origin}/helloatlas/v1/bulk/multiupload",
        content=body(),
        headers={"Token": token, "Content-Type": "application/json"},
        timeout=600,
    )
    response.raise_for_status()
    batch_id: str = response.json()[0]["batch_id"]
    return batch_id


def helloatlas_page(server: Server) -> tuple[str, dict[str, str]]:
    token = helloatlas_token(server)
    batch_id = helloatlas_batch(server, token, 500)
    httpx.post(f"{server.origin}/_sim/clock/advance", json={"seconds": 3600})
    token = helloatlas_token(server)
    return f"/helloatlas/v1/bulk/extracts?batch_id={batch_id}&page=1&per_page=50", {"Token": token}


def throughput(figures: Figures, seconds: float, connections: int) -> None:
    print(f"throughput at {connections} connections, {seconds:g} s each", flush=True)
    with serve("baseline") as base:
        baseline = load(base, "/fixed", {}, seconds, connections)
    figures.data["baseline"] = baseline
    figures.add("baseline: minimal Starlette, fixed JSON", _rate(baseline), "1.00 of baseline")
    cases = [
        ("deepvue: authorised status poll", (), deepvue_poll),
        ("helloatlas: page of 50 documents", (), helloatlas_page),
        ("passcreator: process poll", (), passcreator_poll),
        ("deepvue poll, journal off", ("--no-journal",), deepvue_poll),
    ]
    for name, args, prepare in cases:
        with serve(*args) as server:
            path, headers = prepare(server)
            result = load(server, path, headers, seconds, connections)
        figures.data[name] = result
        ratio = result["rps"] / baseline["rps"]
        errors = f", {result['errors']:.0f} errors" if result["errors"] else ""
        figures.add(name, _rate(result), f"{ratio:.2f} of baseline{errors}")


def _rate(result: dict[str, float]) -> str:
    return f"{result['rps']:,.0f} rps  p50 {result['p50_ms']:.1f} ms  p99 {result['p99_ms']:.1f} ms"


def validation(figures: Figures) -> None:
    print("request validation (done when the journal is read)", flush=True)
    for label, env in (("on", {}), ("off", {"BULKSIM_VALIDATE_REQUESTS": "off"})):
        os.environ.update(env)
        try:
            with serve() as server:
                path, headers = deepvue_poll(server)
                with httpx.Client(base_url=server.origin, headers=headers) as client:
                    for _ in range(1000):
                        client.get(path)
                started = time.perf_counter()
                httpx.get(f"{server.origin}/_sim/journal", timeout=120)
                first = time.perf_counter() - started
                started = time.perf_counter()
                httpx.get(f"{server.origin}/_sim/journal", timeout=120)
                again = time.perf_counter() - started
        finally:
            for key in env:
                os.environ.pop(key)
        figures.data[f"journal read, validation {label}"] = {"first": first, "again": again}
        figures.add(
            f"read 1,000 journal entries, validation {label}",
            f"{first * 1000:,.0f} ms first, {again * 1000:,.0f} ms again",
            f"{first:.2f} ms an entry" if label == "on" else "",
        )


def startup(figures: Figures) -> None:
    print("start-up: launching bulksim serve to the first answer", flush=True)
    times = []
    for _ in range(5):
        started = time.perf_counter()
        with serve() as server:
            while True:
                try:
                    if httpx.get(f"{server.origin}/_sim/health").status_code == 200:
                        break
                except httpx.TransportError:
                    continue
            times.append(time.perf_counter() - started)
    figures.data["startup_s"] = times
    figures.add(
        "start-up to first response (median of 5)",
        f"{statistics.median(times):.3f} s",
        "target < 1 s",
    )


def check_upload(figures: Figures) -> None:
    print("a 10 MB Check upload", flush=True)
    rows = ["content,context.notes"]
    claim = "The Great Wall of China is visible from space. " * 1000
    notes = "n" * 50_000
    for i in range(100):
        rows.append(f"{i} {claim[:49_000]},{notes}")
    content = ("\n".join(rows) + "\n").encode()
    with serve() as server:
        key = server.credentials("check")["api_key"]
        before = server.rss_kb()
        started = time.perf_counter()
        response = httpx.post(
            f"{server.origin}/check/v1/batch/upload",
            headers={"Authorization": f"Bearer {key}"},
            files={"file": ("claims.csv", content, "text/csv")},
            timeout=60,
        )
        elapsed = time.perf_counter() - started
        growth = (server.peak_kb() - before) * 1024
    assert response.status_code == 200, response.text[:300]
    size = len(content)
    figures.data["check_upload"] = {"bytes": size, "seconds": elapsed, "peak_growth": growth}
    figures.add(
        f"Check upload of {size / 1e6:.1f} MB ({response.json()['itemCount']} items)",
        f"{elapsed:.3f} s, peak +{growth / 1e6:.1f} MB",
        f"{growth / size:.2f}x the file; targets < 0.5 s, < 3x",
    )


def million(figures: Figures) -> None:
    print("a million-document HelloAtlas batch", flush=True)
    with serve() as server:
        token = helloatlas_token(server)
        before = server.rss_kb()
        started = time.perf_counter()
        batch_id = helloatlas_batch(server, token, 1_000_000)
        created = time.perf_counter() - started
        httpx.post(f"{server.origin}/_sim/clock/advance", json={"seconds": 3600})
        token = helloatlas_token(server)
        timings: dict[str, float] = {}
        # Each page read once, so no answer comes from the cache of finished pages.
        ranges = {"first": range(1, 21), "last": range(19_981, 20_001)}
        with httpx.Client(base_url=server.origin, headers={"Token": token}) as client:
            for name, pages in ranges.items():
                samples = []
                for page in pages:
                    t0 = time.perf_counter()
                    response = client.get(
                        "/helloatlas/v1/bulk/extracts",
                        params={"batch_id": batch_id, "page": page, "per_page": 50},
                    )
                    samples.append(time.perf_counter() - t0)
                    assert response.status_code == 200
                timings[name] = statistics.median(samples)
            last = response.json()
            t0 = time.perf_counter()
            client.get(
                "/helloatlas/v1/bulk/extracts", params={"batch_id": batch_id, "page": 20_000}
            )
            timings["again"] = time.perf_counter() - t0
        growth = (server.rss_kb() - before) * 1024
    assert last["has_next"] is False
    figures.data["million"] = {"create_s": created, **timings, "growth": growth}
    figures.add("upload of 1,000,000 documents", f"{created:.1f} s")
    figures.add(
        "pages 1-20 / pages 19,981-20,000, first reads (median)",
        f"{timings['first'] * 1000:.1f} ms / {timings['last'] * 1000:.1f} ms",
        f"last {timings['last'] / timings['first']:.2f}x first",
    )
    figures.add(
        "the last page read again (finished pages are kept)", f"{timings['again'] * 1000:.1f} ms"
    )
    figures.add("server memory growth for the batch", f"{growth / 1e6:.1f} MB", "target < 20 MB")


def soak(figures: Figures, connections: int) -> None:
    print("memory under 100,000 requests of mixed traffic", flush=True)
    with serve("--journal-size", "1000") as server:
        mix = [
            deepvue_poll(server),
            passcreator_poll(server),
            helloatlas_page(server),
            (
                "/check/v1/batch/batch_abc123def456",
                {"Authorization": f"Bearer {server.credentials('check')['api_key']}"},
            ),
            ("/deepvue/v1/nothing", {}),
        ]
        samples = [server.rss_kb()]
        for _ in range(5):
            for path, headers in mix:
                load(server, path, headers, 600, connections, requests=4000)
            samples.append(server.rss_kb())
    figures.data["soak_rss_kb"] = samples
    figures.add(
        "RSS after 0, 20k, 40k, 60k, 80k, 100k requests",
        " ".join(f"{kb / 1024:.0f}" for kb in samples) + " MB",
        f"last 60k: {(samples[-1] - samples[2]) / 1024:+.1f} MB",
    )


def sandboxes(figures: Figures, seconds: float, connections: int) -> None:
    """Creating a sandbox and its first poll, 1,000 live ones' memory, a poll in one."""
    print("sandboxes: create, first poll, 1,000 live, a poll in one vs the default", flush=True)
    with serve("--sandbox-cap", "2000") as server:
        creds = server.credentials("deepvue")
        form = {"client_id": creds["client_id"], "client_secret": creds["client_secret"]}
        status = f"/deepvue/v1/verification/batch-processing-status?request_id={DEEPVUE_DONE}"
        created: list[float] = []
        polled: list[float] = []
        with httpx.Client(base_url=server.origin, timeout=60) as client:
            for _ in range(5):  # warm the server up (the first of all builds the validator)
                made = client.post("/_sim/sandboxes", json={}).json()
                client.delete(f"/_sim/sandboxes/{made['id']}")
            before = server.rss_kb()
            for _ in range(1000):
                started = time.perf_counter()
                made = client.post("/_sim/sandboxes", json={}).json()
                created.append(time.perf_counter() - started)
                if len(polled) < 100:
                    base = str(httpx.URL(made["base_url"]).path)
                    answer = client.post(f"{base}/deepvue/v1/authorize", data=form).json()
                    headers = {
                        "Authorization": f"Bearer {answer['access_token']}",
                        "x-api-key": creds["client_secret"],
                    }
                    started = time.perf_counter()
                    client.get(f"{base}{status}", headers=headers)
                    polled.append(time.perf_counter() - started)
            after = server.rss_kb()
            default_path, default_headers = deepvue_poll(server)
            base = str(httpx.URL(made["base_url"]).path)
            answer = client.post(f"{base}/deepvue/v1/authorize", data=form).json()
            sandbox_headers = {
                "Authorization": f"Bearer {answer['access_token']}",
                "x-api-key": creds["client_secret"],
            }
        create_ms = statistics.median(created) * 1000
        poll_ms = statistics.median(polled) * 1000
        megabytes = (after - before) / 1024
        figures.data["sandbox create"] = {
            "median_ms": create_ms,
            "p99_ms": sorted(created)[989] * 1000,
        }
        figures.data["sandbox first poll"] = {"median_ms": poll_ms}
        figures.data["1,000 sandboxes"] = {"rss_mb": megabytes}
        figures.add(
            "create a sandbox (POST /_sim/sandboxes)",
            f"{create_ms:.1f} ms median, {sorted(created)[989] * 1000:.1f} ms p99",
            "target < 20 ms",
        )
        figures.add("its first status poll", f"{poll_ms:.1f} ms median", "target < 20 ms")
        figures.add(
            "1,000 live sandboxes, memory store", f"{megabytes:+.1f} MB RSS", "target < 100 MB"
        )
        # Alternate the two, so that drift in the machine's load falls on both alike.
        rates: dict[str, list[float]] = {"default": [], "sandbox": []}
        for _ in range(5):
            for label, path, headers in (
                ("default", default_path, default_headers),
                ("sandbox", f"{base}{status}", sandbox_headers),
            ):
                result = load(server, path, headers, seconds, connections)
                rates[label].append(result["rps"])
    default_rps = statistics.median(rates["default"])
    sandbox_rps = statistics.median(rates["sandbox"])
    figures.data["poll, default vs sandbox"] = rates
    figures.add(
        "deepvue poll in a sandbox vs the default",
        f"{sandbox_rps:,.0f} vs {default_rps:,.0f} rps",
        f"{(sandbox_rps / default_rps - 1) * 100:+.1f}% (target within 5%)",
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--only", choices=("sandboxes",), help="run one part alone")
    args = parser.parse_args()
    if args.only == "sandboxes":
        sandboxes(Figures(), args.seconds, args.connections)
        return
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"bulksim bench, {datetime.now(UTC):%Y-%m-%d}, {machine}", flush=True)
    figures = Figures()
    throughput(figures, args.seconds, args.connections)
    validation(figures)
    startup(figures)
    check_upload(figures)
    million(figures)
    soak(figures, args.connections)
    dashboard(figures)
    sandboxes(figures, args.seconds, args.connections)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(figures.data, out, indent=2)


if __name__ == "__main__":
    main()
