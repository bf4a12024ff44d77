"""The text report, in the layout of the seed guide ("COMPREHENSIVE PERFORMANCE ...")."""

from __future__ import annotations

from slakit.sla.model import ObjectiveResult, Result, StoryResult
from slakit.status import MARK, Status

RULE = "=" * 80
SUB = "-" * 40
YES, NO = "✅ YES", "❌ NO"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}ms"


def _ms2(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}ms"


def _count(summary: dict[str, float | None]) -> int:
    return int(summary.get("count") or 0)


def _pct(value: float | None, digits: int = 1) -> str:
    return "not available" if value is None else f"{value:.{digits}%}"


def render_text(result: Result, comprehensive: bool | None = None) -> str:
    detail = result.options.get("comprehensive", False) if comprehensive is None else comprehensive
    p = result.platform
    out = [
        RULE,
        "COMPREHENSIVE PERFORMANCE BENCHMARK REPORT",
        f"Generated: {result.generated}",
        f"SLA Target: <{result.target_ms:g}ms response time",
        f"Test Environment: {result.base_url}",
        RULE,
        "",
        "🎯 EXECUTIVE SUMMARY",
        SUB,
        f"Total Stories Tested: {p.stories_tested}",
        f"Total Endpoints Tested: {p.endpoints_tested}"
        + (f" ({p.endpoints_skipped} skipped)" if p.endpoints_skipped else ""),
        "Endpoint Success Rate: "
        + (_pct(p.endpoints_passed / p.endpoints_tested) if p.endpoints_tested else "n/a"),
        f"Platform SLA Compliance: {_pct(p.compliance)}"
        + (
            f" (≥{_pct(p.compliance_lower)} at {result.confidence:.0%} confidence)"
            if p.compliance_lower is not None
            else ""
        ),
        f"Average Response Time: {_ms(p.mean_ms)}",
        f"Production Ready Stories: {p.stories_ready}/{len(result.stories)}",
        f"Platform Production Ready: {YES if p.ready else NO}",
        f"Confidence Level: {_pct(p.confidence_level)}"
        + (
            f" (that platform compliance is ≥{p.compliance_threshold:.0%})"
            if p.confidence_level is not None
            else ""
        ),
        f"Measurement: {_measurement_line(result)}",
    ]
    if result.load_hosts:
        out += ["", *_load_hosts(result)]
    for story in result.stories:
        out += ["", *_story(story, result, detail)]
    out += ["", *_cache(result)]
    if result.load_tests:
        out += ["", *_load_tests(result)]
    if result.baseline_source:
        out += ["", *_regressions(result)]
    out += ["", *_assessment(result), ""]
    return "\n".join(out)


def _load_hosts(result: Result) -> list[str]:
    """Who sent what in a distributed run (`--from GROUP`, sla/README.md)."""
    hosts = result.load_hosts
    out = [f"🖧 LOAD HOSTS: {len(hosts)}, one common start, histograms merged", SUB]
    for h in hosts:
        stories = ", ".join(f"{sid}: {n}" for sid, n in h.stories.items())
        lag = f"{h.lag_p99_ms:.2f}ms" if h.lag_p99_ms is not None else "n/a"
        cpu = f"{h.client_cpu:.0%}" if h.client_cpu is not None else "n/a"
        out.append(
            f"{h.host} (share {h.share}): {h.sent} requests sent, {h.ok} ok ({stories}); "
            f"{h.processes} process(es), schedule lag p99 {lag}, client CPU {cpu}"
        )
        offset = (
            f"; clock offset from the controller {h.offset_ms[0]:+.0f}..{h.offset_ms[1]:+.0f} ms"
            if len(h.offset_ms) == 2
            else ""
        )
        out.append(f"   clock: {h.clock or 'unknown'}{offset}")
    total = sum(h.sent for h in hosts)
    out.append(f"Merged: {total} requests = " + " + ".join(str(h.sent) for h in hosts))
    return out


