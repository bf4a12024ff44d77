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
        "no_rollback": "leave switched hosts on the new release when a gate fails (default: "
        "every switched host goes back to the release it ran)",
        "load_test": "also ramp each story's rate to find its capacity at SLA (minutes)",
        "release": "promotion: deploy this release id (16 hex digits) as it is, from the "
        "controller's build/wheelhouse/<id>, instead of building; needs --from",
        "from_": "the environment whose APPROVED readiness report in reports/<env>/ records "
        "that release with the same wheel hashes; otherwise refused (exit 2) before any host",
        "force": "promote even without that APPROVED report or with other wheel hashes "
        "(the report says FORCED)",
        "break_lock": "remove the environment's deploy lock if it is stale (older than "
        "slakit_deploy_lock_stale_after seconds, default 3600); a younger lock is never broken",
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
    break_lock=False,
    release="",
    from_="",
    force=False,
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
        break_lock=break_lock,
        release=release,
        source_env=from_,
        force=force,
    )
    approved, report = pipeline.run(opts)
    if not approved:
        where = f": see {report}" if report else ""
        raise GateFailed(f"deploy to {env}: NOT APPROVED{where}")
