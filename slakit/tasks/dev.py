"""`invoke lint` and `invoke test`: what CI runs, runnable by hand."""

from __future__ import annotations

import sys
from pathlib import Path

from slakit.errors import GateFailed
from slakit.tasks import task

BIN = Path(sys.executable).parent
LINTERS = (
    f"{BIN}/ruff check .",
    f"{BIN}/ruff format --check .",
    f"{BIN}/yamllint --strict .",
    f"{BIN}/ansible-lint --profile production -q playbooks roles",
)
PYTEST_NO_TESTS = 5


@task
def lint(c):
    """ruff (lint + format), yamllint and ansible-lint --profile production."""
    failed = [cmd.split()[0].rsplit("/", 1)[-1] for cmd in LINTERS if c.run(cmd, warn=True).failed]
    if failed:
        raise GateFailed(f"lint failed: {', '.join(failed)}")


@task(
    help={
        "unit": "only the unit tests (no Docker engine, no lab)",
        "pytest_args": "extra arguments for pytest, e.g. '-k lab -x'",
    }
)
def test(c, unit=False, pytest_args=""):
    """Lint, then the whole test suite: unit tests, then the lab end to end (JUnit in reports/)."""
    lint(c)
    paths = "tests/unit" if unit else "tests/unit tests/e2e"
    result = c.run(
        f"{BIN}/pytest {paths} --junitxml=reports/tests/junit.xml {pytest_args}",
        warn=True,
        pty=False,
    )
    if result.exited == PYTEST_NO_TESTS:
        raise GateFailed("pytest collected no tests")
    if result.exited != 0:
        raise GateFailed(f"tests failed (pytest exit {result.exited})")
