"""The lab's life cycle on real containers, and the inputs it refuses before changing anything."""

from __future__ import annotations

import docker
import pytest

from slakit.lab import LABEL
from slakit.lab.keys import KNOWN_HOSTS, PRIVATE_KEY
from slakit.lab.nodes import HOST_LABEL
from tests.e2e.support import ROOT, invoke, run


def lab_objects(client: docker.DockerClient) -> tuple[dict[str, str], list[str]]:
    containers = {
        c.labels[HOST_LABEL]: c.id
        for c in client.containers.list(all=True, filters={"label": HOST_LABEL})
    }
    networks = [n.name for n in client.networks.list(filters={"label": LABEL})]
    return containers, networks


def test_down_removes_every_lab_object_and_the_key(docker_client):
    result = invoke("lab.down", check=True)
    assert "lab down: removed" in result.stdout
    assert lab_objects(docker_client) == ({}, [])
    assert not (ROOT / PRIVATE_KEY).exists()


def test_up_creates_every_host_then_adopts_them(docker_client, lab_spec):
    first = invoke("lab.up", check=True)
    assert f"created {len(lab_spec.hosts)}" in first.stdout
    before, networks = lab_objects(docker_client)
    assert set(before) == {h.name for h in lab_spec.hosts}
    assert networks == [lab_spec.network]

    second = invoke("lab.up", check=True)
    assert "created 0" in second.stdout
    assert lab_objects(docker_client)[0] == before  # same container ids: nothing recreated


def test_every_host_answers_ansible_and_runs_systemd(lab_spec):
    ping = run("ansible", "all", "-m", "ansible.builtin.ping", "-o", check=True)
    for host in lab_spec.hosts:
        assert f"{host.name} | SUCCESS" in ping.stdout
    state = run(
        "ansible",
        "all",
        "-m",
        "ansible.builtin.command",
        "-a",
        "systemctl is-system-running",
        "-o",
        check=True,
    )
    assert state.stdout.count("(stdout) running") == len(lab_spec.hosts)
    # host keys are checked, not skipped: every host is in the lab's known_hosts
    known = (ROOT / KNOWN_HOSTS).read_text()
    assert all(h.address in known for h in lab_spec.hosts)


def test_status_table_shows_every_host(lab_spec):
    out = invoke("lab.status", check=True).stdout
    for host in lab_spec.hosts:
        assert host.name in out and host.address in out
    assert out.count("running") >= 2 * len(lab_spec.hosts)


SCRATCH = """
all:
  vars:
    slakit_lab: {{network: slakit-scratch, subnet: {subnet}}}
  children:
    app:
      hosts:
        {name}: {{ansible_host: {address}}}
"""


@pytest.fixture
def scratch_inventory(tmp_path):
    def make(name="zz-1", subnet="172.28.77.0/24", address="172.28.77.20"):
        path = tmp_path / "hosts.yml"
        path.write_text(SCRATCH.format(name=name, subnet=subnet, address=address))
        return str(path)

    return make


def test_subnet_collision_is_refused_before_any_change(docker_client, scratch_inventory):
    foreign = docker_client.networks.create(
        "not-slakit-net",
        ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet="172.28.77.0/25")]),
    )
    try:
        before = lab_objects(docker_client)
        result = invoke("lab.up", "--inventory", scratch_inventory())
        assert result.returncode == 2
        assert "collides with docker network not-slakit-net (172.28.77.0/25)" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert lab_objects(docker_client) == before
    finally:
        foreign.remove()


def test_foreign_container_holding_a_lab_name_is_refused(docker_client, scratch_inventory):
    image = docker_client.images.list(filters={"label": LABEL})[0]
    foreign = docker_client.containers.create(image.id, name="slakit-lab-zz-1", command="true")
    try:
        before = lab_objects(docker_client)
        result = invoke("lab.up", "--inventory", scratch_inventory())
        assert result.returncode == 2
        assert "container slakit-lab-zz-1 exists and is not a slakit lab container" in result.stderr
        assert lab_objects(docker_client) == before
    finally:
        foreign.remove(force=True)


def test_missing_engine_is_one_line_with_the_fix(monkeypatch):
    result = run(
        "env", "DOCKER_HOST=unix:///nonexistent.sock", str(ROOT / ".venv/bin/invoke"), "lab.status"
    )
    assert result.returncode == 2
    assert "Docker engine not reachable" in result.stderr
    assert "invoke lab.engine" in result.stderr
    assert "Traceback" not in result.stderr
