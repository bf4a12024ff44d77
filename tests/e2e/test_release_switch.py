"""Releases in the lab: a rolling switch under load drops nothing; a bad release is stopped on
the first host; rollback puts the previous release back.

Load: tests/e2e/load.py (open loop at RATE, through the first load balancer). Which release
each app host runs is read on the host itself over loopback: only the load balancers may
connect to the app port.
"""

from __future__ import annotations

import re
import shutil
import time
from functools import cache
from pathlib import Path

import pytest

from slakit import ansible, envs, release, stack
from slakit.deploy import RELEASE_SWITCHED
from slakit.errors import SlakitError
from tests.e2e.load import OpenLoopLoad
from tests.e2e.support import ROOT

APP_HOSTS = ("app-1", "app-2")
RATE = 100  # requests per second of the load (OpenLoopLoad's default)


@cache
def lab() -> stack.Stack:
    return stack.load(envs.resolve("lab"))


def versions_now() -> dict[str, str]:
    """{app host: the version its health endpoint reports}, asked on each host over loopback."""
    deployed = lab()
    ports = {h: int(deployed.published(h, "app")["port"]) for h in APP_HOSTS}
    play = {
        "name": "Read each app host's version over loopback",
        "hosts": ",".join(APP_HOSTS),
        "gather_facts": False,
        "vars": {"slakit_ports": ports},
        "tasks": [
            {
                "name": "Health",
                "ansible.builtin.uri": {
                    "url": "http://127.0.0.1:{{ slakit_ports[inventory_hostname] }}/api/v1/health",
                    "return_content": True,
                    "timeout": 5,
                },
            }
        ],
    }
    out = ansible.run_plays(envs.resolve("lab").inventory, [play], timeout=120)
    # one entry per host and task: the strategy does not group hosts under one task
    results = {h: r for t in out["plays"][0]["tasks"] for h, r in t["hosts"].items()}
    return {h: str(results[h]["json"]["version"]) for h in APP_HOSTS}


def service_copy(dest: Path, version: str, broken: bool = False) -> Path:
    """The reference service with another version (and, if broken, an app that cannot import)."""
    src = dest / "service"
    shutil.copytree(
        ROOT / "service", src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    pyproject = src / "pyproject.toml"
    pyproject.write_text(
        re.sub(r'(?m)^version = ".*"$', f'version = "{version}"', pyproject.read_text())
    )
    init = src / "src" / "slakit_service" / "__init__.py"
    init.write_text(re.sub(r'__version__ = ".*"', f'__version__ = "{version}"', init.read_text()))
    if broken:
        app = src / "src" / "slakit_service" / "app.py"
        app.write_text(app.read_text() + '\nraise RuntimeError("e2e: this release is broken")\n')
    return src


@pytest.fixture(scope="module")
def baseline() -> dict[str, str]:
    """The lab runs the project's own service (deployed now if it does not yet)."""
    release.deploy_app("lab", quiet=True)
    before = versions_now()
    assert len(set(before.values())) == 1, before
    return before


def test_rolling_release_switch_under_load_drops_nothing(baseline, tmp_path):
    version = f"{next(iter(baseline.values())).split('+')[0]}+e2e{int(time.time())}"
    source = service_copy(tmp_path, version)
    with OpenLoopLoad(RATE) as load:
        time.sleep(3)  # load running before the first host drains
        deploy = release.deploy_app("lab", sources=[source], quiet=True)
        time.sleep(3)
    r = load.result
    print(
        f"\nrelease switch under load: {r.sent} sent at {RATE}/s over {r.seconds:.0f}s, "
        f"{r.ok} ok, {r.failed} failed {r.errors or ''}; versions seen {r.versions}"
    )
    assert deploy.returncode == 0
    assert versions_now() == dict.fromkeys(APP_HOSTS, version)
    # the contract: the app role published the switch of every host, to one release
    switched = deploy.published_by_host(RELEASE_SWITCHED)
    assert sorted(switched) == sorted(APP_HOSTS) and len(set(switched.values())) == 1, switched
    assert r.sent > 0 and r.ok + r.failed == r.sent
    assert r.failed == 0, f"{r.failed} requests failed during the switch: {r.errors}"
    assert set(r.versions) == {next(iter(baseline.values())), version}  # both served, in turn


def test_bad_release_stops_on_first_host_then_rollback(baseline, tmp_path):
    if versions_now() == baseline:  # run alone: put a good newer release on first
        (tmp_path / "good").mkdir()
        good = service_copy(
            tmp_path / "good",
            f"{next(iter(baseline.values())).split('+')[0]}+e2egood{int(time.time())}",
        )
        release.deploy_app("lab", sources=[good], quiet=True)
    serving = versions_now()
    assert serving != baseline
    base = next(iter(baseline.values())).split("+")[0]
    source = service_copy(tmp_path, f"{base}+broken{int(time.time())}", broken=True)
    with pytest.raises(SlakitError) as err:
        release.deploy_app("lab", sources=[source], quiet=True)
    message = str(err.value)
    print(f"\nbad release: {message}")
    assert "app-1" in message and "does not import" in message and "broken" in message
    assert versions_now() == serving  # both hosts still on the release they had

    release.rollback("lab", quiet=True)
    assert versions_now() == baseline
