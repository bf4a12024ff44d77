"""`invoke rollback`: put the previous app release back on every app host."""

from __future__ import annotations

from slakit import release
from slakit.tasks import task


@task(
    help={
        "env": "environment: inventories/<env> (lab, staging, production); default lab",
        "limit": "only these app hosts (Ansible --limit pattern); default all",
    }
)
def rollback(c, env="lab", limit=""):
    """Switch `current` to the previous release, one app host at a time behind the load balancer."""
    result = release.rollback(env, limit=limit)
    print(f"rollback on {env}: done on {', '.join(sorted(result.hosts)) or 'no host'}")
