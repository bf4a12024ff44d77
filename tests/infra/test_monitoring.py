"""monitoring: node_exporter on every host; Prometheus, Alertmanager and the webhook receiver on
the `monitoring` hosts, scraping every target the inventory implies, with the rules generated
from sla/spec.yml loaded.

Expected values: the node_exporter_*, monitoring_* and the other roles' exporter variables
(app_bind_host/app_port, redis_exporter_*, loadbalancer_promex_*) as Ansible resolves them
for each host: never the monitoring role's fact or the configuration it rendered. Actual
values: ss, `systemctl show`, and Prometheus' and Alertmanager's own HTTP APIs, asked from the
monitoring host.
"""

from __future__ import annotations

import json
import shlex
import time

import pytest
from conftest import (
    UNIT_HARDENING,
    assert_no_mismatches,
    check_unit_hardening,
    expected,
    group_hosts,
    hostname,
    mismatch,
    resolved_of,
    unit_listeners,
    unit_properties,
)

# The rule groups `python -m slakit.sla rules` emits (slakit/sla/rules.py, sla/README.md).
RULE_GROUPS = {"slakit-sli", "slakit-slo-burn", "slakit-ops"}
NODE_UNIT = "prometheus-node-exporter.service"
# node_exporter reads /proc and /sys as a whole: no ProcSubset=pid, /home read-only, netlink.
NODE_HARDENING = {
    k: v for k, v in UNIT_HARDENING.items() if k not in ("ProcSubset", "RestrictAddressFamilies")
} | {
    "ProtectHome": "read-only",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_NETLINK AF_UNIX",  # systemd's order
}
# Every target must be UP within this many seconds (a target added by this run waits for its
# first scrape).
UP_WITHIN_S = 60


def ip_allow(host, unit: str) -> set[str]:
    """IPAddressAllow of a unit as `systemctl show` reports it (prefixes)."""
    value = unit_properties(host, unit, ["IPAddressAllow"]).get("IPAddressAllow", "")
    return set(value.split())


def want_allow(peers: list[str]) -> set[str]:
    """What systemd shows for `localhost <peers>` (bare IPv4 addresses become /32)."""
    return {"127.0.0.0/8", "::1/128"} | {p if "/" in p else f"{p}/32" for p in peers}


def http_get(host, url: str) -> tuple[int, str]:
    """GET `url` from the host under test (python3 on the host); (status, body)."""
    code = (
        "import sys, urllib.request, urllib.error\n"
        "try:\n"
        "    r = urllib.request.urlopen(sys.argv[1], timeout=10)\n"
        "    print(r.status); print(r.read().decode())\n"
        "except urllib.error.HTTPError as e:\n"
        "    print(e.code); print(e.read().decode())\n"
    )
    out = host.check_output(f"python3 -c {shlex.quote(code)} {shlex.quote(url)}")
    status, _, body = out.partition("\n")
    return int(status), body


def api(host, url: str) -> dict:
    status, body = http_get(host, url)
    assert status == 200, mismatch(host, f"GET {url}", 200, status)
    return json.loads(body)


# --- node_exporter, every host --------------------------------------------------------------


@pytest.mark.group("all")
def test_node_exporter_listens_on_its_address_only(host):
    """prometheus-node-exporter runs, listens on node_exporter_listen_address:port alone, and lets
    only loopback and node_exporter_allowed_clients connect."""
    problems = []
    if not host.service(NODE_UNIT).is_running or not host.service(NODE_UNIT).is_enabled:
        problems.append(mismatch(host, f"{NODE_UNIT} running and enabled", True, False))
    want = {
        f"{expected(host, 'node_exporter_listen_address')}:{expected(host, 'node_exporter_port')}"
    }
    seen = set(unit_listeners(host, NODE_UNIT))
    if seen != want:
        problems.append(mismatch(host, f"{NODE_UNIT} listeners", sorted(want), sorted(seen)))
    allow = want_allow(list(expected(host, "node_exporter_allowed_clients")))
    if ip_allow(host, NODE_UNIT) != allow:
        problems.append(
            mismatch(host, f"{NODE_UNIT} IPAddressAllow", sorted(allow), ip_allow(host, NODE_UNIT))
        )
    problems += check_unit_hardening(host, NODE_UNIT, NODE_HARDENING)
    assert_no_mismatches(problems)


# --- the monitoring hosts -------------------------------------------------------------------

pytestmark = pytest.mark.group("monitoring")


def base_url(host, port_var: str) -> str:
    return f"http://{expected(host, 'monitoring_listen_address')}:{expected(host, port_var)}"


def expected_targets(host) -> dict[str, set[str]]:
    """{job: {address:port}} from the inventory's groups and each host's resolved variables."""
    jobs: dict[str, set[str]] = {name: set() for name in ("slakit-app", "redis", "node", "haproxy")}
    for app in group_hosts(host, "app"):
        v = resolved_of(host, app)
        jobs["slakit-app"].add(f"{v['app_bind_host']}:{v['app_port']}")
    for redis in group_hosts(host, "redis"):
        v = resolved_of(host, redis)
        if v["redis_exporter_enabled"]:
            for inst in v["redis_instances"]:
                port = v["redis_exporter_ports"][inst["name"]]
                jobs["redis"].add(f"{v['redis_exporter_listen_address']}:{port}")
    for other in group_hosts(host, "all"):
        v = resolved_of(host, other)
        jobs["node"].add(f"{v['node_exporter_listen_address']}:{v['node_exporter_port']}")
    for lb in group_hosts(host, "lb"):
        v = resolved_of(host, lb)
        if v["loadbalancer_promex_enabled"]:
            jobs["haproxy"].add(
                f"{v['loadbalancer_promex_address']}:{v['loadbalancer_promex_port']}"
            )
    address = expected(host, "monitoring_listen_address")
    jobs["prometheus"] = {f"{address}:{expected(host, 'monitoring_prometheus_port')}"}
    jobs["alertmanager"] = {f"{address}:{expected(host, 'monitoring_alertmanager_port')}"}
    return jobs


