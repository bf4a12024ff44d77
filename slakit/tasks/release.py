"""`invoke rollback`: put the previous app release back on every app host."""

from __future__ import annotations

from slakit import envs, lock, release
from slakit.tasks import task


@task(
    help={
        "env": "environment: inventories/<env> (lab, staging, production); default lab",
        "limit": "only these app hosts (Ansible --limit pattern); default all",
        "break_lock": "remove the environment's deploy lock if it is stale (as `invoke deploy`)",
    }
)
def rollback(c, env="lab", limit="", break_lock=False):
    """Switch `current` to the previous release, one app host at a time behind the load balancer.

    Takes the environment's deploy lock (exit 2 naming its holder when another deploy or
    rollback holds it)."""
    command = f"invoke rollback --env {env}" + (f" --limit {limit}" if limit else "")
    with lock.held(envs.resolve(env), command, break_lock=break_lock):
        result = release.rollback(env, limit=limit)
    print(f"rollback on {env}: done on {', '.join(sorted(result.hosts)) or 'no host'}")
