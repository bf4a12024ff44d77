"""Lab bench: how long `lab.up` takes cold (containers created) and warm (all adopted)."""

from __future__ import annotations

import time

from slakit.bench import BenchRow
from slakit.lab import engine, nodes
from slakit.lab.spec import load_spec


def run() -> list[BenchRow]:
    client, spec = engine.client(), load_spec()
    nodes.node_image(client)  # image build is not part of either figure
    start = time.monotonic()
    nodes.up(client, spec, recreate=True)
    cold = time.monotonic() - start
    start = time.monotonic()
    report = nodes.up(client, spec)
    warm = time.monotonic() - start
    return [
        BenchRow("lab", f"lab.up cold ({len(spec.hosts)} hosts created)", cold, "s"),
        BenchRow("lab", f"lab.up warm ({len(report.adopted)} adopted)", warm, "s"),
    ]
