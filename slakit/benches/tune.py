"""Tune bench: `invoke tune` on the deployed lab with the default grid (sla/tune.yml) for the
stories in STORIES, then each story's capacity at SLA with the settings the lab started with
against the chosen ones, both measured in that one run. The hosts go back to the inventory's
settings at the end (no --apply). Long: each of the grid's values is applied and ramped.
SLAKIT_BENCH_TUNE_STEPS (default 8: up to x16.8 the nominal rate) sets the ramp's length."""

from __future__ import annotations

import os

from slakit import envs, lock, tune
from slakit.bench import BenchRow
from slakit.errors import SlakitError
from slakit.sla.spec import load_spec

STORIES = ["1.1", "4.2"]
STEPS = int(os.environ.get("SLAKIT_BENCH_TUNE_STEPS", "8"))
TARGET_RPS = 2000.0
SECTION = "tune"


def run() -> list[BenchRow]:
    env = envs.resolve("lab")
    grid = tune.load_grid(tune.DEFAULT_GRID)
    spec = load_spec().select(STORIES)
    with lock.held(env, "invoke bench --only tune"):
        result = tune.run(env, grid, spec, STORIES, STEPS, apply=False)
    start = next((t for t in result.trials if t.values == result.start), None)
    chosen = next((t for t in result.trials if t.values == result.chosen), None)
    if start is None or chosen is None:
        raise SlakitError(
            f"tune bench: no measurement of the start or the choice: {result.problems}"
        )
    changed = ", ".join(f"{k}={v}" for k, v in result.chosen.items() if result.start[k] != v)
    rows = []
    for story in STORIES:
        for label, trial in (
            ("start settings", start),
            (f"tuned ({changed or 'unchanged'})", chosen),
        ):
            capacity = trial.capacity_rps.get(story) or 0.0
            rows.append(
                BenchRow(
                    SECTION,
                    f"story {story} capacity at SLA, {label}",
                    capacity,
                    "req/s",
                    f">= {TARGET_RPS:,.0f} req/s",
                    capacity >= TARGET_RPS,
                )
            )
    return rows
