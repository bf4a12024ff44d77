"""The Monitoring gates and `invoke check.alerts`: Prometheus and Alertmanager on the
monitoring hosts, read over their HTTP APIs from the controller (the monitoring role lets
it in: monitoring_allowed_clients).

What is expected comes from the inventory, the role variables as Ansible resolves them and
the SLA spec, never from the monitoring role's own configuration: the targets are every host
(node), app host (slakit-app), Redis instance (redis), load balancer (haproxy) and monitoring
host (prometheus, alertmanager); the rules are what `python -m slakit.sla rules` renders from
the spec with the resolved time scale and scrape interval.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
import yaml

from slakit import stack
from slakit.gates import Gate, gate, skipped
from slakit.sla.rules import RuleOptions, render
from slakit.sla.spec import Spec

GROUP = "monitoring"
HTTP_TIMEOUT_S = 5.0
POLL_S = 1.0
# After a deploy the last restarted targets need a scrape before they read UP, and an alert
# that a restart made pending or firing needs an evaluation after it: wait up to this many
# scrape intervals (plus SETTLE_S) for both before the gates read.
SETTLE_SCRAPES = 4
SETTLE_S = 10.0
# A firing alert of this severity (a slow burn of the error budget, slakit/sla/rules.py) is
# reported by the alerts gate but does not fail it: it says the budget of the last days is
# burning, which a deploy neither caused nor can wait out. Every other severity fails it.
REPORTED_ONLY = "ticket"


@dataclass(frozen=True)
class Alert:
    name: str
    state: str  # pending | firing (Prometheus); active | suppressed (Alertmanager)
    labels: dict[str, str]
    since: str = ""

    def line(self) -> str:
        where = ", ".join(f"{k}={v}" for k, v in sorted(self.labels.items()) if k != "alertname")
        return f"{self.name} ({where})" if where else self.name


@dataclass
class Reading:
    """One look at a monitoring host: targets by (job, instance) -> health, loaded rules,
    Prometheus's alerts. `error` says why the host could not be read."""

    host: str
    targets: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    rules: Counter[tuple[str, str]] = field(default_factory=Counter)
    unhealthy_rules: list[str] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    error: str = ""

    def firing(self) -> list[Alert]:
        return [a for a in self.alerts if a.state == "firing"]

    def blocking(self) -> list[Alert]:
        """The firing alerts that fail the alerts gate."""
        return [a for a in self.firing() if a.labels.get("severity") != REPORTED_ONLY]

    def pending(self) -> list[Alert]:
        return [a for a in self.alerts if a.state == "pending"]


def expected_targets(
    deployed: stack.Stack, role_vars: dict[str, dict[str, Any]]
) -> set[tuple[str, str]]:
    """(job, instance label) of every target the inventory implies (roles/monitoring/README.md
    names the labels: the inventory host name, `<host>:<instance>` for Redis)."""
    everyone = sorted(deployed.inventory.get("_meta", {}).get("hostvars", {}))
    targets = {("node", h) for h in everyone}
    targets |= {("slakit-app", h) for h in deployed.hosts("app")}
    targets |= {("haproxy", h) for h in deployed.hosts("lb")}
    targets |= {
        ("redis", f"{h}:{instance['name']}")
        for h in deployed.hosts("redis")
        for instance in role_vars[h]["redis_instances"]
    }
    for h in deployed.hosts(GROUP):
        targets |= {("prometheus", h), ("alertmanager", h)}
    return targets


def expected_rules(spec: Spec, host_vars: dict[str, Any]) -> Counter[tuple[str, str]]:
    """(group, rule name) of every rule the generator renders from the spec with the
    monitoring host's resolved time scale and scrape interval."""
    options = RuleOptions(
        time_scale=float(host_vars["monitoring_rules_time_scale"]),
        scrape_interval_s=float(host_vars["monitoring_scrape_interval_s"]),
    )
    groups = yaml.safe_load(render(spec, options))["groups"]
    return Counter(
        (g["name"], r.get("alert") or r.get("record")) for g in groups for r in g["rules"]
    )


def _get(url: str, path: str) -> Any:
    response = requests.get(url.rstrip("/") + path, timeout=HTTP_TIMEOUT_S)
    response.raise_for_status()
    body = response.json()
    return body["data"] if isinstance(body, dict) and "data" in body else body


def read(host: str, prometheus_url: str) -> Reading:
    """What Prometheus on `host` says now; `error` set when it cannot be asked."""
    reading = Reading(host)
    try:
        targets = _get(prometheus_url, "/api/v1/targets?state=active")["activeTargets"]
        groups = _get(prometheus_url, "/api/v1/rules")["groups"]
        alerts = _get(prometheus_url, "/api/v1/alerts")["alerts"]
    except (requests.RequestException, ValueError, KeyError, TypeError) as err:
        reading.error = f"{host}: Prometheus at {prometheus_url} unreadable: {err}"
        return reading
    for t in targets:
        key = (t["labels"].get("job", ""), t["labels"].get("instance", ""))
        reading.targets[key] = (t.get("health", "unknown"), t.get("lastError", ""))
    for g in groups:
        for r in g["rules"]:
            reading.rules[(g["name"], r["name"])] += 1
            if r.get("health") not in ("ok", "unknown"):
                reading.unhealthy_rules.append(f"{r['name']}: {r.get('lastError', '')}")
    reading.alerts = [
        Alert(a["labels"].get("alertname", "?"), a["state"], a["labels"], a.get("activeAt", ""))
        for a in alerts
    ]
    return reading


