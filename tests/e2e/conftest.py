"""End-to-end tests run against the real lab: a Docker engine must be running.

Files run in name order: test_01_lab rebuilds the lab (down, up: nothing deployed), and the
`deployed` fixture deploys it once per session for every later file that needs it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import docker
import pytest

from slakit.lab import engine
from slakit.lab.spec import load_spec
from tests.e2e.support import ROOT, invoke, report_dir


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.lab)


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    return engine.client()


@pytest.fixture(scope="session")
def lab_spec():
    return load_spec(ROOT / "inventories/lab/hosts.yml")


@pytest.fixture(scope="session")
def deployed():
    """`invoke deploy` on the lab, once per session: (its result, its report folder)."""
    result = invoke("deploy", timeout=2400)
    assert result.returncode in (0, 1), result.stdout[-3000:] + result.stderr[-2000:]
    return result, report_dir(result.stdout)


@pytest.fixture(scope="session")
def on_host(deployed, docker_client) -> Callable[[str, str], str]:
    """Run a shell command as root on a lab host; fails on a non-zero exit."""

    def execute(host: str, command: str) -> str:
        container = docker_client.containers.get(f"slakit-lab-{host}")
        code, output = container.exec_run(["bash", "-c", command])
        text = output.decode(errors="replace").strip()
        assert code == 0, f"{host}: {command!r} exited {code}: {text}"
        return text

    return execute
