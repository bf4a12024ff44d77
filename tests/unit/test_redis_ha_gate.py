"""The readiness line for Redis HA (slakit/checks.py redis_ha_gates) reads the app's
comprehensive health through the first load balancer: a stand-in HTTP server on a real socket
answers with what the service reports in each case."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import Message
from typing import Any

import pytest
from stand_in import serving

from slakit import checks, stack

REDIS_HOSTS = {"redis-1": {}, "redis-2": {}}


class FakeClock:
    """Seconds that pass only when the gate sleeps; `then` runs once `at` seconds have passed."""

    def __init__(self, then=None, at: float = 0.0) -> None:
        self.t, self.then, self.at = 0.0, then, at

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds
        if self.then and self.t >= self.at:
            self.then()
            self.then = None


def health(status: str = "ok", via: str = "sentinel", online: int = 1) -> dict[str, Any]:
    """The shape of GET /api/v1/health/comprehensive (service/src/slakit_service/routes.py)."""
    replication = {
        "status": status,
        "found_via": via,
        "primary": "172.28.50.31:6380",
        "connected_replicas": online,
        "min_replicas": 1,
        "max_lag_seconds": 0,
    }
    return {"tiers": {"l2": {"status": "up", "replication": replication}}}


@pytest.fixture
def lb() -> Iterator[tuple[dict[str, Any], str]]:
    answer: dict[str, Any] = {}

    def reply(_method: str, path: str, _headers: Message, _body: bytes) -> tuple[int, Any]:
        return (200 if path == checks.COMPREHENSIVE else 404), answer

    with serving(reply) as url:
        yield answer, url


def deployed(url: str, redis_hosts: dict[str, Any]) -> stack.Stack:
    inventory = {"lb": {"hosts": ["lb-1"]}, "redis": {"hosts": list(redis_hosts)}}
    return stack.Stack(inventory, {"lb-1": {"loadbalancer": {"url": url}}})


def test_one_redis_host_has_no_ha_line(lb):
    _, url = lb
    assert checks.redis_ha_gates(deployed(url, {"redis-1": {}})) == []


def test_a_primary_found_via_sentinel_with_its_replica_passes_with_its_figures(lb):
    answer, url = lb
    answer.update(health())
    (gate,) = checks.redis_ha_gates(deployed(url, REDIS_HOSTS))
    assert gate.passed
    assert gate.figure == (
        "primary 172.28.50.31:6380 found via sentinel, 1 replicas online (min 1), lag 0 s"
    )


@pytest.mark.parametrize(
    "reply",
    [
        health(status="insufficient_replicas", online=0),
        health(via="url"),
        health(online=0),
    ],
    ids=["replica-missing", "not-via-sentinel", "no-replica-online"],
)
def test_a_persist_tier_without_ha_fails_after_the_settle_time(lb, reply):
    answer, url = lb
    answer.update(reply)
    clock = FakeClock()
    (gate,) = checks.redis_ha_gates(
        deployed(url, REDIS_HOSTS), settle_s=30, clock=clock.now, sleep=clock.sleep
    )
    assert not gate.passed
    assert clock.t >= 30  # it read again while a replica could still be resynchronising


def test_a_replica_that_resynchronises_within_the_settle_time_passes(lb):
    answer, url = lb
    answer.update(health(status="insufficient_replicas", online=0))
    clock = FakeClock(then=lambda: answer.update(health()), at=5)
    (gate,) = checks.redis_ha_gates(
        deployed(url, REDIS_HOSTS), settle_s=30, clock=clock.now, sleep=clock.sleep
    )
    assert gate.passed and gate.figure.endswith("after 5 s"), gate.figure


def test_an_app_without_replication_in_its_health_fails_at_once(lb):
    answer, url = lb
    answer.update({"tiers": {"l2": {"status": "up"}}})  # the app does not use Sentinel at all
    (gate,) = checks.redis_ha_gates(deployed(url, REDIS_HOSTS))
    assert not gate.passed and gate.figure == "not read"


def test_an_unreachable_load_balancer_fails_saying_so():
    (gate,) = checks.redis_ha_gates(deployed("http://127.0.0.1:9", REDIS_HOSTS))
    assert not gate.passed and gate.figure == "not read"
