"""``bulksim serve --tls``: real HTTPS clients trust the printed CA file, and nothing else does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import trustme

from simulator.__main__ import build_parser, main, settings_from_args

SEED_DONE = "06d0d7c340ed460d96103aaa0b26f0de"
CLIENT_ID = "deepvue_test_client"
SECRET = "free_tier_sim_5f3c8a2e9b7d4c1a"
TRUST_VARIABLES = (
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
)

# The Ruby example of Deepvue's "Check Bulk Verification Results" page, as published.
DEEPVUE_RUBY_EXAMPLE = """\
require 'net/http'
require 'json'
uri = URI('https://production.deepvue.tech/v1/verification/batch-processing-status?request_id=example_string')
http = Net::HTTP.new(uri.host, uri.port)
http.use_ssl = true
request = Net::HTTP::Get.new(uri)
request['Content-Type'] = 'application/json'
request['Authorization'] = 'Bearer YOUR_API_TOKEN (JWT)'
request['x-api-key'] = 'YOUR_API_KEY'
response = http.request(request)
puts response.body
"""


@dataclass(frozen=True)
class Served:
    process: subprocess.Popen[str]
    lines: list[str]

    @property
    def origin(self) -> str:
        return self.lines[0].split()[3]

    @property
    def ca_file(self) -> str:
        found = [line.split()[2] for line in self.lines if line.startswith("  CA file ")]
        assert found, self.lines
        return found[0]


@contextmanager
def serving(*flags: str) -> Iterator[Served]:
    command = [sys.executable, "-m", "simulator", "serve", "--port", "0", "--clock", "manual"]
    process = subprocess.Popen(
        [*command, *flags], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    lines = [process.stdout.readline()]
    while lines[-1].strip() and not lines[-1].startswith("test credentials"):
        lines.append(process.stdout.readline())
    try:
        yield Served(process, lines)
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with serving("--tls") as server:
        yield server


def clean_environ(**trust: str) -> dict[str, str]:
    """This process's environment without any CA setting, plus ``trust``."""
    environ = {k: v for k, v in os.environ.items() if k not in TRUST_VARIABLES}
    return {**environ, **trust}


