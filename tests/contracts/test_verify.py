"""``bulksim verify``: passes against bulksim, fails and names the drift against a drifted one."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from contracts.harness import serve_in_thread
from contracts.verify import verify
from simulator.__main__ import main
from simulator.clock import parse_iso
from simulator.settings import Settings


def settings(*drift: str) -> Settings:
    return Settings(clock="manual", start=parse_iso("2026-03-09T08:14:08Z"), drift=drift)


def test_verify_against_bulksim_finds_no_drift() -> None:
    with serve_in_thread(settings()) as sim:
        report = verify("deepvue", sim.url("deepvue"), max_examples=5)
    assert report.drifted == [], report.summary()
    assert {c.group for c in report.cases} == {"conformance", "lifecycle"}
    assert report.summary().endswith("checks passed")


def test_verify_against_a_drifted_bulksim_names_the_drift() -> None:
    drift = "deepvue.get_batch_processing_status:drop=data.batch_output_file_url"
    with serve_in_thread(settings(drift)) as sim:
        report = verify("deepvue", sim.url("deepvue"), max_examples=5)
    failed = {c.name: c.failure or "" for c in report.drifted}
    assert set(failed) == {"GET /v1/verification/batch-processing-status", "documented flow"}
    assert "poll: GET /v1/verification/batch-processing-status" in failed["documented flow"]
    assert "not valid under any of the given schemas" in failed["documented flow"]


def test_verify_notices_a_changed_status_code() -> None:
    with serve_in_thread(settings("deepvue.authorize:status=201")) as sim:
        report = verify("deepvue", sim.url("deepvue"), max_examples=5)
    failed = {c.name: c.failure or "" for c in report.drifted}
    # No spec example holds working credentials, so it is the lifecycle that authorizes.
    assert failed == {
        "documented flow": "authorize: POST /v1/authorize → 201: response status: not in the spec: "
        "Unknown response http status: 201"
    }


def test_verify_command_writes_junit_and_exits_by_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report_file = tmp_path / "report.xml"
    with serve_in_thread(settings("deepvue.authorize:status=201")) as sim:
        code = main(
            [
                "verify",
                "--provider",
                "deepvue",
                "--base-url",
                sim.url("deepvue"),
                "--junit-xml",
                str(report_file),
                "--max-examples",
                "3",
            ]
        )
    assert code == 1
    assert "drift: " in capsys.readouterr().out
    suite = ET.parse(report_file).getroot().find("testsuite")
    assert suite is not None
    assert int(suite.get("failures", "0")) >= 1
    assert suite.get("tests") == "5"


def test_verify_command_without_credentials_for_a_real_target_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DEEPVUE_CLIENT_ID", raising=False)
    code = main(["verify", "--provider", "deepvue", "--base-url", "http://127.0.0.1:9/deepvue"])
    assert code == 2
    assert "DEEPVUE_CLIENT_ID" in capsys.readouterr().err


def test_verify_command_unknown_provider_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "--provider", "nope", "--base-url", "http://127.0.0.1:9"]) == 2
    assert "unknown provider" in capsys.readouterr().err
