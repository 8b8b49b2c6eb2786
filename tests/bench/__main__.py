"""``make bench``: measure the simulator against bare Starlette at its ceiling, in one run.

The machine's first core runs the load generator, wrk (a C program, keep-alive GETs, one
thread and 64 connections unless told otherwise); the second runs the server measured, alone.
Every server is its own process, started the way a user starts it (``bulksim serve``), and
the baseline, bare Starlette on uvicorn with uvloop and httptools, is measured in the same
run: each figure is given as a ratio of it. The baseline's own rows show that wrk drives it
to its ceiling (its figure does not rise with a second wrk thread or twice the connections,
and wrk's own CPU use is given). ``--peers`` adds WireMock and Prism serving a static poll
answer (``make bench-peers`` installs them into ``.cache/bench-peers``).

Nothing here asserts: the machine is shared and noisy, the figures are for reading. The
table is printed in markdown, and written as JSON with ``--json PATH``.

    python -m tests.bench [--seconds 5] [--rounds 3] [--peers] [--json bench.json]
        [--only throughput|sandboxes|backends|webhooks|stalls|startup|all] [--webhooks 10000]
"""

from __future__ import annotations

import argparse
import compileall
import glob
import importlib.util
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx

from tests.bench import peers
from tests.bench.creates import creates
from tests.bench.dashboard import dashboard
from tests.bench.stalls import stalls

PYTHON = sys.executable
DEEPVUE_DONE = "06d0d7c340ed460d96103aaa0b26f0de"
PASSCREATOR_PROCESS = "627d21f7-e1a0-4085-84cb-130906cd097c"
# The load generator on the first core, the server measured on the second.
LOAD_CORE, SERVER_CORE = "0", "1"
# A fresh file for each case that serves from SQLite (removed before each).
SQLITE = f"sqlite:///{tempfile.gettempdir()}/bulksim-bench.db"


def pinned(core: str, command: list[str]) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", core, *command]
    return command


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


def command_for(kind: str, *args: str) -> list[str]:
    if kind == "baseline":
        return [PYTHON, "-m", "tests.bench.baseline", *args]
    # The request log is off, as in the baseline: a line a request would be measured too.
    return [PYTHON, "-m", "simulator", "serve", "--port", "0", "--access-log", "off", *args]


