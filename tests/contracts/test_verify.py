"""``bulksim verify``: passes against bulksim, fails and names the drift against a drifted one."""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from contracts.harness import serve_in_thread
from contracts.verify import verify
from simulator.__main__ import main
from simulator.clock import parse_iso
from simulator.settings import Settings


def settings(*drift: str, providers: tuple[str, ...] = ()) -> Settings:
    return Settings(
        clock="manual",
        start=parse_iso("2026-03-09T08:14:08Z"),
        drift=drift,
        providers=providers,
    )


def closed_port() -> int:
    """A port nothing listens on: bound to find it free, then closed again."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def verify_command(base_url: str, *extra: str, provider: str = "deepvue") -> int:
    return main(
        ["verify", "--provider", provider, "--base-url", base_url, "--max-examples", "3", *extra]
    )


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
    assert "at data: 'batch_output_file_url' is a required property" in failed["documented flow"]


def test_verify_command_console_names_the_drifted_operation_status_and_field(
    capsys: pytest.CaptureFixture[str],
) -> None:
    drift = "deepvue.get_batch_processing_status:drop=data.batch_output_file_url"
    with serve_in_thread(settings(drift)) as sim:
        code = verify_command(sim.url("deepvue"))
    out = capsys.readouterr().out
    assert code == 1
    field = "response body: at data: 'batch_output_file_url' is a required property"
    assert (
        f"""
  FAIL conformance: GET /v1/verification/batch-processing-status
         GET /v1/verification/batch-processing-status → 200: {field}
"""
        in out
    )
    assert (
        f"""
  FAIL lifecycle: documented flow
         poll: GET /v1/verification/batch-processing-status → 200: {field}
"""
        in out
    )
    assert out.endswith("drift: 2 of 5 checks failed\n")


def manual_drift_demo() -> str:
    """The output docs/harness.md's verify section shows for its ``--drift`` demo."""
    manual = (Path(__file__).resolve().parents[2] / "docs" / "harness.md").read_text(
        encoding="utf-8"
    )
    demo = manual.index("--drift deepvue.get_batch_processing_status:drop=")
    start = manual.index("```text\n", demo) + len("```text\n")
    return manual[start : manual.index("```", start)]


def test_manual_drift_demo_shows_what_really_prints(capsys: pytest.CaptureFixture[str]) -> None:
    drift = "deepvue.get_batch_processing_status:drop=data.batch_output_file_url"
    with serve_in_thread(settings(drift)) as sim:
        code = verify_command(sim.url("deepvue"))
        shown = manual_drift_demo().replace("http://127.0.0.1:8701", sim.origin)
    assert code == 1
    assert capsys.readouterr().out == shown


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
    # A bulksim that does not serve deepvue is, for deepvue, some other server.
    with serve_in_thread(settings(providers=("check",))) as other:
        code = verify_command(f"{other.origin}/deepvue")
    assert code == 2
    assert "DEEPVUE_CLIENT_ID" in capsys.readouterr().err


def test_verify_command_against_nothing_listening_exits_2_cannot_reach(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DEEPVUE_CLIENT_ID", raising=False)
    url = f"http://127.0.0.1:{closed_port()}/deepvue"
    code = verify_command(url)
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err == f"bulksim: cannot reach {url}: connection refused\n"
    assert captured.out == ""


def test_verify_command_with_wrong_credentials_exits_2_not_drift(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with serve_in_thread(settings()) as sim:
        code = verify_command(
            sim.url("deepvue"),
            "--credential",
            "client_id=nobody",
            "--credential",
            "client_secret=x",
        )
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("bulksim: deepvue refused the credentials: POST ")
    assert "answered 401" in captured.err
    assert "drift" not in captured.err
    assert "Traceback" not in captured.err


@pytest.mark.parametrize("provider", ["deepvue", "passcreator", "helloatlas", "check"])
def test_verify_command_with_a_base_url_lacking_the_prefix_exits_2(
    provider: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with serve_in_thread(settings()) as sim:
        code = verify_command(sim.origin, provider=provider)
        expected = (
            f"bulksim: {sim.origin} is not {provider}'s base URL on this bulksim: "
            f"use {sim.url(provider)}\n"
        )
    captured = capsys.readouterr()
    assert code == 2
    assert (captured.out, captured.err) == ("", expected)


@pytest.mark.parametrize("provider", ["passcreator", "check"])
def test_verify_command_with_a_wrong_key_exits_2_for_static_key_providers(
    provider: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with serve_in_thread(settings()) as sim:
        code = verify_command(
            sim.url(provider),
            "--credential",
            "api_key=not-a-key",
            "--credential",
            "template_id=x",
            provider=provider,
        )
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.startswith(f"bulksim: {provider} refused the credentials: GET ")
    assert captured.err.count("\n") == 1


def test_verify_command_on_a_server_without_the_path_says_404_not_drift(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Not a bulksim for deepvue: whatever answers at this origin has no /v1/authorize.
    with serve_in_thread(settings(providers=("check",))) as other:
        code = verify_command(
            other.origin, "--credential", "client_id=a", "--credential", "client_secret=b"
        )
    captured = capsys.readouterr()
    assert code == 2
    assert "answered 404: is " in captured.err
    assert "deepvue's base URL?" in captured.err
    assert captured.err.count("\n") == 1


def test_verify_command_unknown_provider_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "--provider", "nope", "--base-url", "http://127.0.0.1:9"]) == 2
    assert "unknown provider" in capsys.readouterr().err
