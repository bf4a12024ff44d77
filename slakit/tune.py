"""`invoke tune`: which settings give the most capacity under the SLA, measured on the hosts.

A grid (sla/tune.yml) names role variables, candidate values and the playbook that applies
each. The search is one setting at a time, in the grid's order: every value of the setting is
applied (its playbook with the candidate as extra vars: the app's rolling, drained restart;
HAProxy's reload) and measured by the SLA checker's `--load-test` ramp through the first load
balancer, the other settings held at the best value found so far. `better()` is the rule that
picks a value. At the end the hosts go back to what the inventory says (the same playbooks
without extra vars); with `apply`, the chosen values are first written to
`inventories/<env>/group_vars/<group>/tuned.yml`, so that "what the inventory says" is them.

The incumbents (what the hosts run before tuning) are the role variables as Ansible resolves
them for each host (`ansible.resolved_role_vars`), never re-derived here.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from statistics import median
from typing import Any

import yaml

from slakit import ansible, credentials, stack
from slakit.envs import Environment
from slakit.errors import SlakitError
from slakit.sla.model import LoadTestResult
from slakit.sla.spec import Spec
from slakit.status import Status
from slakit.yamlfile import parse

DEFAULT_GRID = Path("sla/tune.yml")
# Capacities are quantized by the ramp's growth (x1.6 a step): equal capacity is the common
# case, so the tie-break is the p99 at the nominal rate, and only a clear gain moves the
# choice off the incumbent (the machine's noise between two runs of one setting is ~5%).
P99_MARGIN = 0.10


@dataclass(frozen=True)
class Setting:
    var: str
    values: tuple[Any, ...]
    playbook: str  # playbooks/<playbook> applies it
    group: str  # the inventory group whose hosts it is for (and group_vars it goes to)


@dataclass(frozen=True)
class Grid:
    source: Path
    settings: tuple[Setting, ...]


def load_grid(path: Path, playbooks_dir: Path = ansible.ROOT / "playbooks") -> Grid:
    """The grid file, checked: one line naming the file and the setting on bad input (exit 2)."""
    try:
        data = parse(path.read_text(), path)
    except FileNotFoundError:
        raise SlakitError(f"{path}: tune grid not found") from None
    entries = data.get("settings") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise SlakitError(f"{path}: needs a non-empty list 'settings'")
    settings, seen = [], set()
    for i, entry in enumerate(entries, 1):
        where = f"{path}: setting {i}"
        if not isinstance(entry, dict) or set(entry) != {"var", "values", "playbook", "group"}:
            raise SlakitError(f"{where}: needs exactly var, values, playbook and group")
        var, values = str(entry["var"]), entry["values"]
        if var in seen:
            raise SlakitError(f"{where}: {var} is in the grid twice")
        seen.add(var)
        if (
            not isinstance(values, list)
            or len(values) < 1
            or len(set(map(repr, values))) != len(values)
        ):
            raise SlakitError(f"{where} ({var}): values must be a list of distinct values")
        if not (playbooks_dir / str(entry["playbook"])).is_file():
            raise SlakitError(f"{where} ({var}): no playbook playbooks/{entry['playbook']}")
        settings.append(Setting(var, tuple(values), str(entry["playbook"]), str(entry["group"])))
    return Grid(path, tuple(settings))


_MISSING = object()


def incumbents(
    grid: Grid, inventory: dict[str, Any], resolved: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """{var: value} the hosts of each setting's group run now; one value per group."""
    out: dict[str, Any] = {}
    for s in grid.settings:
        hosts = list((inventory.get(s.group) or {}).get("hosts") or [])
        if not hosts:
            raise SlakitError(f"{grid.source}: {s.var}: group {s.group} has no hosts")
        values = {h: resolved.get(h, {}).get(s.var, _MISSING) for h in hosts}
        if any(v is _MISSING for v in values.values()):
            raise SlakitError(
                f"{grid.source}: {s.var} is not a role variable of the hosts of group {s.group}"
            )
        if len({repr(v) for v in values.values()}) > 1:
            each = ", ".join(f"{h}={v}" for h, v in values.items())
            raise SlakitError(
                f"{grid.source}: {s.var} differs across group {s.group} ({each}): tune sets one "
                "value per group"
            )
        out[s.var] = next(iter(values.values()))
    return out


