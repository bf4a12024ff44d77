"""The deployed stack as the roles published it on their hosts (docs/contract.md).

Each role writes a local facts file, /etc/ansible/facts.d/<role>.fact, with what it resolved
and did; one `setup` of `ansible_local` on every host brings them all back. Python reads
these and `ansible-inventory --list`, never a role's defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from slakit import ansible
from slakit.envs import Environment
from slakit.errors import SlakitError

FACTS_TIMEOUT_S = 300


def read_facts(env: Environment) -> dict[str, dict[str, Any]]:
    """{host: ansible_local} for every host of the environment."""
    play = {
        "name": "Read what the roles published",
        "hosts": "all",
        "gather_facts": False,
        "tasks": [
            {
                "name": "Read the local facts",
                "ansible.builtin.setup": {"gather_subset": ["!all", "!min", "local"]},
            }
        ],
    }
    out = ansible.run_plays(env.inventory, [play], FACTS_TIMEOUT_S)
    facts: dict[str, dict[str, Any]] = {}
    for task in out["plays"][0]["tasks"]:
        for host, result in task["hosts"].items():
            if result.get("failed") or result.get("unreachable"):
                raise SlakitError(f"{host}: reading local facts failed: {result.get('msg', '')}")
            facts[host] = result.get("ansible_facts", {}).get("ansible_local", {})
    return facts


@dataclass(frozen=True)
class Stack:
    """The deployed stack: the inventory's groups plus what each role published."""

    inventory: dict[str, Any]
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def hosts(self, group: str) -> list[str]:
        return list((self.inventory.get(group) or {}).get("hosts") or [])

    def published(self, host: str, role: str) -> dict[str, Any]:
        fact = self.facts.get(host, {}).get(role)
        if not fact:
            raise SlakitError(
                f"{host}: the {role} role has published nothing "
                f"(/etc/ansible/facts.d/{role}.fact): deploy first"
            )
        return fact

    def urls(self, group: str, role: str) -> dict[str, str]:
        return {h: str(self.published(h, role)["url"]) for h in self.hosts(group)}

    def lb_urls(self) -> dict[str, str]:
        return self.urls("lb", "loadbalancer")

    def lb_http_urls(self) -> dict[str, str]:
        """{lb host: its plain-HTTP listener URL}; with loadbalancer_http_redirect on, that
        listener only redirects to the HTTPS URL (the `tls.http_redirect` fact says which)."""
        out = {}
        for host in self.hosts("lb"):
            fact = self.published(host, "loadbalancer")
            if not fact.get("http_url"):
                raise SlakitError(
                    f"{host}: the loadbalancer fact has no http_url (a role without TLS): "
                    "deploy first"
                )
            out[host] = str(fact["http_url"])
        return out

    def lb_tls(self, host: str | None = None) -> dict[str, Any]:
        """The `tls` object of a load balancer's fact (the first one by default); {} when
        the role that published it predates TLS."""
        host = host or next(iter(self.hosts("lb")), "")
        tls = self.published(host, "loadbalancer").get("tls") if host else None
        return tls if isinstance(tls, dict) else {}

    def lb_ca_file(self, host: str | None = None) -> str | None:
        """The controller path of the CA bundle that clients of the (first) load balancer
        verify its certificate with; None = the system trust store."""
        return str(self.lb_tls(host).get("ca_file") or "") or None

    def host_level_skips(self) -> dict[str, list[str]]:
        """{host: sysctl keys host_tuning skipped as host-level} where there are any."""
        skipped = {
            h: sorted(f.get("host_tuning", {}).get("skipped") or []) for h, f in self.facts.items()
        }
        return {h: keys for h, keys in sorted(skipped.items()) if keys}


def load(env: Environment) -> Stack:
    return Stack(ansible.inventory(env), read_facts(env))
