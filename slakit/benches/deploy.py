"""Deploy bench: converge of the four-host lab from fresh containers (cold; node image
already built), then again with nothing to change (warm), three times: the same warm
converge measured 16-25 s within one hour on a shared 2-core machine, so the figure is the
median. Recreates the lab's containers."""

from __future__ import annotations

import statistics
import time

from slakit import ansible, envs
from slakit.bench import BenchRow
from slakit.errors import SlakitError
from slakit.lab import engine, nodes
from slakit.lab.spec import load_spec

COLD_TARGET_S, WARM_TARGET_S = 180.0, 20.0
WARM_RUNS = 3


def _timed_converge(env: envs.Environment) -> tuple[float, ansible.PlayResult]:
    start = time.monotonic()
    result = ansible.playbook(env, "site.yml", quiet=True)
    if result.returncode != 0:
        raise SlakitError(f"deploy bench: converge failed: {result.first_failure()}")
    return time.monotonic() - start, result


def run() -> list[BenchRow]:
    nodes.up(engine.client(), load_spec(), recreate=True)
    env = envs.resolve("lab")
    cold, _ = _timed_converge(env)
    warm_runs = [_timed_converge(env) for _ in range(WARM_RUNS)]
    warm = statistics.median(seconds for seconds, _ in warm_runs)
    changes = sum(result.changed for _, result in warm_runs)
    each = " / ".join(f"{seconds:.1f}" for seconds, _ in warm_runs)
    return [
        BenchRow(
            "deploy",
            "cold converge, fresh lab",
            cold,
            "s",
            f"<= {COLD_TARGET_S:.0f} s",
            cold <= COLD_TARGET_S,
        ),
        BenchRow(
            "deploy",
            f"no-change converge, median of {each} s ({changes} changes)",
            warm,
            "s",
            f"<= {WARM_TARGET_S:.0f} s",
            warm <= WARM_TARGET_S,
        ),
    ]
