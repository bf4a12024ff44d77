"""Deploy bench: converge of the lab from fresh containers (cold; node image already built),
then again with nothing to change (warm), three times: the same warm converge measured
16-25 s within one hour on a shared 2-core machine, so the figure is the median. Recreates
the lab's containers. `converge_figures` is shared with the scale bench (scale.py)."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from slakit import ansible, envs
from slakit.bench import BenchRow
from slakit.errors import SlakitError
from slakit.lab import engine, nodes
from slakit.lab.spec import load_spec

COLD_TARGET_S, WARM_TARGET_S = 180.0, 20.0
WARM_RUNS = 3


@dataclass(frozen=True)
class ConvergeFigures:
    hosts: int
    cold: float  # seconds of the first converge of fresh containers
    warm: tuple[float, ...]  # seconds of each no-change converge after it
    changes: int  # changes reported by the no-change converges, all together

    @property
    def warm_median(self) -> float:
        return statistics.median(self.warm)

    @property
    def warm_each(self) -> str:
        return " / ".join(f"{s:.1f}" for s in self.warm)


def _timed_converge(env: envs.Environment) -> tuple[float, ansible.PlayResult]:
    start = time.monotonic()
    result = ansible.playbook(env, "site.yml", quiet=True)
    if result.returncode != 0:
        raise SlakitError(f"deploy bench: converge failed: {result.first_failure()}")
    return time.monotonic() - start, result


def converge_figures(warm_runs: int = WARM_RUNS) -> ConvergeFigures:
    """Recreate the lab as its inventory (and size file) says, converge it cold, then
    `warm_runs` times with nothing to change."""
    spec = load_spec()
    nodes.up(engine.client(), spec, recreate=True)
    env = envs.resolve("lab")
    cold, _ = _timed_converge(env)
    warm = [_timed_converge(env) for _ in range(warm_runs)]
    return ConvergeFigures(
        len(spec.hosts),
        cold,
        tuple(seconds for seconds, _ in warm),
        sum(result.changed for _, result in warm),
    )


def run() -> list[BenchRow]:
    figures = converge_figures()
    return [
        BenchRow(
            "deploy",
            "cold converge, fresh lab",
            figures.cold,
            "s",
            f"<= {COLD_TARGET_S:.0f} s",
            figures.cold <= COLD_TARGET_S,
        ),
        BenchRow(
            "deploy",
            f"no-change converge, median of {figures.warm_each} s ({figures.changes} changes)",
            figures.warm_median,
            "s",
            f"<= {WARM_TARGET_S:.0f} s",
            figures.warm_median <= WARM_TARGET_S,
        ),
    ]
