"""What the lab should look like, read from the lab inventory (by `ansible-inventory`) and
checked before any change.

The lab's size: `invoke lab.up --app-hosts N` adds app hosts to the inventory's own in a
git-ignored file beside it (SIZE_FILE, `inventories/lab/lab-size.yml`), which Ansible reads with
the rest of the inventory folder and `load_spec` with hosts.yml; `invoke lab.up` without it
removes the file, and so the extra hosts."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from slakit.ansible import list_inventory
from slakit.errors import SlakitError
from slakit.yamlfile import parse

DEFAULT_INVENTORY = Path("inventories/lab/hosts.yml")
SIZE_FILE = "lab-size.yml"  # beside the lab inventory; written by `invoke lab.up --app-hosts N`
SIZED_GROUP = "app"
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


def size_file(inventory: Path) -> Path:
    """The file of extra app hosts that `invoke lab.up --app-hosts N` writes beside `inventory`."""
    return inventory.parent / SIZE_FILE


def load_spec(path: Path = DEFAULT_INVENTORY, sized: bool = True) -> LabSpec:
    """The lab of inventory `path`, with the extra app hosts of its size file (when `sized` and
    the file exists)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SlakitError(f"{path}: lab inventory not found") from None
    parse(text, path)  # a YAML error names the file and line (ansible-inventory's does not)
    sources = [path]
    extra = size_file(path)
    if sized and extra.is_file() and extra != path:
        parse(extra.read_text(), extra)
        sources.append(extra)
    listing = list_inventory(sources)
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


def extra_app_hosts(spec: LabSpec, app_hosts: int) -> tuple[LabHost, ...]:
    """The app hosts to add to `spec` (its own inventory, unsized) for `app_hosts` in group app.

    Each is named `app-<k>` for the next free k and takes the next free address of the subnet
    after the highest app host's (skipping every address in use), so the inventory's own hosts
    keep theirs. 0, or the inventory's own count, adds none; fewer is refused.
    """
    own = [h for h in spec.hosts if SIZED_GROUP in h.groups]
    if app_hosts < 0 or 0 < app_hosts < len(own):
        raise SlakitError(
            f"{spec.source}: --app-hosts {app_hosts}: the lab inventory has {len(own)} app hosts "
            f"of its own; give {len(own)} or more (0: the inventory's own)"
        )
    names = {h.name for h in spec.hosts}
    used = {ipaddress.IPv4Address(h.address) for h in spec.hosts}
    gateway = next(spec.subnet.hosts())
    start = max((ipaddress.IPv4Address(h.address) for h in own), default=gateway)
    free = (
        a
        for a in spec.subnet.hosts()
        if a > start and a not in used and a not in (gateway, spec.subnet.broadcast_address)
    )
    index = iter(k for k in range(1, 10_000) if f"app-{k}" not in names)
    added = []
    for _ in range(max(0, app_hosts - len(own))):
        address = next(free, None)
        if address is None:
            raise SlakitError(
                f"{spec.source}: --app-hosts {app_hosts}: no free address left in the lab "
                f"subnet {spec.subnet} after {start}"
            )
        added.append(LabHost(f"app-{next(index)}", str(address), (SIZED_GROUP,)))
    return tuple(added)


def write_size(inventory: Path, hosts: tuple[LabHost, ...], app_hosts: int) -> Path | None:
    """Write the size file of `inventory` with `hosts` (or remove it when there are none)."""
    path = size_file(inventory)
    if not hosts:
        path.unlink(missing_ok=True)
        return None
    body = {
        "all": {
            "children": {
                SIZED_GROUP: {"hosts": {h.name: {"ansible_host": h.address} for h in hosts}}
            }
        }
    }
    path.write_text(
        "---\n"
        f"# Written by `invoke lab.up --app-hosts {app_hosts}` (slakit/lab/spec.py): app hosts\n"
        f"# beyond {inventory.name}'s own. Git-ignored; `invoke lab.up` without --app-hosts\n"
        "# removes this file, and lab.up then the extra containers.\n"
        + yaml.safe_dump(body, sort_keys=False)
    )
    return path
