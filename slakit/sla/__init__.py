"""slakit's SLA checker: open-loop load, HdrHistograms, confidence-gated objectives.

Python API (what `invoke check.sla` and the deploy orchestrator call)::

    from slakit.sla import RunOptions, load_spec, run_checks, write_reports

    result = run_checks(
        "sla/spec.yml",                 # path, a loaded Spec, or None for sla/spec.yml
        "https://10.0.0.10:443",        # base URL (the load balancer)
        stories=None,                   # e.g. ["1.1", "core"]; None = all stories
        target_sla_ms=None,             # override defaults.target_ms (like --target-sla)
        options=RunOptions(validate_production=True, load_test=False, baseline=None,
                           ca_file="ca.crt"),  # https: verify with it; None = system store
    )
    paths = write_reports(result, "reports/lab/20250910T153000Z")
    raise SystemExit(result.exit_code)  # 0 pass, 1 SLA not met, 3 invalid measurement

`run_checks` raises `slakit.errors.SlakitError` (exit_code 2) on bad input: malformed
spec, unknown story, non-positive target, unreachable base URL, wrong status during
warm-up, missing credentials, a TLS certificate that does not verify against
`ca_file` (or an unusable CA file); any other exception is a bug (the command line reports it
in one line and exits 4). `run_checks_async` is the same coroutine for callers
that already run an event loop. `Result` is a dataclass tree (`result.to_json()`,
`Result.load(path)`); `write_reports` writes report.txt, report.json, junit.xml and
report.html and returns their paths.

Command line: `python -m slakit.sla --help`; spec format and formulas: sla/README.md.
"""

from __future__ import annotations

from pathlib import Path

from slakit.sla.engine import RunOptions, run_checks, run_checks_async
from slakit.sla.loop import run_loop
from slakit.sla.model import Result
from slakit.sla.reports import write_all
from slakit.sla.spec import Spec, load_spec

__all__ = [
    "Result",
    "RunOptions",
    "Spec",
    "load_spec",
    "run_checks",
    "run_checks_async",
    "run_loop",
    "write_reports",
]


def write_reports(result: Result, outdir: str | Path) -> dict[str, Path]:
    """Write text, JSON, JUnit XML and HTML reports into outdir; return their paths."""
    return write_all(result, Path(outdir))
