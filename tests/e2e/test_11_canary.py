"""The canary drill: a release that answers correctly but 20 ms late on every request is stopped
at the canary by the main job itself (`slakit.deploy.run`, what `invoke deploy` runs):

- the canary (app-1) switches alone and serves its weighted share of the traffic;
- the canary check (story `canary`, pinned through the load balancer to app-1 and to app-2 on
  the old release, the checker's regression test) fails and names the regression;
- app-2 never switches, app-1 is rolled back behind the load balancer, the rejected release is
  deleted from both hosts, and the report says ROLLED BACK;
- under open-loop load through the load balancer for the whole episode, no request fails.

The slowdown is the service's drill setting (SLAKIT_DRILL_DELAY_MS), compiled into this one
release's defaults only: the lab's own release never has it. Reuses the deployed lab; prints
the failed requests, the seconds to roll back and the canary's figures beside the baseline's.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from rich.console import Console

from slakit import deploy
from tests.e2e.load import OpenLoopLoad
from tests.e2e.test_release_switch import APP_HOSTS, RATE, service_copy, versions_now

DELAY_MS = 20
RELEASES = "/opt/slakit-service/releases"


def slow_copy(dest: Path, version: str) -> Path:
    """The reference service as a new version whose drill delay defaults to DELAY_MS."""
    source = service_copy(dest, version)
    config = source / "src" / "slakit_service" / "config.py"
    text, n = re.subn(
        r'_env_float\("SLAKIT_DRILL_DELAY_MS", 0\.0\)',
        f'_env_float("SLAKIT_DRILL_DELAY_MS", {DELAY_MS}.0)',
        config.read_text(),
    )
    assert n == 1, "the service's drill setting moved: update this test"
    config.write_text(text)
    return source


def test_a_slow_release_stops_at_the_canary(deployed, on_host, tmp_path) -> None:
    before = versions_now()
    assert len(set(before.values())) == 1, before
    releases_before = {h: set(on_host(h, f"ls {RELEASES}").split()) for h in APP_HOSTS}
    base = next(iter(before.values())).split("+")[0]
    slow = f"{base}+slow{int(time.time())}"
    source = slow_copy(tmp_path, slow)

    began = time.monotonic()
    with OpenLoopLoad(RATE) as load:
        time.sleep(2)  # load running before anything changes
        approved, report = deploy.run(
            deploy.DeployOptions(env="lab", extra_vars={"app_sources": [str(source)]}),
            Console(width=120),
        )
        time.sleep(2)
    seconds = time.monotonic() - began
    r = load.result
    assert report is not None
    data = json.loads((report.parent / "readiness.json").read_text())
    gates = {g["name"]: g for g in data["gates"]}
    canary = next((g for n, g in gates.items() if n.startswith("Canary:")), None)
    back = gates.get("Rollback")
    print(
        f"\ncanary drill (+{DELAY_MS} ms release) in {seconds:.0f} s: "
        f"{r.sent} requests at {RATE}/s, {r.ok} ok, {r.failed} failed {r.errors or ''}; "
        f"versions seen {r.versions}\n"
        f"{canary['name'] if canary else 'no canary gate'}: "
        f"{canary['figure'] if canary else ''} — {canary['detail'] if canary else ''}\n"
        f"rollback: {back['figure'] if back else 'none'}"
    )
    assert not approved
    assert canary is not None and canary["status"] == "failed", gates
    assert "slower than the old release" in canary["detail"], canary
    assert back is not None and back["status"] == "passed", gates
    assert back["figure"].startswith("ROLLED BACK app-1 in"), back
    seconds_back = re.search(r" in (\d+) s", back["figure"])
    assert seconds_back, back
    print(f"time to roll back: {seconds_back.group(1)} s")
    # nothing past the canary ran: no smoke, no SLA, no testinfra against a release leaving
    assert not any(n.startswith(("Smoke", "SLA", "Host verification")) for n in gates), gates

    assert versions_now() == before  # app-2 never switched, app-1 is back
    for host in APP_HOSTS:  # the rejected release is left on no host
        left = set(on_host(host, f"ls {RELEASES}").split()) - releases_before[host]
        assert not left, f"{host} still has {left}"
    # the canary served its share of real traffic with the slow release, then stopped
    assert r.versions.get(slow, 0) > 0, r.versions
    assert r.sent > 0 and r.ok + r.failed == r.sent
    assert r.failed == 0, f"{r.failed} requests failed during the canary episode: {r.errors}"
