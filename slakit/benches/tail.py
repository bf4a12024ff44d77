"""Tail bench: the on-demand story `tail` of sla/spec.yml (the warm dashboard alone, open loop
at 1,000 req/s for 20 s through the lab's first load balancer), measured by slakit's checker:
p50, p99 and p99.9 of the latency (from each request's scheduled send time), and whether the
measurement was valid (the client kept its schedule: lag p99 and CPU within sla/spec.yml's
validity). Needs a deployed lab; changes nothing."""

from __future__ import annotations

from slakit import envs, stack
from slakit.bench import BenchRow
from slakit.errors import SlakitError

SECTION = "tail"
STORY = "tail"
P99_TARGET_MS = 2.0


def run() -> list[BenchRow]:
    from slakit.sla import RunOptions, load_spec, run_checks

    deployed = stack.load(envs.resolve("lab"))
    url = next(iter(deployed.lb_urls().values()))
    spec = load_spec().select([STORY])
    result = run_checks(
        spec, url, options=RunOptions(progress=False, ca_file=deployed.lb_ca_file())
    )
    story = result.stories[0]
    if not story.endpoints or not story.samples:
        raise SlakitError(f"tail bench: no samples measured against {url}")
    latency, validity = story.endpoints[0].latency, story.validity
    rate = (
        f"{story.endpoints[0].sent:,} requests at {spec.stories[0].endpoints[0].load.rate:,.0f}/s"
    )
    rows = [
        BenchRow(SECTION, f"warm dashboard p50, {rate}", latency.get("p50") or 0.0, "ms"),
        BenchRow(
            SECTION,
            "warm dashboard p99",
            latency.get("p99") or 0.0,
            "ms",
            f"<= {P99_TARGET_MS:g} ms",
            (latency.get("p99") or float("inf")) <= P99_TARGET_MS,
        ),
        BenchRow(SECTION, "warm dashboard p99.9", latency.get("p99_9") or 0.0, "ms"),
        BenchRow(SECTION, "checker schedule lag p99", validity.lag_p99_ms or 0.0, "ms"),
        BenchRow(
            SECTION,
            "measurement valid (1 = yes)"
            + (f": {'; '.join(validity.problems)}" if validity.problems else ""),
            1.0 if validity.valid else 0.0,
            "",
            "VALID",
            validity.valid,
        ),
    ]
    return rows
