"""`invoke bench`: every benchmark section, one table."""

from __future__ import annotations

from slakit import bench as registry
from slakit.tasks import task


@task(help={"only": f"comma-separated sections to run ({', '.join(registry.SECTIONS)})"})
def bench(c, only=""):
    """Run the benchmarks and print one table of measured figures against their targets."""
    names = [n.strip() for n in only.split(",") if n.strip()] or list(registry.SECTIONS)
    unknown = [n for n in names if n not in registry.SECTIONS]
    if unknown:
        from slakit.errors import SlakitError

        raise SlakitError(
            f"unknown bench section {', '.join(unknown)} (known: {', '.join(registry.SECTIONS)})"
        )
    rows = []
    for name in names:
        rows += registry.load_section(name)()
    registry.render(rows)
