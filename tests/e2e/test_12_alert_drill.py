"""The alert drill, on the deployed lab under open-loop load through the load balancer: stop
`redis@cache` on the first Redis host, and the alert the spec's rules derive for it
(SlakitRedisDown) reaches Alertmanager and its webhook receiver; start it again, and the alert
resolves in both. The lab's rules run at the time scale of `monitoring_rules_time_scale`, so
this takes about a minute, not the production windows. Printed: seconds from the stop to the
alert in Alertmanager and to the webhook's notification, the same for the resolution, and the
requests sent, answered and failed meanwhile (not gated: a stopped cache costs hit rate).
"""

from __future__ import annotations

import json
import time

import pytest

from slakit import envs, monitoring, stack
from tests.e2e.load import OpenLoopLoad

ALERT = "SlakitRedisDown"
INSTANCE = "cache"
RATE = 50  # requests per second through the load balancer
FIRE_WITHIN_S = 150  # generous: ~25 s on a quiet machine (scrape 5 s, for 5 s, group_wait 5 s)
RESOLVE_WITHIN_S = 180


@pytest.fixture(scope="module")
def lab(deployed) -> stack.Stack:
    return stack.load(envs.resolve("lab"))


def held(alertmanager_url: str, instance: str) -> list[monitoring.Alert]:
    return [
        a
        for a in monitoring.alertmanager_alerts(alertmanager_url)
        if a.name == ALERT and a.labels.get("instance") == instance
    ]


def notifications(on_host, host: str, log: str, instance: str) -> list[str]:
    """The statuses (firing/resolved) of the webhook's notifications about the drill's alert."""
    text = on_host(host, f"cat {log} 2>/dev/null || true")
    statuses = []
    for line in text.splitlines():
        payload = json.loads(line)
        for alert in payload.get("alerts", []):
            labels = alert.get("labels", {})
            if labels.get("alertname") == ALERT and labels.get("instance") == instance:
                statuses.append(alert["status"])
    return statuses


def wait_for(what: str, condition, within: float) -> float:
    """Seconds until `condition()` holds, polling every second; fails after `within`."""
    start = time.monotonic()
    while not condition():
        waited = time.monotonic() - start
        assert waited < within, f"{what}: not within {within:.0f} s"
        time.sleep(1)
    return time.monotonic() - start


def test_a_stopped_redis_instance_fires_its_alert_and_resolves_after_restart(lab, on_host):
    (mon,) = lab.hosts(monitoring.GROUP)
    fact = lab.published(mon, monitoring.GROUP)
    redis_host = lab.hosts("redis")[0]
    instance = f"{redis_host}:{INSTANCE}"
    log = str(fact["webhook_log"])
    am = str(fact["alertmanager_url"])
    assert not held(am, instance), f"{ALERT} for {instance} is active before the drill"
    before = len(notifications(on_host, mon, log, instance))

    with OpenLoopLoad(RATE, max_seconds=FIRE_WITHIN_S + RESOLVE_WITHIN_S) as load:
        time.sleep(3)  # load under way before the stop
        stopped = time.monotonic()
        on_host(redis_host, f"systemctl stop redis@{INSTANCE}")
        try:
            fired = wait_for(f"{ALERT} in Alertmanager", lambda: held(am, instance), FIRE_WITHIN_S)
            notified = fired + wait_for(
                "the webhook's firing notification",
                lambda: "firing" in notifications(on_host, mon, log, instance)[before:],
                FIRE_WITHIN_S - fired,
            )
        finally:
            on_host(redis_host, f"systemctl start redis@{INSTANCE}")
            started = time.monotonic()
        resolved = wait_for(
            f"{ALERT} gone from Alertmanager", lambda: not held(am, instance), RESOLVE_WITHIN_S
        )
        wait_for(
            "the webhook's resolved notification",
            lambda: "resolved" in notifications(on_host, mon, log, instance)[before:],
            RESOLVE_WITHIN_S,
        )
        resolved_note = time.monotonic() - started
    result = load.result
    print(
        f"alert drill: stop redis@{INSTANCE} on {redis_host} -> {ALERT} in Alertmanager after "
        f"{fired:.0f} s, webhook notified after {notified:.0f} s; start -> resolved in "
        f"Alertmanager after {resolved:.0f} s, webhook resolved after {resolved_note:.0f} s; "
        f"load {result.sent} sent at {RATE}/s, {result.ok} ok, {result.failed} failed "
        f"{dict(result.errors)}; stopped for {started - stopped:.0f} s"
    )
    assert result.sent > 0 and result.ok > 0, "the load never got an answer"
