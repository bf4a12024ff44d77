"""`invoke tune`: measure the grid's settings on an environment and pick the best."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from slakit import envs, lock, tune, tune_report
from slakit.errors import GateFailed, SlakitError
from slakit.sla.spec import load_spec
from slakit.tasks import task
from slakit.tasks.deploy import ENV_HELP


@task(
    help={
        "env": ENV_HELP,
        "grid": f"settings, values and playbooks to try (default {tune.DEFAULT_GRID})",
        "story": "stories to measure, comma-separated (default: all of sla/spec.yml)",
        "steps": "ramp steps per measurement (default: the spec's load_test.max_steps)",
        "rounds": "measurements of each value, compared by their medians (default 1; 3 "
        "outvotes a noisy one)",
        "apply": "write the chosen values to inventories/<env>/group_vars/<group>/tuned.yml "
        "and converge them (default: the hosts go back to the inventory's settings)",
        "break_lock": "remove a stale deploy lock first (see `invoke deploy --help`)",
    }
)
def tune_(c, env="lab", grid=str(tune.DEFAULT_GRID), story="", steps=0, rounds=1, apply=False,
          break_lock=False):  # fmt: skip
    """Apply each candidate setting, ramp the SLA load test on it, choose by capacity at SLA.

    Holds the deploy lock; changes the hosts while it runs (rolling, drained app restarts and
    HAProxy reloads) and puts them back to the inventory's settings at the end. Writes
    reports/<env>/tune/<ts>/ (report.txt, report.html with plots, tune.json, tuned-<group>.yml).
    Exit 1 when a playbook failed or no value of a setting passed at the nominal rate."""
    environment = envs.resolve(env)
    the_grid = tune.load_grid(Path(grid))
    spec = load_spec().select([s for s in story.split(",") if s] or None)
    stories = [s.id for s in spec.stories]
    steps = int(steps) or spec.load_test.max_steps
    if not 1 <= steps <= 12:
        raise SlakitError(f"--steps {steps}: between 1 and 12 ramp steps")
    if not 1 <= int(rounds) <= 5:
        raise SlakitError(f"--rounds {rounds}: between 1 and 5 measurements of each value")
    outdir = environment.reports_dir / "tune" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    command = f"invoke tune --env {env}" + (" --apply" if apply else "")
    with lock.held(environment, command, break_lock=break_lock):
        result = tune.run(environment, the_grid, spec, stories, steps, apply, rounds=int(rounds))
    tune_report.write(result, the_grid, outdir)
    print(tune_report.render_text(result), end="")
    print(f"report: {outdir}/")
    if not result.passed:
        raise GateFailed(f"tune: {'; '.join(result.problems)}")
