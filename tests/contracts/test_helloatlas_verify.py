"""``bulksim verify --provider helloatlas``: passes against bulksim, names a drifted one's drift."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest

from contracts.harness import Simulator, serve_in_thread
from contracts.suites import helloatlas as suite
from contracts.verify import Drift, Target, credentials_for, open_target, verify
from simulator.__main__ import main
from simulator.clock import parse_iso
from simulator.settings import Settings

AUTH_STEPS = [
    "token without credentials",
    "token with a wrong secret",
    "token",
    "extracts without a token",
    "extracts with an invalid token",
    "upload",
    "extracts of an unknown batch_id",
]
START = parse_iso("2026-03-09T08:14:08Z")


def settings(*drift: str, time_scale: float = 1.0) -> Settings:
    return Settings(clock="manual", start=START, drift=drift, time_scale=time_scale)


def target(
    sim: Simulator, credentials: Mapping[str, Any] | None = None, *, bulksim: bool = True
) -> AbstractContextManager[Target]:
    """A Target as ``verify`` builds it; ``bulksim=False`` treats it as a real provider."""
    creds = credentials or sim.credentials("helloatlas")
    return open_target(
        "helloatlas", sim.url("helloatlas"), creds, sim.origin if bulksim else None, 60
    )


def test_verify_against_bulksim_finds_no_drift() -> None:
    with serve_in_thread(settings()) as sim:
        report = verify("helloatlas", sim.url("helloatlas"), max_examples=5)
    assert report.drifted == [], report.summary()
    assert {c.group for c in report.cases} == {"conformance", "lifecycle"}
    assert len(report.cases) == 4  # three operations and the documented flow
    assert report.summary().endswith("4 checks passed")


def test_verify_against_a_drifted_bulksim_names_the_drift() -> None:
    with serve_in_thread(settings("helloatlas.get_bulk_extracts:drop=has_next")) as sim:
        report = verify("helloatlas", sim.url("helloatlas"), max_examples=5)
    failed = {c.name: c.failure or "" for c in report.drifted}
    assert set(failed) == {"GET /v1/bulk/extracts", "documented flow"}
    assert failed["documented flow"].startswith("extracts: GET /v1/bulk/extracts → 200: ")
    assert "'has_next' is a required property" in failed["documented flow"]


def test_lifecycle_walks_the_documented_flow() -> None:
    with serve_in_thread(settings()) as sim, target(sim) as t:
        suite.lifecycle(t)
        entries = sim.journal.entries(provider="helloatlas")
    assert t.steps[: len(AUTH_STEPS)] == AUTH_STEPS
    reads = t.steps[len(AUTH_STEPS) : -1]
    # Three pages to the end while every document is processing, then re-reads.
    assert set(reads) == {"extracts"}
    assert len(reads) > 3
    assert t.steps[-1] == "extracts with an expired token"
    assert [(e["operation"], e["response"]["status"]) for e in entries[:7]] == [
        ("generate_bulk_auth_token", 400),
        ("generate_bulk_auth_token", 401),
        ("generate_bulk_auth_token", 201),
        ("get_bulk_extracts", 401),
        ("get_bulk_extracts", 401),
        ("bulk_multiupload", 201),
        ("get_bulk_extracts", 400),
    ]
    pages = [e["query"].split("&page=")[1] for e in entries[7:-1]]
    assert pages[:3] == ["1&per_page=2", "2&per_page=2", "3&per_page=2"]
    assert entries[-1]["response"]["body"]["error_message"] == suite.EXPIRED["error_message"]
    # Only the two requests sent without what the spec requires break it, on purpose.
    assert [(e["seq"], len(e["violations"])) for e in entries if e["violations"]] == [
        (entries[0]["seq"], 1),
        (entries[3]["seq"], 1),
    ]


def test_lifecycle_against_a_target_that_is_not_a_bulksim() -> None:
    # With time scaled to zero every document is done at once: no waiting, no expiry step.
    with serve_in_thread(settings(time_scale=0)) as sim, target(sim, bulksim=False) as t:
        suite.lifecycle(t)
        assert sim.clock.now() == START
    assert t.steps == [*AUTH_STEPS, "extracts", "extracts", "extracts"]


def test_lifecycle_notices_a_changed_upload_status() -> None:
    drift = "helloatlas.bulk_multiupload:status=200"
    with serve_in_thread(settings(drift)) as sim, target(sim) as t, pytest.raises(Drift) as caught:
        suite.lifecycle(t)
    assert str(caught.value).startswith("upload: POST /v1/bulk/multiupload → 200: response status")


def test_lifecycle_notices_a_token_without_its_lifetime() -> None:
    drift = "helloatlas.generate_bulk_auth_token:drop=expires_in"
    expected = r"^token: POST /v1/bulk/authtoken → 201: .*expires_in"
    with serve_in_thread(settings(drift)) as sim, target(sim) as t, pytest.raises(Drift) as caught:
        suite.lifecycle(t)
    assert re.match(expected, str(caught.value)), caught.value


def test_lifecycle_notices_wrong_pagination_fields() -> None:
    # A flipped has_prev still matches the spec: only the lifecycle's own check names it.
    with serve_in_thread(settings()) as sim, target(sim) as t:
        original = t.http.request

        def shifted(method: str, url: Any, **kwargs: Any) -> httpx.Response:
            response = original(method, url, **kwargs)
            if str(url).endswith("/extracts") and response.status_code == 200:
                body = response.json()
                body["has_prev"] = not body["has_prev"]
                return httpx.Response(200, json=body, request=response.request)
            return response

        t.http.request = shifted  # type: ignore[method-assign]
        with pytest.raises(Drift, match=r"^extracts: page 1: \(page, per_page, .*has_prev\)"):
            suite.lifecycle(t)


def test_lifecycle_with_a_wrong_secret_fails_at_the_token() -> None:
    with serve_in_thread(settings()) as sim:
        wrong = {**sim.credentials("helloatlas"), "client_secret": "not-the-secret"}
        with target(sim, wrong) as t, pytest.raises(Drift, match=r"^token: answered 401, not 201$"):
            suite.lifecycle(t)


def test_field_checks_name_what_is_not_a_field() -> None:
    good = {"value": "PAN", "confidence_score": 0.9}
    assert suite._document_problems({"document_id": "1", "file_data": {"document_type": "PAN"}})
    assert (
        suite._document_problems(
            {"document_id": "1", "file_data": {"document_type": "PAN", "pan_number": good}}
        )
        == []
    )
    assert suite._document_problems(
        {"document_id": "2", "file_data": {"document_type": "PAN", "pan_number": "ABCPE1234F"}}
    ) == ["document 2.pan_number is 'ABCPE1234F', not a field"]
    assert suite._document_problems(
        {
            "document_id": "3",
            "file_data": {
                "document_type": "AADHAAR",
                "formatted_address": {"city": {"value": "Pune", "confidence_score": 1.5}},
            },
        }
    ) == ["document 3.formatted_address.city.confidence_score is 1.5, not a number from 0 to 1"]
    failed = {"document_id": "4", "file_data": None, "error_code": "422"}
    assert suite._document_problems({**failed, "error_message": "Unprocessable: x"}) == []
    assert suite._document_problems({**failed, "error_code": "500"}) == [
        "document 4 failed with '500', not '422'"
    ]


def test_credentials_are_the_test_client_unless_given() -> None:
    with serve_in_thread(settings()) as sim:
        listed = credentials_for("helloatlas", {}, {}, sim.origin)
        from_env = credentials_for(
            "helloatlas", {}, {"HELLOATLAS_CLIENT_SECRET": "from-env"}, sim.origin
        )
    assert (listed["client_id"], listed["client_secret"]) == (
        "helloatlas_test_client",
        "ha_sim_secret_4b1d9e7c2a6f3058",
    )
    assert from_env["client_secret"] == "from-env"
    environ = {"HELLOATLAS_CLIENT_ID": "real-id", "HELLOATLAS_CLIENT_SECRET": "real-secret"}
    assert credentials_for("helloatlas", {}, environ, None) == {
        "client_id": "real-id",
        "client_secret": "real-secret",
    }
    with pytest.raises(ValueError, match="HELLOATLAS_CLIENT_ID, HELLOATLAS_CLIENT_SECRET"):
        credentials_for("helloatlas", {}, {}, None)


def test_verify_command_names_the_drift_in_junit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report_file = tmp_path / "report.xml"
    with serve_in_thread(settings("helloatlas.bulk_multiupload:status=200")) as sim:
        code = main(
            [
                "verify",
                "--provider",
                "helloatlas",
                "--base-url",
                sim.url("helloatlas"),
                "--junit-xml",
                str(report_file),
                "--max-examples",
                "3",
            ]
        )
    assert code == 1
    assert "upload: POST /v1/bulk/multiupload → 200" in capsys.readouterr().out
    suite_element = ET.parse(report_file).getroot().find("testsuite")
    assert suite_element is not None
    assert suite_element.get("tests") == "4"
    failures = {
        case.get("name"): (case.find("failure").get("message") or "")  # type: ignore[union-attr]
        for case in suite_element.iter("testcase")
        if case.find("failure") is not None
    }
    assert failures["documented flow"].startswith("upload: POST /v1/bulk/multiupload → 200")


def test_verify_command_without_credentials_for_a_real_target_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HELLOATLAS_CLIENT_ID", raising=False)
    monkeypatch.delenv("HELLOATLAS_CLIENT_SECRET", raising=False)
    # A bulksim that does not serve helloatlas is, for helloatlas, some other server.
    with serve_in_thread(Settings(providers=("deepvue",))) as other:
        code = main(
            ["verify", "--provider", "helloatlas", "--base-url", f"{other.origin}/helloatlas"]
        )
    assert code == 2
    assert "HELLOATLAS_CLIENT_ID" in capsys.readouterr().err
