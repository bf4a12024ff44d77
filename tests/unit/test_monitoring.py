"""The Monitoring gates against a stand-in for Prometheus's HTTP API on a real socket.

The API's answers are shaped like Prometheus 2.42's (Debian 12's) /api/v1 JSON; the rules it
reports loaded are the generator's own output for the real spec, as the monitoring role loads
it. The clock is faked so that waiting for a target that never comes UP costs no time.
"""

from __future__ import annotations

from collections.abc import Iterator
from email.message import Message
from typing import Any

import pytest
import yaml
from stand_in import serving

from slakit import monitoring, stack
from slakit.gates import Status
from slakit.sla.rules import RuleOptions, render
from slakit.sla.spec import load_spec

INVENTORY = {
    "_meta": {"hostvars": {h: {} for h in ("lb-1", "app-1", "app-2", "redis-1", "mon-1")}},
    "lb": {"hosts": ["lb-1"]},
    "app": {"hosts": ["app-1", "app-2"]},
    "redis": {"hosts": ["redis-1"]},
    "monitoring": {"hosts": ["mon-1"]},
}
ROLE_VARS: dict[str, dict[str, Any]] = {
    "redis-1": {"redis_instances": [{"name": "cache"}, {"name": "persist"}]},
    "mon-1": {"monitoring_rules_time_scale": 12, "monitoring_scrape_interval_s": 5},
}
TARGETS = [
    *[("node", h) for h in ("lb-1", "app-1", "app-2", "redis-1", "mon-1")],
    ("slakit-app", "app-1"),
    ("slakit-app", "app-2"),
    ("haproxy", "lb-1"),
    ("redis", "redis-1:cache"),
    ("redis", "redis-1:persist"),
    ("prometheus", "mon-1"),
    ("alertmanager", "mon-1"),
]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Api:
    """What the stand-in answers: every target up, the rendered rules, no alert."""

    def __init__(self) -> None:
        self.health = {t: "up" for t in TARGETS}
        groups = yaml.safe_load(
            render(load_spec(), RuleOptions(time_scale=12, scrape_interval_s=5))
        )
        self.groups = [
            {
                "name": g["name"],
                "rules": [
                    {"name": r.get("alert") or r.get("record"), "health": "ok"} for r in g["rules"]
                ],
            }
            for g in groups["groups"]
        ]
        self.alerts: list[dict[str, Any]] = []
        self.requests = 0

    def answer(self, path: str) -> dict[str, Any]:
        self.requests += 1
        if path.startswith("/api/v1/targets"):
            data: Any = {
                "activeTargets": [
                    {
                        "labels": {"job": job, "instance": instance},
                        "health": health,
                        "lastError": "" if health == "up" else "connection refused",
                    }
                    for (job, instance), health in self.health.items()
                ]
            }
        elif path.startswith("/api/v1/rules"):
            data = {"groups": self.groups}
        elif path.startswith("/api/v1/alerts"):
            data = {"alerts": self.alerts}
        else:
            return {}
        return {"status": "success", "data": data}


@pytest.fixture
def api() -> Iterator[tuple[Api, str]]:
    state = Api()

    def answer(_method: str, path: str, _headers: Message, _body: bytes) -> tuple[int, Any]:
        reply = state.answer(path)
        return (200 if reply else 404), reply

    with serving(answer) as url:
        yield state, url


def deployed(url: str) -> stack.Stack:
    fact = {"prometheus_url": url, "alertmanager_url": url, "scrape_interval_s": 5}
    return stack.Stack(INVENTORY, {"mon-1": {"monitoring": fact}})


@pytest.fixture
def run_gates(monkeypatch):
    """monitoring.gates against the stand-in at `url`, waiting on `clock`."""

    def run(url: str, clock: FakeClock) -> list:
        real_wait = monitoring.wait_settled
        monkeypatch.setattr(
            monitoring,
            "wait_settled",
            lambda host, fact, expected: real_wait(
                host, fact, expected, clock=clock, sleep=clock.sleep
            ),
        )
        return monitoring.gates(deployed(url), ROLE_VARS, load_spec())

    return run


def test_expected_targets_come_from_the_inventory_and_resolved_instances():
    assert monitoring.expected_targets(stack.Stack(INVENTORY), ROLE_VARS) == set(TARGETS)


