"""Releases in the lab: a rolling switch under load drops nothing; a bad release is stopped on
the first host; rollback puts the previous release back.

Load: open loop at a fixed rate (requests are sent on schedule whether or not earlier ones
have answered), only to the first load balancer (its published URL, HTTPS verified against the
CA the roles published), bounded in rate, count and time. Which release each app host runs is
read on the host itself over loopback: only the load balancers may connect to the app port.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import ssl
import threading
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import aiohttp
import pytest

from slakit import ansible, envs, release, stack
from slakit.deploy import RELEASE_SWITCHED
from slakit.errors import SlakitError
from tests.e2e.support import ROOT

APP_HOSTS = ("app-1", "app-2")
PATHS = ("/api/v1/health", "/health", "/")
RATE = 100  # requests per second
MAX_SECONDS = 420  # the load stops by then whatever happens
TIMEOUT = 5.0  # per request


@cache
def lab() -> stack.Stack:
    return stack.load(envs.resolve("lab"))


def lb_target() -> tuple[str, ssl.SSLContext | bool]:
    """(the first load balancer's URL, aiohttp's `ssl`: verifying with the published CA)."""
    deployed = lab()
    url = next(iter(deployed.lb_urls().values()))
    if not url.startswith("https:"):
        return url, True
    return url, ssl.create_default_context(cafile=deployed.lb_ca_file())


@dataclass
class LoadResult:
    sent: int = 0
    ok: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


class OpenLoopLoad:
    """GETs to the load balancer at RATE per second until stopped (or MAX_SECONDS)."""

    def __init__(self) -> None:
        self.result = LoadResult()
        self.base, self.ssl = lb_target()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> OpenLoopLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(MAX_SECONDS + 30)

    async def _one(self, session: aiohttp.ClientSession, path: str) -> None:
        r = self.result
        try:
            async with session.get(self.base + path, ssl=self.ssl) as resp:
                body = await resp.read()
                if resp.status == 200:
                    r.ok += 1
                    if path == "/api/v1/health":
                        v = re.search(rb'"version":"([^"]+)"', body)
                        key = v.group(1).decode() if v else "?"
                        r.versions[key] = r.versions.get(key, 0) + 1
                    return
                key = f"HTTP {resp.status}"
        except Exception as err:  # every failure counts, whatever its kind
            key = type(err).__name__
        r.failed += 1
        r.errors[key] = r.errors.get(key, 0) + 1

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=TIMEOUT)
        connector = aiohttp.TCPConnector(limit=64)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            start = time.monotonic()
            tasks: set[asyncio.Task] = set()
            i = 0
            while not self._stop.is_set() and time.monotonic() - start < MAX_SECONDS:
                due = start + i / RATE
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.create_task(self._one(session, PATHS[i % len(PATHS)]))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                i += 1
                self.result.sent = i
            await asyncio.gather(*tasks)
            self.result.seconds = time.monotonic() - start


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
    with OpenLoopLoad() as load:
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
