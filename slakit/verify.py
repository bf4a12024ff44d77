"""Host verification: the testinfra suite (tests/infra) against an environment's inventory."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from slakit.ansible import BIN, command_env
from slakit.envs import Environment


@dataclass(frozen=True)
class VerifyResult:
    returncode: int
    tests: int
    failures: int
    skipped: int
    junit: Path
    failed_names: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return self.returncode == 0 and self.tests > self.skipped and not self.failures


def _counts(junit: Path) -> tuple[int, int, int, tuple[str, ...]]:
    if not junit.exists():
        return 0, 0, 0, ()
    root = ET.parse(junit).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    tests = sum(int(s.get("tests", 0)) for s in suites)
    failures = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    skipped = sum(int(s.get("skipped", 0)) for s in suites)
    failed = tuple(
        f"{case.get('classname', '')}::{case.get('name', '')}"
        for case in root.iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    )
    return tests, failures, skipped, failed


def run(env: Environment, junit: Path, *, limit: str = "", quiet: bool = False) -> VerifyResult:
    junit.parent.mkdir(parents=True, exist_ok=True)
    hosts = f"ansible://{limit or 'all'}"
    cmd = [
        str(BIN / "pytest"),
        "tests/infra",
        f"--hosts={hosts}",
        f"--ansible-inventory={env.inventory}",
        f"--junitxml={junit}",
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    run = subprocess.run(cmd, env=command_env(), capture_output=quiet, text=True, check=False)
    tests, failures, skipped, failed = _counts(junit)
    return VerifyResult(run.returncode, tests, failures, skipped, junit, failed)
