"""The gates of the main job, each run alone by `invoke check.*` or in order by `deploy`."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import requests

from slakit import ansible, smoke, stack, verify
from slakit.envs import Environment
from slakit.errors import SlakitError
from slakit.gates import Gate, gate
from slakit.sla.spec import Spec
from slakit.status import Status

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


def http_gates(deployed: stack.Stack, spec: Spec, env: Environment) -> list[Gate]:
    """Every SLA endpoint through each load balancer (from here, verifying its certificate) and
    on each app host over its loopback (only the load balancers may connect to the app port)."""
    through_lb = smoke.probe_all(deployed.lb_urls(), spec, verify=deployed.lb_ca_file() or True)
    ports = {h: int(deployed.published(h, "app")["port"]) for h in deployed.hosts("app")}
    on_hosts = smoke.probe_on_hosts(env.inventory, ports, spec)
    gates = []
    for label, probes in (
        ("through the load balancer", through_lb),
        ("on each app host (loopback)", on_hosts),
    ):
        bad = [p for p in probes if not p.ok]
        gates.append(
            gate(
                f"Smoke: endpoints {label}",
                bool(probes) and not bad,
                f"{len(probes) - len(bad)}/{len(probes)} answered as expected",
                detail="; ".join(p.line() for p in bad[:3])
                + (f" (+{len(bad) - 3} more)" if len(bad) > 3 else "")
                + ("" if probes else "no probe ran"),
            )
        )
    return gates


def host_smoke_gate(env: Environment, since: datetime | None) -> Gate:
    """Redis PING with the app's credentials from every app host; no ERROR in the app journal."""
    since_var = {"slakit_smoke_since": f"{since:%Y-%m-%d %H:%M:%S} UTC"} if since else {}
    extra = ansible.extra_vars_args(since_var if since else None)
    result = ansible.playbook(env, SMOKE_PLAYBOOK, extra_args=extra, quiet=True)
    hosts = len(result.hosts)
    return gate(
        "Smoke: Redis instances and app logs from every app host",
        result.returncode == 0,
        f"{hosts - len({f['host'] for f in result.failures})}/{hosts} app hosts clean",
        detail=result.first_failure(),
    )


COMPREHENSIVE = "/api/v1/health/comprehensive"


REDIS_HA_SETTLE_S = 30.0  # a replica that resynchronises after a converge's restart


def redis_ha_gates(
    deployed: stack.Stack,
    settle_s: float = REDIS_HA_SETTLE_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Gate]:
    """With more than one Redis host: the persist tier as the app sees it through the first load
    balancer (the primary Sentinel named, its replicas online, their lag), read again for up to
    `settle_s` while a replica is still resynchronising. None with one Redis host."""
    if len(deployed.hosts("redis")) < 2:
        return []
    name = "Redis HA: persist primary and replicas, as the app finds them"
    base = next(iter(deployed.lb_urls().values()))
    replicas = len(deployed.hosts("redis")) - 1
    target = f"found via Sentinel, {replicas} replicas online"
    started = clock()
    while True:
        try:
            reply = requests.get(
                base + COMPREHENSIVE, timeout=10, verify=deployed.lb_ca_file() or True
            )
            l2 = reply.json()["tiers"]["l2"]
            replication = l2["replication"]
        except (requests.RequestException, ValueError, KeyError, TypeError) as err:
            return [gate(name, False, "not read", detail=f"{base}{COMPREHENSIVE}: {err}")]
        ok = (
            l2.get("status") == "up"
            and replication.get("status") == "ok"
            and replication.get("found_via") == "sentinel"
            and replication.get("connected_replicas") == replicas
        )
        waited = clock() - started
        if ok or waited >= settle_s:
            break
        sleep(1.0)
    value = (
        f"primary {replication.get('primary')} found via {replication.get('found_via')}, "
        f"{replication.get('connected_replicas')} replicas online (min "
        f"{replication.get('min_replicas')}), lag {replication.get('max_lag_seconds')} s"
        + (f", after {waited:.0f} s" if waited >= 1 else "")
    )
    return [gate(name, ok, value, target, detail=f"status {replication.get('status')}")]


def verify_gate(env: Environment, junit: Path, limit: str = "", quiet: bool = True) -> Gate:
    result = verify.run(env, junit, limit=limit, quiet=quiet)
    return gate(
        "Host verification: testinfra",
        result.passed_all,
        result.summary(),
        target="every planned check passes",
        detail=result.problem(),
    )


def latest_sla_result(env: Environment, before: Path) -> Path | None:
    """The newest earlier SLA result of this environment: the baseline for regressions."""
    earlier = sorted(
        p for p in env.reports_dir.glob("*/sla/report.json") if p.parent.parent < before
    )
    return earlier[-1] if earlier else None


def sla_gates(
    env: Environment,
    deployed: stack.Stack,
    spec: Spec,
    outdir: Path,
    load_test: bool = False,
    from_group: str = "",
) -> tuple[list[Gate], list[str]]:
    """The SLA checker against the (first) load balancer; gates plus figures that are not gated.
    With `from_group`, the load comes from every host of that inventory group at once
    (slakit/loadgen.py), merged into the one result."""
    from slakit.sla import RunOptions, run_checks, write_reports

    base_url = next(iter(deployed.lb_urls().values()))
    baseline = latest_sla_result(env, outdir)
    options = RunOptions(
        validate_production=True,
        baseline=baseline,
        load_test=load_test,
        ca_file=deployed.lb_ca_file(),  # verify the LB's certificate (None: system store)
    )
    if from_group:
        if load_test:
            raise SlakitError("--load-test is not available with --from: ramp from one host")
        from slakit.loadgen import run_distributed

        result = run_distributed(env, deployed, spec, from_group, outdir / "sla", options)
    else:
        result = run_checks(spec, base_url, options=options)
    write_reports(result, outdir / "sla")
    gates = [
        gate(
            "SLA measurement valid",
            result.status != Status.INVALID,
            f"{result.platform.samples} samples in {result.duration_s:.0f} s against {base_url}"
            + (f" from {len(result.load_hosts)} hosts of {from_group}" if from_group else ""),
            detail="client could not keep its schedule: measurement unreliable (sla/report.txt)",
        )
    ]
    notes = []
    for check in result.readiness:
        if check.status == "info":
            notes.append(f"{check.name}: {check.value} ({check.target})")
        else:
            gates.append(
                gate(
                    check.name,
                    check.status == "pass",
                    check.value,
                    check.target,
                )
            )
    for host in result.load_hosts:
        notes.append(
            f"Load host {host.host} (share {host.share}): {host.sent} requests sent, "
            f"{host.ok} ok; clock {host.clock}"
        )
    if result.platform.confidence_level is not None:
        notes.append(
            f"Confidence Level: {result.platform.confidence_level:.1%} — probability that the "
            "true SLA compliance is at or above its threshold, given these samples (sla/README.md)"
        )
    return gates, notes


def host_tuning_notes(deployed: stack.Stack) -> list[str]:
    """What host_tuning skipped in containers (host-level kernel keys), as it published."""
    return [
        f"{host}: host-level, skipped in container: {', '.join(keys)}"
        for host, keys in deployed.host_level_skips().items()
    ]
