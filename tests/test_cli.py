"""``bulksim serve``: flags, environment, fail-fast errors, and a real served process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from simulator.__main__ import build_parser, main, settings_from_args
from simulator.settings import Settings, SettingsError


def settings_for(argv: list[str], environ: dict[str, str] | None = None) -> Settings:
    return settings_from_args(build_parser().parse_args(argv), environ or {})


def test_serve_defaults_bind_loopback_8700_without_control_token() -> None:
    settings = settings_for(["serve"])
    assert (settings.host, settings.port, settings.seed, settings.clock) == (
        "127.0.0.1",
        8700,
        0,
        "system",
    )
    assert settings.control_token is None


def test_serve_flags_override_environment() -> None:
    environ = {"BULKSIM_PORT": "9000", "BULKSIM_SEED": "3", "BULKSIM_PROVIDERS": "deepvue"}
    settings = settings_for(["serve", "--port", "9100"], environ)
    assert (settings.port, settings.seed, settings.providers) == (9100, 3, ("deepvue",))


def test_serve_manual_clock_with_start_and_options() -> None:
    settings = settings_for(
        [
            "serve",
            "--clock",
            "manual",
            "--start",
            "2026-01-01T00:00:00Z",
            "--option",
            "deepvue.max_rows=5",
        ]
    )
    assert settings.start == datetime(2026, 1, 1, tzinfo=UTC)
    assert settings.options_for("deepvue") == {"max_rows": "5"}


def test_serve_on_a_public_address_generates_a_control_token() -> None:
    settings = settings_for(["serve", "--host", "0.0.0.0"])
    assert settings.control_token
    assert len(settings.control_token) >= 24


def test_environment_bad_value_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="BULKSIM_PORT"):
        Settings.from_env({"BULKSIM_PORT": "eighty"})


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve", "--provider", "nope"], "unknown provider 'nope'"),
        (["serve", "--option", "deepvue.nope=1"], "unknown option deepvue.nope"),
        (["serve", "--option", "deepvue.max_rows=many"], "deepvue.max_rows='many'"),
        (["serve", "--start", "2026-01-01T00:00:00Z"], "start only applies to clock='manual'"),
        (["serve", "--port", "70000"], "port must be"),
    ],
)
def test_serve_bad_settings_exit_2_with_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["serve", "--drift", "nope.authorize:status=500"],
            "bulksim: drift 'nope.authorize:status=500': unknown provider 'nope'; "
            "known: deepvue, passcreator, helloatlas, check\n",
        ),
        (
            ["serve", "--drift", "deepvue.get_status:drop=data"],
            "bulksim: drift 'deepvue.get_status:drop=data': unknown operation 'get_status' for "
            "deepvue; known: authorize, submit_upi_basic_batch, get_batch_processing_status, "
            "download_batch_output_file\n",
        ),
        (
            ["serve", "--drift", "deepvue.authorize"],
            "bulksim: drift 'deepvue.authorize' is not provider.operation:status=NNN or "
            "provider.operation:drop=field\n",
        ),
    ],
)
def test_serve_refuses_a_drift_it_cannot_apply_listing_valid_names(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def never(*args: object, **kwargs: object) -> int:
        pytest.fail("bulksim started serving despite the drift")

    monkeypatch.setattr("simulator.server.run_uvicorn", never)
    assert main(argv) == 2
    assert capsys.readouterr().err == message


def test_drift_from_the_environment_is_checked_too() -> None:
    with pytest.raises(SettingsError, match="unknown operation 'nope' for check"):
        settings_for(["serve"], {"BULKSIM_DRIFT": "check.nope:status=500"})
    drift = "check.get_batch:status=202"
    assert settings_for(["serve"], {"BULKSIM_DRIFT": drift}).drift == (drift,)


def test_serve_malformed_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--option", "nonsense"])
    assert exit_info.value.code == 2
    assert "provider.key=value" in capsys.readouterr().err


@pytest.fixture
def served() -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulator",
            "serve",
            "--port",
            "0",
            "--clock",
            "manual",
            "--seed",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines = [process.stdout.readline()]
    while lines[-1].strip() and not lines[-1].startswith("test credentials"):
        lines.append(process.stdout.readline())
    try:
        yield process, lines
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()


def test_served_process_prints_urls_and_answers(
    served: tuple[subprocess.Popen[str], list[str]],
) -> None:
    _, lines = served
    origin = lines[0].split()[3]
    assert origin.startswith("http://127.0.0.1:")
    assert any(line.split()[:2] == ["deepvue", f"{origin}/deepvue"] for line in lines)
    health = httpx.get(f"{origin}/_sim/health", timeout=10)
    assert health.status_code == 200
    assert health.json()["clock"]["kind"] == "manual"
    listing = httpx.get(f"{origin}/_sim/providers", timeout=10).json()["providers"]
    assert listing[0]["base_url"] == f"{origin}/{listing[0]['name']}"


def test_forwarded_headers_are_not_taken_unless_asked_for(
    served: tuple[subprocess.Popen[str], list[str]],
) -> None:
    origin = served[1][0].split()[3]
    forwarded = {"X-Forwarded-Proto": "https"}
    listing = httpx.get(f"{origin}/_sim/providers", headers=forwarded, timeout=10).json()
    assert listing["providers"][0]["base_url"].startswith("http://127.0.0.1:")


def test_proxy_headers_take_the_scheme_from_a_proxy_on_this_host() -> None:
    assert settings_for(["serve"]).proxy_headers is False
    assert settings_for(["serve", "--proxy-headers"]).proxy_headers is True
    assert settings_for(["serve"], {"BULKSIM_PROXY_HEADERS": "on"}).proxy_headers is True
    command = [sys.executable, "-m", "simulator", "serve", "--port", "0", "--proxy-headers"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        origin = process.stdout.readline().split()[3]
        try:
            forwarded = {"X-Forwarded-Proto": "https"}
            listing = httpx.get(f"{origin}/_sim/providers", headers=forwarded, timeout=10)
            base = listing.json()["providers"][0]["base_url"]
            assert base.startswith("https://127.0.0.1:")
        finally:
            process.terminate()


@pytest.mark.parametrize("value", ["-1", "inf", "nan"])
def test_time_scale_must_be_finite_and_not_negative(value: str) -> None:
    with pytest.raises(SettingsError, match="time_scale"):
        Settings.from_env({"BULKSIM_TIME_SCALE": value})


def test_listening_socket_is_tcp_so_accepted_connections_get_nodelay() -> None:
    import asyncio
    import socket

    from simulator.server import listening_socket

    sock = listening_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    nodelay: list[int] = []

    async def accept_one() -> None:
        def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nodelay.append(
                writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            )
            writer.close()

        server = await asyncio.start_server(on_connect, sock=sock)
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        while not nodelay:
            await asyncio.sleep(0)
        writer.close()
        server.close()

    asyncio.run(accept_one())
    assert sock.proto == socket.IPPROTO_TCP
    assert nodelay == [1]


def test_serve_no_validation_and_no_journal_flags() -> None:
    settings = settings_for(["serve", "--no-validation", "--no-journal"])
    assert (settings.validate_requests, settings.journal) == (False, False)
    assert settings_for(["serve"]).validate_requests is True


def test_version_prints_the_installed_package_version(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"bulksim {version('bulksim')}\n"


@pytest.mark.parametrize("command", [[], ["serve"], ["verify"]], ids=["bulksim", "serve", "verify"])
def test_help_is_plain_text_without_rest_markup(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    shown = capsys.readouterr().out
    assert "``" not in shown
    for role in (":func:", ":class:", ":mod:", ":meth:", ".. "):
        assert role not in shown


def test_verify_help_gives_exit_codes_and_when_junit_is_written(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["verify", "--help"])
    shown = capsys.readouterr().out
    assert "a JUnit XML report is written only when\n--junit-xml PATH is given" in shown
    assert "  0  conformant" in shown
    assert "  1  drift" in shown
    assert "  2  could not check: unreachable, credentials missing or refused" in shown
