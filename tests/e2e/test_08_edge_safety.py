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

import asyncio
import base64
import ssl
import threading
import time
from pathlib import Path

import aiohttp
import pytest

from slakit import ansible, envs, stack

LB = "lb-1"
CONFIG = "/etc/haproxy/haproxy.cfg"  # loadbalancer_config_file (the lab keeps the default)
MARKS = "/run/slakit/lb-drained"  # loadbalancer_drain_marks_dir = app_lb_drain_marks_dir
RATE = 50  # requests per second
MAX_SECONDS = 120  # the load stops by then whatever happens
TIMEOUT = 5.0  # per request
WAIT_UP = 5  # loadbalancer_wait_up_timeout of the broken run
BROKEN_PATH = "/api/v1/nope"  # a loadbalancer_health_path the app answers 404


class Load:
    """GETs of the health path through the LB at RATE per second (open loop) until stopped;
    keeps (send time, ok) of every request."""

    def __init__(self, url: str, ca_file: str) -> None:
        self.url, self.ssl = f"{url}/api/v1/health", ssl.create_default_context(cafile=ca_file)
        self.samples: list[tuple[float, bool]] = []
        self.errors: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(MAX_SECONDS + 30)

    async def _one(self, session: aiohttp.ClientSession, sent: float) -> None:
        try:
            async with session.get(self.url, ssl=self.ssl) as resp:
                await resp.read()
                key = "" if resp.status == 200 else f"HTTP {resp.status}"
        except Exception as err:  # every failure counts, whatever its kind
            key = type(err).__name__
        self.samples.append((sent, not key))
        if key:
            self.errors[key] = self.errors.get(key, 0) + 1

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=TIMEOUT)
        async with aiohttp.ClientSession(
            timeout=timeout, connector=aiohttp.TCPConnector(limit=64)
        ) as session:
            start, tasks, i = time.monotonic(), set(), 0
            while not self._stop.is_set() and time.monotonic() - start < MAX_SECONDS:
                delay = start + i / RATE - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.create_task(self._one(session, time.monotonic()))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                i += 1
            await asyncio.gather(*tasks)

    def outage_seconds(self) -> float:
        """From the first failed request to the first good one after the last failure."""
        samples = sorted(self.samples)
        failed = [t for t, ok in samples if not ok]
        if not failed:
            return 0.0
        after = [t for t, ok in samples if ok and t > failed[-1]]
        return (after[0] if after else samples[-1][0]) - failed[0]


@pytest.fixture(scope="module")
def edge(deployed) -> tuple[str, str, dict]:
    """(the LB's HTTPS URL, the CA file that verifies it, the LB's published fact)."""
    lab = stack.load(envs.resolve("lab"))
    ca_file = lab.lb_ca_file()
    assert ca_file and Path(ca_file).is_file(), f"the LB publishes no lab CA: {ca_file!r}"
    return lab.lb_urls()[LB], ca_file, lab.published(LB, "loadbalancer")


def server_states(on_host, fact: dict) -> dict[str, str]:
    """{server: status} of the app backend, from HAProxy's admin socket."""
    lines = on_host(LB, f"echo 'show stat' | socat stdio {fact['admin_socket']}").splitlines()
    header = lines[0].lstrip("# ").split(",")
    rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:]]
    return {
        r["svname"]: r["status"]
        for r in rows
        if r.get("pxname") == fact["backend"] and r["svname"] not in ("FRONTEND", "BACKEND")
    }


def converge(*extra: str) -> ansible.PlayResult:
    return ansible.playbook(envs.resolve("lab"), "loadbalancer.yml", extra_args=extra, quiet=True)


def test_a_health_path_no_server_answers_is_refused_before_haproxy_gets_it(edge, on_host):
    url, ca_file, fact = edge
    before = base64.b64decode(on_host(LB, f"base64 -w0 {CONFIG}"))
    servers = sorted(server_states(on_host, fact))
    with Load(url, ca_file) as load:
        time.sleep(2)
        refused = converge("-e", f"loadbalancer_health_path={BROKEN_PATH}")
        time.sleep(2)
    failed = sum(1 for _, ok in load.samples if not ok)
    message = refused.failures[-1]["msg"] if refused.failures else ""
    print(f"\nrefused: {len(load.samples)} requests at {RATE}/s, {failed} failed\n{message}")
    assert refused.returncode != 0 and {f["host"] for f in refused.failures} == {LB}
    answers = ", ".join(f"{server} (404)" for server in servers)
    assert message == (
        f"loadbalancer: on {LB} the health check GET {BROKEN_PATH} is answered other than 200 by "
        f"{answers}: HAProxy would take them out of service; nothing was changed "
        "(loadbalancer_health_path)"
    )
    assert base64.b64decode(on_host(LB, f"base64 -w0 {CONFIG}")) == before
    assert load.samples and failed == 0, load.errors


def test_a_configuration_that_takes_the_servers_down_is_put_back(edge, on_host):
    url, ca_file, fact = edge
    before = base64.b64decode(on_host(LB, f"base64 -w0 {CONFIG}"))
    assert set(server_states(on_host, fact).values()) == {"UP"}
    with Load(url, ca_file) as load:
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
    failed = sum(1 for _, ok in load.samples if not ok)
    # the rescued failure inside the block is recorded too: the run's own line is the last one
    message = broken.failures[-1]["msg"] if broken.failures else ""
    print(
        f"\nbroken health path: {len(load.samples)} requests at {RATE}/s, {failed} failed "
        f"{load.errors or ''}; outage seen by clients {load.outage_seconds():.1f}s; playbook "
        f"{played:.0f}s; servers after: {states}\n{message}"
    )
    assert broken.returncode != 0 and {f["host"] for f in broken.failures} == {LB}
    assert broken.failures[-1]["task"].endswith("Fail with the cause"), broken.failures
    assert message.startswith(f"loadbalancer: on {LB} backend {fact['backend']} not all UP")
    assert "the previous configuration is live again" in message and "\n" not in message
    assert after == before  # byte for byte
    assert set(states.values()) == {"UP"} and len(states) >= 2, states
    assert kept == ""  # no copy of the previous file left behind
    # the site answers after the restore: the last second of the load, then a fresh request
    last = [ok for t, ok in load.samples if t > max(t for t, _ in load.samples) - 1]
    assert last and all(last), f"{last.count(False)} of the last second's requests failed"
    assert load.samples and failed < len(load.samples)


def test_a_server_left_in_drain_by_an_interrupted_run_is_ready_again(edge, on_host):
    _, _, fact = edge
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
