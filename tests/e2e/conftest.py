"""End-to-end tests run against the real lab: a Docker engine must be running.

Files run in name order: test_01_lab rebuilds the lab (down, up: nothing deployed), and the
`deployed` fixture deploys it once per session for every later file that needs it.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from slakit.lab import engine
from slakit.lab.spec import load_spec
from tests.e2e.support import ROOT, invoke, report_dir, run


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


APP_ROOT = "/opt/slakit-service"  # app_root (the lab keeps the default)
APP_ENV_FILE = "/etc/slakit-service/slakit-service.env"  # app_env_file (the lab's default)
MASTER_STARTED = "systemctl show -p ExecMainStartTimestamp --value slakit-service.service"


@dataclass
class Promotion:
    """Drift on three hosts, caught by the checks, then repaired by the next deploy, which is the
    promotion of the release the lab runs: `invoke deploy --release <id> --from lab --skip-sla`.
    One deploy serves the drift test (test_02) and the promotion drill (test_10): each would
    cost a deploy of ~4 min."""

    smoke: subprocess.CompletedProcess  # check.smoke with redis@cache stopped on redis-1
    infra: subprocess.CompletedProcess  # check.infra --limit app-1 with a hand-changed sysctl
    # app-2's master start before the deploy: its environment file was hand-changed, so the
    # converge rewrites it while only the canary (app-1) rolls out; app-2 must restart later
    app_2_started_before: str
    app_2_started_after: str
    release: dict  # the release of the `deployed` report that vouches for it
    approved: bool  # that report's verdict (NOT APPROVED: the promotion is --force)
    current_before: dict[str, str]  # {app host: where `current` pointed before the promotion}
    deploy: subprocess.CompletedProcess
    seconds: float


@pytest.fixture(scope="session")
def promotion(deployed, on_host) -> Promotion:
    _, outdir = deployed
    source = json.loads((outdir / "readiness.json").read_text())
    run("ansible", "app-1", "-m", "ansible.builtin.command",
        "-a", "sysctl -w net.core.somaxconn=128", check=True)  # fmt: skip
    run("ansible", "redis-1", "-m", "ansible.builtin.systemd_service",
        "-a", "name=redis@cache state=stopped", check=True)  # fmt: skip
    on_host("app-2", f"sed -i 's/^\\(SLAKIT_CONVERSATION_MAX_TURNS=\\).*/\\1\"7\"/' {APP_ENV_FILE}")
    app_2_started = on_host("app-2", MASTER_STARTED)
    smoke = invoke("check.smoke", timeout=600)
    infra = invoke("check.infra", "--limit", "app-1", timeout=600)
    apps = sorted(source["release"]["hosts"])
    current = {h: on_host(h, f"readlink {APP_ROOT}/current") for h in apps}
    flags = [] if source["approved"] else ["--force"]
    t0 = time.monotonic()
    result = invoke(
        "deploy", "--env", "lab", "--release", source["release"]["id"], "--from", "lab",
        "--skip-sla", *flags, timeout=1800,
    )  # fmt: skip
    seconds = time.monotonic() - t0
    assert result.returncode in (0, 1), result.stdout[-3000:] + result.stderr[-2000:]
    return Promotion(
        smoke, infra, app_2_started, on_host("app-2", MASTER_STARTED),
        source["release"], source["approved"], current, result, seconds,
    )  # fmt: skip
