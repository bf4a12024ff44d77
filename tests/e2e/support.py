"""Helpers for end-to-end tests: run commands the way a user would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(
    *args: str, timeout: float = 1800, check: bool = False, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run a command the way a user would, from the project root, with the venv on PATH;
    `env` adds to (or replaces) variables of this process's environment."""
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", **(env or {})}
    result = subprocess.run(
        list(args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {result.returncode}\n{result.stdout[-3000:]}\n"
            f"{result.stderr[-3000:]}"
        )
    return result


def invoke(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return run(str(BIN / "invoke"), *args, **kwargs)


def report_dir(stdout: str) -> Path:
    """The report folder that `invoke deploy` printed."""
    match = re.search(r"reports: (reports/lab/\S+?)/?$", stdout, re.M)
    assert match, stdout[-2000:]
    return ROOT / match.group(1)


def backend_states(on_host, lb: str, fact: dict) -> dict[str, str]:
    """{server: status} of the app backend of load balancer `lb` (its published `fact`), read
    from HAProxy's admin socket on the host."""
    lines = on_host(lb, f"echo 'show stat' | socat stdio {fact['admin_socket']}").splitlines()
    header = lines[0].lstrip("# ").split(",")
    rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:]]
    return {
        r["svname"]: r["status"]
        for r in rows
        if r.get("pxname") == fact["backend"] and r["svname"] not in ("FRONTEND", "BACKEND")
    }
