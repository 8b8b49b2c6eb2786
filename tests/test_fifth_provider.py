"""A fifth provider takes one folder, one spec, one registry line and its suite.

Acme (``tests/fifth``) is built from the skeleton ARCHITECTURE.md documents, outside
bulksim's packages, and served beside the four. Everything a provider gets for free works
for it through HTTP: its own 404/405 bodies, its spec at ``/acme/openapi.json``, faults by
catalogue name, the journal's spec violations, the store, ``/_sim/providers``, and the
harness finding its suite through its record (the polling check, ``bulksim verify``).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from starlette.testclient import TestClient

from contracts.checks import ClientNotConformant
from contracts.harness import Simulator, default_settings, in_process, serve_in_thread
from contracts.strategies import Scenario, fuzz
from contracts.verify import verify
from simulator import MemoryStore, available_providers, create_app
from tests.fifth.acme import PROVIDER as ACME
from tests.fifth.acme.models import TEST_KEY

# The registry line: bulksim's providers and Acme.
PROVIDERS = (*available_providers(), ACME)

ROOT = Path(__file__).parent.parent
FIFTH = Path(__file__).parent / "fifth"
KEY = {"X-Acme-Key": TEST_KEY}
ERROR_401 = {"error": {"status": 401, "message": "Invalid API key"}}


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with in_process(default_settings(), providers=PROVIDERS) as simulator:
        yield simulator


def files_under(folder: Path) -> set[str]:
    return {
        str(path.relative_to(folder))
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


# -- what it took --------------------------------------------------------------------------


def skeleton_files() -> set[str]:
    """The files ARCHITECTURE.md's table gives every provider (domain extras and the
    optional ones aside)."""
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    return set(re.findall(r"^\| `([a-z_]+\.py)` \|", text, flags=re.MULTILINE))


def test_acme_is_one_folder_one_spec_and_its_suite() -> None:
    assert files_under(FIFTH) == {
        "__init__.py",  # the package holding the three, and its docstring
        "acme/__init__.py",
        "acme/errors.py",
        "acme/fakes.py",
        "acme/models.py",
        "acme/routes.py",
        "acme.yaml",
        "suite.py",
    }
    folder = files_under(FIFTH / "acme")
    assert (
        folder
        == skeleton_files()
        == {"__init__.py", "routes.py", "models.py", "errors.py", "fakes.py"}
    )
    for name in ("check", "deepvue", "helloatlas", "passcreator"):
        assert skeleton_files() <= files_under(ROOT / "simulator" / "providers" / name)
    # The record says where its spec and suite are.
    assert ACME.spec_file == FIFTH / "acme.yaml"
    assert ACME.suite_module == "tests.fifth.suite"


def test_nothing_in_bulksim_knows_of_acme() -> None:
    assert ACME not in available_providers()
    sources = [
        path
        for package in ("simulator", "contracts")
        for path in (ROOT / package).rglob("*")
        if path.suffix in (".py", ".yaml", ".html", ".js", ".css")
    ]
    assert sources
    # By name ("acme", "acme.yaml", "acme.errors"; not an example class such as AcmeBadRequest).
    named = re.compile(r"\bacme\b|tests[./]fifth", re.IGNORECASE)
    mentions = [str(p) for p in sources if named.search(p.read_text(encoding="utf-8"))]
    assert mentions == []


def test_acme_imports_only_the_kit_and_the_core_of_bulksim() -> None:
    allowed = ("simulator.kit", "simulator.store", "simulator.clock", "simulator.ids")
    for path in sorted((FIFTH / "acme").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                module = node.module
                if module.startswith("simulator"):
                    assert module.startswith(allowed), f"{path.name} imports {module}"
                elif module.startswith("tests"):
                    assert module.startswith("tests.fifth.acme"), f"{path.name} imports {module}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith(("simulator", "contracts", "tests"))


# -- what it gets for free -----------------------------------------------------------------


def submit(http: httpx.Client, items: list[str]) -> str:
    response = http.post("/v1/batches", json={"items": items}, headers=KEY)
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "processing"
    batch_id: str = response.json()["id"]
    return batch_id


def test_its_routes_answer_in_its_own_envelope_and_poll_on_the_clock(sim: Simulator) -> None:
    http = sim.client("acme")
    assert http.get("/v1/batches/x").json() == ERROR_401
    unknown = http.get("/v2/nothing", headers=KEY)
    assert (unknown.status_code, unknown.json()) == (
        404,
        {"error": {"status": 404, "message": "Not Found"}},
    )
    wrong = http.delete("/v1/batches", headers=KEY)
    assert wrong.status_code == 405
    assert wrong.json() == {"error": {"status": 405, "message": "Method Not Allowed"}}
    assert wrong.headers["allow"] == "POST"
    assert http.post("/v1/batches", content=b"{", headers=KEY).json()["error"]["status"] == 400

    batch_id = submit(http, ["alpha", "beta"])
    assert http.get(f"/v1/batches/{batch_id}", headers=KEY).status_code == 201
    sim.clock.advance(60)
    done = http.get(f"/v1/batches/{batch_id}", headers=KEY)
    assert done.status_code == 200
    assert [row["item"] for row in done.json()["results"]] == ["alpha", "beta"]
    assert done.json() == http.get(f"/v1/batches/{batch_id}", headers=KEY).json()


def test_its_spec_is_served_and_judges_its_traffic_in_the_journal(sim: Simulator) -> None:
    spec = sim.client().get("/acme/openapi.json")
    assert spec.json() == yaml.safe_load((FIFTH / "acme.yaml").read_text(encoding="utf-8"))

    sim.client("acme").post("/v1/batches", json={"items": [1, 2]}, headers=KEY)
    [entry] = sim.journal.entries(provider="acme", operation="submit_batch")
    assert entry["operation"] == "submit_batch"
    assert entry["violations"] == [
        "body: 1 is not of type 'string'",
        "body: 2 is not of type 'string'",
    ]
    findings = sim.findings("acme")
    assert [f.check for f in findings] == ["spec", "spec"]


def test_faults_name_its_catalogue(sim: Simulator) -> None:
    http = sim.client("acme")
    batch_id = submit(http, ["alpha"])
    sim.faults.schedule("acme", "error", "get_batch", error="InvalidApiKey")
    struck = http.get(f"/v1/batches/{batch_id}", headers=KEY)
    assert (struck.status_code, struck.json()) == (401, ERROR_401)
    sim.faults.schedule("acme", "rate_limit", "get_batch", retry_after=7)
    limited = http.get(f"/v1/batches/{batch_id}", headers=KEY)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "7"
    assert limited.json() == {"error": {"status": 429, "message": "Too many requests"}}
    with pytest.raises(ValueError, match="known: InvalidApiKey, TooManyRequests"):
        sim.faults.schedule("acme", "error", error="NoSuchError")
    assert http.get(f"/v1/batches/{batch_id}", headers=KEY).status_code == 201


def test_its_credentials_are_listed(sim: Simulator) -> None:
    listed = sim.providers()["acme"]
    assert listed["credentials"] == {"api_key": TEST_KEY}
    assert listed["base_path"] == "/acme"


def test_two_apps_on_one_store_see_its_batches() -> None:
    store = MemoryStore()
    settings = default_settings()
    first = TestClient(create_app(settings, providers=PROVIDERS, store=store))
    second = TestClient(create_app(settings, providers=PROVIDERS, store=store))
    with first, second:
        answer = first.post("/acme/v1/batches", json={"items": ["alpha"]}, headers=KEY)
        batch_id = answer.json()["id"]
        seen = second.get(f"/acme/v1/batches/{batch_id}", headers=KEY)
        assert (seen.status_code, seen.json()["id"]) == (201, batch_id)
        again = second.post("/acme/v1/batches", json={"items": ["beta"]}, headers=KEY)
        assert again.json()["id"] != batch_id


# -- the harness finds its suite through the record ----------------------------------------


def poll_until_done(sim: Simulator, every: float) -> None:
    http = sim.client("acme")
    batch_id = submit(http, ["alpha"])
    while http.get(f"/v1/batches/{batch_id}", headers=KEY).status_code == 201:
        sim.clock.sleep(every)


def test_its_polling_rule_catches_a_hot_polling_client(sim: Simulator) -> None:
    poll_until_done(sim, every=0.2)
    with pytest.raises(ClientNotConformant, match=r"hot-poll: .*/acme/v1/batches/"):
        sim.assert_client_conformant("acme")


def test_a_client_that_waits_between_polls_is_conformant(sim: Simulator) -> None:
    poll_until_done(sim, every=10)
    sim.assert_client_conformant("acme")


@pytest.fixture(scope="module")
def fuzzed() -> Iterator[Simulator]:
    with in_process(default_settings(), providers=PROVIDERS) as simulator:
        yield simulator


@fuzz(ACME, max_examples=5, max_faults=0)
def test_its_scenarios_are_drawn_from_its_suite(fuzzed: Simulator, scenario: Scenario) -> None:
    scenario.apply(fuzzed)
    items = scenario.input()
    assert items == list(scenario.items)
    batch_id = submit(fuzzed.client("acme"), items)
    fuzzed.clock.advance(scenario.options.get("processing_seconds", 60))
    done = fuzzed.client("acme").get(f"/v1/batches/{batch_id}", headers=KEY)
    assert [row["item"] for row in done.json()["results"]] == items


def test_verify_runs_its_lifecycle_against_it() -> None:
    with serve_in_thread(default_settings(), providers=PROVIDERS) as sim:
        report = verify(ACME, sim.url("acme"), max_examples=3)
    assert report.drifted == [], report.summary()
    assert ("lifecycle", "documented flow") in [(c.group, c.name) for c in report.cases]
    assert [c.group for c in report.cases].count("conformance") == 2
