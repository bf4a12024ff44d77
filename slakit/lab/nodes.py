"""Create, adopt, list and remove the lab's containers and network."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import shutil
import socket
import time
from dataclasses import dataclass, field

import docker
from docker.errors import NotFound
from docker.models.containers import Container

from slakit.errors import SlakitError
from slakit.lab import LABEL
from slakit.lab.image import node_image
from slakit.lab.keys import STATE_DIR, ensure_keypair, forget_connections, write_known_hosts
from slakit.lab.spec import LabHost, LabSpec
from slakit.lab.tls import ensure_tls
from slakit.secrets import ensure_secrets

HOST_LABEL = f"{LABEL}.host"
CONFIG_LABEL = f"{LABEL}.config"
DEPLOY_USER = "slakit"
BOOT_TIMEOUT_S = 120

# The fewest relaxations that boot systemd and start every hardened unit the roles install
# (measured one at a time, README "The lab"). CAP_SYS_ADMIN stays: without it the units' mount
# namespaces (BindReadOnlyPaths=) fail and IPAddressAllow= is silently not enforced. Docker's
# default seccomp profile and a private cgroup namespace suffice; NET_ADMIN is not needed.
HOST_CONFIG: dict[str, object] = {
    "cap_add": ["SYS_ADMIN"],
    "cgroupns": "private",
    "tmpfs": {"/run": "", "/run/lock": ""},
}
# Docker's masked paths, and its read-only paths except /proc/sys/net: host_tuning writes the
# per-container net.* keys; the machine-wide /proc/sys trees stay read-only.
SYSTEM_PATHS: dict[str, list[str]] = {
    "MaskedPaths": [
        "/proc/asound",
        "/proc/acpi",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/proc/scsi",
        "/sys/firmware",
        "/sys/devices/virtual/powercap",
    ],
    "ReadonlyPaths": [
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sysrq-trigger",
        "/proc/sys/abi",
        "/proc/sys/crypto",
        "/proc/sys/debug",
        "/proc/sys/dev",
        "/proc/sys/fs",
        "/proc/sys/kernel",
        "/proc/sys/user",
        "/proc/sys/vm",
    ],
}
# PID 1 before systemd: the private cgroup namespace shows only this container's own cgroups,
# mounted read-only; systemd needs them writable (in this mount namespace only), then execs.
INIT = [
    "/bin/sh",
    "-c",
    'if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then'
    " mount -o remount,bind,rw /sys/fs/cgroup;"
    " else for m in /sys/fs/cgroup/*/; do"
    ' if mountpoint -q "$m"; then mount -o remount,bind,rw "$m"; fi; done; fi;'
    " exec /lib/systemd/systemd",
    "slakit-lab-init",
]


@dataclass
class UpReport:
    created: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    system_state: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HostStatus:
    name: str
    address: str
    container: str
    state: str
    system: str


def _digest(image_id: str, host: LabHost, spec: LabSpec) -> str:
    wanted = [image_id, host.name, host.address, spec.network, str(spec.subnet)]
    wanted += [HOST_CONFIG, SYSTEM_PATHS, INIT]
    return hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()[:16]


def _lab_containers(engine: docker.DockerClient) -> list[Container]:
    return engine.containers.list(all=True, filters={"label": HOST_LABEL})


def check_conflicts(engine: docker.DockerClient, spec: LabSpec) -> None:
    """Refuse, before changing anything, when the lab would take what is not its own."""
    for host in spec.hosts:
        try:
            other = engine.containers.get(host.container_name)
        except NotFound:
            continue
        if HOST_LABEL not in other.labels:
            raise SlakitError(
                f"container {host.container_name} exists and is not a slakit lab container: "
                "remove or rename it, or rename the host in the lab inventory"
            )
    for net in engine.networks.list():
        if LABEL in (net.attrs.get("Labels") or {}):
            continue
        if net.name == spec.network:
            raise SlakitError(f"docker network {spec.network} exists and is not the lab's")
        for cfg in (net.attrs.get("IPAM") or {}).get("Config") or []:
            subnet = cfg.get("Subnet", "")
            if ":" not in subnet and subnet and ipaddress.IPv4Network(subnet).overlaps(spec.subnet):
                raise SlakitError(
                    f"{spec.source}: lab subnet {spec.subnet} collides with docker network "
                    f"{net.name} ({subnet}); choose another slakit_lab.subnet"
                )


def _ensure_network(engine: docker.DockerClient, spec: LabSpec, report: UpReport) -> None:
    for net in engine.networks.list(filters={"label": LABEL}):
        net.reload()
        subnets = [c.get("Subnet") for c in (net.attrs.get("IPAM") or {}).get("Config") or []]
        if net.name == spec.network and subnets == [str(spec.subnet)]:
            return
        for cid in net.attrs.get("Containers") or {}:
            engine.containers.get(cid).remove(force=True)
        net.remove()
        report.removed.append(f"network {net.name}")
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=str(spec.subnet))])
    engine.networks.create(spec.network, driver="bridge", ipam=ipam, labels={LABEL: "network"})


def _create(engine: docker.DockerClient, spec: LabSpec, host: LabHost, digest: str) -> Container:
    api = engine.api
    host_config = api.create_host_config(network_mode=spec.network, **HOST_CONFIG)
    host_config.update(SYSTEM_PATHS)
    created = api.create_container(
        image=node_image(engine),
        entrypoint=INIT,
        name=host.container_name,
        hostname=host.name,
        detach=True,
        labels={LABEL: spec.network, HOST_LABEL: host.name, CONFIG_LABEL: digest},
        host_config=host_config,
        networking_config=api.create_networking_config(
            {spec.network: api.create_endpoint_config(ipv4_address=host.address)}
        ),
    )
    return engine.containers.get(created["Id"])


def _exec(container: Container, *cmd: str) -> str:
    result = container.exec_run(list(cmd))
    return result.output.decode(errors="replace").strip()


def _wait_for_ssh(host: LabHost, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host.address, 22), timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise SlakitError(f"lab host {host.name} ({host.address}): SSH did not answer")


def _prepare(container: Container, host: LabHost, pubkey: str) -> tuple[str, str]:
    """Wait for boot, install the lab's key; returns (system state, host key line)."""
    state = _exec(
        container, "timeout", str(BOOT_TIMEOUT_S), "systemctl", "is-system-running", "--wait"
    )
    home = f"/home/{DEPLOY_USER}/.ssh"
    _exec(
        container,
        "sh",
        "-c",
        f"printf '%s\\n' '{pubkey}' > {home}/authorized_keys && "
        f"chown {DEPLOY_USER}: {home}/authorized_keys && chmod 600 {home}/authorized_keys",
    )
    hostkey = " ".join(_exec(container, "cat", "/etc/ssh/ssh_host_ed25519_key.pub").split()[:2])
    if not hostkey.startswith("ssh-ed25519 "):
        raise SlakitError(f"lab host {host.name}: no SSH host key ({hostkey[:80]})")
    return state, hostkey


