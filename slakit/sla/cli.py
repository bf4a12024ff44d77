"""`python -m slakit.sla`: the seed's performance_benchmark flags, all working.

Exit codes: 0 pass, 1 SLA not met (or, with --validate-production, platform not
ready), 2 bad input or configuration, 3 invalid measurement, 4 internal error (a bug:
one line on stderr, SLAKIT_DEBUG=1 for the traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from slakit.errors import SlakitError
from slakit.sla.engine import RunOptions, run_checks
from slakit.sla.model import EXIT_BAD_INPUT, EXIT_INTERNAL, Result
from slakit.sla.reports import render_html, render_junit, render_text, write_all, write_text_file
from slakit.sla.spec import load_spec

DEFAULT_BASE_URL = "http://localhost:8000"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"slakit: {message} (see --help)\n")


def build_parser(prog: str = "python -m slakit.sla") -> argparse.ArgumentParser:
    p = _Parser(
        prog=prog,
        description="Open-loop, HdrHistogram, confidence-gated SLA validation of an HTTP API.",
        epilog="Exit codes: 0 pass, 1 SLA not met / not production ready, 2 bad input, "
        "3 invalid measurement, 4 internal error. Spec format and formulas: sla/README.md.",
    )
    p.add_argument(
        "--base-url", default=DEFAULT_BASE_URL, help=f"API under test ({DEFAULT_BASE_URL})"
    )
    p.add_argument(
        "--cacert",
        default=os.environ.get("SLAKIT_SLA_CACERT") or None,
        metavar="PATH",
        help="https: verify the server with this CA bundle (PEM; default $SLAKIT_SLA_CACERT, "
        "else the system trust store)",
    )
    p.add_argument(
        "--story",
        action="append",
        metavar="{1.1,2.2,4.1,4.2,core}",
        help="story to run (repeat or comma-separate); default: all stories",
    )
    p.add_argument(
        "--comprehensive",
        action="store_true",
        help="detailed report: per-endpoint phase timings and every objective",
    )
    p.add_argument(
        "--validate-production",
        action="store_true",
        help="exit 0 only if the platform is production ready (all readiness checks)",
    )
    p.add_argument(
        "--load-test",
        action="store_true",
        help="after the check, ramp each story's rate to find its capacity at SLA",
    )
    p.add_argument(
        "--target-sla", type=float, metavar="MS", help="SLA target in ms (spec default 15)"
    )
    p.add_argument("--output-file", metavar="PATH", help="also write the text report here")
    p.add_argument("--spec", metavar="PATH", help="SLA spec YAML (default sla/spec.yml)")
    p.add_argument("--json", metavar="PATH", help="write the JSON result (usable as --baseline)")
    p.add_argument("--junit", metavar="PATH", help="write JUnit XML, one testcase per objective")
    p.add_argument("--html", metavar="PATH", help="write a self-contained HTML report with plots")
    p.add_argument("--report-dir", metavar="DIR", help="write all four reports into DIR")
    p.add_argument(
        "--baseline", metavar="PATH", help="earlier --json result; fail on a significant regression"
    )
    p.add_argument(
        "--skip-missing-credentials",
        action="store_true",
        help="report endpoints whose env credentials are unset as skipped instead of exit 2",
    )
    p.add_argument(
        "--processes", type=int, metavar="N", help="load processes per story (default: by rate)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
    p.add_argument("--quiet", action="store_true", help="do not print the text report")
    return p


def _stories(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    out = [s.strip() for v in values for s in v.split(",") if s.strip()]
    return out or None


def run(argv: Sequence[str] | None = None, prog: str = "python -m slakit.sla") -> int:
    args = build_parser(prog).parse_args(argv)
    spec = load_spec(args.spec, target_sla_ms=args.target_sla)
    stories = _stories(args.story)
    spec.select(stories)  # unknown story: exit 2 before any traffic
    if args.baseline:
        Result.load(args.baseline)  # unreadable baseline: exit 2 before any traffic
    options = RunOptions(
        stories=stories,
        load_test=args.load_test,
        validate_production=args.validate_production,
        comprehensive=args.comprehensive,
        baseline=args.baseline,
        skip_missing_credentials=args.skip_missing_credentials,
        processes=args.processes,
        progress=False if args.no_progress else None,
        ca_file=args.cacert,
    )
    result = run_checks(spec, args.base_url, options=options)
    text = render_text(result, args.comprehensive)
    if not args.quiet:
        print(text)
    if args.output_file:
        write_text_file(args.output_file, text)
    if args.json:
        write_text_file(args.json, result.to_json())
    if args.junit:
        write_text_file(args.junit, render_junit(result))
    if args.html:
        write_text_file(args.html, render_html(result))
    if args.report_dir:
        write_all(result, Path(args.report_dir))
    return result.exit_code


def main(argv: Sequence[str] | None = None, prog: str = "python -m slakit.sla") -> int:
    try:
        return run(argv, prog)
    except SystemExit as exit_:  # argparse: --help (0) or a usage error (2, one line)
        return exit_.code if isinstance(exit_.code, int) else EXIT_BAD_INPUT
    except SlakitError as err:
        print(f"slakit: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("slakit: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # a bug, not a verdict: never mistaken for exit 3
        if os.environ.get("SLAKIT_DEBUG"):
            raise
        what = " ".join(f"{type(err).__name__}: {err}".split())  # one line, whatever err says
        print(f"slakit: internal error: {what} (SLAKIT_DEBUG=1: traceback)", file=sys.stderr)
        return EXIT_INTERNAL
