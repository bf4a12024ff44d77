"""The security gates of the readiness report: one line per check, each with its figure.

- TLS: each load balancer's HTTPS URL, verified against the CA its clients trust; the
  negotiated protocol and the days until the certificate expires (a failure under
  `loadbalancer_tls_expiry_fail_days`, a note under `loadbalancer_tls_expiry_warn_days`).
- Plain HTTP: the plain listener redirects to HTTPS, or the inventory chose plain HTTP
  (`loadbalancer_http_redirect: false`), which the line then says.
- App port: refused from every inventory host outside the LB group, and accepted from every
  LB host (the control: a probe that reaches nothing proves nothing).
- Redis: a PING without credentials is answered NOAUTH by every instance and every Sentinel,
  from each app host.
- Unit exposure: `systemd-analyze security` of each unit the roles run, within its role's
  `*_exposure_max`.
- Secrets: none an example or placeholder (the preflight's secret checks, run again).
Targets are role variables as Ansible resolves them; addresses and units are what the roles
published (docs/contract.md). Nothing here changes a host.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from slakit import ansible, secret_checks, stack
from slakit.envs import Environment
from slakit.errors import SlakitError
from slakit.gates import Gate, gate
from slakit.preflight import OFFLINE_ARGS

PROBE_SCRIPT = Path(__file__).parent / "host_scripts" / "tcp_probe.py"
CONNECT_TIMEOUT_S = 3.0
HTTP_TIMEOUT_S = 10.0
PLAY_TIMEOUT_S = 300
REDIRECTS = (301, 302, 307, 308)
EXPOSURE = re.compile(r"exposure level for \S+: (\d+(?:\.\d+)?)")
# Which role variable holds the exposure target of the units of each group's role.
EXPOSURE_TARGET = {
    "lb": "loadbalancer_exposure_max",
    "app": "app_exposure_max",
    "redis": "redis_exposure_max",
}


@dataclass(frozen=True)
class TlsSession:
    protocol: str
    days_left: float


def tls_session(url: str, ca_file: str | None) -> TlsSession:
    """Handshake with `url`'s host, verifying its certificate and name against `ca_file`."""
    parts = urlsplit(url)
    context = ssl.create_default_context(cafile=ca_file)
    host, port = parts.hostname or "", parts.port or 443
    with (
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        cert, protocol = tls.getpeercert() or {}, tls.version() or "?"
    not_after = ssl.cert_time_to_seconds(str(cert["notAfter"]))
    return TlsSession(protocol, (not_after - time.time()) / 86400)


def tls_gates(
    deployed: stack.Stack, limits: dict[str, dict[str, Any]]
) -> tuple[list[Gate], list[str]]:
    gates, notes = [], []
    ca_file = deployed.lb_ca_file()
    trust = Path(ca_file).name if ca_file else "the system trust store"
    for host, url in deployed.lb_urls().items():
        name = f"Security: TLS on {host}"
        if not url.startswith("https://"):
            gates.append(
                gate(name, False, f"{url} is not HTTPS", detail="loadbalancer_tls_enabled is off")
            )
            continue
        fail_days = int(limits[host]["loadbalancer_tls_expiry_fail_days"])
        warn_days = int(limits[host]["loadbalancer_tls_expiry_warn_days"])
        try:
            session = tls_session(url, ca_file)
        except ssl.SSLCertVerificationError as err:
            gates.append(
                gate(name, False, "certificate not verified", detail=f"{url}: {err.verify_message}")
            )
            continue
        except (OSError, ssl.SSLError) as err:
            gates.append(gate(name, False, "no TLS session", detail=f"{url}: {err}"))
            continue
        days = int(session.days_left)
        gates.append(
            gate(
                name,
                session.days_left >= fail_days,
                f"{session.protocol}, verified against {trust}, certificate expires in {days} days",
                f"verified, >= {fail_days} days to expiry",
                detail=f"the certificate expires in {days} days: renew it",
            )
        )
        if fail_days <= session.days_left < warn_days:
            notes.append(
                f"{host}: the TLS certificate expires in {days} days (renew before {warn_days})"
            )
    return gates, notes


def plain_http_gates(deployed: stack.Stack) -> list[Gate]:
    gates = []
    for host in deployed.hosts("lb"):
        fact = deployed.published(host, "loadbalancer")
        name = f"Security: plain HTTP on {host}"
        http_url = str(fact.get("http_url", ""))
        if not deployed.lb_tls(host).get("http_redirect", False):
            gates.append(
                gate(
                    name,
                    True,
                    f"{http_url} serves plain HTTP: allowed by loadbalancer_http_redirect: false",
                )
            )
            continue
        try:
            reply = requests.get(http_url + "/", allow_redirects=False, timeout=HTTP_TIMEOUT_S)
            status, location = reply.status_code, reply.headers.get("Location", "")
        except requests.RequestException as err:
            status, location = 0, type(err).__name__
        gates.append(
            gate(
                name,
                status in REDIRECTS and location.startswith("https://"),
                f"{http_url}/ -> {status or location} {location if status else ''}".rstrip(),
                "a redirect to https://",
                detail="not redirected, and loadbalancer_http_redirect is not false",
            )
        )
    return gates


def units(deployed: stack.Stack, group: str, host: str) -> list[str]:
    """The systemd units the role of `group` runs on `host`, as the roles published them."""
    if group == "app":
        return [str(deployed.published(host, "app")["unit"])]
    if group == "redis":
        return [f"redis@{n}.service" for n in deployed.published(host, "redis")["instances"]]
    return ["haproxy.service"]  # the Debian package's unit


def probe_plan(deployed: stack.Stack) -> dict[str, dict[str, list[str]]]:
    """Per host: the app ports of the other app hosts, the Redis ports (app hosts only), units."""
    app_targets = {
        h: _host_port(deployed.published(h, "app")["url"]) for h in deployed.hosts("app")
    }
    redis_targets = [
        _host_port(url)
        for h in deployed.hosts("redis")
        for url in deployed.published(h, "redis")["urls"].values()
    ] + [  # Sentinels speak the same protocol and require their password too
        f"{fact['bind'][0]}:{fact['port']}"
        for fact in (deployed.published(h, "redis_sentinel") for h in deployed.hosts("sentinel"))
    ]
    everyone = sorted(deployed.inventory.get("_meta", {}).get("hostvars", {}))
    return {
        host: {
            "app": [t for h, t in app_targets.items() if h != host],
            "redis": redis_targets if host in deployed.hosts("app") else [],
            "units": [
                u
                for g in EXPOSURE_TARGET
                if host in deployed.hosts(g)
                for u in units(deployed, g, host)
            ],
        }
        for host in everyone
    }


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}"


