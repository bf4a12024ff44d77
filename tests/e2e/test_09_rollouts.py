"""Safe rollouts on the deployed lab: a converge failure after a switch rolls back, and a
second deploy is refused by the deploy lock.

- (a) A NEW release (the service copied with another version) is deployed with a before-switch
  hook that fails on app-2 only (an extra var of that run): app-1 switches first, app-2 fails,
  and the deploy rolls app-1 back. Both hosts run the previous release afterwards (read on the
  hosts: `current`, the version the app answers over loopback, the app fact), the report says
  ROLLED BACK and why, every server is UP, and no request through the load balancer failed
  (open-loop load during the whole episode; printed with the seconds the rollback took).
- (b) With the lock taken the way a first deploy takes it, `invoke deploy` exits 2 with one line
  naming the holder, before converge.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from slakit import ansible, deploy, envs, lock, stack
from tests.e2e.load import OpenLoopLoad
from tests.e2e.support import backend_states, invoke
from tests.e2e.test_release_switch import service_copy

APP_HOSTS = ("app-1", "app-2")
LB = "lb-1"
CURRENT = "/opt/slakit-service/current"  # app_root/current (the lab keeps the default)
FAIL_ON_APP_2 = """---
- name: Fail before the switch on app-2 (drill)
  ansible.builtin.fail:
    msg: "drill: injected failure before the switch on {{ inventory_hostname }}"
  when: inventory_hostname == 'app-2'
"""


def releases(on_host) -> dict[str, dict[str, str]]:
    """{app host: {current, version, fact}}: what each host runs, read on the host itself."""
    facts = stack.read_facts(envs.resolve("lab"))
    out = {}
    for host in APP_HOSTS:
        port = facts[host]["app"]["port"]
        version = on_host(
            host,
            'python3 -c "import json, urllib.request; print(json.load(urllib.request.urlopen('
            f"'http://127.0.0.1:{port}/api/v1/health', timeout=5))['version'])\"",
        )
        current = Path(on_host(host, f"readlink -f {CURRENT}")).name
        out[host] = {"current": current, "version": version, "fact": facts[host]["app"]["release"]}
    return out


def server_states(on_host) -> dict[str, str]:
    fact = stack.read_facts(envs.resolve("lab"))[LB]["loadbalancer"]
    return backend_states(on_host, LB, fact)


@pytest.fixture(scope="module")
def before(deployed, on_host) -> dict[str, dict[str, str]]:
    """What the lab runs before the drills; put back afterwards whatever happens."""
    state = releases(on_host)
    assert len({r["current"] for r in state.values()}) == 1, state
    yield state
    if releases(on_host) != state:  # a drill went wrong: leave the lab as it was
        back = {h: r["current"] for h, r in state.items()}
        ansible.playbook(
            envs.resolve("lab"),
            "rollback.yml",
            extra_args=("-e", json.dumps({"slakit_rollback_to": back})),
            quiet=True,
        )


def test_a_converge_failure_on_app_2_rolls_app_1_back(before, on_host, tmp_path):
    base = next(iter(before.values()))["version"].split("+")[0]
    version = f"{base}+drill{int(time.time())}"
    source = service_copy(tmp_path, version)
    hook = tmp_path / "fail_on_app_2.yml"
    hook.write_text(FAIL_ON_APP_2)
    opts = deploy.DeployOptions(
        env="lab",
        skip_sla=True,
        extra_vars={"app_sources": [str(source)], "app_hooks_before_switch": [str(hook)]},
    )
    t0 = time.monotonic()
    with OpenLoopLoad() as load:
        approved, report = deploy.run(opts)
    seconds = time.monotonic() - t0
    assert report is not None
    data = json.loads(report.with_suffix(".json").read_text())
    gates = {g["name"]: g for g in data["gates"]}
    line = gates["Rollback"]
    r = load.result
    print(
        f"\nconverge failure on app-2: deploy {seconds:.0f} s; {line['figure']}; "
        f"load {r.sent} sent, {r.ok} ok, {r.failed} failed {r.errors or ''}; "
        f"versions seen {r.versions}"
    )
    assert approved is False and data["approved"] is False
    assert gates["Converge: playbooks/site.yml"]["status"] == "failed"
    assert "drill: injected failure" in gates["Converge: playbooks/site.yml"]["detail"]
    # app-1 really switched to the new release first: it is the one rolled back
    assert line["status"] == "passed" and line["figure"].startswith("ROLLED BACK app-1 in ")
    assert "app-2" in line["detail"] and "drill: injected failure" in line["detail"]
    assert "ROLLED BACK" in report.read_text()
    after = releases(on_host)
    assert after == before, after  # both hosts: the previous release, as read on the hosts
    assert server_states(on_host) == dict.fromkeys(APP_HOSTS, "UP")
    assert r.sent > 0 and r.ok + r.failed == r.sent
    assert set(r.versions) <= {next(iter(before.values()))["version"], version}
    assert r.failed == 0, f"{r.failed} requests failed: {r.errors}"


def test_a_second_deploy_is_refused_by_the_lock(before, on_host):
    env = envs.resolve("lab")
    first = lock.acquire(env, "invoke deploy --env lab")  # as a first deploy takes it
    try:
        t0 = time.monotonic()
        result = invoke("deploy", timeout=600)
        seconds = time.monotonic() - t0
        [line] = result.stderr.strip().splitlines()[-1:]
        print(f"\nsecond deploy: exit {result.returncode} after {seconds:.0f} s: {line}")
        assert result.returncode == 2
        assert line.startswith(f"slakit: deploy lock of lab on {first.host} is held by ")
        assert f"{first.holder['owner']} since {first.holder['started']}" in line
        assert "running `invoke deploy --env lab`" in line
        assert "Converge" not in result.stdout  # refused before converge
        held = json.loads(on_host(first.host, f"cat {lock.LOCK_PATH}"))
        assert held["token"] == first.token  # the refused deploy left the lock alone
    finally:
        assert lock.release(env, first)
    assert releases(on_host) == before
    assert server_states(on_host) == dict.fromkeys(APP_HOSTS, "UP")
