"""Judge a whole run: platform summary, readiness checklist, overall status and exit code.

Per-story verdicts come from `evaluate.py`; this module only combines them with the
cache statistics, the load test and the baseline comparison.
"""

from __future__ import annotations

from slakit.sla import histogram as hist
from slakit.sla import stats
from slakit.sla.model import (
    EXIT_FAIL,
    EXIT_INVALID,
    EXIT_PASS,
    Platform,
    ReadinessCheck,
    Result,
)
from slakit.sla.spec import Spec
from slakit.status import Status


def platform_summary(result: Result, spec: Spec) -> Platform:
    measured = [s for s in result.stories if s.status != Status.SKIPPED]
    endpoints = [e for s in result.stories for e in s.endpoints]
    n = sum(s.samples for s in measured)
    within = sum(s.within_target for s in measured)
    pooled = hist.merge([hist.decode(e.histogram) for e in endpoints if e.histogram])
    platform = Platform(
        stories_tested=len(measured),
        stories_ready=sum(1 for s in result.stories if s.production_ready),
        endpoints_tested=sum(1 for e in endpoints if e.status != Status.SKIPPED),
        endpoints_passed=sum(1 for e in endpoints if e.status == Status.PASS),
        endpoints_skipped=sum(1 for e in endpoints if e.status == Status.SKIPPED),
        samples=n,
        compliance_threshold=spec.compliance,
    )
    if n:
        platform.compliance = within / n
        platform.compliance_lower = 1.0 - stats.upper_bound(
            n - within, n, spec.confidence, spec.bound
        )
        platform.confidence_level = stats.confidence_level(n - within, n, 1.0 - spec.compliance)
        platform.mean_ms = pooled.get_mean_value() / 1000.0 if pooled.get_total_count() else None
        platform.score = 100.0 * sum(s.credit for s in measured) / n
    return platform


def _pct(value: float | None) -> str:
    return "not available" if value is None else f"{value:.1%}"


def _gated(ok: bool) -> Status:
    return Status.PASS if ok else Status.FAIL


def _at_least(value: float | None, minimum: float | None) -> Status:
    """A readiness floor; no floor configured means the figure is only reported."""
    if minimum is None:
        return Status.INFO
    return _gated(value is not None and value >= minimum)


def readiness_checks(result: Result, spec: Spec) -> list[ReadinessCheck]:
    p = result.platform
    statuses = [s.status for s in result.stories]
    objectives_ok = bool(statuses) and all(s in (Status.PASS, Status.SKIPPED) for s in statuses)
    passed_stories = sum(1 for s in statuses if s == Status.PASS)
    min_score = spec.readiness.min_performance_score
    min_hit = spec.readiness.min_cache_hit_rate
    hit = result.cache.overall if result.cache.available else None
    measured = [e for s in result.stories for e in s.endpoints if e.status != Status.SKIPPED]
    slow = [
        e for e in measured if e.latency.get("mean") is None or e.latency["mean"] >= e.target_ms
    ]
    checks = [
        ReadinessCheck(
            "Platform SLA Compliance",
            f"{_pct(p.compliance)} (lower bound {_pct(p.compliance_lower)})",
            f"lower bound >= {spec.compliance:.0%}",
            _gated(p.compliance_lower is not None and p.compliance_lower >= spec.compliance),
        ),
        ReadinessCheck(
            "SLA Objectives",
            f"{passed_stories}/{len(statuses)} stories pass",
            "all stories pass",
            _gated(objectives_ok and p.stories_tested > 0),
        ),
        ReadinessCheck(
            "Performance Score",
            "not available" if p.score is None else f"{p.score:.1f}/100",
            f">= {min_score:g}" if min_score is not None else "not gated",
            _at_least(p.score, min_score),
        ),
        ReadinessCheck(
            "Cache Hit Rate",
            _pct(hit) if result.cache.available else f"not available ({result.cache.reason})",
            f">= {min_hit:.0%}" if min_hit is not None else "not gated",
            _at_least(hit, min_hit),
        ),
        ReadinessCheck(
            "Response Time",
            "not available" if p.mean_ms is None else f"{p.mean_ms:.1f}ms average",
            f"each endpoint's mean < its target (default {spec.target_ms:g}ms)",
            _gated(bool(measured) and not slow),
        ),
    ]
    if result.load_tests:
        passed = all(t.status == Status.PASS for t in result.load_tests)
        checks.append(
            ReadinessCheck(
                "Load Testing",
                "PASSED" if passed else "FAILED",
                "nominal rate sustained",
                _gated(passed),
            )
        )
    else:
        checks.append(ReadinessCheck("Load Testing", "not run", "--load-test", Status.INFO))
    if result.baseline_source:
        regressed = [r for r in result.regressions if r.status == Status.FAIL]
        checks.append(
            ReadinessCheck(
                "Regression Tests",
                "PASSED" if not regressed else f"FAILED ({len(regressed)} regressions)",
                "no significant regression",
                _gated(not regressed),
            )
        )
    else:
        checks.append(ReadinessCheck("Regression Tests", "not run", "--baseline", Status.INFO))
    invalid = [
        s.id for s in result.stories if any(o.status == Status.INVALID for o in s.objectives)
    ]
    checks.append(
        ReadinessCheck(
            "Measurement Validity",
            "VALID" if not invalid else f"INVALID objectives in story {', '.join(invalid)}",
            "no objective left undecided by schedule lag or client CPU",
            _gated(not invalid),
        )
    )
    checks.append(
        ReadinessCheck(
            "Endpoints Measured",
            f"{p.endpoints_tested}/{p.endpoints_tested + p.endpoints_skipped}",
            "none skipped",
            _gated(not p.endpoints_skipped),
        )
    )
    return checks


def verdict(result: Result, validate_production: bool) -> tuple[Status, int]:
    """Overall status and exit code (0 pass, 1 SLA not met, 3 invalid measurement)."""
    statuses = {s.status for s in result.stories}
    ramp = {t.status for t in result.load_tests}
    if Status.FAIL in statuses:
        return Status.FAIL, EXIT_FAIL
    if Status.INVALID in statuses:
        return Status.INVALID, EXIT_INVALID
    if Status.FAIL in ramp:
        return Status.FAIL, EXIT_FAIL
    if Status.INVALID in ramp:
        return Status.INVALID, EXIT_INVALID
    if any(r.status == Status.FAIL for r in result.regressions):
        return Status.FAIL, EXIT_FAIL
    if statuses <= {Status.SKIPPED}:
        return Status.FAIL, EXIT_FAIL
    if validate_production and not result.platform.ready:
        return Status.FAIL, EXIT_FAIL
    return Status.PASS, EXIT_PASS


def judge(result: Result, spec: Spec, validate_production: bool) -> None:
    """Fill in the run-level figures and verdict of a result whose stories are judged."""
    result.platform = platform_summary(result, spec)
    result.readiness = readiness_checks(result, spec)
    result.platform.ready = all(c.status != Status.FAIL for c in result.readiness)
    result.status, result.exit_code = verdict(result, validate_production)
