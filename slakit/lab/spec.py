"""What the lab should look like, read from the lab inventory (by `ansible-inventory`) and
checked before any change."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slakit.ansible import list_inventory
from slakit.errors import SlakitError
from slakit.yamlfile import parse

DEFAULT_INVENTORY = Path("inventories/lab/hosts.yml")
_HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class LabHost:
    name: str
    address: str
    groups: tuple[str, ...]

    @property
    def container_name(self) -> str:
        return f"slakit-lab-{self.name}"


@dataclass(frozen=True)
class LabSpec:
    source: Path
    network: str
    subnet: ipaddress.IPv4Network
    hosts: tuple[LabHost, ...]

    def select(self, names: list[str] | None) -> tuple[LabHost, ...]:
        """The hosts called `names` (all when None); an unknown name is an error."""
        if not names:
            return self.hosts
        known = {h.name: h for h in self.hosts}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise SlakitError(
                f"{self.source}: no lab host named {', '.join(unknown)} (hosts: {', '.join(known)})"
            )
        return tuple(known[n] for n in names)


def _hosts(listing: dict[str, Any], src: Path) -> tuple[LabHost, ...]:
    hostvars: dict[str, dict[str, Any]] = listing.get("_meta", {}).get("hostvars", {})
    groups: dict[str, list[str]] = {}
    for group, body in listing.items():
        if group not in ("_meta", "all", "ungrouped"):
            for host in (body or {}).get("hosts") or []:
                groups.setdefault(host, []).append(group)
    hosts = []
    for host, variables in hostvars.items():
        address = variables.get("ansible_host")
        if not address:
            raise SlakitError(f"{src}: lab host {host} has no ansible_host address")
        hosts.append(LabHost(host, str(address), tuple(groups.get(host, ()))))
    return tuple(hosts)


def load_spec(path: Path = DEFAULT_INVENTORY) -> LabSpec:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SlakitError(f"{path}: lab inventory not found") from None
    parse(text, path)  # a YAML error names the file and line (ansible-inventory's does not)
    listing = list_inventory(path)
    hosts = _hosts(listing, path)
    if not hosts:
        raise SlakitError(f"{path}: the lab inventory names no hosts")
    lab = listing["_meta"]["hostvars"][hosts[0].name].get("slakit_lab") or {}
    try:
        subnet = ipaddress.IPv4Network(str(lab.get("subnet", "")))
    except ValueError:
        raise SlakitError(
            f"{path}: all.vars.slakit_lab.subnet must be an IPv4 network such as 172.28.50.0/24"
        ) from None
    spec = LabSpec(path, str(lab.get("network") or "slakit-lab"), subnet, hosts)
    _check_hosts(spec)
    return spec


def _check_hosts(spec: LabSpec) -> None:
    gateway = next(spec.subnet.hosts())
    seen: dict[ipaddress.IPv4Address, str] = {}
    for host in spec.hosts:
        if not _HOSTNAME.match(host.name):
            raise SlakitError(
                f"{spec.source}: lab host name {host.name!r} is not a valid hostname "
                "(lower-case letters, digits and '-')"
            )
        try:
            address = ipaddress.IPv4Address(host.address)
        except ValueError:
            raise SlakitError(
                f"{spec.source}: {host.name}: ansible_host {host.address!r} is not an IPv4 address"
            ) from None
        if address not in spec.subnet or address in (
            spec.subnet.network_address,
            spec.subnet.broadcast_address,
            gateway,
        ):
            raise SlakitError(
                f"{spec.source}: {host.name}: address {address} is outside the lab subnet "
                f"{spec.subnet} or reserved (network, broadcast, gateway {gateway})"
            )
        if address in seen:
            raise SlakitError(
                f"{spec.source}: {host.name}: address {address} is already used by {seen[address]}"
            )
        seen[address] = host.name
