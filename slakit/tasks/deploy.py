"""`invoke deploy`: the main job."""

from __future__ import annotations

from slakit import deploy as pipeline
from slakit.errors import GateFailed
from slakit.tasks import task

ENV_HELP = "environment = inventories/<env> (lab, staging, production, ...)"


@task(
    help={
        "env": ENV_HELP,
        "skip_sla": "skip the SLA checker (the verdict then cannot be APPROVED)",
        "check": "dry run: ansible --check --diff, no smoke/SLA/verification",
        "limit": "only these hosts (ansible --limit pattern)",
        "tags": "only these role tags (ansible --tags)",
        "story": "SLA stories to run, comma-separated (default: all of sla/spec.yml)",
        "no_rollback": "do not roll back automatically when smoke fails after a release switch",
        "load_test": "also ramp each story's rate to find its capacity at SLA (minutes)",
    }
)
def deploy(
    c,
    env="lab",
    skip_sla=False,
    check=False,
    limit="",
    tags="",
    story="",
    no_rollback=False,
    load_test=False,
):
    """Preflight, converge, smoke, SLA, testinfra, report in reports/<env>/. 0 = APPROVED."""
    opts = pipeline.DeployOptions(
        env=env,
        skip_sla=skip_sla,
        check=check,
        limit=limit,
        tags=tags,
        stories=tuple(s.strip() for s in story.split(",") if s.strip()),
        no_rollback=no_rollback,
        load_test=load_test,
    )
    approved, report = pipeline.run(opts)
    if not approved:
        where = f": see {report}" if report else ""
        raise GateFailed(f"deploy to {env}: NOT APPROVED{where}")
