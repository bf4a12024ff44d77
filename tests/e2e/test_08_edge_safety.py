"""The edge's safety nets, on the deployed lab, under open-loop load through the load balancer
(HTTPS, verified against the lab CA):

- a health path that no server answers is refused before HAProxy is given it: the loadbalancer
  playbook fails with one line naming each server's answer, the configuration file is byte for
  byte the one before, and no request fails;
- an HAProxy configuration that passes `haproxy -c` but takes the servers down (the same health
  path with that check turned off) is put back: the playbook fails with one line, the file is
  byte for byte the one before, every server is UP and the site answers. The failed requests
  and the seconds until restored are printed, not gated: between the broken reload and the
  restore HAProxy answers 503 (its first failed check takes a server DOWN);
- a server an interrupted rollout left in DRAIN (the state and the drain mark the app role
  leaves) is READY again after the next loadbalancer converge, and a second converge changes
  nothing.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest

from slakit import ansible, envs, stack
from tests.e2e.load import HEALTH, OpenLoopLoad
from tests.e2e.support import backend_states

LB = "lb-1"
CONFIG = "/etc/haproxy/haproxy.cfg"  # loadbalancer_config_file (the lab keeps the default)
MARKS = "/run/slakit/lb-drained"  # loadbalancer_drain_marks_dir = app_lb_drain_marks_dir
RATE = 50  # requests per second


def load() -> OpenLoopLoad:
    return OpenLoopLoad(RATE, paths=(HEALTH,), max_seconds=120)


WAIT_UP = 5  # loadbalancer_wait_up_timeout of the broken run
BROKEN_PATH = "/api/v1/nope"  # a loadbalancer_health_path the app answers 404


@pytest.fixture(scope="module")
def fact(deployed) -> dict:
    """The LB's published fact; the load verifies its HTTPS with the lab CA it publishes."""
    lab = stack.load(envs.resolve("lab"))
    ca_file = lab.lb_ca_file()
    assert ca_file and Path(ca_file).is_file(), f"the LB publishes no lab CA: {ca_file!r}"
    return lab.published(LB, "loadbalancer")


def server_states(on_host, fact: dict) -> dict[str, str]:
    return backend_states(on_host, LB, fact)


def converge(*extra: str) -> ansible.PlayResult:
    return ansible.playbook(envs.resolve("lab"), "loadbalancer.yml", extra_args=extra, quiet=True)


def test_a_health_path_no_server_answers_is_refused_before_haproxy_gets_it(fact, on_host):
    before = base64.b64decode(on_host(LB, f"base64 -w0 {CONFIG}"))
    servers = sorted(server_states(on_host, fact))
    with load() as running:
        time.sleep(2)
        refused = converge("-e", f"loadbalancer_health_path={BROKEN_PATH}")
        time.sleep(2)
    r = running.result
    message = refused.failures[-1]["msg"] if refused.failures else ""
    print(f"\nrefused: {r.sent} requests at {RATE}/s, {r.failed} failed\n{message}")
    assert refused.returncode != 0 and {f["host"] for f in refused.failures} == {LB}
    answers = ", ".join(f"{server} (404)" for server in servers)
    assert message == (
        f"loadbalancer: on {LB} the health check GET {BROKEN_PATH} is answered other than 200 by "
        f"{answers}: HAProxy would take them out of service; nothing was changed "
        "(loadbalancer_health_path)"
    )
    assert base64.b64decode(on_host(LB, f"base64 -w0 {CONFIG}")) == before
    assert r.sent > 0 and r.ok + r.failed == r.sent
    assert r.failed == 0, r.errors


def test_a_configuration_that_takes_the_servers_down_is_put_back(fact, on_host):
    before = base64.b64decode(on_host(LB, f"base64 -w0 {CONFIG}"))
    assert set(server_states(on_host, fact).values()) == {"UP"}
    with load() as running:
        time.sleep(2)  # load running before the reload
        began = time.monotonic()
        broken = converge(
            "-e", f"loadbalancer_health_path={BROKEN_PATH}",
            "-e", "loadbalancer_health_precheck=false",
            "-e", f"loadbalancer_wait_up_timeout={WAIT_UP}",
        )  # fmt: skip
        played = time.monotonic() - began
        time.sleep(3)  # the site after the restore, still under load
    after = base64.b64decode(on_host(LB, f"base64 -w0 {CONFIG}"))
    states = server_states(on_host, fact)
    kept = on_host(LB, f"ls {CONFIG}.*~ 2>/dev/null || true")
    r = running.result
    # the failure the rescue handled is not recorded (plugins/callback): one, the rescue's own
    message = broken.failures[-1]["msg"] if broken.failures else ""
    print(
        f"\nbroken health path: {r.sent} requests at {RATE}/s, {r.failed} failed "
        f"{r.errors or ''}; outage seen by clients {r.outage_seconds():.1f}s; playbook "
        f"{played:.0f}s; servers after: {states}\n{message}"
    )
    assert broken.returncode != 0 and {f["host"] for f in broken.failures} == {LB}
    [failure] = broken.failures
    assert failure["task"].endswith("Fail with the cause"), failure
    assert message.startswith(f"loadbalancer: on {LB} backend {fact['backend']} not all UP")
    assert "the previous configuration is live again" in message and "\n" not in message
    assert after == before  # byte for byte
    assert set(states.values()) == {"UP"} and len(states) >= 2, states
    assert kept == ""  # no copy of the previous file left behind
    # the site answers after the restore: the last second of the load, then a fresh request
    last = [ok for t, ok in r.samples if t > max(t for t, _ in r.samples) - 1]
    assert last and all(last), f"{last.count(False)} of the last second's requests failed"
    assert r.sent > 0 and r.ok + r.failed == r.sent and r.failed < r.sent


def test_a_server_left_in_drain_by_an_interrupted_run_is_ready_again(fact, on_host):
    server = sorted(server_states(on_host, fact))[0]
    # what an interrupted rollout leaves (roles/app/files/lb_server_state.py): the server in
    # DRAIN on HAProxy and its drain mark
    on_host(LB, f"echo 'set server {fact['backend']}/{server} state drain' "
                f"| socat stdio {fact['admin_socket']}")  # fmt: skip
    on_host(
        LB, f"mkdir -p {MARKS}/{fact['backend']} && date +%s > {MARKS}/{fact['backend']}/{server}"
    )
    assert server_states(on_host, fact)[server].startswith("DRAIN")
    repaired = converge()
    states = server_states(on_host, fact)
    again = converge()
    print(
        f"\nleft in DRAIN: {server}; after the converge {states}, changed tasks "
        f"{repaired.changed_tasks}; second converge: {again.changed} changed"
    )
    assert repaired.returncode == 0, repaired.first_failure()
    assert states[server] == "UP" and set(states.values()) == {"UP"}, states
    assert any("DRAIN" in task for tasks in repaired.changed_tasks.values() for task in tasks)
    assert on_host(LB, f"ls -A {MARKS}/{fact['backend']}") == ""
    assert again.returncode == 0 and again.changed == 0, again.changed_tasks
