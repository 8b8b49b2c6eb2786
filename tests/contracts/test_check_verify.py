"""``bulksim verify --provider check``: passes against bulksim, names the drift of a drifted one."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from contracts.harness import Simulator, serve_in_thread
from contracts.suites import check as suite
from contracts.verify import Drift, Target, credentials_for, open_target, verify
from simulator.__main__ import main
from simulator.clock import parse_iso
from simulator.providers.check.models import KEYS_BY_PLAN
from simulator.settings import Settings

LIFECYCLE_STEPS = [
    "list without a key",
    "upload",
    "create",
    "create again with the same fileId",
    "poll",
    "poll",
    "results",
    "results",
    "get an unknown batch",
]


def settings(*drift: str, time_scale: float = 1.0) -> Settings:
    return Settings(
        clock="manual",
        start=parse_iso("2026-03-09T08:14:08Z"),
        drift=drift,
        time_scale=time_scale,
    )


def target(
    sim: Simulator, credentials: Mapping[str, Any] | None = None, *, bulksim: bool = True
) -> AbstractContextManager[Target]:
    """A Target as ``verify`` builds it; ``bulksim=False`` treats it as a real provider."""
    creds = credentials or sim.credentials("check")
    return open_target("check", sim.url("check"), creds, sim.origin if bulksim else None, 60)


def test_verify_against_bulksim_finds_no_drift() -> None:
    with serve_in_thread(settings()) as sim:
        report = verify("check", sim.url("check"), max_examples=5)
    assert report.drifted == [], report.summary()
    assert {c.group for c in report.cases} == {"conformance", "lifecycle"}
    assert len(report.cases) == 7  # six operations and the documented flow
    assert report.summary().endswith("7 checks passed")


def test_verify_against_a_drifted_bulksim_names_the_drift() -> None:
    with serve_in_thread(settings("check.get_batch:drop=completedAt")) as sim:
        report = verify("check", sim.url("check"), max_examples=5)
    failed = {c.name: c.failure or "" for c in report.drifted}
    assert set(failed) == {"GET /v1/batch/{id}", "documented flow"}
    assert failed["documented flow"].startswith("poll: GET /v1/batch/batch_")
    assert "'completedAt' is a required property" in failed["documented flow"]


def test_lifecycle_walks_the_documented_flow() -> None:
    with serve_in_thread(settings()) as sim, target(sim) as t:
        suite.lifecycle(t)
        entries = sim.journal.entries(provider="check")
    assert t.steps == LIFECYCLE_STEPS
    assert [(e["operation"], e["response"]["status"]) for e in entries] == [
        ("list_batches", 401),
        ("upload_batch_file", 200),
        ("create_batch", 202),
        ("create_batch", 409),
        ("get_batch", 200),
        ("get_batch", 200),
        ("get_batch_results", 200),
        ("get_batch_results", 200),
        ("get_batch", 404),
    ]
    # Only the deliberate request without a key breaks the spec (its security requirement).
    assert [bool(e["violations"]) for e in entries] == [True] + [False] * 8


def test_lifecycle_against_a_target_that_is_not_a_bulksim() -> None:
    # With time scaled to zero a batch is done when created: waiting for real never happens.
    with serve_in_thread(settings(time_scale=0)) as sim, target(sim, bulksim=False) as t:
        suite.lifecycle(t)
        assert sim.clock.now() == parse_iso("2026-03-09T08:14:08Z")
    one_poll = [*LIFECYCLE_STEPS[:4], *LIFECYCLE_STEPS[5:]]
    assert t.steps == one_poll


def test_lifecycle_notices_a_changed_create_status() -> None:
    with (
        serve_in_thread(settings("check.create_batch:status=200")) as sim,
        target(sim) as t,
        pytest.raises(Drift) as caught,
    ):
        suite.lifecycle(t)
    assert str(caught.value) == (
        "create: POST /v1/batch → 200: response status: not in the spec: "
        "Unknown response http status: 200"
    )


def test_lifecycle_notices_results_without_has_more() -> None:
    drift = "check.get_batch_results:drop=pagination.hasMore"
    with (
        serve_in_thread(settings(drift)) as sim,
        target(sim) as t,
        pytest.raises(Drift, match=r"^results: GET /v1/batch/batch_\w+/results → 200: .*hasMore"),
    ):
        suite.lifecycle(t)
    assert t.steps[-1] == "results"


def test_lifecycle_with_the_free_key_fails_at_the_upload() -> None:
    with (
        serve_in_thread(settings()) as sim,
        target(sim, {"api_key": KEYS_BY_PLAN["free"]}) as t,
        pytest.raises(Drift, match=r"^upload: answered 402, not 200$"),
    ):
        suite.lifecycle(t)


def test_credentials_are_the_pro_key_unless_given() -> None:
    pro, enterprise = KEYS_BY_PLAN["pro"], KEYS_BY_PLAN["enterprise"]
    with serve_in_thread(settings()) as sim:
        listed = credentials_for("check", {}, {}, sim.origin)
        from_env = credentials_for("check", {}, {"CHECK_API_KEY": enterprise}, sim.origin)
        given = credentials_for(
            "check", {"api_key": "vfy_given"}, {"CHECK_API_KEY": enterprise}, sim.origin
        )
    assert listed["api_key"] == pro
    assert from_env["api_key"] == enterprise
    assert given["api_key"] == "vfy_given"
    assert credentials_for("check", {}, {"CHECK_API_KEY": "vfy_real"}, None) == {
        "api_key": "vfy_real"
    }
    with pytest.raises(ValueError, match="CHECK_API_KEY"):
        credentials_for("check", {}, {}, None)


def test_verify_command_names_the_drift_in_junit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report_file = tmp_path / "report.xml"
    with serve_in_thread(settings("check.create_batch:status=200")) as sim:
        code = main(
            [
                "verify",
                "--provider",
                "check",
                "--base-url",
                sim.url("check"),
                "--junit-xml",
                str(report_file),
                "--max-examples",
                "3",
            ]
        )
    assert code == 1
    assert "create: POST /v1/batch → 200" in capsys.readouterr().out
    suite_element = ET.parse(report_file).getroot().find("testsuite")
    assert suite_element is not None
    assert suite_element.get("tests") == "7"
    failures = {
        case.get("name"): (case.find("failure").get("message") or "")  # type: ignore[union-attr]
        for case in suite_element.iter("testcase")
        if case.find("failure") is not None
    }
    assert failures["documented flow"].startswith("create: POST /v1/batch → 200")


def test_verify_command_without_credentials_for_a_real_target_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CHECK_API_KEY", raising=False)
    # A bulksim that does not serve check is, for check, some other server.
    with serve_in_thread(Settings(providers=("deepvue",))) as other:
        code = main(["verify", "--provider", "check", "--base-url", f"{other.origin}/check"])
    assert code == 2
    assert "CHECK_API_KEY" in capsys.readouterr().err
