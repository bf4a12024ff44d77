"""`python -m slakit.sla`: the seed's performance_benchmark flags, all working.

`python -m slakit.sla rules --spec sla/spec.yml`: Prometheus rules from the spec instead
(slakit/sla/rules.py; sla/README.md "Alert rules from the spec").

`python -m slakit.sla share --share I/N --start-at EPOCH ...` on each load host and
`python -m slakit.sla merge SHARE.json ...` on the controller: one run's load from several
machines (slakit/sla/distributed.py; sla/README.md "Load from several machines").

Exit codes: 0 pass, 1 SLA not met (or, with --validate-production, platform not
ready), 2 bad input or configuration, 3 invalid measurement, 4 internal error (a bug:
one line on stderr, SLAKIT_DEBUG=1 for the traceback).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from slakit.errors import SlakitError
from slakit.sla.engine import RunOptions, run_checks
from slakit.sla.model import EXIT_BAD_INPUT, EXIT_INTERNAL, Result
from slakit.sla.reports import render_html, render_junit, render_text, write_all, write_text_file
from slakit.sla.rules import DEFAULT_BUCKETS_MS, RuleOptions, render
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


def build_rules_parser(prog: str) -> argparse.ArgumentParser:
    p = _Parser(
        prog=prog,
        description="Prometheus recording and alerting rules generated from the SLA spec.",
        epilog="Exit codes: 0 written, 2 bad input (e.g. a target that is not a bucket). "
        'What is generated: sla/README.md "Alert rules from the spec".',
    )
    p.add_argument("--spec", metavar="PATH", help="SLA spec YAML (default sla/spec.yml)")
    p.add_argument(
        "--buckets-ms",
        type=_buckets,
        default=DEFAULT_BUCKETS_MS,
        metavar="MS,MS,...",
        help="the service's latency histogram buckets in ms (default: "
        f"{','.join(f'{b:g}' for b in DEFAULT_BUCKETS_MS)})",
    )
    p.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        metavar="N",
        help="divide every window and for: by N (a lab drill: 60 turns 1h into 1m)",
    )
    p.add_argument(
        "--scrape-interval",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="Prometheus's scrape interval; every rate window must span 4 of them (15)",
    )
    p.add_argument(
        "--persist-instance",
        metavar="REGEX",
        help="node_exporter instance label of the persistent Redis's host (default: every node)",
    )
    p.add_argument("--out", metavar="FILE", help="write the rules here (default: stdout)")
    return p


def _buckets(value: str) -> tuple[float, ...]:
    try:
        buckets = tuple(float(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of ms: {value!r}") from None
    if not buckets or not all(b > 0 and math.isfinite(b) for b in buckets):
        raise argparse.ArgumentTypeError(f"buckets must be positive numbers of ms: {value!r}")
    return tuple(sorted(set(buckets)))


def run_rules(argv: Sequence[str], prog: str) -> int:
    args = build_rules_parser(prog).parse_args(argv)
    options = RuleOptions(
        buckets_ms=args.buckets_ms,
        time_scale=args.time_scale,
        scrape_interval_s=args.scrape_interval,
        persist_instance=args.persist_instance,
    )
    text = render(load_spec(args.spec), options)
    if args.out:
        write_text_file(args.out, text)
    else:
        sys.stdout.write(text)
    return 0


def build_share_parser(prog: str) -> argparse.ArgumentParser:
    p = _Parser(
        prog=prog,
        description="Measure this host's share of a distributed run (no verdict): every N-th "
        "request of each endpoint's schedule from the I-th, each story from its common start.",
        epilog="Exit codes: 0 written, 2 bad input, 3 a load process failed. The controller "
        "merges the shares: python -m slakit.sla merge (sla/README.md, Load from several "
        "machines).",
    )
    p.add_argument("--base-url", required=True, help="API under test")
    p.add_argument("--cacert", metavar="PATH", help="https: verify with this CA bundle (PEM)")
    p.add_argument("--spec", metavar="PATH", help="SLA spec YAML (default sla/spec.yml)")
    p.add_argument("--story", action="append", help="story to run (repeat or comma-separate)")
    p.add_argument("--target-sla", type=float, metavar="MS", help="SLA target in ms")
    p.add_argument("--share", required=True, metavar="I/N", help="this host's share, e.g. 1/2")
    p.add_argument(
        "--start-at",
        required=True,
        type=float,
        metavar="EPOCH",
        help="the first story's common start instant, Unix seconds (every host the same)",
    )
    p.add_argument("--processes", type=int, metavar="N", help="load processes on this host")
    p.add_argument("--out", required=True, metavar="PATH", help="write the share's JSON here")
    return p


def run_share(argv: Sequence[str], prog: str) -> int:
    from slakit.sla.distributed import measure_share, parse_share

    args = build_share_parser(prog).parse_args(argv)
    spec = load_spec(args.spec, target_sla_ms=args.target_sla).select(_stories(args.story))
    share = parse_share(args.share)
    options = RunOptions(processes=args.processes, progress=False, ca_file=args.cacert)
    data = measure_share(spec, args.base_url, share, args.start_at, options)
    write_text_file(args.out, json.dumps(data))
    return 0


def build_merge_parser(prog: str) -> argparse.ArgumentParser:
    p = _Parser(
        prog=prog,
        description="Merge the load hosts' shares into one result and one verdict.",
        epilog="Exit codes as a single run's: 0 pass, 1 SLA not met, 2 bad input (shares "
        "that do not cover the load once), 3 invalid measurement.",
    )
    p.add_argument("shares", nargs="+", metavar="SHARE.json", help="one file per load host")
    p.add_argument("--spec", metavar="PATH", help="the spec the hosts used (sla/spec.yml)")
    p.add_argument("--target-sla", type=float, metavar="MS", help="as given to the hosts")
    p.add_argument("--validate-production", action="store_true", help="as for a single run")
    p.add_argument("--baseline", metavar="PATH", help="earlier --json result to compare with")
    p.add_argument("--report-dir", metavar="DIR", help="write report.txt/.json/.html, junit.xml")
    p.add_argument("--quiet", action="store_true", help="do not print the text report")
    return p


def run_merge(argv: Sequence[str], prog: str) -> int:
    from slakit.sla.distributed import load_share, merge_shares

    args = build_merge_parser(prog).parse_args(argv)
    spec = load_spec(args.spec, target_sla_ms=args.target_sla)
    shares = {}
    for path in args.shares:
        data = load_share(path)
        shares[str(data["host"])] = data
    if len(shares) != len(args.shares):
        raise SlakitError("two shares come from one host name")
    options = RunOptions(validate_production=args.validate_production, baseline=args.baseline)
    result = merge_shares(spec, shares, options)
    if not args.quiet:
        print(render_text(result))
    if args.report_dir:
        write_all(result, Path(args.report_dir))
    return result.exit_code


def run(argv: Sequence[str] | None = None, prog: str = "python -m slakit.sla") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["rules"]:
        return run_rules(argv[1:], f"{prog} rules")
    if argv[:1] == ["share"]:
        return run_share(argv[1:], f"{prog} share")
    if argv[:1] == ["merge"]:
        return run_merge(argv[1:], f"{prog} merge")
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
