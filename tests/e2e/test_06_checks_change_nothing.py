"""The infra suite as a staging or production pipeline runs it (plain pytest, no
--destructive) changes nothing on the hosts: no Redis restart, no eviction, no setting moved,
and a converge right after (`invoke check.idempotence`: the deploy's second converge) reports
zero changes.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from tests.e2e.support import invoke, run

REDIS_ADMIN = "set -a; . /root/.redis-admin.env; set +a; redis-cli --no-auth-warning --user admin"
PORTS = (6379, 6380)


def redis_state(docker_client) -> dict[int, dict[str, int]]:
    container = docker_client.containers.get("slakit-lab-redis-1")
    state = {}
    for port in PORTS:
        cmd = f"{REDIS_ADMIN} -p {port} INFO; {REDIS_ADMIN} -p {port} CONFIG GET maxmemory"
        out = container.exec_run(["bash", "-c", cmd]).output.decode()
        info = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        state[port] = {
            "uptime": int(info["uptime_in_seconds"]),
            "evicted": int(info["evicted_keys"]),
            "maxmemory": int(out.strip().splitlines()[-1]),
        }
    return state


def test_a_pipeline_run_of_the_infra_suite_changes_nothing(deployed, docker_client, tmp_path):
    before = redis_state(docker_client)
    junit = tmp_path / "infra.xml"
    suite = run(
        "pytest",
        "tests/infra",
        "--hosts=ansible://all",
        "--ansible-inventory=inventories/lab",
        f"--junitxml={junit}",
        "-q",
        "-p",
        "no:cacheprovider",
        timeout=900,
    )
    assert suite.returncode == 0, suite.stdout[-3000:]
    skips = [s.get("message", "") for s in ET.parse(junit).getroot().iter("skipped")]
    assert skips and all("destructive" in m for m in skips), skips  # and nothing else skipped
    after = redis_state(docker_client)
    for port in PORTS:
        assert after[port]["uptime"] >= before[port]["uptime"], f":{port} restarted"
        assert after[port]["evicted"] == before[port]["evicted"], f":{port} evicted keys"
        assert after[port]["maxmemory"] == before[port]["maxmemory"], f":{port} maxmemory"
    converge = invoke("check.idempotence", timeout=900)
    assert converge.returncode == 0, converge.stdout[-3000:] + converge.stderr[-1000:]
    assert "✅ Idempotence: second converge: 0 changes" in converge.stdout
