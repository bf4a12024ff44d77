"""Fixtures: a loopback delay server (tests/unit/sla/delay_server.py) in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

SERVER = Path(__file__).with_name("delay_server.py")


@pytest.fixture(scope="module")
def delay_server() -> Iterator[Callable[..., str]]:
    """Start delay servers on demand: delay_server(fixed_ms, random_ms) -> base URL.

    Keyword options become the server's flags: stall_after=150 is --stall-after 150."""
    procs: list[subprocess.Popen[str]] = []

    def start(
        fixed_ms: float = 1.0, random_ms: float = 0.0, golden: bool = True, **options: float
    ) -> str:
        args = [
            sys.executable,
            str(SERVER),
            "--fixed-ms",
            str(fixed_ms),
            "--random-ms",
            str(random_ms),
        ]
        if golden:
            args.append("--golden")
        for name, value in options.items():
            args += [f"--{name.replace('_', '-')}", str(value)]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout is not None
        port = proc.stdout.readline().strip()
        assert port.isdigit(), "delay server did not start"
        return f"http://127.0.0.1:{port}"

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)