def _measurement_line(result: Result) -> str:
    flagged = [s for s in result.stories if s.validity.problems or s.status == Status.INVALID]
    if flagged:
        notes = []
        for s in flagged:
            problems = ", ".join(s.validity.problems or ["too few samples"])
            verdict = {Status.PASS: "passed anyway", Status.FAIL: "failed anyway"}.get(
                s.status, "INVALID"
            )
            notes.append(f"story {s.id}: {problems} ({verdict})")
        invalid = any(s.status == Status.INVALID for s in result.stories)
        head = "INVALID" if invalid else "LIMITS EXCEEDED"
        return f"{head} ({'; '.join(notes)})"
    lags = [s.validity.lag_p99_ms for s in result.stories if s.validity.lag_p99_ms is not None]
    cpus = [s.validity.client_cpu for s in result.stories if s.validity.client_cpu is not None]
    parts = ["VALID"]
    if lags:
        parts.append(f"schedule lag p99 ≤ {max(lags):.2f}ms")
    if cpus:
        parts.append(f"client CPU ≤ {max(cpus):.0%}")
    parts.append(f"{result.bound} bounds")
    return ", ".join(parts)


def _story(story: StoryResult, result: Result, detail: bool) -> list[str]:
    head = f"📊 STORY {story.id.upper()}: {story.name}"
    if story.status == Status.SKIPPED:
        return [head, f"   Status: SKIPPED ({story.skip_reason})"]
    lines = [
        head,
        f"   Priority: {story.priority.upper()}",
        f"   SLA Compliance: {_pct(story.compliance)}"
        + (
            f" (≥{_pct(story.compliance_lower)} at {result.confidence:.0%} confidence,"
            f" target ≥{story.compliance_threshold:.0%})"
            if story.compliance_lower is not None
            else ""
        ),
        f"   Average Response Time: {_ms(story.mean_ms)}",
        f"   p50/p95/p99: {_ms(story.p50_ms)} / {_ms(story.p95_ms)} / {_ms(story.p99_ms)}",
        "   Performance Score: " + ("n/a" if story.score is None else f"{story.score:.1f}/100"),
        f"   Production Ready: {YES if story.production_ready else NO}"
        + ("" if story.status == Status.PASS else f" ({story.status.upper()})"),
        f"   Load: {_load_line(story)}",
    ]
    if story.validity.problems:
        lines.append(
            f"   ⚠️ Measurement limits exceeded: {'; '.join(story.validity.problems)}"
            " (passes stand: client delays only add latency; failures stand only if they"
            " survive crediting the worst schedule lag)"
        )
    for objective in story.objectives:
        if objective.scope == "story" or detail or objective.status != Status.PASS:
            lines.append("   " + _objective_line(objective))
    lines.append("   Endpoints:")
    for e in story.endpoints:
        if e.status == Status.SKIPPED:
            lines.append(f"   ⏭️ SKIP {e.key}: {e.skip_reason}")
            continue
        lat = e.latency
        errors = f", {e.error_count} errors" if e.error_count else ""
        lines.append(
            f"   {MARK.get(e.status, '')} {e.status.upper()} {e.key}: avg {_ms(lat.get('mean'))}"
            f", p50 {_ms(lat.get('p50'))}, p95 {_ms(lat.get('p95'))}, p99 {_ms(lat.get('p99'))}"
            f" (target {e.target_ms:g}ms, n={e.sent}{errors})"
        )
        if detail:
            lines.append(
                f"        connect p50 {_ms2(e.connect.get('p50'))}"
                + (f", TLS handshake p50 {_ms2(e.tls.get('p50'))}" if e.tls.get("count") else "")
                + f" ({_count(e.connect)} connections, {e.connections_made} opened under load)"
                f", first byte p50 {_ms2(e.ttfb.get('p50'))}"
                f", service p50 {_ms2(e.service.get('p50'))} p99 {_ms2(e.service.get('p99'))}"
                f", schedule lag p99 {_ms2(e.lag.get('p99'))}"
            )
            if e.errors:
                lines.append(
                    "        errors: " + ", ".join(f"{k} x{v}" for k, v in e.errors.items())
                )
    return lines


