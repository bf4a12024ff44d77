"""Host verification: the testinfra suite (tests/infra) against an environment's inventory.

The gate cannot pass on nothing: the suite writes its plan (how many checks each inventory
group has, `--checks-plan`), and the inventory says how many hosts each group has, so the
number of checks that must pass is known before a single result is read. Fewer passed,
any failure, or any skip without the documented "not applicable: " reason fails the gate.
"""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from slakit import ansible
from slakit.ansible import BIN, command_env
from slakit.envs import Environment

# A skip with this reason is a check that does not apply to the inventory (tests/infra).
NOT_APPLICABLE = "not applicable: "


@dataclass(frozen=True)
class VerifyResult:
    returncode: int
    expected: int
    passed: int
    failed_names: tuple[str, ...]
    not_applicable: int
    skipped_names: tuple[str, ...]  # skipped without a documented reason
    junit: Path

    @property
    def passed_all(self) -> bool:
        return (
            self.returncode == 0
            and self.expected > 0
            and not self.failed_names
            and not self.skipped_names
            and self.passed + self.not_applicable == self.expected
        )

    def summary(self) -> str:
        extra = f", {self.not_applicable} not applicable" if self.not_applicable else ""
        return f"{self.passed}/{self.expected} passed{extra}"

    def problem(self) -> str:
        if self.failed_names:
            return "failed: " + ", ".join(self.failed_names[:3])
        if self.skipped_names:
            return "skipped without a documented reason: " + ", ".join(self.skipped_names[:3])
        if self.expected == 0:
            return "no checks planned for these hosts"
        ran = self.passed + self.not_applicable
        if ran != self.expected:
            return f"{ran} checks ran, {self.expected} expected (pytest exit {self.returncode})"
        return f"pytest exit {self.returncode}"


def group_hosts(inventory: dict, group: str) -> set[str]:
    """The hosts of a group of `ansible-inventory --list`, its children's included."""
    body = inventory.get(group) or {}
    hosts = set(body.get("hosts") or [])
    for child in body.get("children") or []:
        hosts |= group_hosts(inventory, child)
    return hosts


def expected_checks(plan: dict[str, int], inventory: dict) -> int:
    """Checks per host of each group, times the group's hosts (`all`: every host)."""
    return sum(count * len(group_hosts(inventory, group)) for group, count in plan.items())


def _cases(junit: Path) -> tuple[int, tuple[str, ...], int, tuple[str, ...]]:
    """passed, failed names, documented skips, undocumented skipped names."""
    if not junit.exists():
        return 0, (), 0, ()
    passed, not_applicable = 0, 0
    failed: list[str] = []
    skipped: list[str] = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        skip = case.find("skipped")
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(name)
        elif skip is not None:
            if skip.get("message", "").startswith(NOT_APPLICABLE):
                not_applicable += 1
            else:
                skipped.append(name)
        else:
            passed += 1
    return passed, tuple(failed), not_applicable, tuple(skipped)


def run(env: Environment, junit: Path, *, limit: str = "", quiet: bool = False) -> VerifyResult:
    junit.parent.mkdir(parents=True, exist_ok=True)
    plan_file = junit.with_name(f"{junit.stem}-plan.json")
    plan_file.unlink(missing_ok=True)
    cmd = [
        str(BIN / "pytest"),
        "tests/infra",
        f"--hosts=ansible://{limit or 'all'}",
        f"--ansible-inventory={env.inventory}",
        f"--junitxml={junit}",
        f"--checks-plan={plan_file}",
        *(["--destructive"] if env.is_lab else []),  # restarts and evictions: the lab only
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    run = subprocess.run(cmd, env=command_env(), capture_output=quiet, text=True, check=False)
    plan = json.loads(plan_file.read_text()) if plan_file.exists() else {}
    expected = expected_checks(plan, ansible.inventory(env, limit))
    return VerifyResult(run.returncode, expected, *_cases(junit), junit=junit)
