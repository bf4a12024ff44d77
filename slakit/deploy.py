"""`invoke deploy`: preflight, converge, smoke, SLA, testinfra, readiness report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from slakit import ansible, checks, credentials, envs, preflight, readiness, security, stack
from slakit.envs import Environment
from slakit.errors import SlakitError
from slakit.gates import Gate, gate, skipped
from slakit.sla.spec import load_spec

# Published by the app role with set_stats when a host's `current` switched (docs/contract.md).
RELEASE_SWITCHED = "slakit_release_switched"


@dataclass(frozen=True)
class DeployOptions:
    env: str = "lab"
    skip_sla: bool = False
    check: bool = False
    limit: str = ""
    tags: str = ""
    stories: tuple[str, ...] = ()
    no_rollback: bool = False
    load_test: bool = False


def ensure_lab(console: Console) -> None:
    from slakit.lab import engine, nodes
    from slakit.lab.spec import load_spec as load_lab

    report = nodes.up(engine.client(), load_lab())
    console.print(f"lab: created {len(report.created)}, adopted {len(report.adopted)}")


def release_switched(result: ansible.PlayResult) -> list[str]:
    return sorted(result.published_by_host(RELEASE_SWITCHED))


def run(opts: DeployOptions, console: Console | None = None) -> tuple[bool, Path | None]:
    """Runs the main job; returns (approved, report path). Bad input raises SlakitError."""
    console = console or Console()
    env = envs.resolve(opts.env)
    if env.is_lab:
        ensure_lab(console)
    console.rule(f"[bold]Preflight · {env.name}")
    for line in preflight.run(env, limit=opts.limit):
        console.print(f"  ✓ {line}")
    spec = load_spec().select(list(opts.stories) or None)
    credentials.export(env)

    started = datetime.now(UTC)
    console.rule("[bold]Converge")
    converge = ansible.playbook(
        env, "site.yml", limit=opts.limit, tags=opts.tags, check=opts.check, diff=opts.check
    )
    gates = [checks.converge_gate(converge, check=opts.check)]
    if opts.check:
        console.print(f"dry run: {converge.changed} changes would be made")
        return gates[0].passed, None

    outdir = env.reports_dir / started.strftime("%Y%m%dT%H%M%SZ")
    notes: list[str] = []
    if converge.returncode == 0:
        gates += _checks(env, opts, spec, started, outdir, converge, notes, console)
    path = readiness.write(outdir, env.name, started, gates, notes)
    print(path.read_text(), end="", flush=True)  # as written: no re-wrapping
    print(f"reports: {outdir}/", flush=True)
    return readiness.approved(gates), path


def _checks(
    env: Environment,
    opts: DeployOptions,
    spec,
    started: datetime,
    outdir: Path,
    converge: ansible.PlayResult,
    notes: list[str],
    console: Console,
) -> list[Gate]:
    console.rule("[bold]Smoke")
    try:
        deployed: stack.Stack | None = stack.load(env)
    except SlakitError as err:  # a host unreachable, a role that published nothing
        deployed = None
        gates = [gate("Smoke: what the roles published", False, "not read", detail=str(err))]
    if deployed is not None:
        gates = [*checks.http_gates(deployed, spec, env), checks.host_smoke_gate(env, started)]
    switched = release_switched(converge)
    if not all(g.passed for g in gates) and switched and not opts.no_rollback:
        gates.append(_roll_back(env, switched, console))
        return gates
    if deployed is None:
        return gates
    if opts.skip_sla:
        gates.append(skipped("SLA", "--skip-sla"))
    else:
        console.rule("[bold]SLA")
        sla_gates, sla_notes = checks.sla_gates(
            env, deployed, spec, outdir, load_test=opts.load_test
        )
        gates += sla_gates
        notes += sla_notes
    console.rule("[bold]Host verification")
    gates.append(checks.verify_gate(env, outdir / "testinfra.xml", limit=opts.limit))
    console.rule("[bold]Security")
    security_gates, security_notes = security.checked(env, deployed)
    gates += security_gates
    notes += security_notes + checks.host_tuning_notes(deployed)
    return gates


def _roll_back(env: Environment, switched: list[str], console: Console) -> Gate:
    console.rule("[bold red]Smoke failed after a release switch: rolling back")
    back = ansible.playbook(env, "rollback.yml", limit=",".join(switched))
    return gate(
        "Automatic rollback",
        back.returncode == 0,
        f"previous release restored on {', '.join(switched)}",
        detail=back.first_failure(),
    )
