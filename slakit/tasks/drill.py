"""`invoke drill.*`: drills against a deployed environment that measure how it fails over."""

from __future__ import annotations

from invoke import Collection

from slakit import envs, failover
from slakit.errors import GateFailed
from slakit.tasks import task
from slakit.tasks.deploy import ENV_HELP


@task(
    name="failover",
    help={
        "env": ENV_HELP + "; its redis group needs two hosts or more",
        "rate": f"durable writes per second through the load balancer (default {failover.RATE})",
    },
)
def failover_drill(c, env="lab", rate=failover.RATE):
    """Stop the persist Redis primary under durable writes; report failover time and loss.

    Exit 1 unless Sentinel promoted a replica, writes were acknowledged again, no acknowledged
    write is missing from the ledger and the old primary rejoined as a replica."""
    environment = envs.resolve(env)
    result = failover.run(environment, rate)
    report = failover.write_report(environment, result)
    mark = "✅" if result.passed else "❌"
    print(f"{mark} {result.line()}")
    print(f"report: {report}")
    if not result.passed:
        raise GateFailed(f"failover drill failed: {'; '.join(result.problems)}")


ns = Collection("drill", failover_drill)