def run_probes(
    env: Environment, plan: dict[str, dict[str, list[str]]]
) -> dict[str, dict[str, Any]]:
    """{host: {"app": [...], "redis": [...], "units": {unit: exposure output}}} from the hosts."""
    script = f"{PROBE_SCRIPT} --timeout {CONNECT_TIMEOUT_S:g}"
    play = {
        "name": "Security probes (change nothing)",
        "hosts": "all",
        "gather_facts": False,
        "vars": {"slakit_plan": plan},
        "tasks": [
            {
                "name": "Connect to the app port of the other app hosts",
                "ansible.builtin.script": {
                    "cmd": script + " {{ slakit_plan[inventory_hostname].app | join(' ') }}",
                    "executable": "python3",
                },
                "when": "slakit_plan[inventory_hostname].app | length > 0",
                "changed_when": False,
            },
            {
                "name": "PING every Redis instance without credentials",
                "ansible.builtin.script": {
                    "cmd": script
                    + " --send PING {{ slakit_plan[inventory_hostname].redis | join(' ') }}",
                    "executable": "python3",
                },
                "when": "slakit_plan[inventory_hostname].redis | length > 0",
                "changed_when": False,
            },
            {
                "name": "Measure the exposure of the stack's units",
                "ansible.builtin.command": {
                    "argv": ["systemd-analyze", "security", "--no-pager", "{{ item }}"]
                },
                "loop": "{{ slakit_plan[inventory_hostname].units }}",
                "changed_when": False,
            },
        ],
    }
    out = ansible.run_plays(env.inventory, [play], PLAY_TIMEOUT_S)
    found: dict[str, dict[str, Any]] = {h: {"app": [], "redis": [], "units": {}} for h in plan}
    keys = {t["name"]: key for t, key in zip(play["tasks"], ("app", "redis", "units"), strict=True)}
    # One entry per host and task: the strategy does not group hosts under one task.
    for task in out["plays"][0]["tasks"]:
        key = keys[task["task"]["name"]]
        for host, result in task["hosts"].items():
            if result.get("skipped"):
                continue
            if result.get("failed") or result.get("unreachable"):
                raise SlakitError(f"{host}: security probe failed: {result.get('msg', '')}".strip())
            if key == "units":
                found[host]["units"] = {r["item"]: r["stdout"] for r in result["results"]}
            else:
                found[host][key] = json.loads(result["stdout"])
    return found


def scrapers(deployed: stack.Stack, targets: dict[str, dict[str, Any]]) -> set[str]:
    """Hosts whose address an app host lets through for /metrics (app_metrics_allowed_clients,
    as Ansible resolves it): they reach the whole app port, like the load balancers."""
    allowed = [
        ipaddress.ip_network(str(net), strict=False)
        for h in deployed.hosts("app")
        for net in targets.get(h, {}).get("app_metrics_allowed_clients") or []
    ]
    hostvars = deployed.inventory.get("_meta", {}).get("hostvars", {})
    out = set()
    for host, variables in hostvars.items():
        with contextlib.suppress(ValueError):
            address = ipaddress.ip_address(str(variables.get("ansible_host", "")))
            if any(address in net for net in allowed):
                out.add(host)
    return out