def test_a_healthy_stack_passes_all_three_gates_at_once(api, run_gates):
    state, url = api
    clock = FakeClock()
    targets, rules, alerts = run_gates(url, clock)
    assert [g.status for g in (targets, rules, alerts)] == [Status.PASS] * 3
    assert targets.figure.startswith("12/12 UP (alertmanager 1/1, haproxy 1/1, node 5/5,")
    assert targets.figure.endswith("after 0 s")
    rendered = sum(len(g["rules"]) for g in state.groups)
    assert rules.figure.startswith(f"{rendered}/{rendered} rules of sla/spec.yml loaded")
    assert alerts.figure == "0 firing, 0 pending"
    assert state.requests == 3  # one reading sufficed


def test_a_target_that_stays_down_fails_after_the_settle_time(api, run_gates):
    state, url = api
    state.health[("redis", "redis-1:persist")] = "down"
    clock = FakeClock()
    targets, rules, alerts = run_gates(url, clock)
    budget = monitoring.SETTLE_SCRAPES * 5 + monitoring.SETTLE_S
    assert targets.status is Status.FAIL and rules.passed and alerts.passed
    assert clock.now == pytest.approx(budget, abs=monitoring.POLL_S)
    assert targets.figure.startswith("11/12 UP")
    assert targets.detail == "down: redis redis-1:persist: down connection refused"


def test_a_target_missing_from_prometheus_or_unknown_to_the_inventory_fails(api, run_gates):
    state, url = api
    del state.health[("slakit-app", "app-2")]
    state.health[("slakit-app", "app-9")] = "up"
    targets, _, _ = run_gates(url, FakeClock())
    assert targets.status is Status.FAIL
    assert targets.detail == (
        "not scraped: slakit-app app-2; not in the inventory: slakit-app app-9"
    )


def test_a_rule_not_loaded_or_failing_to_evaluate_fails_the_rules_gate(api, run_gates):
    state, url = api
    dropped = state.groups[1]["rules"].pop()
    state.groups[0]["rules"][0].update(health="err", lastError="bad expr")
    _, rules, _ = run_gates(url, FakeClock())
    assert rules.status is Status.FAIL
    assert f"not loaded: slakit-slo-burn/{dropped['name']}" in rules.detail
    assert "bad expr" in rules.detail


def test_a_firing_alert_fails_and_pending_ones_are_reported(api, run_gates):
    state, url = api
    state.alerts = [
        {
            "labels": {"alertname": "SlakitRedisDown", "instance": "redis-1:cache"},
            "state": "firing",
        },
        {"labels": {"alertname": "SlakitAppDown", "instance": "app-1"}, "state": "pending"},
    ]
    clock = FakeClock()
    _, _, alerts = run_gates(url, clock)
    assert alerts.status is Status.FAIL
    assert alerts.figure == "1 firing, 1 pending (SlakitAppDown (instance=app-1))"
    assert alerts.detail == "firing: SlakitRedisDown (instance=redis-1:cache)"
    assert clock.now > 0  # a firing alert is waited on: a restart may have caused it


@pytest.mark.parametrize(("severity", "blocks"), [("ticket", False), ("page", True)])
def test_only_a_firing_ticket_is_reported_without_failing(api, run_gates, severity, blocks):
    state, url = api
    labels = {"alertname": "SlakitBudgetBurnSlow", "severity": severity, "story": "4.1"}
    state.alerts = [{"labels": labels, "state": "firing"}]
    clock = FakeClock()
    _, _, alerts = run_gates(url, clock)
    assert alerts.passed is not blocks
    line = f"SlakitBudgetBurnSlow (severity={severity}, story=4.1)"
    if blocks:
        assert alerts.figure == "1 firing, 0 pending" and alerts.detail == f"firing: {line}"
        assert clock.now > 0  # waited on
    else:
        assert alerts.figure == f"1 firing, 0 pending; ticket only: {line}"
        assert clock.now == 0  # settled at the first reading


def test_an_unreachable_prometheus_is_a_failed_gate_not_a_pass(run_gates):
    clock = FakeClock()
    (only,) = run_gates("http://127.0.0.1:9", clock)
    assert only.status is Status.FAIL and only.figure == "not read"
    assert "mon-1: Prometheus at http://127.0.0.1:9 unreadable" in only.detail


def test_no_monitoring_host_cannot_be_approved():
    inventory = {k: v for k, v in INVENTORY.items() if k != "monitoring"}
    (only,) = monitoring.gates(stack.Stack(inventory), ROLE_VARS, load_spec())
    assert only.status is Status.SKIPPED and "monitoring group" in only.detail