def deepvue_token(origin: str, ca_file: str) -> str:
    answer = requests.post(
        f"{origin}/deepvue/v1/authorize",
        data={"client_id": CLIENT_ID, "client_secret": SECRET},
        verify=ca_file,
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    assert isinstance(token, str)
    return token


def test_serve_tls_banner_shows_https_urls_and_the_ca_file(served: Served) -> None:
    assert served.origin.startswith("https://127.0.0.1:")
    assert any(line.split()[:2] == ["deepvue", f"{served.origin}/deepvue"] for line in served.lines)
    assert Path(served.ca_file).read_text().startswith("-----BEGIN CERTIFICATE-----")


def test_deepvue_authorize_and_status_poll_over_verified_https(served: Served) -> None:
    token = deepvue_token(served.origin, served.ca_file)
    answer = requests.get(
        f"{served.origin}/deepvue/v1/verification/batch-processing-status",
        params={"request_id": SEED_DONE},
        headers={"Authorization": f"Bearer {token}", "x-api-key": SECRET},
        verify=served.ca_file,
        timeout=10,
    )
    assert answer.status_code == 200
    data = answer.json()["data"]
    assert (data["request_id"], data["status"]) == (SEED_DONE, 200)
    assert data["batch_output_file_url"].startswith(f"{served.origin}/deepvue/")


def test_sim_providers_lists_https_base_urls(served: Served) -> None:
    listing = requests.get(
        f"{served.origin}/_sim/providers", verify=served.ca_file, timeout=10
    ).json()["providers"]
    assert {p["base_url"] for p in listing} == {f"{served.origin}/{p['name']}" for p in listing}
    assert all(p["spec_url"].startswith("https://") for p in listing)


def test_client_without_the_ca_fails_certificate_verification(served: Served) -> None:
    with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        requests.get(f"{served.origin}/_sim/health", timeout=10)


PROBES = {
    "python-ssl": (
        "SSL_CERT_FILE",
        [
            sys.executable,
            "-c",
            "import sys, urllib.request as u; print(u.urlopen(sys.argv[1]).status)",
        ],
    ),
    "requests": (
        "REQUESTS_CA_BUNDLE",
        [
            sys.executable,
            "-c",
            "import sys, requests; print(requests.get(sys.argv[1]).status_code)",
        ],
    ),
    "node": (
        "NODE_EXTRA_CA_CERTS",
        ["node", "-e", "fetch(process.argv[1]).then(r => console.log(r.status))"],
    ),
    "curl": ("", ["curl", "-sS", "-o", os.devnull, "-w", "%{http_code}"]),
}


@pytest.mark.parametrize("tool", PROBES)
def test_each_documented_trust_setting_makes_a_client_accept_the_ca(
    served: Served, tool: str
) -> None:
    variable, command = PROBES[tool]
    if shutil.which(command[0]) is None:
        pytest.skip(f"{command[0]} is not installed")
    url = f"{served.origin}/_sim/health"
    untrusted = subprocess.run(
        [*command, url], env=clean_environ(), capture_output=True, text=True, timeout=60
    )
    assert untrusted.returncode != 0 or untrusted.stdout.strip() != "200"
    if variable:
        trusted_command, environ = [*command, url], clean_environ(**{variable: served.ca_file})
    else:
        trusted_command, environ = [*command, "--cacert", served.ca_file, url], clean_environ()
    trusted = subprocess.run(
        trusted_command, env=environ, capture_output=True, text=True, timeout=60
    )
    assert trusted.stdout.strip() == "200", trusted.stderr


def test_deepvue_ruby_example_runs_with_ssl_cert_file(served: Served) -> None:
    if shutil.which("ruby") is None:
        pytest.skip("ruby is not installed (scripts/system-packages.sh installs it)")
    script = (
        DEEPVUE_RUBY_EXAMPLE.replace("https://production.deepvue.tech", f"{served.origin}/deepvue")
        .replace("example_string", SEED_DONE)
        .replace("YOUR_API_TOKEN (JWT)", deepvue_token(served.origin, served.ca_file))
        .replace("YOUR_API_KEY", SECRET)
    )
    untrusted = subprocess.run(
        ["ruby", "-e", script], env=clean_environ(), capture_output=True, text=True, timeout=60
    )
    assert untrusted.returncode != 0
    assert "certificate verify failed" in untrusted.stderr
    trusted = subprocess.run(
        ["ruby", "-e", script],
        env=clean_environ(SSL_CERT_FILE=served.ca_file),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert trusted.returncode == 0, trusted.stderr
    body = json.loads(trusted.stdout)
    assert (body["code"], body["data"]["status"], body["data"]["request_id"]) == (
        200,
        200,
        SEED_DONE,
    )


def test_temporary_ca_directory_is_removed_when_the_server_stops() -> None:
    with serving("--tls") as server:
        directory = Path(server.ca_file).parent
        assert directory.is_dir()
    assert not directory.exists()


def test_server_stops_while_a_client_holds_an_idle_tls_connection() -> None:
    # serving() gives the stopped server 10 s; asyncio alone would wait 30 s for the pooled
    # connection's close_notify.
    with requests.Session() as session, serving("--tls") as server:
        health = session.get(f"{server.origin}/_sim/health", verify=server.ca_file, timeout=10)
        assert health.status_code == 200
    assert server.process.returncode is not None


def test_tls_dir_keeps_the_generated_files_there(tmp_path: Path) -> None:
    with serving("--tls-dir", str(tmp_path / "tls")) as server:
        assert server.ca_file == str(tmp_path / "tls" / "ca.pem")
        health = requests.get(f"{server.origin}/_sim/health", verify=server.ca_file, timeout=10)
        assert health.status_code == 200
    assert sorted(p.name for p in (tmp_path / "tls").iterdir()) == ["ca.pem", "cert.pem", "key.pem"]


def test_own_certificate_and_key_are_served(tmp_path: Path) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    ca.cert_pem.write_to_path(tmp_path / "ca.pem")
    leaf.private_key_pem.write_to_path(tmp_path / "key.pem")
    for blob in leaf.cert_chain_pems:
        blob.write_to_path(tmp_path / "cert.pem", append=True)
    flags = ("--tls-cert", str(tmp_path / "cert.pem"), "--tls-key", str(tmp_path / "key.pem"))
    with serving(*flags) as server:
        assert server.origin.startswith("https://")
        assert not any(line.startswith("  CA file ") for line in server.lines)
        health = requests.get(
            f"{server.origin}/_sim/health", verify=str(tmp_path / "ca.pem"), timeout=10
        )
        assert health.status_code == 200


def test_missing_certificate_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "key.pem").write_text("unused")
    missing = tmp_path / "nowhere.pem"
    flags = ["--tls-cert", str(missing), "--tls-key", str(tmp_path / "key.pem")]
    result = subprocess.run(
        [sys.executable, "-m", "simulator", "serve", "--port", "0", *flags],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert (
        result.stderr == f"bulksim: cannot read --tls-cert {missing}: No such file or directory\n"
    )


def test_unusable_certificate_pair_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("cert.pem", "key.pem"):
        (tmp_path / name).write_text("not a PEM file\n")
    flags = ["--tls-cert", str(tmp_path / "cert.pem"), "--tls-key", str(tmp_path / "key.pem")]
    assert main(["serve", "--port", "0", *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bulksim: --tls-cert ")
    assert "not a usable PEM certificate and key" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("flags", [["--tls-cert", "c.pem"], ["--tls-key", "k.pem"]])
def test_certificate_without_key_or_key_without_certificate_exit_2(
    flags: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", *flags]) == 2
    assert (
        capsys.readouterr().err
        == "bulksim: tls_cert and tls_key go together: give both or neither\n"
    )


def test_tls_settings_come_from_the_environment_too() -> None:
    args = build_parser().parse_args(["serve"])
    assert settings_from_args(args, {}).tls is False
    assert settings_from_args(args, {"BULKSIM_TLS": "on"}).tls is True
    own = settings_from_args(args, {"BULKSIM_TLS_CERT": "c.pem", "BULKSIM_TLS_KEY": "k.pem"})
    assert (own.tls, own.tls_cert, own.tls_key) == (True, "c.pem", "k.pem")
    kept = settings_from_args(args, {"BULKSIM_TLS_DIR": "certs"})
    assert (kept.tls, kept.tls_dir) == (True, "certs")
