"""Fixtures: a loopback delay server (tests/unit/sla/delay_server.py) in a subprocess, and
a throwaway PKI for it to serve HTTPS with (tests/unit/sla/tls_pki.py)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.unit.sla.tls_pki import Pki, make_pki

SERVER = Path(__file__).with_name("delay_server.py")


@pytest.fixture(scope="module")
def delay_server() -> Iterator[Callable[..., str]]:
    """Start delay servers on demand: delay_server(fixed_ms, random_ms) -> base URL.

    Keyword options become the server's flags: stall_after=150 is --stall-after 150;
    with tls_cert= and tls_key= (PEM paths) it serves HTTPS and the URL says https."""
    procs: list[subprocess.Popen[str]] = []

    def start(
        fixed_ms: float = 1.0,
        random_ms: float = 0.0,
        golden: bool = True,
        **options: float | str,
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
        scheme = "https" if "tls_cert" in options else "http"
        return f"{scheme}://127.0.0.1:{port}"

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))