def alertmanager_alerts(alertmanager_url: str) -> list[Alert]:
    """The alerts Alertmanager holds now (active and suppressed; resolved ones are gone)."""
    alerts = _get(alertmanager_url, "/api/v2/alerts?active=true&silenced=true&inhibited=true")
    return [
        Alert(
            a["labels"].get("alertname", "?"),
            a.get("status", {}).get("state", "?"),
            a["labels"],
            a.get("startsAt", ""),
        )
        for a in alerts
    ]


def settled(reading: Reading, expected: set[tuple[str, str]]) -> bool:
    up = {k for k, (health, _) in reading.targets.items() if health == "up"}
    return not reading.error and expected <= up and not reading.blocking()


def wait_settled(
    host: str,
    fact: dict[str, Any],
    expected: set[tuple[str, str]],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[Reading, float]:
    """Read until every expected target is UP and no blocking alert fires, or the settle time
    is over;
    the last reading and the seconds waited."""
    budget = SETTLE_SCRAPES * float(fact["scrape_interval_s"]) + SETTLE_S
    start = clock()
    while True:
        reading = read(host, str(fact["prometheus_url"]))
        waited = clock() - start
        if settled(reading, expected) or waited >= budget:
            return reading, waited
        sleep(POLL_S)


def targets_gate(reading: Reading, expected: set[tuple[str, str]], waited: float) -> Gate:
    up = {k for k, (health, _) in reading.targets.items() if health == "up"}
    jobs = Counter(job for job, _ in expected)
    by_job = ", ".join(
        f"{job} {sum(1 for k in up & expected if k[0] == job)}/{n}"
        for job, n in sorted(jobs.items())
    )
    missing = sorted(expected - set(reading.targets))
    down = [
        f"{job} {instance}: {reading.targets[(job, instance)][0]} "
        f"{reading.targets[(job, instance)][1]}".rstrip()
        for job, instance in sorted(expected & set(reading.targets) - up)
    ]
    extra = sorted(set(reading.targets) - expected)
    return gate(
        f"Monitoring: targets on {reading.host}",
        bool(expected) and not missing and not down and not extra,
        f"{len(up & expected)}/{len(expected)} UP ({by_job}) after {waited:.0f} s",
        "every host, app, Redis instance and LB of the inventory UP",
        detail="; ".join(
            [f"not scraped: {', '.join(f'{j} {i}' for j, i in missing)}"] * bool(missing)
            + [f"down: {'; '.join(down)}"] * bool(down)
            + [f"not in the inventory: {', '.join(f'{j} {i}' for j, i in extra)}"] * bool(extra)
        ),
    )


def rules_gate(reading: Reading, expected: Counter[tuple[str, str]], spec_path: str) -> Gate:
    missing = expected - reading.rules
    groups = sorted({g for g, _ in expected})
    return gate(
        f"Monitoring: rules on {reading.host}",
        bool(expected) and not missing and not reading.unhealthy_rules,
        f"{sum((expected & reading.rules).values())}/{sum(expected.values())} rules of "
        f"{spec_path} loaded ({', '.join(groups)}); {len(reading.unhealthy_rules)} unhealthy",
        "every rule the spec renders, loaded and evaluating",
        detail="; ".join(
            [f"not loaded: {', '.join(f'{g}/{n}' for g, n in sorted(missing))}"] * bool(missing)
            + reading.unhealthy_rules[:3]
        ),
    )


def alerts_gate(reading: Reading) -> Gate:
    firing, pending, blocking = reading.firing(), reading.pending(), reading.blocking()
    reported = [a for a in firing if a not in blocking]
    return gate(
        f"Monitoring: alerts on {reading.host}",
        not blocking,
        f"{len(firing)} firing, {len(pending)} pending"
        + (f" ({'; '.join(a.line() for a in pending)})" if pending else "")
        + (f"; {REPORTED_ONLY} only: {'; '.join(a.line() for a in reported)}" if reported else ""),
        f"none firing at the end of the deploy (severity={REPORTED_ONLY}: reported only)",
        detail="firing: " + "; ".join(a.line() for a in blocking),
    )


def gates(
    deployed: stack.Stack,
    role_vars: dict[str, dict[str, Any]],
    spec: Spec,
    spec_path: str = "sla/spec.yml",
) -> list[Gate]:
    """Targets, rules and alerts of every monitoring host; a skipped gate (the verdict cannot be
    APPROVED) when the inventory has no monitoring host."""
    hosts = deployed.hosts(GROUP)
    if not hosts:
        return [skipped("Monitoring", f"no host in the inventory's {GROUP} group")]
    expected = expected_targets(deployed, role_vars)
    out = []
    for host in hosts:
        reading, waited = wait_settled(host, deployed.published(host, GROUP), expected)
        if reading.error:
            out.append(gate(f"Monitoring: {host}", False, "not read", detail=reading.error))
            continue
        out += [
            targets_gate(reading, expected, waited),
            rules_gate(reading, expected_rules(spec, role_vars[host]), spec_path),
            alerts_gate(reading),
        ]
    return out
