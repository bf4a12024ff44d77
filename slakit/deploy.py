"""`invoke deploy`: preflight, converge, smoke, SLA, testinfra, readiness report."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from slakit import (
    ansible,
    canary,
    checks,
    credentials,
    envs,
    lock,
    monitoring,
    preflight,
    readiness,
    security,
    stack,
)
from slakit import release as releases  # `release` names a loop variable below
from slakit.envs import Environment
from slakit.errors import SlakitError
from slakit.gates import Gate, Status, gate, skipped
from slakit.sla.spec import load_spec

# The converge skips the cross-role checks of playbooks/preflight.yml: the preflight step ran
# them a moment before with the same inventory and extra vars (about 6 s of each converge).
PREFLIGHT_DONE = "stack_checks"
# Published by the app role with set_stats when a host's `current` switched (docs/contract.md).
RELEASE_SWITCHED = "slakit_release_switched"
# ... and the release it ran before that switch ('' when none): what a rollback goes back to.
RELEASE_PREVIOUS = "slakit_release_previous"


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
    break_lock: bool = False
    extra_vars: dict[str, Any] = field(default_factory=dict)  # converge -e (tests, drills)
    release: str = ""  # promotion: deploy this kept release (16 hex digits) as it is ...
    source_env: str = ""  # ... that this environment's readiness report APPROVED ...
    force: bool = False  # ... or anyway (no such report, other wheel hashes): report says so

    def command(self) -> str:
        """The command line as the deploy lock records it (no secret: only these options)."""
        flags = [f"--env {self.env}"] + [f"--limit {self.limit}"] * bool(self.limit)
        flags += [f"--tags {self.tags}"] * bool(self.tags) + ["--no-rollback"] * self.no_rollback
        return " ".join(["invoke deploy", *flags])


def ensure_lab(console: Console) -> None:
    from slakit.lab import engine, nodes
    from slakit.lab.spec import load_spec as load_lab

    report = nodes.up(engine.client(), load_lab())
    console.print(f"lab: created {len(report.created)}, adopted {len(report.adopted)}")


def release_switched(result: ansible.PlayResult) -> list[str]:
    return sorted(result.published_by_host(RELEASE_SWITCHED))


def release_previous(result: ansible.PlayResult) -> dict[str, str]:
    """{host that switched: the release it ran before ('' = none)} (docs/contract.md)."""
    previous = result.published_by_host(RELEASE_PREVIOUS)
    return {h: str(previous.get(h) or "") for h in release_switched(result)}


def run(opts: DeployOptions, console: Console | None = None) -> tuple[bool, Path | None]:
    """Runs the main job; returns (approved, report path). Bad input raises SlakitError.

    The deploy lock (slakit/lock.py), taken before converge, is released when this returns
    or raises."""
    with contextlib.ExitStack() as scope:
        return _run(opts, console or Console(), scope)


def _run(
    opts: DeployOptions, console: Console, scope: contextlib.ExitStack
) -> tuple[bool, Path | None]:
    env = envs.resolve(opts.env)
    promotion = promotion_of(opts)  # refused (exit 2) before any host is touched
    if promotion is not None:
        opts = replace(opts, extra_vars={**opts.extra_vars, **promotion.extra_vars()})
    if env.is_lab:
        ensure_lab(console)
    console.rule(f"[bold]Preflight · {env.name}")
    for line in preflight.run(env, limit=opts.limit, extra_vars=opts.extra_vars):
        console.print(f"  ✓ {line}")
    spec = load_spec().select(list(opts.stories) or None)
    credentials.export(env)

    if not opts.check:  # a dry run changes nothing: no lock
        scope.enter_context(
            lock.held(env, opts.command(), break_lock=opts.break_lock, console=console)
        )
    started = datetime.now(UTC)
    console.rule("[bold]Converge")
    outdir = env.reports_dir / started.strftime("%Y%m%dT%H%M%SZ")
    if opts.check:
        converge = ansible.playbook(
            env,
            "site.yml",
            limit=opts.limit,
            tags=opts.tags,
            check=True,
            diff=True,
            extra_args=ansible.extra_vars_args(opts.extra_vars),
        )
        console.print(f"dry run: {converge.changed} changes would be made")
        return checks.converge_gate(converge, check=True).passed, None
    # The canary (the first app host) switches alone and is checked before the others switch.
    rollout = canary.rollout(
        env,
        outdir,
        console,
        limit=opts.limit,
        tags=opts.tags,
        skip_tags=PREFLIGHT_DONE,
        extra_vars=opts.extra_vars,
    )
    converge = rollout.converge  # both runs as one
    gates = [checks.converge_gate(converge), *rollout.gates]
    notes: list[str] = list(rollout.notes)
    try:
        if converge.returncode == 0 and not rollout.stopped:
            gates += _checks(env, opts, spec, started, outdir, converge, notes, console)
    except Exception as err:  # still no host left on a release that did not pass
        aborted = gate("Checks", False, "aborted", detail=" ".join(str(err).split())[:300])
        _roll_back_on_failure(env, opts, rollout.plays, [*gates, aborted], console)
        raise
    gates += _roll_back_on_failure(env, opts, rollout.plays, gates, console)
    ran = release_ran(env, promotion, gates)
    path = readiness.write(outdir, env.name, started, gates, notes, release=ran)
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
        gates = [
            *checks.http_gates(deployed, spec, env),
            checks.host_smoke_gate(env, started),
            *checks.redis_ha_gates(deployed),
        ]
    if not all(g.passed for g in gates) and release_switched(converge) and not opts.no_rollback:
        return gates  # run() rolls back: no SLA run against a release that is leaving
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
    try:
        role_vars = ansible.resolved_role_vars(env.inventory)
    except SlakitError as err:
        return [
            *gates,
            gate("Role variables as Ansible resolves them", False, "not read", detail=str(err)),
        ]
    security_gates, security_notes = security.checked(env, deployed, role_vars)
    gates += security_gates
    notes += security_notes + checks.host_tuning_notes(deployed)
    console.rule("[bold]Monitoring")
    gates += monitoring.gates(deployed, role_vars, load_spec())
    return gates


# A failed (or undecidable) gate after a switch rolls back; a gate the user skipped does not.
ROLLBACK_ON = (Status.FAIL, Status.INVALID)


def _roll_back_on_failure(
    env: Environment,
    opts: DeployOptions,
    plays: list[ansible.PlayResult],
    gates: list[Gate],
    console: Console,
) -> list[Gate]:
    """After any failed gate, every host that switched in `plays` goes back to the release it
    ran before (playbooks/rollback.yml: one at a time, the same drain path); returns the
    report's Rollback line, or nothing when no gate failed or no host switched."""
    previous: dict[str, str] = {}
    for play in plays:
        for host, release in release_previous(play).items():
            previous.setdefault(host, release)  # the first switch of a run says what ran
    failed = [g for g in gates if g.status in ROLLBACK_ON]
    if not failed or not previous:
        return []
    why = "; ".join(f"{g.name} failed" + (f" ({g.detail})" if g.detail else "") for g in failed)
    hosts = ", ".join(sorted(previous))
    if opts.no_rollback:
        return [Gate("Rollback", Status.SKIPPED, "NOT ROLLED BACK (--no-rollback)", detail=why)]
    console.rule(f"[bold red]{failed[0].name} failed after a release switch: rolling back {hosts}")
    t0 = time.monotonic()
    back = ansible.playbook(
        env,
        "rollback.yml",
        limit=",".join(sorted(previous)),
        extra_args=ansible.extra_vars_args({"slakit_rollback_to": previous}),
    )
    seconds = time.monotonic() - t0
    try:
        facts = stack.read_facts(env)
        now = {h: str(f["app"].get("release", "?")) for h, f in facts.items() if "app" in f}
        read = f"now on the hosts: {', '.join(f'{h} {r}' for h, r in sorted(now.items()))}"
    except SlakitError as err:
        now, read = {}, f"releases not read back ({err})"
    wrong = [
        f"{h} runs {now.get(h, '?')}, not {r}"
        for h, r in sorted(previous.items())
        if r and now.get(h) != r
    ]
    ok = back.returncode == 0 and not wrong
    # the release that failed goes from the hosts that never ran it too (a later host, the
    # canary's peers): it must not look like the newest release anywhere
    rejected = {str(r) for play in plays for r in play.published_by_host(RELEASE_SWITCHED).values()}
    discards = [releases.discard(env, r, opts.limit) for r in sorted(rejected)] if ok else []
    kept = [d for d in discards if d]
    figure = f"{'ROLLED BACK' if ok else 'ROLLBACK FAILED'} {hosts} in {seconds:.0f} s; {read}"
    problem = (
        "; ".join(kept) if ok else (back.first_failure() if back.returncode else "; ".join(wrong))
    )
    console.print(f"rollback: {figure}")
    return [
        Gate(
            "Rollback",
            Status.PASS if ok else Status.FAIL,
            figure,
            detail=(f"{problem}; " if problem else "") + f"why: {why}",
        )
    ]


def promotion_of(opts: DeployOptions) -> releases.Promotion | None:
    """`--release ID --from ENV [--force]`: the checked promotion (slakit/release.py), None
    for an ordinary deploy. Reads only reports/<ENV>/ and the controller's wheelhouse."""
    if not opts.release:
        if opts.source_env or opts.force:
            raise SlakitError("--from and --force go with --release <id>")
        return None
    if not opts.source_env:
        raise SlakitError(
            "--release needs --from <env>: the environment whose APPROVED report vouches for it"
        )
    return releases.check_promotion(opts.release, opts.source_env, force=opts.force)


def release_ran(
    env: Environment, promotion: releases.Promotion | None, gates: list[Gate]
) -> dict[str, Any]:
    """The report's "release": what the app hosts run now and its wheel hashes; for a
    promotion, also where it came from, and a Promotion gate appended to `gates`. An
    APPROVED release is pinned in the wheelhouse root (kept for a later promotion)."""
    ran = releases.record(env.name, promotion.root if promotion else None)
    if promotion is not None:
        gates.append(promotion.gate(ran))
        ran["promotion"] = promotion.as_json()
    if readiness.approved(gates):
        releases.keep_approved(ran, promotion.root if promotion else None)
    return ran