def _load_line(story: StoryResult) -> str:
    duration = f"{story.duration_s:.1f}s" if story.duration_s else "n/a"
    if story.mode == "open" and story.rate_rps:
        how = f"open loop, {story.rate_rps:g} req/s total"
    else:
        how = f"{story.mode} loop"
    return f"{how}, {story.samples} requests in {duration}, {story.validity.processes} process(es)"


def _objective_line(o: ObjectiveResult) -> str:
    where = o.endpoint or f"story {o.story_id}"
    if o.upper_bound is None:
        return f"{MARK.get(o.status, '')} {where} {o.name}: {o.message or o.status}"
    text = (
        f"{MARK.get(o.status, '')} {where} {o.name}: {o.exceedances}/{o.samples} over"
        f" (upper bound {o.upper_bound:.2%} vs allowed {o.allowed:.2%},"
        f" confidence {o.confidence_level:.1%})"
    )
    if o.status != Status.PASS and o.message:
        text += f" — {o.status.upper()}: {o.message}"
    return text


def _cache(result: Result) -> list[str]:
    c = result.cache
    lines = ["Cache Performance Statistics:"]
    if not c.available:
        return [*lines, f"- not available ({c.reason})"]
    lines += [
        f"- L0 Memory Hit Rate: {_pct(c.l0)}",
        f"- L1 Redis Hit Rate: {_pct(c.l1)}",
        f"- L2 Persistent Hit Rate: {_pct(c.l2)}",
        f"- Overall Hit Rate: {_pct(c.overall)}",
    ]
    if c.workers is not None:
        lines.append(f"- Workers reporting: {c.workers}")
    return lines


def _load_tests(result: Result) -> list[str]:
    lines = ["📈 LOAD TEST (rate ramp, capacity at SLA)", SUB]
    for t in result.load_tests:
        capacity = "none" if t.capacity_rps is None else f"{t.capacity_rps:.0f} req/s"
        lines.append(
            f"Story {t.story_id}: {t.status.upper()} — capacity at SLA {capacity}"
            f" (nominal {t.nominal_rps:g} req/s)" + (f"; {t.note}" if t.note else "")
        )
        for s in t.steps:
            lines.append(
                f"   {MARK.get(s.status, '')} {s.rate_rps:7.0f} req/s x{s.multiplier:.3g}"
                f" {s.duration_s:g}s: p50 {_ms(s.p50_ms)} p95 {_ms(s.p95_ms)}"
                f" p99 {_ms(s.p99_ms)}, compliance {_pct(s.compliance)}"
                + (f" — {s.note}" if s.note else "")
            )
    return lines


def _regressions(result: Result) -> list[str]:
    regressed = [r for r in result.regressions if r.status == Status.FAIL]
    lines = [f"🔁 REGRESSION CHECK against {result.baseline_source}", SUB]
    if not result.regressions:
        return [*lines, "No endpoint in common with the baseline."]
    lines.append(
        f"{len(result.regressions)} comparisons, {len(regressed)} significant regression(s)"
    )
    lines += [f"   ❌ story {r.story_id} {r.endpoint}: {r.message}" for r in regressed]
    return lines


def _assessment(result: Result) -> list[str]:
    ready = result.platform.ready
    lines = [
        RULE,
        f"🎯 PRODUCTION READINESS ASSESSMENT: {'✅ PASSED' if ready else '❌ FAILED'}",
        RULE,
    ]
    for check in result.readiness:
        lines.append(
            f"{MARK.get(check.status, '')} {check.name}: {check.value} (target: {check.target})"
        )
    lines += [
        "",
        f"Platform Status: {'PRODUCTION READY' if ready else 'NOT PRODUCTION READY'}",
        f"Confidence Level: {_pct(result.platform.confidence_level)}",
        f"Deployment Recommendation: {'✅ APPROVED' if ready else '❌ NOT APPROVED'}",
        f"Verdict: {result.status.upper()} (exit code {result.exit_code})",
    ]
    return lines
