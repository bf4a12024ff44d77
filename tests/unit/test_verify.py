"""The verify gate cannot pass on nothing: it counts passed checks against the plan times the
inventory's hosts, and refuses failures and undocumented skips (slakit/verify.py).

Results come from real pytest runs writing real JUnit XML.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from slakit.verify import NOT_APPLICABLE, VerifyResult, _cases, expected_checks

# As ansible-inventory --list prints it: hosts without variables are not in _meta, groups
# may nest (`web` holds `app`), the ungrouped host sits in `ungrouped`.
INVENTORY = {
    "_meta": {"hostvars": {"lb-1": {"ansible_host": "10.0.0.10"}}},
    "all": {"children": ["ungrouped", "lb", "web", "redis"]},
    "ungrouped": {"hosts": ["spare-1"]},
    "lb": {"hosts": ["lb-1"]},
    "web": {"children": ["app"]},
    "app": {"hosts": ["app-1", "app-2"]},
    "redis": {"hosts": ["redis-1"]},
}


def junit_of(tmp_path: Path, body: str) -> Path:
    """Run a throwaway test module with pytest and return its JUnit XML."""
    module = tmp_path / "test_probe.py"
    module.write_text("import pytest\n" + body)
    junit = tmp_path / "junit.xml"
    args = ["-q", "-p", "no:cacheprovider", f"--junitxml={junit}", f"--rootdir={tmp_path}"]
    subprocess.run(
        [sys.executable, "-m", "pytest", *args, str(module)],
        capture_output=True,
        check=False,
        cwd=tmp_path,
    )
    return junit


def result(tmp_path: Path, body: str, expected: int, returncode: int = 0) -> VerifyResult:
    return VerifyResult(returncode, expected, *_cases(junit_of(tmp_path, body)), junit=Path())


def test_expected_checks_multiply_the_plan_by_each_groups_hosts():
    plan = {"all": 4, "app": 10, "lb": 8, "redis": 9}
    assert expected_checks(plan, INVENTORY) == 4 * 5 + 10 * 2 + 8 * 1 + 9 * 1
    assert expected_checks({"web": 1}, INVENTORY) == 2  # through its child group
    assert expected_checks({"monitoring": 3}, INVENTORY) == 0
    assert expected_checks({}, INVENTORY) == 0


def test_every_planned_check_passed(tmp_path):
    verdict = result(tmp_path, "def test_a(): pass\ndef test_b(): pass\n", expected=2)
    assert verdict.passed_all and verdict.summary() == "2/2 passed"


def test_fewer_checks_than_planned_fail(tmp_path):
    verdict = result(tmp_path, "def test_a(): pass\n", expected=3)
    assert not verdict.passed_all
    assert verdict.problem() == "1 checks ran, 3 expected (pytest exit 0)"


def test_nothing_planned_fails(tmp_path):
    verdict = result(tmp_path, "", expected=0, returncode=5)
    assert not verdict.passed_all and verdict.problem() == "no checks planned for these hosts"


def test_a_failure_fails_and_is_named(tmp_path):
    verdict = result(
        tmp_path, "def test_a(): pass\ndef test_b(): assert 0\n", expected=2, returncode=1
    )
    assert not verdict.passed_all and verdict.problem() == "failed: test_probe::test_b"


@pytest.mark.parametrize(
    ("reason", "passes"), [(f"{NOT_APPLICABLE}no persistent instance", True), ("no hosts", False)]
)
def test_only_documented_skips_count(tmp_path, reason, passes):
    body = f"def test_a(): pass\ndef test_b(): pytest.skip({reason!r})\n"
    verdict = result(tmp_path, body, expected=2)
    assert verdict.passed_all is passes
    if passes:
        assert verdict.summary() == "1/2 passed, 1 not applicable"
    else:
        assert verdict.problem() == "skipped without a documented reason: test_probe::test_b"
