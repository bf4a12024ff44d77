"""Where the deployed stack answers, read from an environment's inventory.

Values come from inventory variables, falling back to the role's default (the only two
levels that can set them for these plain, untemplated settings).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from slakit import ansible
from slakit.envs import Environment
from slakit.errors import SlakitError

ROLES = Path("roles")


@cache
def role_default(role: str, name: str) -> Any:
    defaults = yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text()) or {}
    if name not in defaults:
        raise SlakitError(f"{ROLES}/{role}/defaults/main.yml: no default for {name}")
    return defaults[name]


@dataclass(frozen=True)
class Stack:
    inventory: dict[str, Any]

    def hosts(self, group: str) -> list[str]:
        return list((self.inventory.get(group) or {}).get("hosts") or [])

    def var(self, host: str, name: str, role: str) -> Any:
        hostvars = self.inventory.get("_meta", {}).get("hostvars", {}).get(host, {})
        return hostvars[name] if name in hostvars else role_default(role, name)

    def address(self, host: str) -> str:
        hostvars = self.inventory.get("_meta", {}).get("hostvars", {}).get(host, {})
        return str(hostvars.get("ansible_host", host))

    def lb_urls(self) -> dict[str, str]:
        return {
            h: f"http://{self.address(h)}:{self.var(h, 'loadbalancer_port', 'loadbalancer')}"
            for h in self.hosts("lb")
        }

    def app_urls(self) -> dict[str, str]:
        return {
            h: f"http://{self.address(h)}:{self.var(h, 'app_port', 'app')}"
            for h in self.hosts("app")
        }


def load(env: Environment) -> Stack:
    return Stack(ansible.inventory(env))


def port_users(deployed: Stack, host: str) -> list[tuple[Any, str]]:
    """(port, who) for every listener the stack puts on `host`, as the inventory spells them."""
    groups = {g for g in ("lb", "app", "redis") if host in deployed.hosts(g)}
    users: list[tuple[Any, str]] = []
    if "app" in groups:
        users.append((deployed.var(host, "app_port", "app"), "app (app_port)"))
    if "lb" in groups:
        lb_port = deployed.var(host, "loadbalancer_port", "loadbalancer")
        users.append((lb_port, "loadbalancer (loadbalancer_port)"))
    if "redis" in groups:
        for instance in deployed.var(host, "redis_instances", "redis") or []:
            users.append((instance.get("port"), f"redis instance {instance.get('name')}"))
    return users


def check_ports(deployed: Stack, source: str) -> None:
    """Two roles listening on one port of one host is bad input, caught before any change."""
    hostvars = deployed.inventory.get("_meta", {}).get("hostvars", {})
    for host in sorted(hostvars):
        seen: dict[int, str] = {}
        for value, who in port_users(deployed, host):
            port = int(value) if str(value).isdigit() else None  # else: argument specs say so
            if port is None:
                continue
            if port in seen:
                raise SlakitError(
                    f"{source}: {host}: port {port} is used by both {seen[port]} and {who}"
                )
            seen[port] = who
