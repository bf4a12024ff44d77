"""The gates of the main job, each run alone by `invoke check.*` or in order by `deploy`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from slakit import ansible, smoke, stack, verify
from slakit.envs import Environment
from slakit.gates import Gate, gate
from slakit.sla.spec import Spec

SMOKE_PLAYBOOK = "smoke.yml"


def converge_gate(result: ansible.PlayResult, check: bool = False) -> Gate:
    hosts = len(result.hosts)
    failed = sum(s.get("failures", 0) + s.get("unreachable", 0) for s in result.hosts.values())
    name = "Converge (dry run)" if check else "Converge: playbooks/site.yml"
    return gate(
        name,
        result.returncode == 0,
        f"{hosts} hosts, {result.changed} changes, {failed} failed",
        detail=result.first_failure(),
    )


def idempotence_gate(result: ansible.PlayResult) -> Gate:
    changed = {h: s.get("changed", 0) for h, s in result.hosts.items() if s.get("changed", 0)}
    tasks = "; ".join(f"{h}: {', '.join(result.changed_tasks.get(h, []))}" for h in changed)
    return gate(
        "Idempotence: second converge",
        result.returncode == 0 and not changed,
        f"{result.changed} changes on {len(result.hosts)} hosts",
        "0 changes",
        detail=result.first_failure() if result.returncode else f"changed: {tasks}",
    )


def http_gates(env: Environment, spec: Spec) -> list[Gate]:
    deployed = stack.load(env)
    gates = []
    for label, places in (
        ("through the load balancer", deployed.lb_urls()),
        ("on each app host", deployed.app_urls()),
    ):
        probes = smoke.probe_all(places, spec)
        bad = [p for p in probes if not p.ok]
        gates.append(
            gate(
                f"Smoke: endpoints {label}",
                bool(probes) and not bad,
                f"{len(probes) - len(bad)}/{len(probes)} answered as expected",
                detail="; ".join(p.line() for p in bad[:3])
                + (f" (+{len(bad) - 3} more)" if len(bad) > 3 else ""),
            )
        )
    return gates


def host_smoke_gate(env: Environment, since: datetime | None) -> Gate:
    """Redis PING with the app's credentials from every app host; no ERROR in the app journal."""
    extra = ("-e", f"slakit_smoke_since='{since:%Y-%m-%d %H:%M:%S}'") if since else ()
    result = ansible.playbook(env, SMOKE_PLAYBOOK, extra_args=extra, quiet=True)
    hosts = len(result.hosts)
    return gate(
        "Smoke: Redis instances and app logs from every app host",
        result.returncode == 0,
        f"{hosts - len({f['host'] for f in result.failures})}/{hosts} app hosts clean",
        detail=result.first_failure(),
    )


def verify_gate(env: Environment, junit: Path, limit: str = "", quiet: bool = True) -> Gate:
    result = verify.run(env, junit, limit=limit, quiet=quiet)
    ran = result.tests - result.skipped
    return gate(
        "Host verification: testinfra",
        result.passed,
        f"{ran - result.failures}/{ran} passed ({result.skipped} skipped)",
        detail=", ".join(result.failed_names[:3]) or f"pytest exit {result.returncode}",
    )
