"""`invoke bench`: every benchmark section in one table.

A section is a function `run() -> list[BenchRow]`; register it in `SECTIONS`.
Figures are measured by the section when it runs, never copied from elsewhere.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module

from rich.console import Console
from rich.table import Table


@dataclass(frozen=True)
class BenchRow:
    section: str
    metric: str
    value: float
    unit: str
    target: str = ""  # e.g. "<= 180 s"; empty when the figure has no target
    met: bool | None = None  # None when there is no target


# "module:function" so that a section's heavy imports load only when it runs.
SECTIONS: dict[str, str] = {  # in run order: lab, deploy, scale recreate the lab, redis needs it
    "lab": "slakit.benches.lab:run",
    "deploy": "slakit.benches.deploy:run",
    "scale": "slakit.benches.scale:run",
    "redis": "slakit.benches.redis:run",
    "tls": "slakit.benches.tls:run",
    "service": "slakit.benches.service:run",
    "endpoints": "slakit.benches.endpoints:run",
    "metrics": "slakit.benches.metrics:run",
    "checker": "slakit.benches.checker:run",
    "tail": "slakit.benches.tail:run",
    "tune": "slakit.benches.tune:run",
}


def machine_line() -> str:
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{platform.node()} · {platform.system()} {platform.release()} · "
        f"{os.cpu_count()} cores · {mem_gib:.0f} GiB · Python {platform.python_version()}"
    )


def load_section(name: str) -> Callable[[], list[BenchRow]]:
    module, _, func = SECTIONS[name].partition(":")
    return getattr(import_module(module), func)


def render(rows: list[BenchRow], console: Console | None = None) -> None:
    table = Table(title=f"slakit bench — {machine_line()}")
    for col in ("section", "metric", "value", "unit", "target", "met"):
        table.add_column(col, justify="right" if col == "value" else "left")
    for row in rows:
        met = "" if row.met is None else ("yes" if row.met else "NO")
        table.add_row(row.section, row.metric, f"{row.value:,.2f}", row.unit, row.target, met)
    # A pipe or a CI log gets full rows rather than rich's 80-column wrapping.
    console = console or Console()
    if not console.is_terminal:
        console = Console(width=160)
    console.print(table)