@dataclass
class Trial:
    """One measured combination: `values` is every grid variable as the hosts ran it."""

    setting: str
    value: Any
    values: dict[str, Any]
    capacity_rps: dict[str, float | None] = field(default_factory=dict)  # story -> at SLA
    nominal_rps: dict[str, float] = field(default_factory=dict)
    nominal_p99_ms: dict[str, float | None] = field(default_factory=dict)
    nominal_passed: bool = False
    seconds: float = 0.0
    note: str = ""

    @property
    def multiplier(self) -> float:
        """The bottleneck story's capacity over its nominal rate (0 when one has none)."""
        ratios = [
            (self.capacity_rps.get(s) or 0.0) / rate for s, rate in self.nominal_rps.items() if rate
        ]
        return min(ratios) if ratios else 0.0

    @property
    def worst_p99_ms(self) -> float:
        known = [v for v in self.nominal_p99_ms.values() if v is not None]
        return max(known) if len(known) == len(self.nominal_p99_ms) and known else float("inf")


def better(candidate: Trial, incumbent: Trial) -> bool:
    """The choice rule: a candidate replaces the incumbent when every story passes at its
    nominal rate and (1) the bottleneck story's capacity at SLA, as a multiple of its nominal
    rate, is higher, or (2) it is equal and the worst story p99 at the nominal rate is lower by
    more than P99_MARGIN. Anything else keeps the incumbent: a setting changes only for a gain
    the measurement can show."""
    if not candidate.nominal_passed:
        return False
    if not incumbent.nominal_passed:
        return True
    if abs(candidate.multiplier - incumbent.multiplier) > 1e-9:
        return candidate.multiplier > incumbent.multiplier
    return candidate.worst_p99_ms < incumbent.worst_p99_ms * (1 - P99_MARGIN)


def choose(trials: list[Trial], current: Any) -> Trial | None:
    """The current value's trial, unless `better()` says another is; None if none passed."""
    passed = [t for t in trials if t.nominal_passed]
    pick = next((t for t in passed if repr(t.value) == repr(current)), None)
    for trial in passed:
        if pick is None or better(trial, pick):
            pick = trial
    return pick


def record(trial: Trial, load_tests: list[LoadTestResult]) -> Trial:
    """The trial with each story's capacity and nominal step (a failed step says why)."""
    for lt in load_tests:
        trial.capacity_rps[lt.story_id] = lt.capacity_rps
        trial.nominal_rps[lt.story_id] = lt.nominal_rps
        first = lt.steps[0] if lt.steps else None
        trial.nominal_p99_ms[lt.story_id] = first.p99_ms if first else None
        if lt.status != Status.PASS:
            why = (first.note if first else "") or lt.note or str(lt.status)
            trial.note = "; ".join(filter(None, [trial.note, f"{lt.story_id}: {why}"]))
    trial.nominal_passed = bool(load_tests) and all(lt.status == Status.PASS for lt in load_tests)
    return trial


def combine(rounds: list[Trial]) -> Trial:
    """One trial from rounds of the same values: per story the median capacity and the median
    nominal p99; it passes at the nominal rate when more than half of the rounds did."""
    if len(rounds) == 1:
        return rounds[0]
    first = rounds[0]
    out = Trial(first.setting, first.value, first.values, nominal_rps=dict(first.nominal_rps))
    for story in first.nominal_rps:
        out.capacity_rps[story] = median(t.capacity_rps.get(story) or 0.0 for t in rounds) or None
        p99s = [p for t in rounds if (p := t.nominal_p99_ms.get(story)) is not None]
        out.nominal_p99_ms[story] = median(p99s) if p99s else None
    out.nominal_passed = 2 * sum(t.nominal_passed for t in rounds) > len(rounds)
    out.note = "; ".join(
        f"round {k}: {summary(t)}" + (f" ({t.note})" if t.note else "")
        for k, t in enumerate(rounds, 1)
    )
    return out


