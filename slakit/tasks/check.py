"""`invoke check.*`: one gate of the main job, alone, against a deployed environment."""

from __future__ import annotations

from datetime import UTC, datetime

from invoke import Collection
from rich.console import Console

from slakit import ansible, checks, credentials, envs, monitoring, security, stack
from slakit import preflight as preflight_checks
from slakit.errors import GateFailed
from slakit.gates import Gate
from slakit.sla.spec import load_spec
from slakit.tasks import task
from slakit.tasks.deploy import ENV_HELP


def _report(gates: list[Gate], what: str) -> None:
    console = Console()
    for g in gates:
        mark = "✅" if g.passed else "❌"
        console.print(f"{mark} {g.name}: {g.figure}" + (f" — {g.detail}" if g.detail else ""))
    failed = [g for g in gates if not g.passed]
    if failed:
        raise GateFailed(f"{what} failed: {failed[0].name}: {failed[0].detail or failed[0].figure}")


@task(help={"env": ENV_HELP, "offline": "validate inputs without contacting any host"})
def preflight(c, env="lab", offline=False):
    """Check inventory, secrets, role inputs and reachability; changes nothing."""
    for line in preflight_checks.run(envs.resolve(env), offline=offline):
        print(f"✓ {line}")


@task(help={"env": ENV_HELP, "story": "SLA stories whose endpoints to probe (default: all)"})
def smoke(c, env="lab", story=""):
    """Every SLA endpoint through the LB and on each app host; Redis PING from app hosts."""
    environment = envs.resolve(env)
    credentials.export(environment)
    spec = load_spec().select([s for s in story.split(",") if s] or None)
    deployed = stack.load(environment)
    _report(
        [
            *checks.http_gates(deployed, spec, environment),
            checks.host_smoke_gate(environment, None),
            *checks.redis_ha_gates(deployed),
        ],
        "smoke",
    )


@task(
    help={
        "env": ENV_HELP,
        "story": "stories to run, comma-separated (default: all)",
        "load_test": "also ramp each story's rate to find its capacity at SLA",
        "from": "send the load from every host of this inventory group at once (e.g. loadgen): "
        "each its share from a common start, histograms merged into one verdict",
    }
)
def sla(c, env="lab", story="", load_test=False, from_=""):
    """The SLA checker against the environment's load balancer; reports in reports/<env>/."""
    environment = envs.resolve(env)
    credentials.export(environment)
    spec = load_spec().select([s for s in story.split(",") if s] or None)
    outdir = environment.reports_dir / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    gates, notes = checks.sla_gates(
        environment, stack.load(environment), spec, outdir, load_test=load_test, from_group=from_
    )
    for note in notes:
        print(note)
    print(f"reports: {outdir}/sla/")
    _report(gates, "SLA")


@task(help={"env": ENV_HELP})
def security_check(c, env="lab"):
    """The security gates: TLS, plain HTTP, app port and Redis reach, unit exposure, secrets."""
    environment = envs.resolve(env)
    found, notes = security.checked(environment, stack.load(environment))
    for note in notes:
        print(f"Note: {note}")
    _report(found, "security")


@task(help={"env": ENV_HELP, "limit": "only these hosts (ansible --limit pattern)"})
def infra(c, env="lab", limit=""):
    """The testinfra suite (tests/infra) against the environment; JUnit XML in reports/."""
    environment = envs.resolve(env)
    junit = environment.reports_dir / "testinfra.xml"
    _report([checks.verify_gate(environment, junit, limit=limit, quiet=False)], "verification")


@task(help={"env": ENV_HELP, "limit": "only these hosts (ansible --limit pattern)"})
def idempotence(c, env="lab", limit=""):
    """Converge again; fails unless every host reports zero changes."""
    environment = envs.resolve(env)
    result = ansible.playbook(environment, "site.yml", limit=limit)
    _report([checks.idempotence_gate(result)], "idempotence")


@task(help={"env": ENV_HELP})
def monitoring_check(c, env="lab"):
    """The Monitoring gates: every target UP, the spec's rules loaded, no alert firing."""
    environment = envs.resolve(env)
    _report(
        monitoring.gates(
            stack.load(environment), ansible.resolved_role_vars(environment.inventory), load_spec()
        ),
        "monitoring",
    )


@task(help={"env": ENV_HELP})
def alerts(c, env="lab"):
    """Firing and pending alerts (Prometheus) and what Alertmanager holds; exit 1 if any fire."""
    deployed = stack.load(envs.resolve(env))
    if not deployed.hosts(monitoring.GROUP):
        raise GateFailed(f"no host in the inventory's {monitoring.GROUP} group")
    firing = []
    for host in deployed.hosts(monitoring.GROUP):
        fact = deployed.published(host, monitoring.GROUP)
        reading = monitoring.read(host, str(fact["prometheus_url"]))
        if reading.error:
            raise GateFailed(reading.error)
        held = monitoring.alertmanager_alerts(str(fact["alertmanager_url"]))
        print(
            f"{host}: {len(reading.firing())} firing, {len(reading.pending())} pending; "
            f"Alertmanager holds {len(held)}"
        )
        for alert in sorted(reading.alerts, key=lambda a: (a.state, a.name)):
            print(f"  {alert.state:8} {alert.line()} since {alert.since}")
        for alert in held:
            print(f"  alertmanager {alert.state:10} {alert.line()} since {alert.since}")
        firing += reading.firing()
    if firing:
        raise GateFailed(f"{len(firing)} alerts firing: {firing[0].line()}")


ns = Collection("check", preflight, smoke, sla, infra, idempotence, alerts)
ns.add_task(monitoring_check, name="monitoring")
ns.add_task(security_check, name="security")