@contextmanager
def serve(kind: str, *args: str, core: str = SERVER_CORE) -> Iterator[Server]:
    """``bulksim serve --port 0 ARGS``, or the baseline, on the server's core (or ``core``,
    a taskset list such as ``0,1``)."""
    process = subprocess.Popen(
        pinned(core, command_for(kind, *args)), stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    origin = next(word for word in first.split() if word.startswith("http://"))
    try:
        yield Server(process, origin, int(origin.rsplit(":", 1)[1]))
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stdout.close()


# -- wrk ------------------------------------------------------------------------------------

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([0-9.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def _tree(pid: int) -> list[int]:
    """A process and its live descendants (``--workers N`` serves from N children)."""
    pids = [pid]
    for parent in pids:
        try:
            with open(f"/proc/{parent}/task/{parent}/children", encoding="ascii") as children:
                pids += [int(child) for child in children.read().split()]
        except OSError:
            continue
    return pids


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process and its descendants (all threads) so far."""
    total = 0
    for member in _tree(pid):
        try:
            with open(f"/proc/{member}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def wrk(
    url: str,
    headers: dict[str, str],
    seconds: float,
    threads: int = 1,
    connections: int = 64,
    pid: int | None = None,
) -> dict[str, float]:
    """wrk on the load core: req/s, p50 and p99 (ms), non-2xx answers, wrk's own CPU use,
    and with ``pid`` the server's CPU time a request (what the server spent, whatever else
    ran on the machine meanwhile)."""
    server_before = _cpu_seconds(pid) if pid else 0.0
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
    command += [arg for k, v in headers.items() for arg in ("-H", f"{k}: {v}")]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    output = subprocess.run(
        pinned(LOAD_CORE, [*command, url]), capture_output=True, text=True, check=True
    ).stdout
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    server_cpu = _cpu_seconds(pid) - server_before if pid else 0.0
    total = re.search(r"(\d+) requests in", output)
    rps = re.search(r"Requests/sec:\s+([0-9.]+)", output)
    p50 = re.search(r"\s50%\s+(\S+)", output)
    p99 = re.search(r"\s99%\s+(\S+)", output)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    if rps is None or p50 is None or p99 is None:
        raise RuntimeError(f"wrk said:\n{output}")
    return {
        "rps": float(rps.group(1)),
        "p50_ms": _ms(p50.group(1)),
        "p99_ms": _ms(p99.group(1)),
        "non_2xx": float(bad.group(1)) if bad else 0.0,
        "socket_errors": 1.0 if socket_errors else 0.0,
        "wrk_cpu": cpu / elapsed,
        "server_cpu_us": server_cpu * 1e6 / int(total.group(1)) if pid and total else 0.0,
    }


# -- figures --------------------------------------------------------------------------------


@dataclass
class Table:
    base: dict[str, float] = field(default_factory=dict)
    rows: list[tuple[str, dict[str, float]]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def add(self, name: str, result: dict[str, float]) -> None:
        self.rows.append((name, result))
        self.data[name] = result
        print("  " + self.line(name, result), flush=True)

    def line(self, name: str, r: dict[str, float]) -> str:
        ratio = r["rps"] / self.base["rps"] if self.base else 1.0
        p99 = r["p99_ms"] / self.base["p99_ms"] if self.base else 1.0
        notes = []
        if r.get("non_2xx"):
            notes.append(f"{r['non_2xx']:.0f} non-2xx")
        if r.get("socket_errors"):
            notes.append("socket errors")
        if "rss_mb" in r:
            notes.append(f"peak RSS {r['rss_mb']:.0f} MB")
        notes.append(f"wrk CPU {r['wrk_cpu'] * 100:.0f} %")
        if "store_cpu" in r:
            notes.append(f"redis-server CPU {r['store_cpu'] * 100:.0f} %")
        if "ratio_low" in r:
            notes.append(f"x{r['ratio_low']:.2f} to x{r['ratio_high']:.2f} by round")
        cpu = r.get("server_cpu_us", 0.0)
        base_cpu = self.base.get("server_cpu_us", 0.0) if self.base else cpu
        by_cpu = f"{base_cpu / cpu:.2f}" if cpu and base_cpu else "-"
        return (
            f"| {name} | {r['rps']:,.0f} | {ratio:.2f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
            f"| {p99:.2f} | {cpu:.0f} | {by_cpu} | {', '.join(notes)} |"
        )

    def markdown(self) -> str:
        head = (
            "| server | req/s | x bare Starlette | p50 ms | p99 ms | p99 x bare "
            "| server CPU us/request | x bare, by CPU | notes |\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|---|"
        )
        return "\n".join([head, *(self.line(n, r) for n, r in self.rows)])


@dataclass
class Facts:
    lines: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def add(self, what: str, figure: str, target: str = "") -> None:
        line = f"| {what} | {figure} | {target} |"
        self.lines.append(line)
        print("  " + line, flush=True)

    def markdown(self) -> str:
        return "\n".join(["| measure | figure | target |", "|---|---|---|", *self.lines])


# -- the scenarios --------------------------------------------------------------------------

Prepared = tuple[str, dict[str, str]]


def deepvue_poll(server: Server) -> Prepared:
    creds = server.credentials("deepvue")
    token = httpx.post(
        f"{server.origin}/deepvue/v1/authorize",
        data={"client_id": creds["client_id"], "client_secret": creds["client_secret"]},
    ).json()["access_token"]
    path = f"/deepvue/v1/verification/batch-processing-status?request_id={DEEPVUE_DONE}"
    return path, {"Authorization": f"Bearer {token}", "x-api-key": creds["client_secret"]}


def deepvue_submitted_poll(server: Server) -> Prepared:
    """A poll of a batch submitted to this server (the seeded ones are not in the store)."""
    path, headers = deepvue_poll(server)
    files = {"batch_file": ("vpas.csv", b"vpa\nrahul@okaxis\npriya@oksbi\n", "text/csv")}
    submitted = httpx.post(
        f"{server.origin}/deepvue/v1/verification/upi-basic/batch", headers=headers, files=files
    ).json()["request_id"]
    return path.replace(DEEPVUE_DONE, submitted), headers


def passcreator_poll(server: Server) -> Prepared:
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


def helloatlas_page(server: Server) -> Prepared:
    token = helloatlas_token(server)
    batch_id = helloatlas_batch(server, token, 500)
    httpx.post(f"{server.origin}/_sim/clock/advance", json={"seconds": 3600})
    token = helloatlas_token(server)
    return f"/helloatlas/v1/bulk/extracts?batch_id={batch_id}&page=1&per_page=50", {"Token": token}


def check_batch_of_100(server: Server) -> tuple[str, dict[str, str]]:
    """A Check batch of 100 claims, finished; returns its id and the auth header."""
    headers = {"Authorization": f"Bearer {server.credentials('check')['api_key']}"}
    items = [{"content": f"Claim number {i}: the sea is salty."} for i in range(100)]
    response = httpx.post(
        f"{server.origin}/check/v1/batch",
        headers=headers,
        json={"items": items, "methods": {"reasoning": 1.0}},
    )
    response.raise_for_status()
    httpx.post(f"{server.origin}/_sim/clock/advance", json={"seconds": 86_400})
    batch_id: str = response.json()["id"]
    return batch_id, headers


def check_batch_poll(server: Server) -> Prepared:
    batch_id, headers = check_batch_of_100(server)
    return f"/check/v1/batch/{batch_id}", headers


def check_results_page(server: Server) -> Prepared:
    batch_id, headers = check_batch_of_100(server)
    return f"/check/v1/batch/{batch_id}/results?limit=100", headers


def measured(
    server: Server,
    prepared: Prepared,
    seconds: float,
    store_cpu: Callable[[], float] | None = None,
) -> dict[str, float]:
    """wrk's figures for one poll, after a warm-up, with the server's peak RSS; with
    ``store_cpu`` (the CPU seconds a store's server has spent so far) its share of a core
    meanwhile."""
    path, headers = prepared
    url = server.origin + path
    answer = httpx.get(url, headers=headers)
    if answer.status_code != 200:
        raise RuntimeError(f"{path}: {answer.status_code} {answer.text[:200]}")
    wrk(url, headers, 1)  # warm-up
    store_before = store_cpu() if store_cpu else 0.0
    result = wrk(url, headers, seconds, pid=server.process.pid)
    if store_cpu:
        result["store_cpu"] = (store_cpu() - store_before) / seconds
    result["rss_mb"] = server.peak_kb() / 1024
    return result


def median_of(results: list[dict[str, float]]) -> dict[str, float]:
    """Each figure's median over rounds (peak RSS: the highest)."""
    merged = {key: statistics.median(r[key] for r in results) for key in results[0]}
    if "rss_mb" in merged:
        merged["rss_mb"] = max(r["rss_mb"] for r in results)
    return merged


def throughput(table: Table, seconds: float, with_peers: bool, rounds: int = 3) -> None:
    """The baseline and each poll, ``rounds`` times over, each round's poll after its own
    baseline: each figure is the median of the rounds, and each ratio is given with its
    range over the rounds (a disturbed round moves the median little)."""
    print(
        f"throughput: wrk -t1 -c64 on core {LOAD_CORE}, server on core {SERVER_CORE}; "
        f"{rounds} rounds, the medians",
        flush=True,
    )
    cases: list[tuple[str, tuple[str, ...], Callable[[Server], Prepared]]] = [
        ("bulksim Deepvue status poll", (), deepvue_poll),
        ("bulksim Passcreator process poll", (), passcreator_poll),
        ("bulksim HelloAtlas page of 50", (), helloatlas_page),
        ("bulksim Check batch poll (100 items)", (), check_batch_poll),
        ("bulksim Check results page of 100", (), check_results_page),
        ("bulksim Deepvue poll, journal off", ("--no-journal",), deepvue_poll),
    ]
    bases: list[dict[str, float]] = []
    ceilings: list[tuple[str, dict[str, float]]] = []
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in cases}
    for round_ in range(rounds):
        with serve("baseline") as base:
            url, pid = base.origin + "/fixed", base.process.pid
            wrk(url, {}, 1)
            bases.append(wrk(url, {}, seconds, pid=pid))
            if not round_:
                ceilings.append(
                    ("  the same, wrk -t2 -c64 (ceiling check)", wrk(url, {}, seconds, 2, pid=pid))
                )
                ceilings.append(
                    (
                        "  the same, wrk -t1 -c128 (ceiling check)",
                        wrk(url, {}, seconds, 1, 128, pid),
                    )
                )
        for name, args, prepare in cases:
            with serve("bulksim", *args) as server:
                result = measured(server, prepare(server), seconds)
            result["ratio"] = result["rps"] / bases[-1]["rps"]
            results[name].append(result)
            print(
                f"  round {round_ + 1}: {name}: {result['rps']:,.0f} req/s, x{result['ratio']:.2f}",
                flush=True,
            )
    print(table.markdown().split("\n", 2)[0], flush=True)
    table.base = median_of(bases)
    table.add("bare Starlette, uvicorn with uvloop + httptools (1.00)", table.base)
    for name, result in ceilings:
        table.add(name, result)
    with serve("baseline", "--slow") as slow:
        wrk(slow.origin + "/fixed", {}, 1)
        slow_result = wrk(slow.origin + "/fixed", {}, seconds, pid=slow.process.pid)
        table.add("bare Starlette, uvicorn with asyncio + h11", slow_result)
    for name, rounds_of in results.items():
        merged = median_of(rounds_of)
        merged["ratio_low"] = min(r["ratio"] for r in rounds_of)
        merged["ratio_high"] = max(r["ratio"] for r in rounds_of)
        table.add(name, merged)
    if with_peers:
        for name, peer in peers.PEERS.items():
            with peer(pinned(SERVER_CORE, [])) as (url, pid):
                wrk(url, {}, 20)  # warm-up: WireMock's JIT takes some 20 s on one core
                table.add(name, wrk(url, {}, seconds, pid=pid))
    # The machine may be shared: the baseline again, to show how much it moved meanwhile.
    with serve("baseline") as base:
        url = base.origin + "/fixed"
        wrk(url, {}, 1)
        again = wrk(url, {}, seconds, pid=base.process.pid)
        table.add("bare Starlette again, at the end (drift check)", again)


# -- store backends -----------------------------------------------------------------------------


def submit_batches(server: Server, count: int, threads: int = 8) -> str:
    """Submit ``count`` one-row Deepvue batches (``threads`` at a time); the last one's id."""
    headers = deepvue_poll(server)[1]
    url = f"{server.origin}/deepvue/v1/verification/upi-basic/batch"
    files = {"batch_file": ("vpas.csv", b"vpa\nrahul@okaxis\n", "text/csv")}

    def some(n: int) -> str:
        with httpx.Client(headers=headers) as client:
            request_id = ""
            for _ in range(n):
                response = client.post(url, files=files)
                response.raise_for_status()
                request_id = response.json()["request_id"]
            return request_id

    share = [count // threads + (i < count % threads) for i in range(threads)]
    with ThreadPoolExecutor(threads) as pool:
        return [r for r in pool.map(some, share) if r][-1]


BACKENDS = ("SQLite", "Redis")
BACKEND_POLLS: list[tuple[str, Callable[[Server], Prepared]]] = [
    ("Deepvue status poll (a stored batch)", deepvue_submitted_poll),
    ("Passcreator process poll", passcreator_poll),
    ("HelloAtlas page of 50", helloatlas_page),
    ("Check results page of 100", check_results_page),
]


@contextmanager
def backend_store(backend: str) -> Iterator[str | None]:
    """A URL naming a store of ``backend`` (None when it cannot be had here); empty it with
    :func:`emptied` before each server."""
    if backend == "SQLite":
        yield SQLITE
        for leftover in glob.glob(SQLITE.removeprefix("sqlite:///") + "*"):
            os.remove(leftover)
        return
    from tests.redis_server import REDIS_SERVER, running_redis

    if REDIS_SERVER is None:
        print("Redis store: skipped, redis-server is not installed", flush=True)
        yield None
        return
    # On the load generator's core: the server measured keeps its core to itself, as it
    # would with Redis on another host.
    with (
        tempfile.TemporaryDirectory() as folder,
        running_redis(Path(folder), pinned(LOAD_CORE, [])) as server,
    ):
        yield server.url


def emptied(url: str) -> str:
    """The store at ``url`` emptied (a SQLite file removed, a Redis database flushed)."""
    if url.startswith("sqlite:"):
        for leftover in glob.glob(url.removeprefix("sqlite:///") + "*"):
            os.remove(leftover)
    else:
        import redis

        with redis.Redis.from_url(url) as client:
            client.flushdb()
    return url


def redis_cpu(url: str) -> Callable[[], float]:
    """The CPU seconds (user and system) the Redis server at ``url`` has spent so far."""
    import redis

    def spent() -> float:
        with redis.Redis.from_url(url) as client:
            cpu = client.info("cpu")
        return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])

    return spent


def store_size(url: str) -> int:
    """Bytes the store holds: the SQLite file with its WAL, or Redis's used_memory."""
    if url.startswith("sqlite:"):
        return sum(os.path.getsize(f) for f in glob.glob(url.removeprefix("sqlite:///") + "*"))
    import redis

    with redis.Redis.from_url(url) as client:
        return int(client.info("memory")["used_memory"])


def scale_out_layouts(cores: int) -> list[tuple[str, str, str]]:
    """Where the workers run: (label, workers, taskset cores), one worker first.

    Two workers can outrun one only on a core of their own each, with wrk on a third: on a
    machine of two cores they share the server's core, or both cores with wrk (whose own
    CPU then counts against them); with three or more, they get cores 1 and 2 to themselves.
    """
    layouts = [
        ("1 worker", "1", SERVER_CORE),
        ("2 workers, one core", "2", SERVER_CORE),
        ("2 workers, both cores (one shared with wrk)", "2", f"{LOAD_CORE},{SERVER_CORE}"),
    ]
    if cores >= 3:
        layouts.append(("2 workers, a core each (wrk on its own)", "2", f"{SERVER_CORE},2"))
    return layouts


def backends(table: Table, facts: Facts, seconds: float) -> None:
    """The four polls on SQLite and on Redis, one worker (the median of three) and two
    (``scale_out_layouts``). Then each backend's size after 10,000, 20,000 and 30,000
    Deepvue batches (retention keeps 10,000), and RSS over 100,000 requests."""
    layouts = scale_out_layouts(os.cpu_count() or 1)
    print(
        f"store backends: wrk (and redis-server) on core {LOAD_CORE}; "
        + "; ".join(f"{layout} on cores {core}" for layout, _, core in layouts),
        flush=True,
    )
    for backend in BACKENDS:
        with backend_store(backend) as url:
            if url is None:
                continue
            rates: dict[tuple[str, str], float] = {}
            for poll, prepare in BACKEND_POLLS:
                for layout, workers, core in layouts:
                    # One worker, the targets' figure and the scale-out's base: the median
                    # of three (each on a store emptied first).
                    results = []
                    spent = redis_cpu(url) if backend == "Redis" else None
                    for _ in range(3 if workers == "1" else 1):
                        args = ("--store", emptied(url), "--workers", workers)
                        with serve("bulksim", *args, core=core) as server:
                            results.append(measured(server, prepare(server), seconds, spent))
                    result = median_of(results)
                    table.add(f"bulksim {poll}, {backend}, {layout}", result)
                    rates[(poll, layout)] = result["rps"]
            for layout, _, _ in layouts[1:]:
                scale = [
                    rates[(poll, layout)] / rates[(poll, "1 worker")] for poll, _ in BACKEND_POLLS
                ]
                facts.add(
                    f"{backend}: {layout} / 1 worker (Deepvue, Passcreator, HelloAtlas, Check)",
                    " / ".join(f"{x:.2f}x" for x in scale),
                    "≥ 1.5x",
                )
            facts.data[f"{backend} scale-out"] = {
                f"{poll} | {layout}": rate for (poll, layout), rate in rates.items()
            }
            with serve("bulksim", "--store", emptied(url)) as server:
                used = [store_size(url)]
                for round_ in range(3):
                    if round_:
                        # Past the retention (7 days) of the first 10,000, which Deepvue
                        # keeps (its cap, max_batches) until then: the next ones take their
                        # place instead of being refused.
                        advance = {"seconds": 8 * 86_400}
                        httpx.post(f"{server.origin}/_sim/clock/advance", json=advance)
                    submit_batches(server, 10_000)
                    used.append(store_size(url))
            facts.data[f"{backend} size"] = used
            facts.add(
                f"{backend} {'file' if backend == 'SQLite' else 'used_memory'}: "
                "empty, 10k, 20k, 30k Deepvue batches (each 10k past retention at the next)",
                " / ".join(f"{b / 1e6:.1f}" for b in used) + " MB",
                f"bounded (10,000 kept): 10k to 20k {(used[2] - used[1]) / 1e6:+.1f} MB, "
                f"20k to 30k {(used[3] - used[2]) / 1e6:+.1f} MB",
            )
            soak(facts, f"{backend}, ", "--store", emptied(url))


# -- start-up, memory, big batches ------------------------------------------------------------


# What start-up is timed to: the control plane's health, and two provider requests (a poll
# with the test key, and one refused for its missing token), so no cost moved from start-up to
# a provider's first request goes unseen. Each is timed from its own launch.
PASSCREATOR_KEY = "pcsim-test-key-5b0e8c7a41d94e2f"  # the seeded test account's
FIRST_ANSWERS: tuple[tuple[str, str, dict[str, str], int], ...] = (
    ("/_sim/health", "/_sim/health", {}, 200),
    (
        "Passcreator poll (200)",
        f"/passcreator/api/v3/process/{PASSCREATOR_PROCESS}",
        {"Authorization": PASSCREATOR_KEY},
        200,
    ),
    (
        "Deepvue poll without a token (401)",
        f"/deepvue/v1/verification/batch-processing-status?request_id={DEEPVUE_DONE}",
        {},
        401,
    ),
)


def first_response(
    kind: str, path: str, headers: dict[str, str] | None = None, status: int = 200
) -> float:
    """Seconds from launch to the first answer to ``path`` (asked again until it is
    ``status``: a server still starting refuses the connection)."""
    started = time.perf_counter()
    with serve(kind) as server:
        while True:
            try:
                if httpx.get(server.origin + path, headers=headers).status_code == status:
                    return time.perf_counter() - started
            except httpx.TransportError:
                continue


def startup(facts: Facts) -> None:
    print("start-up: launch to the first answer, median of 10")
    # Timed as installed: bulksim's modules compiled to bytecode first, as pip does on install
    # and as the first run does where Python may write its cache (the baseline's libraries
    # are compiled already; a run with PYTHONDONTWRITEBYTECODE would compile ours each time).
    found = importlib.util.find_spec("simulator")
    assert found is not None
    assert found.submodule_search_locations is not None
    compileall.compile_dir(found.submodule_search_locations[0], quiet=1)
    # Round by round, the baseline and each of bulksim's first answers in turn: on a shared
    # machine a change of load meanwhile weighs on both alike.
    base: list[float] = []
    times: dict[str, list[float]] = {label: [] for label, *_ in FIRST_ANSWERS}
    for _ in range(10):
        base.append(first_response("baseline", "/fixed"))
        for label, path, headers, status in FIRST_ANSWERS:
            times[label].append(first_response("bulksim", path, headers, status))
    base_s = statistics.median(base)
    medians = {label: statistics.median(taken) for label, taken in times.items()}
    facts.data["startup"] = {"baseline_s": base_s, "bulksim_s": medians}
    for label, ours in medians.items():
        facts.add(
            f"start-up to first response (median of 10), bulksim {label} / bare Starlette",
            f"{ours * 1000:.0f} ms / {base_s * 1000:.0f} ms = {ours / base_s:.2f}x",
            "≤ 1.3x",
        )


def soak(facts: Facts, label: str = "", *args: str) -> None:
    print(f"memory: {label}idle, then 100,000 requests of mixed polls", flush=True)
    with serve("bulksim", "--journal-size", "1000", *args) as server:
        idle = server.rss_kb()
        mix = [
            deepvue_poll(server),
            passcreator_poll(server),
            helloatlas_page(server),
            check_batch_poll(server),
            ("/deepvue/v1/nothing", {}),
        ]
        samples = [server.rss_kb()]
        for _ in range(5):
            for path, headers in mix:
                command = [PYTHON, "-m", "tests.bench.loadgen", "--port", str(server.port)]
                command += ["--path", path, "--seconds", "600", "--requests", "4000"]
                command += [a for k, v in headers.items() for a in ("--header", f"{k}: {v}")]
                subprocess.run(pinned(LOAD_CORE, command), capture_output=True, check=True)
            samples.append(server.rss_kb())
    facts.data[f"{label}idle_rss_kb"] = idle
    facts.data[f"{label}soak_rss_kb"] = samples
    facts.add(f"{label}idle RSS after start-up", f"{idle / 1024:.1f} MB", "≤ 50 MB")
    facts.add(
        f"{label}RSS at 20k / 100k requests (journal of 1,000)",
        f"{samples[1] / 1024:.1f} MB / {samples[-1] / 1024:.1f} MB "
        f"({(samples[-1] - samples[1]) / 1024:+.1f} MB)",
        "flat",
    )


def million(facts: Facts) -> None:
    print("a million-document HelloAtlas batch")
    with serve("bulksim") as server:
        token = helloatlas_token(server)
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
    facts.data["million"] = {"create_s": created, **timings}
    facts.add("upload of 1,000,000 HelloAtlas documents", f"{created:.1f} s")
    facts.add(
        "HelloAtlas pages 19,981-20,000 / pages 1-20 (median, first reads)",
        f"{timings['last'] * 1000:.2f} ms / {timings['first'] * 1000:.2f} ms "
        f"= {timings['last'] / timings['first']:.2f}x",
        "≤ 1.10x",
    )


def check_csv() -> bytes:
    rows = ["content,context.notes"]
    claim = "The Great Wall of China is visible from space. " * 1000
    notes = "n" * 50_000
    for i in range(100):
        rows.append(f"{i} {claim[:49_000]},{notes}")
    return ("\n".join(rows) + "\n").encode()


def check_upload(facts: Facts) -> None:
    print("a 10 MB Check upload against bare Starlette's multipart + csv parse")
    files = {"file": ("claims.csv", check_csv(), "text/csv")}
    times: dict[str, float] = {}
    for kind in ("baseline", "bulksim"):
        with serve(kind) as server:
            if kind == "baseline":
                url, headers = server.origin + "/upload", {}
            else:
                key = server.credentials("check")["api_key"]
                url = server.origin + "/check/v1/batch/upload"
                headers = {"Authorization": f"Bearer {key}"}
            samples = []
            for _ in range(5):
                started = time.perf_counter()
                response = httpx.post(url, headers=headers, files=files, timeout=60)
                samples.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text[:300]
            times[kind] = statistics.median(samples)
    size = len(files["file"][1])
    ours, base = times["bulksim"], times["baseline"]
    facts.data["check_upload"] = {"bytes": size, "bulksim_s": ours, "bare_s": base}
    facts.add(
        f"Check upload of {size / 1e6:.1f} MB, bulksim / bare multipart + csv (median of 5)",
        f"{ours * 1000:.0f} ms / {base * 1000:.0f} ms = {ours / base:.2f}x",
        "≤ 1.5x",
    )


# -- the run --------------------------------------------------------------------------------


def header() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            model = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
    versions = ", ".join(
        f"{name} {version(name)}" for name in ("starlette", "uvicorn", "uvloop", "httptools")
    )
    return (
        f"bulksim bench, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {model}, {os.cpu_count()} cores; "
        f"load average {os.getloadavg()[0]:.2f} at start\n"
        f"Python {platform.python_version()}, {versions}, "
        f"{wrk_version.split(' [')[0].strip() or 'wrk'}"
    )


def sandboxes(figures: Facts, seconds: float) -> None:
    """Creating a sandbox and its first poll, 1,000 live ones' memory, a poll in one."""
    print("sandboxes: create, first poll, 1,000 live, a poll in one vs the default", flush=True)
    with serve("bulksim", "--sandbox-cap", "2000") as server:
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
                result = wrk(server.origin + path, headers, seconds, pid=server.process.pid)
                rates[label].append(result["rps"])
    default_rps = statistics.median(rates["default"])
    sandbox_rps = statistics.median(rates["sandbox"])
    figures.data["poll, default vs sandbox"] = rates
    figures.add(
        "deepvue poll in a sandbox vs the default",
        f"{sandbox_rps:,.0f} vs {default_rps:,.0f} rps",
        f"{(sandbox_rps / default_rps - 1) * 100:+.1f}% (target within 5%)",
    )


def _receiver_app() -> Any:
    """A local webhook receiver: answers every POST 200 and counts what it got."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def receive(request: Request) -> Response:
        await request.body()
        app.state.received += 1
        return Response(b"ok")

    app = Starlette(routes=[Route("/hooks", receive, methods=["POST"])])
    app.state.received = 0
    return app


def webhooks(facts: Facts, seconds: float, count: int = 10_000) -> None:
    """``count`` deliveries falling due on one clock advance, all delivered to a local
    receiver (time per delivery), and a served poll's throughput while deliveries run."""
    from simulator.server import running_in_thread

    print(f"webhooks: {count:,} deliveries on one clock advance; a poll while they run")
    receiver = _receiver_app()
    # Every batch made here stays (four rounds of ``count``), the polled one included.
    args = ("--clock", "manual", "--option", f"check.max_batches={count * 4 + 100}")
    with running_in_thread(receiver) as receiver_origin, serve("bulksim", *args) as server:
        headers = {"Authorization": f"Bearer {server.credentials('check')['api_key']}"}
        body = {
            "items": [{"content": "The sea is salty."}],
            "webhookUrl": f"{receiver_origin}/hooks",
        }

        def create(_: int) -> None:
            with httpx.Client(base_url=server.origin, timeout=60) as client:
                for _ in range(count // 8):
                    client.post("/check/v1/batch", headers=headers, json=body).raise_for_status()

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(create, range(8)))
        made = count // 8 * 8
        started = time.perf_counter()
        httpx.post(f"{server.origin}/_sim/clock/advance", json={"seconds": 3600}, timeout=3600)
        elapsed = time.perf_counter() - started
        facts.data["webhooks on one advance"] = {
            "events": made,
            "received": receiver.state.received,
            "seconds": elapsed,
            "us_per_delivery": elapsed * 1e6 / max(made, 1),
        }
        facts.add(
            f"{made:,} webhooks falling due on one clock advance",
            f"{receiver.state.received:,} received in {elapsed:.1f} s, "
            f"{elapsed * 1e6 / max(made, 1):,.0f} us a delivery",
            "all delivered before the advance answers",
        )
        # A poll served alone, then while the next batch of deliveries runs (the advance in
        # a thread of its own), alternated so the machine's drift falls on both alike.
        path, poll_headers = check_batch_poll(server)
        url = server.origin + path
        wrk(url, poll_headers, 1)
        rates: dict[str, list[float]] = {"alone": [], "while delivering": []}
        for _ in range(3):
            rates["alone"].append(wrk(url, poll_headers, seconds)["rps"])
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(create, range(8)))
            with ThreadPoolExecutor(1) as pool:
                advance = pool.submit(
                    httpx.post,
                    f"{server.origin}/_sim/clock/advance",
                    json={"seconds": 3600},
                    timeout=3600,
                )
                result = wrk(url, poll_headers, seconds)
                advance.result()
            if result["non_2xx"]:
                raise RuntimeError(f"the poll answered {result['non_2xx']:.0f} non-2xx")
            rates["while delivering"].append(result["rps"])
    alone = statistics.median(rates["alone"])
    busy = statistics.median(rates["while delivering"])
    facts.data["poll while delivering"] = rates
    facts.add(
        "Check batch poll while deliveries run vs alone",
        f"{busy:,.0f} vs {alone:,.0f} rps",
        f"{(busy / alone - 1) * 100:+.1f}%",
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of the throughput table (medians)"
    )
    parser.add_argument("--peers", action="store_true", help="add WireMock and Prism")
    parser.add_argument(
        "--only",
        choices=[
            "throughput",
            "sandboxes",
            "backends",
            "creates",
            "webhooks",
            "stalls",
            "startup",
            "all",
        ],
        default="all",
    )
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--webhooks", type=int, default=10_000, help="deliveries on one advance")
    args = parser.parse_args()
    if args.only == "creates":
        created = creates()
        if args.json:
            with open(args.json, "w", encoding="utf-8") as out:
                json.dump({"creates": created}, out, indent=2)
        return
    if args.only in ("stalls", "startup"):
        facts = Facts()
        (stalls if args.only == "stalls" else startup)(facts)
        print()
        print(facts.markdown())
        return
    if shutil.which("wrk") is None:
        sys.exit("bench: wrk is missing (make bench installs it: scripts/system-packages.sh bench)")
    if args.peers and (problem := peers.missing()):
        sys.exit(problem)
    top = header()
    print(top, flush=True)
    table, facts = Table(), Facts()
    if args.only == "sandboxes":
        sandboxes(facts, args.seconds)
        return
    if args.only == "webhooks":
        webhooks(facts, args.seconds, args.webhooks)
        print()
        print(facts.markdown())
        return
    if args.only == "backends":
        # The median of three: one disturbed measure would move every ratio of the section.
        with serve("baseline") as base:
            url = base.origin + "/fixed"
            wrk(url, {}, 1)
            bases = [wrk(url, {}, args.seconds, pid=base.process.pid) for _ in range(3)]
            table.base = median_of(bases)
            table.add("bare Starlette, uvicorn with uvloop + httptools (1.00)", table.base)
        with serve("bulksim") as server:
            for poll, prepare in BACKEND_POLLS:
                table.add(
                    f"bulksim {poll}, memory", measured(server, prepare(server), args.seconds)
                )
        backends(table, facts, args.seconds)
        with serve("baseline") as base:
            url = base.origin + "/fixed"
            wrk(url, {}, 1)
            again = wrk(url, {}, args.seconds, pid=base.process.pid)
            table.add("bare Starlette again, at the end (drift check)", again)
    else:
        throughput(table, args.seconds, args.peers, args.rounds)
    if args.only == "all":
        startup(facts)
        soak(facts)
        million(facts)
        check_upload(facts)
        backends(table, facts, args.seconds)
        dashboard(facts)
        sandboxes(facts, args.seconds)
        facts.data["creates"] = creates()
        webhooks(facts, args.seconds, args.webhooks)
        stalls(facts)
    print(f"\n{top}; load average {os.getloadavg()[0]:.2f} at the end\n")
    print(table.markdown())
    if facts.lines:
        print()
        print(facts.markdown())
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump({"header": top, **table.data, **facts.data}, out, indent=2)


if __name__ == "__main__":
    main()
