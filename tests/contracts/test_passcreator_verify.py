"""``bulksim verify --provider passcreator``: passes against bulksim, names any drift."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from contracts.harness import Simulator, serve_in_thread
from contracts.suites import passcreator
from contracts.verify import Drift, Report, open_target, verify
from simulator.__main__ import main
from simulator.clock import parse_iso
from simulator.settings import Settings

LIFECYCLE = "documented flow"


def settings(*drift: str) -> Settings:
    return Settings(clock="manual", start=parse_iso("2026-03-09T08:14:08Z"), drift=drift)


def failures(report: Report) -> dict[str, str]:
    return {case.name: case.failure or "" for case in report.drifted}


def test_verify_against_bulksim_finds_no_drift() -> None:
    with serve_in_thread(settings()) as sim:
        report = verify("passcreator", sim.url("passcreator"), max_examples=3)
        entries = sim.journal.entries(provider="passcreator")
    assert report.drifted == [], report.summary()
    assert {c.group for c in report.cases} == {"conformance", "lifecycle"}
    assert len(report.cases) == 13  # twelve operations and the flow
    # The flow, after the conformance cases: it runs on the simulator's clock, step by step.
    flow = [(e["operation"], e["response"]["status"]) for e in entries[-14:]]
    assert flow == [
        ("get_process", 401),  # no key
        ("get_process", 401),  # a Bearer-prefixed key
        ("get_process", 404),  # an unknown process
        ("create_pass", 200),
        ("get_process", 200),  # in progress, 0/3
        ("get_process", 200),  # finished, 3/3
        ("list_passes", 200),
        ("get_pass", 200),
        ("get_pass", 200),
        ("get_pass", 200),
        ("update_passes", 200),
        ("get_process", 200),
        ("get_process", 200),
        ("get_pass", 200),
    ]
    progress = [e["response"]["body"]["data"] for e in entries[-10:-8]]
    assert [(p["current"], p["status"]) for p in progress] == [(0, "in progress"), (3, "finished")]


def test_verify_names_a_dropped_process_status() -> None:
    with serve_in_thread(settings("passcreator.get_process:drop=data.status")) as sim:
        report = verify("passcreator", sim.url("passcreator"), max_examples=3)
    failed = failures(report)
    assert set(failed) == {"GET /api/v3/process/{identifier}", LIFECYCLE}
    assert "'status' is a required property" in failed[LIFECYCLE]
    assert failed[LIFECYCLE].startswith("poll the bulk create: GET /api/v3/process/")


def test_verify_names_a_changed_status_code_of_the_bulk_create() -> None:
    with serve_in_thread(settings("passcreator.create_pass:status=202")) as sim:
        report = verify("passcreator", sim.url("passcreator"), max_examples=3)
    failed = failures(report)
    assert set(failed) == {"POST /api/v3/pass", LIFECYCLE}
    assert failed[LIFECYCLE] == (
        "bulk create: POST /api/v3/pass → 202: response status: not in the spec: "
        "Unknown response http status: 202"
    )


def lifecycle_drift(sim: Simulator, **credentials: str) -> str:
    """Run only the lifecycle against ``sim`` with some credentials changed; its Drift."""
    changed = {**sim.credentials("passcreator"), **credentials}
    with (
        open_target("passcreator", sim.url("passcreator"), changed, sim.origin) as target,
        pytest.raises(Drift) as caught,
    ):
        passcreator.lifecycle(target)
    return str(caught.value)


def test_lifecycle_names_a_bulk_that_does_not_finish_cleanly() -> None:
    # Within the spec, against the documented behaviour: the flow's items must all succeed.
    with serve_in_thread(settings()) as sim:
        drift = lifecycle_drift(sim, template_id="00000000-0000-4000-8000-000000000000")
    assert drift.startswith(
        "poll the bulk create: ended 'finished with errors' 3/3, errors {'verify-"
    )


def test_lifecycle_names_a_key_the_target_does_not_take() -> None:
    with serve_in_thread(settings()) as sim:
        drift = lifecycle_drift(sim, api_key="not-a-key")
    assert drift.startswith("poll an unknown process: answered 401 ")
    assert drift.endswith("not the v3 404 envelope")


def test_verify_command_writes_junit_and_exits_by_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report_file = tmp_path / "report.xml"
    with serve_in_thread(settings("passcreator.update_passes:drop=data.identifier")) as sim:
        base = ["verify", "--provider", "passcreator", "--base-url", sim.url("passcreator")]
        code = main([*base, "--junit-xml", str(report_file), "--max-examples", "3"])
    assert code == 1
    out = capsys.readouterr().out
    assert "FAIL lifecycle: documented flow" in out
    missing = "response body: at data: 'identifier' is a required property"
    assert f"bulk update: PATCH /api/v3/pass → 200: {missing}" in out
    suite = ET.parse(report_file).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("13", "2")


def test_verify_command_without_credentials_for_a_real_target_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PASSCREATOR_API_KEY", raising=False)
    monkeypatch.delenv("PASSCREATOR_TEMPLATE_ID", raising=False)
    # A bulksim that does not serve passcreator is, for passcreator, some other server.
    with serve_in_thread(Settings(providers=("deepvue",))) as other:
        code = main(
            ["verify", "--provider", "passcreator", "--base-url", f"{other.origin}/passcreator"]
        )
    assert code == 2
    assert "PASSCREATOR_API_KEY, PASSCREATOR_TEMPLATE_ID" in capsys.readouterr().err
