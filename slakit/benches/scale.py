"""Scale bench: the converge of the standard lab and of a 16-host lab side by side.

Each lab is recreated from fresh containers (`lab.up --recreate`: the node image is not
rebuilt), converged cold, then converged again with nothing to change, WARM_RUNS times (the
figure is the median: on a shared 2-core machine the same converge varies by a quarter). The
16-host lab is the standard one with SCALE_APP_HOSTS app hosts (`lab.up --app-hosts`), measured
first; the standard lab comes last, so the bench leaves it up and converged, its size file
removed, also when a step fails.
"""

from __future__ import annotations

from slakit.bench import BenchRow
from slakit.benches.deploy import ConvergeFigures, converge_figures
from slakit.lab import engine, nodes
from slakit.lab.spec import DEFAULT_INVENTORY, extra_app_hosts, load_spec, write_size

SCALE_APP_HOSTS = 12  # with lb-1, redis-1, redis-2 and mon-1: 16 hosts
SMALL_WARM_TARGET_S = 15.0  # stretch target of the no-change converge of the standard lab
SMALL_COLD_TARGET_S = 60.0  # stretch target of its cold converge
RATIO_TARGET = 2.0  # no-change converge of the 16-host lab over the standard lab's


def _size(app_hosts: int) -> None:
    base = load_spec(DEFAULT_INVENTORY, sized=False)
    write_size(DEFAULT_INVENTORY, extra_app_hosts(base, app_hosts), app_hosts)


def measure() -> tuple[ConvergeFigures, ConvergeFigures]:
    """(standard lab, scaled lab) figures; the standard lab is left up and converged."""
    try:
        _size(SCALE_APP_HOSTS)
        large = converge_figures()
    finally:
        _size(0)
        nodes.up(engine.client(), load_spec())  # removes the extra hosts
    small = converge_figures()
    return small, large


def rows(small: ConvergeFigures, large: ConvergeFigures) -> list[BenchRow]:
    def no_change(f: ConvergeFigures) -> str:
        return (
            f"no-change converge, {f.hosts} hosts (median of {f.warm_each} s, {f.changes} changes)"
        )

    warm_ratio = large.warm_median / small.warm_median
    return [
        BenchRow(
            "scale",
            f"cold converge, {small.hosts} hosts",
            small.cold,
            "s",
            f"<= {SMALL_COLD_TARGET_S:.0f} s (stretch)",
            small.cold <= SMALL_COLD_TARGET_S,
        ),
        BenchRow("scale", f"cold converge, {large.hosts} hosts", large.cold, "s"),
        BenchRow(
            "scale", f"cold, {large.hosts} over {small.hosts} hosts", large.cold / small.cold, "x"
        ),
        BenchRow(
            "scale",
            no_change(small),
            small.warm_median,
            "s",
            f"<= {SMALL_WARM_TARGET_S:.0f} s (stretch), 0 changes",
            small.warm_median <= SMALL_WARM_TARGET_S and small.changes == 0,
        ),
        BenchRow(
            "scale",
            no_change(large),
            large.warm_median,
            "s",
            "0 changes",
            large.changes == 0,
        ),
        BenchRow(
            "scale",
            f"no-change, {large.hosts} over {small.hosts} hosts",
            warm_ratio,
            "x",
            f"<= {RATIO_TARGET:.0f}x",
            warm_ratio <= RATIO_TARGET,
        ),
    ]


def run() -> list[BenchRow]:
    return rows(*measure())