@dataclass
class TuneResult:
    env: str
    grid: str
    stories: list[str]
    steps: int
    start: dict[str, Any]  # what the hosts ran before
    rounds: int = 1  # measurements of each value
    chosen: dict[str, Any] = field(default_factory=dict)
    trials: list[Trial] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    applied: bool = False

    @property
    def passed(self) -> bool:
        return not self.problems


class Applier:
    """Puts a combination of grid values on the hosts through the playbooks that own them,
    running only the playbooks whose variables differ from what the hosts run now."""

    def __init__(self, env: Environment, grid: Grid, running: dict[str, Any]) -> None:
        self.env, self.grid, self.running = env, grid, dict(running)

    def put(self, values: dict[str, Any], extra_vars: bool = True) -> None:
        """Apply `values` (as extra vars, or from the inventory alone when `extra_vars` is
        false and the inventory holds them)."""
        stale = {
            s.var
            for s in self.grid.settings
            if s.var not in self.running or repr(values[s.var]) != repr(self.running[s.var])
        }
        playbooks = dict.fromkeys(s.playbook for s in self.grid.settings if s.var in stale)
        self.running = {}  # unknown until every playbook has succeeded
        for name in playbooks:
            self._playbook(name, values if extra_vars else None)
        self.running = dict(values)

    def _playbook(self, name: str, values: dict[str, Any] | None) -> None:
        with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="slakit-tune-") as f:
            json.dump(values or {}, f)
            f.flush()
            args = ("-e", f"@{f.name}") if values else ()
            result = ansible.playbook(self.env, name, extra_args=args, quiet=True)
        if result.returncode != 0:
            raise SlakitError(
                f"tune: playbooks/{name} failed: {result.first_failure()}", exit_code=1
            )


Measure = Callable[[dict[str, Any]], list[LoadTestResult]]


def measurer(env: Environment, spec: Spec, stories: list[str], steps: int) -> Measure:
    """The SLA checker's load test through the first load balancer, `steps` ramp steps."""
    from slakit.sla.engine import RunOptions, run_load_tests

    credentials.export(env)
    deployed = stack.load(env)
    base_url = next(iter(deployed.lb_urls().values()))
    ramp = spec.load_test  # `steps` steps, beyond the spec's max_multiplier if need be
    ceiling = max(ramp.max_multiplier, ramp.start_multiplier * ramp.growth ** (steps - 1))
    capped = replace(spec, load_test=replace(ramp, max_steps=steps, max_multiplier=ceiling))
    options = RunOptions(stories=stories, load_test=True, ca_file=deployed.lb_ca_file())

    def measure(_values: dict[str, Any]) -> list[LoadTestResult]:
        return run_load_tests(capped, base_url, options)

    return measure


def search(
    grid: Grid,
    start: dict[str, Any],
    put: Callable[[dict[str, Any]], None],
    measure: Measure,
    result: TuneResult,
    say: Callable[[str], None] = print,
    clock: Callable[[], float] | None = None,
) -> None:
    """One setting at a time: try each value (tried_values) with the others at their best so
    far, measured
    `result.rounds` times (combine()). With one round, a value whose nominal step fails is
    measured once more and the second measurement counts."""
    now = clock or time.monotonic
    best = dict(start)
    for setting in grid.settings:
        trials = []
        for value in tried_values(setting, best[setting.var]):
            values = {**best, setting.var: value}
            began = now()
            put(values)
            trial = combine([measured(setting.var, value, values, measure, result.rounds == 1)
                             for _ in range(result.rounds)])  # fmt: skip
            trial.seconds = round(now() - began, 1)
            trials.append(trial)
            say(f"{setting.var}={value}: {summary(trial)}")
        result.trials += trials
        choice = choose(trials, best[setting.var])
        if choice is None:
            result.problems.append(
                f"no value of {setting.var} passed every story at its nominal rate"
            )
        else:
            best[setting.var] = choice.value
    result.chosen = best