def up(engine: docker.DockerClient, spec: LabSpec, recreate: bool = False) -> UpReport:
    """Make the lab match `spec`: adopt what matches, recreate what does not, remove strays."""
    check_conflicts(engine, spec)
    forget_connections()
    report = UpReport()
    if recreate:
        report.removed += _remove_containers(engine)
    pubkey = ensure_keypair()
    ensure_secrets()
    ensure_tls({h.name: h.address for h in spec.hosts if "lb" in h.groups})  # .lab/tls/
    image_id = node_image(engine)
    _ensure_network(engine, spec, report)
    wanted = {h.name: h for h in spec.hosts}
    containers: dict[str, Container] = {}
    for existing in _lab_containers(engine):
        name = existing.labels[HOST_LABEL]
        host = wanted.get(name)
        if host and existing.labels.get(CONFIG_LABEL) == _digest(image_id, host, spec):
            containers[name] = existing
            report.adopted.append(name)
        else:
            existing.remove(force=True)
            report.removed.append(existing.name)
    for host in spec.hosts:
        if host.name not in containers:
            containers[host.name] = _create(engine, spec, host, _digest(image_id, host, spec))
            report.created.append(host.name)
    for container in containers.values():
        container.reload()
        if container.status != "running":
            container.start()
    known: dict[str, str] = {}
    deadline = time.monotonic() + BOOT_TIMEOUT_S
    for host in spec.hosts:
        state, hostkey = _prepare(containers[host.name], host, pubkey)
        report.system_state[host.name] = state
        known[f"{host.name},{host.address}"] = hostkey
        _wait_for_ssh(host, deadline)
    write_known_hosts(known)
    return report


def _remove_containers(engine: docker.DockerClient) -> list[str]:
    removed = []
    for container in _lab_containers(engine):
        container.remove(force=True)
        removed.append(container.name)
    return removed


def down(engine: docker.DockerClient, images: bool = False) -> list[str]:
    """Remove every container and network (and, if asked, image) carrying the lab label."""
    removed = _remove_containers(engine)
    for net in engine.networks.list(filters={"label": LABEL}):
        net.remove()
        removed.append(f"network {net.name}")
    if images:
        for image in engine.images.list(filters={"label": LABEL}):
            engine.images.remove(image.id, force=True)
            removed.append(f"image {', '.join(image.tags) or image.short_id}")
    if STATE_DIR.exists():
        shutil.rmtree(STATE_DIR)
        removed.append(f"{STATE_DIR}/ (SSH key, known_hosts, lab secrets)")
    return removed


def status(engine: docker.DockerClient, spec: LabSpec) -> list[HostStatus]:
    rows = []
    for host in spec.hosts:
        try:
            container = engine.containers.get(host.container_name)
        except NotFound:
            rows.append(HostStatus(host.name, host.address, host.container_name, "missing", "-"))
            continue
        system = "-"
        if container.status == "running":
            system = _exec(container, "systemctl", "is-system-running")
        rows.append(HostStatus(host.name, host.address, container.name, container.status, system))
    return rows