def app_port_gate(
    deployed: stack.Stack, found: dict[str, dict[str, Any]], scraper_hosts: set[str] = frozenset()
) -> Gate:
    allowed = set(deployed.hosts("lb")) | set(scraper_hosts)
    leaks, kept_out, reached, blind = [], [], 0, []
    for host, results in sorted(found.items()):
        for probe in results["app"]:
            connected = probe["outcome"] == "connected"
            if host in allowed:
                reached += connected
                if not connected:
                    blind.append(f"{host} -> {probe['target']}: {probe['outcome']}")
            elif connected:
                leaks.append(f"{host} -> {probe['target']}")
            else:
                kept_out.append(probe["outcome"])
    probed = len(kept_out) + len(leaks)
    how = ", ".join(f"{kept_out.count(o)} {o}" for o in sorted(set(kept_out)))
    who = "LB hosts" + (
        f" and scrapers ({', '.join(sorted(scraper_hosts))})" if scraper_hosts else ""
    )
    return gate(
        "Security: app port from other hosts",
        probed > 0 and not leaks and not blind and reached > 0,
        f"{len(kept_out)}/{probed} connects from other hosts kept out ({how or 'none'}); "
        f"{reached}/{reached + len(blind)} from {who} reached",
        f"kept out from every host but the {who}, reached from those",
        detail="; ".join(
            [f"reachable: {', '.join(leaks)}"] * bool(leaks)
            + [f"an allowed host cannot reach an app host: {', '.join(blind)}"] * bool(blind)
            + ["no probe ran (a group without hosts?)"] * (probed == 0 or reached == 0)
        ),
    )


def redis_gate(found: dict[str, dict[str, Any]]) -> Gate:
    probes = [(h, p) for h, r in sorted(found.items()) for p in r["redis"]]
    open_ = [
        f"{h} -> {p['target']}: {p['outcome']} {p['reply']}".strip()
        for h, p in probes
        if not p["reply"].startswith("-NOAUTH")
    ]
    return gate(
        "Security: Redis without credentials",
        bool(probes) and not open_,
        f"NOAUTH from {len(probes) - len(open_)}/{len(probes)} instance probes (from app hosts)",
        "every instance answers NOAUTH",
        detail="; ".join(open_) or "no probe ran",
    )


def exposure_gates(
    deployed: stack.Stack, found: dict[str, dict[str, Any]], targets: dict[str, dict[str, Any]]
) -> list[Gate]:
    rows: dict[str, list[tuple[str, float, float]]] = {}
    for group, variable in EXPOSURE_TARGET.items():
        for host in deployed.hosts(group):
            target = float(targets[host][variable])
            measured_units = found[host]["units"]
            for unit in units(deployed, group, host):
                match = EXPOSURE.search(measured_units.get(unit, ""))
                score = float(match.group(1)) if match else float("inf")
                rows.setdefault(unit.split("@")[0].removesuffix(".service"), []).append(
                    (f"{host} {unit}", score, target)
                )
    gates = []
    for name, measured in rows.items():
        worst = max(measured, key=lambda row: row[1] - row[2])
        plural = "unit" if len(measured) == 1 else "units"
        over = [
            f"{where} {score:g} > {target:g}" for where, score, target in measured if score > target
        ]
        gates.append(
            gate(
                f"Security: exposure of {name} units",
                not over,
                f"worst {worst[1]:g} ({worst[0]}) of {len(measured)} {plural}",
                f"<= {worst[2]:g} (systemd-analyze security)",
                detail="; ".join(over),
            )
        )
    return gates


def secrets_gate(env: Environment) -> Gate:
    try:
        secret_checks.check_files(env)
        unresolved = secret_checks.check_values(env, OFFLINE_ARGS)
    except SlakitError as err:
        return gate("Security: secrets", False, "refused", detail=str(err))
    return gate(
        "Security: secrets",
        not unresolved,
        "none an example or placeholder; token strong; users valid",
        detail=f"the secrets of {', '.join(unresolved)} do not resolve",
    )


def gates(
    env: Environment, deployed: stack.Stack, targets: dict[str, dict[str, Any]] | None = None
) -> tuple[list[Gate], list[str]]:
    """Every security gate against the deployed environment, and notes (expiry warnings);
    `targets`: the role variables as Ansible resolves them, when the caller has them."""
    targets = targets if targets is not None else ansible.resolved_role_vars(env.inventory)
    tls, notes = tls_gates(deployed, targets)
    found = run_probes(env, probe_plan(deployed))
    return [
        *tls,
        *plain_http_gates(deployed),
        app_port_gate(deployed, found, scrapers(deployed, targets)),
        redis_gate(found),
        *exposure_gates(deployed, found, targets),
        secrets_gate(env),
    ], notes


def checked(
    env: Environment, deployed: stack.Stack, targets: dict[str, dict[str, Any]] | None = None
) -> tuple[list[Gate], list[str]]:
    """`gates`, with a probe that could not run reported as a failed gate, not raised."""
    try:
        return gates(env, deployed, targets)
    except SlakitError as err:
        return [gate("Security: probes", False, "not run", detail=str(err))], []
