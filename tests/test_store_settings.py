"""Choosing the store: ``bulksim serve --store URL``, ``BULKSIM_STORE``, and the pytest
plugin's ``store=`` setting; a store that cannot be used stops the start in one line."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from simulator.__main__ import build_parser, main, settings_from_args
from simulator.store import SqliteStore


@pytest.fixture
def never_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: object, **kwargs: object) -> int:
        pytest.fail("bulksim started serving with a store it cannot use")

    monkeypatch.setattr("simulator.server.run_uvicorn", never)


def test_the_store_comes_from_the_flag_else_the_environment() -> None:
    def store(argv: list[str], environ: dict[str, str]) -> str:
        return settings_from_args(build_parser().parse_args(argv), environ).store

    assert store(["serve"], {}) == "memory"
    assert store(["serve"], {"BULKSIM_STORE": "sqlite:///a.db"}) == "sqlite:///a.db"
    flag = ["serve", "--store", "sqlite:///b.db"]
    assert store(flag, {"BULKSIM_STORE": "sqlite:///a.db"}) == "sqlite:///b.db"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres://db/x", "bulksim: store 'postgres://db/x' is not a store URL: use memory, "),
        ("sqlite:///{tmp}/nowhere/state.db", "the directory {tmp}/nowhere does not exist"),
        ("sqlite:///{tmp}", "is a directory, not a database file"),
        ("sqlite:///{tmp}/state.db?synchronous=yes", "?synchronous=off (the default), normal or"),
        ("sqlite:///{tmp}/state.db?journal=wal", "the one option a SQLite store takes is"),
        ("redis://127.0.0.1:1/0", "bulksim: store 'redis://127.0.0.1:1/0': cannot reach Redis"),
    ],
)
def test_a_store_that_cannot_be_used_is_one_line_and_exit_2(
    url: str,
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    never_serves: None,
) -> None:
    assert main(["serve", "--store", url.replace("{tmp}", str(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert message.replace("{tmp}", str(tmp_path)) in err
    assert err.startswith("bulksim: store ")
    assert err.count("\n") == 1


@contextmanager
def read_only(*paths: Path) -> Iterator[None]:
    """Make ``paths`` unwritable, even for root (whom file modes do not stop)."""
    if os.geteuid() != 0:
        modes = [path.stat().st_mode for path in paths]
        for path in paths:
            path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            for path, mode in zip(paths, modes, strict=True):
                path.chmod(mode)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", *paths], check=False).returncode:
        pytest.skip("cannot make a file read-only for root here (chattr +i)")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", *paths], check=True)


@pytest.mark.parametrize("also_the_directory", [False, True], ids=["file", "file-and-directory"])
def test_a_read_only_sqlite_file_is_one_line_and_exit_2(
    also_the_directory: bool,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    never_serves: None,
) -> None:
    path = tmp_path / "state.db"
    SqliteStore(path).close()
    with read_only(path, *([tmp_path] if also_the_directory else [])):
        assert main(["serve", "--store", f"sqlite:///{path}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"bulksim: store 'sqlite:///{path}': cannot use {path} as a SQLite")
    assert err.count("\n") == 1


CONFTEST = """
import pytest

from contracts.harness import default_settings


@pytest.fixture(scope="session")
def bulksim_settings():
    return default_settings(store="sqlite:///{path}")
"""

TEST = """
CSV = b"vpa\\nrahul@okaxis\\n"


def test_a_batch(bulksim_app):
    deepvue = bulksim_app.client("deepvue")
    creds = bulksim_app.credentials("deepvue")
    form = {"client_id": creds["client_id"], "client_secret": creds["client_secret"]}
    token = deepvue.post("/v1/authorize", data=form).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "x-api-key": creds["client_secret"]}
    files = {"batch_file": ("upi.csv", CSV, "text/csv")}
    response = deepvue.post("/v1/verification/upi-basic/batch", files=files, headers=headers)
    assert response.status_code == 201, response.text
"""


def test_the_plugin_keeps_state_where_the_store_setting_says(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    path = tmp_path / "plugin.db"
    pytester.makeconftest(CONFTEST.format(path=path))
    pytester.makepyfile(test_batch=TEST)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    with sqlite3.connect(path) as db:
        found = db.execute("SELECT count(*) FROM records WHERE tbl = 'deepvue/batches'")
        assert found.fetchone() == (1,)