def tried_values(setting: Setting, current: Any) -> list[Any]:
    """The grid's values of a setting, the current one first when the grid does not list it:
    the incumbent is always measured, so a grid value replaces it only for a measured gain."""
    listed = any(repr(v) == repr(current) for v in setting.values)
    return list(setting.values) if listed else [current, *setting.values]


def measured(var: str, value: Any, values: dict[str, Any], measure: Measure, retry: bool) -> Trial:
    """One measurement of `values`; with `retry`, a failed nominal step is measured again (one
    noisy moment must not rule a value out) and the second measurement counts."""
    trial = record(Trial(var, value, values), measure(values))
    if retry and not trial.nominal_passed:
        first = f"{summary(trial)} ({trial.note})"
        trial = record(Trial(var, value, values), measure(values))
        trial.note = "; ".join(filter(None, [f"measured twice; the first: {first}", trial.note]))
    return trial


def summary(trial: Trial) -> str:
    caps = ", ".join(
        f"{s} {c:.0f} req/s" if c else f"{s} none" for s, c in trial.capacity_rps.items()
    )
    verdict = "nominal passed" if trial.nominal_passed else "nominal FAILED"
    worst = "?" if trial.worst_p99_ms == float("inf") else f"{trial.worst_p99_ms:.1f} ms"
    return f"capacity at SLA {caps}; x{trial.multiplier:.2f} bottleneck; p99 {worst}; {verdict}"


def tuned_files(grid: Grid, chosen: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{group: {var: value}} of the chosen values, one tuned.yml per group."""
    out: dict[str, dict[str, Any]] = {}
    for s in grid.settings:
        out.setdefault(s.group, {})[s.var] = chosen[s.var]
    return out


def run(
    env: Environment,
    grid: Grid,
    spec: Spec,
    stories: list[str],
    steps: int,
    apply: bool,
    say: Callable[[str], None] = print,
    rounds: int = 1,
) -> TuneResult:
    inventory = ansible.inventory(env)
    start = incumbents(grid, inventory, ansible.resolved_role_vars(env.inventory))
    result = TuneResult(env.name, str(grid.source), stories, steps, start, rounds=rounds)
    say("start: " + ", ".join(f"{k}={v}" for k, v in start.items()))
    applier = Applier(env, grid, start)
    measure = measurer(env, spec, stories, steps)
    try:
        search(grid, start, applier.put, measure, result, say)
    except SlakitError as err:
        result.problems.append(str(err))
    finally:  # the hosts go back to the inventory's settings, tuned.yml included with apply
        if apply and result.passed:
            write_tuned(env, tuned_files(grid, result.chosen))
            result.applied = True
        say("back to the inventory's settings" + (" (tuned.yml applied)" if result.applied else ""))
        try:
            applier.put(result.chosen if result.applied else start, extra_vars=False)
        except SlakitError as err:
            result.problems.append(f"going back to the inventory's settings failed: {err}")
    return result


def tuned_path(env: Environment, group: str) -> Path:
    return env.inventory / "group_vars" / group / "tuned.yml"


def tuned_yaml(values: dict[str, Any]) -> str:
    head = "---\n# Written by `invoke tune --apply` (its report says how each value was chosen).\n"
    return head + yaml.safe_dump(values, sort_keys=False, default_flow_style=False)


def write_tuned(env: Environment, files: dict[str, dict[str, Any]]) -> None:
    for group, values in files.items():
        path = tuned_path(env, group)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(tuned_yaml(values))
