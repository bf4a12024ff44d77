"""Redis bench: `redis-benchmark` GET/SET p50/p99 for each instance, measured from an app host.

Where it runs: on the first host of the inventory's `app` group, against each Redis
instance's private address, so the figures include the network hop the application pays.
redis-benchmark comes from the Debian package redis-tools, which this bench installs on that
app host when missing (the app role itself keeps app hosts free of it).

Auth: the app user (`--user app -a <password>`), the same ACL the service gets. The password
is templated inside Ansible (`{{ redis_app_password }}`, no_log), so it never reaches this
process or a log; redis-benchmark cannot read it from the environment, so it is in
redis-benchmark's own argv on the app host while the bench runs.

Load is bounded: REQUESTS requests per command with CLIENTS connections, 64-byte values,
keys spread over KEYSPACE names in db 15 (reserved for tests and benches), which is emptied
afterwards with the admin user on the Redis host.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

from slakit.ansible import run_plays
from slakit.bench import BenchRow
from slakit.errors import SlakitError

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = os.environ.get("SLAKIT_INVENTORY", str(ROOT / "inventories" / "lab"))
REQUESTS = 20000
CLIENTS = 20
KEYSPACE = 10000
BENCH_DB = 15
TIMEOUT_S = 600
READ_FACTS = {"name": "Read local facts", "ansible.builtin.setup": {"filter": "ansible_local"}}


def _playbook(plays: list[dict[str, Any]]) -> dict[str, Any]:
    """Run plays with the JSON callback; return the parsed result."""
    try:
        result = run_plays(INVENTORY, plays, timeout=TIMEOUT_S)
    except SlakitError as err:
        raise SlakitError(f"redis bench: {err}") from None
    failed = [
        h for h, s in result.get("stats", {}).items() if s.get("failures") or s.get("unreachable")
    ]
    if failed:
        raise SlakitError(
            f"redis bench: ansible-playbook failed on {', '.join(failed)}", exit_code=3
        )
    return result


def _task_msgs(result: dict[str, Any], task_name: str) -> dict[str, Any]:
    """{host: msg} of the debug task named task_name."""
    for play in result["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"] == task_name:
                return {h: r.get("msg") for h, r in task["hosts"].items()}
    return {}


def _targets() -> list[dict[str, Any]]:
    """Each Redis instance (host, name, private address, port) from the role's local facts."""
    result = _playbook(
        [
            {
                "name": "Redis instances from the role's facts",
                "hosts": "redis",
                "gather_facts": False,
                "tasks": [
                    {
                        "name": "Read local facts",
                        "ansible.builtin.setup": {"filter": "ansible_local"},
                    },
                    {
                        "name": "Show instances",
                        "ansible.builtin.debug": {"msg": "{{ ansible_local.redis | default({}) }}"},
                    },
                ],
            }
        ]
    )
    targets = []
    for redis_host, fact in sorted(_task_msgs(result, "Show instances").items()):
        if not fact:
            raise SlakitError(f"redis bench: no redis facts on {redis_host}: deploy redis first")
        addr = next(b for b in fact["bind"] if not b.startswith("127."))
        for inst in fact["instances"].values():
            targets.append(
                {
                    "host": redis_host,
                    "name": inst["name"],
                    "addr": addr,
                    "port": int(inst["port"]),
                    "user": fact["app_user"],
                }
            )
    return targets


def _bench(targets: list[dict[str, Any]]) -> tuple[str, dict[str, str]]:
    """Run redis-benchmark from the first app host; {instance key: CSV output}."""
    command = [
        "redis-benchmark", "-h", "{{ item.addr }}", "-p", "{{ item.port }}",
        "--user", "{{ item.user }}", "-a", "{{ redis_app_password }}",
        "--dbnum", str(BENCH_DB), "-t", "get,set", "-n", str(REQUESTS), "-c", str(CLIENTS),
        "-d", "64", "-r", str(KEYSPACE), "--csv", "--precision", "3",
    ]  # fmt: skip
    result = _playbook(
        [
            {
                "name": "redis-benchmark from an app host",
                "hosts": "app[0]",
                "gather_facts": False,
                "become": True,
                "tasks": [
                    {
                        "name": "Install redis-tools (redis-benchmark) for the bench",
                        "ansible.builtin.apt": {
                            "name": "redis-tools",
                            "state": "present",
                            "update_cache": True,
                            "cache_valid_time": 86400,
                        },
                    },
                    {
                        "name": "Run redis-benchmark",
                        "ansible.builtin.command": {"argv": command},
                        "loop": targets,
                        "no_log": True,
                        "register": "bench",
                        "changed_when": False,
                    },
                    {
                        "name": "Show results",
                        "ansible.builtin.debug": {
                            "msg": "{{ bench.results | map(attribute='stdout') | list }}"
                        },
                    },
                    {
                        "name": "Show failures",
                        "ansible.builtin.debug": {
                            "msg": "{{ bench.results | map(attribute='rc') | list }}"
                        },
                    },
                ],
            },
            {
                "name": "Empty the bench database",
                "hosts": "redis",
                "gather_facts": False,
                "become": True,
                "tasks": [
                    READ_FACTS,
                    {
                        "name": "FLUSHDB the bench database as admin",
                        "ansible.builtin.shell": (
                            "set -a; . {{ ansible_local.redis.admin_env_file }}; set +a; "
                            "redis-cli --no-auth-warning --user "
                            "{{ ansible_local.redis.admin_user }} -p {{ item.port }} "
                            f"-n {BENCH_DB} FLUSHDB"
                        ),
                        "loop": "{{ ansible_local.redis.instances.values() | list }}",
                        "changed_when": False,
                    },
                ],
            },
        ]
    )
    outs = _task_msgs(result, "Show results")
    rcs = _task_msgs(result, "Show failures")
    app_host = next(iter(outs))
    if any(rc != 0 for rc in rcs[app_host]):
        raise SlakitError(f"redis bench: redis-benchmark failed on {app_host} (rc {rcs[app_host]})")
    return app_host, {
        f"{t['host']}/{t['name']}": out for t, out in zip(targets, outs[app_host], strict=True)
    }


def parse_csv(text: str) -> dict[str, dict[str, float]]:
    """redis-benchmark --csv: {"GET": {"rps": .., "p50_latency_ms": .., ...}, "SET": ...}."""
    rows = csv.DictReader(io.StringIO(text))
    return {row["test"]: {k: float(v) for k, v in row.items() if k != "test" and v} for row in rows}


def run() -> list[BenchRow]:
    targets = _targets()
    if not targets:
        raise SlakitError("redis bench: the inventory has no Redis instances")
    app_host, outputs = _bench(targets)
    rows = []
    for key, text in outputs.items():
        figures = parse_csv(text)
        for test in ("GET", "SET"):
            if test not in figures:
                raise SlakitError(f"redis bench: no {test} figures for {key}", exit_code=3)
            fig = figures[test]
            label = f"{key} {test} from {app_host}"
            rows.append(BenchRow("redis", f"{label} p50", fig["p50_latency_ms"], "ms"))
            rows.append(BenchRow("redis", f"{label} p99", fig["p99_latency_ms"], "ms"))
            rows.append(BenchRow("redis", f"{label} throughput", fig["rps"], "req/s"))
    return rows