def test_services_listen_where_configured(host):
    """Prometheus on :9090, Alertmanager on :9093 (no cluster port), both on
    monitoring_listen_address; the webhook receiver on loopback only."""
    address = expected(host, "monitoring_listen_address")
    want = {
        "prometheus.service": {f"{address}:{expected(host, 'monitoring_prometheus_port')}"},
        "prometheus-alertmanager.service": {
            f"{address}:{expected(host, 'monitoring_alertmanager_port')}"
        },
        "slakit-webhook.service": {f"127.0.0.1:{expected(host, 'monitoring_webhook_port')}"},
    }
    problems = []
    for unit, listeners in want.items():
        seen = set(unit_listeners(host, unit))
        if seen != listeners:
            problems.append(mismatch(host, f"{unit} listeners", sorted(listeners), sorted(seen)))
    assert_no_mismatches(problems)


def test_units_hardened(host):
    """The three units carry the common hardening and their IP allow-lists."""
    clients = list(expected(host, "monitoring_allowed_clients"))
    address = expected(host, "monitoring_listen_address")
    problems = []
    for unit in ("prometheus.service", "prometheus-alertmanager.service", "slakit-webhook.service"):
        problems += check_unit_hardening(host, unit, UNIT_HARDENING)
    am_allow = want_allow(
        [address, *clients, *expected(host, "monitoring_alertmanager_outbound_allow")]
    )
    if ip_allow(host, "prometheus-alertmanager.service") != am_allow:
        problems.append(
            mismatch(
                host,
                "prometheus-alertmanager.service IPAddressAllow",
                sorted(am_allow),
                sorted(ip_allow(host, "prometheus-alertmanager.service")),
            )
        )
    if ip_allow(host, "slakit-webhook.service") != want_allow([]):
        problems.append(
            mismatch(
                host,
                "slakit-webhook.service IPAddressAllow",
                sorted(want_allow([])),
                sorted(ip_allow(host, "slakit-webhook.service")),
            )
        )
    prometheus_allow = ip_allow(host, "prometheus.service")
    if not want_allow([address, *clients]) <= prometheus_allow:
        problems.append(
            mismatch(
                host,
                "prometheus.service IPAddressAllow",
                f"loopback, {address}, {clients} and the scrape targets",
                sorted(prometheus_allow),
            )
        )
    assert_no_mismatches(problems)


def test_every_expected_target_is_up(host):
    """Prometheus scrapes exactly the targets the inventory implies, job by job, all UP."""
    want = expected_targets(host)
    url = base_url(host, "monitoring_prometheus_port") + "/api/v1/targets?state=active"
    deadline = time.monotonic() + UP_WITHIN_S
    while True:
        active = api(host, url)["data"]["activeTargets"]
        seen: dict[str, set[str]] = {}
        down = []
        for target in active:
            job = target["labels"]["job"]
            seen.setdefault(job, set()).add(target["scrapeUrl"].split("/")[2])
            if target["health"] != "up":
                down.append(
                    f"{job} {target['labels']['instance']}: {target['health']} "
                    f"{target.get('lastError', '')}"
                )
        if (seen == want and not down) or time.monotonic() > deadline:
            break
        time.sleep(2)
    problems = []
    if seen != want:
        problems.append(mismatch(host, "scrape targets", want, seen))
    problems += [f"{hostname(host)}: target not UP: {d}" for d in down]
    assert_no_mismatches(problems)


def test_generated_rule_groups_loaded(host):
    """Prometheus evaluates the groups generated from sla/spec.yml."""
    url = base_url(host, "monitoring_prometheus_port") + "/api/v1/rules"
    groups = {g["name"] for g in api(host, url)["data"]["groups"]}
    assert groups >= RULE_GROUPS, mismatch(host, "rule groups", sorted(RULE_GROUPS), sorted(groups))


def test_alertmanager_ready_with_webhook_route(host):
    """Alertmanager is ready, and its loaded configuration sends to the webhook receiver."""
    base = base_url(host, "monitoring_alertmanager_port")
    status, _ = http_get(host, base + "/-/ready")
    problems = [] if status == 200 else [mismatch(host, "alertmanager /-/ready", 200, status)]
    config = api(host, base + "/api/v2/status")["config"]["original"]
    hook = f"http://127.0.0.1:{expected(host, 'monitoring_webhook_port')}/"
    if expected(host, "monitoring_webhook_enabled"):
        for needle in ("name: slakit-webhook", hook):
            if needle not in config:
                problems.append(mismatch(host, "alertmanager config has", needle, "absent"))
    receiver = expected(host, "monitoring_alertmanager_default_receiver")
    if f"receiver: {receiver}" not in config:
        problems.append(mismatch(host, "alertmanager route receiver", receiver, "absent"))
    assert_no_mismatches(problems)
