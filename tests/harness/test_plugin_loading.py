"""The installed plugin never breaks a project's own test run, whatever its packages are called.

Each test runs ``pytest`` in a fresh project directory, in a subprocess as a user would, with
bulksim installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

OWN_PACKAGES = {
    "contracts/__init__.py": "OWNER = 'the project'\n",
    "simulator/__init__.py": "OWNER = 'the project'\n",
}


def run(pytester: pytest.Pytester, *command: str) -> pytest.RunResult:
    """Run ``command`` (``pytest`` as a user types it) in the project's directory.

    ``pytester.run`` would put the directory on ``PYTHONPATH``; a user's run does not.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    done = subprocess.run(
        [*command, "-p", "no:cacheprovider"],
        cwd=pytester.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    sys.stdout.write(done.stdout + done.stderr)  # shown when the test fails
    return pytest.RunResult(
        done.returncode, done.stdout.splitlines(), done.stderr.splitlines(), 0.0
    )


SCRIPT = str(Path(sys.executable).with_name("pytest"))
# ``python -m pytest`` puts the project's directory first on sys.path, before site-packages.
COMMANDS = pytest.mark.parametrize(
    "command", [(SCRIPT,), (sys.executable, "-m", "pytest")], ids=["pytest", "python -m pytest"]
)


def project(pytester: pytest.Pytester, test: str) -> None:
    """The project's own packages and one test module."""
    for path, text in {**OWN_PACKAGES, "test_project.py": test}.items():
        target = pytester.path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


@COMMANDS
def test_a_project_with_its_own_contracts_and_simulator_packages_runs(
    pytester: pytest.Pytester, command: tuple[str, ...]
) -> None:
    project(
        pytester,
        """
import sys
import contracts
import simulator


def test_my_packages_are_the_ones_imported():
    print("XX", contracts.__file__, sys.modules.get("contracts.plugin"))
    assert contracts.OWNER == simulator.OWNER == "the project"
""",
    )
    result = run(pytester, *command)
    result.assert_outcomes(passed=1)
    assert "Error while loading plugin" not in result.stderr.str()


@COMMANDS
def test_the_plugin_is_loaded_and_names_the_shadowing_package(
    pytester: pytest.Pytester, command: tuple[str, ...]
) -> None:
    project(
        pytester,
        """
def test_uses_the_simulator(bulksim_app):
    pass
""",
    )
    result = run(pytester, *command)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*bulksim's fixtures need bulksim's packages*`contracts` from *contracts*__init__.py*"]
    )


@COMMANDS
def test_the_plugin_imports_nothing_of_bulksim_until_a_fixture_is_used(
    pytester: pytest.Pytester, command: tuple[str, ...]
) -> None:
    pytester.makepyfile(
        test_imports="""
import sys


def test_nothing_of_bulksim_is_imported():
    assert "bulksim_pytest" in sys.modules
    assert not {"contracts", "simulator"} & set(sys.modules)


def test_the_fixtures_work(bulksim_app):
    assert bulksim_app.clock.now().isoformat() == "2026-03-09T08:14:08+00:00"
"""
    )
    result = run(pytester, *command)
    result.assert_outcomes(passed=2)
