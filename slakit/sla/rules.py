"""Prometheus rules from the SLA spec: SLI recording rules, burn-rate and operational alerts.

What is generated, the formulas and how windows scale: sla/README.md, "Alert rules from the
spec". Everything is emitted in a fixed order (stories by id, endpoints by route and method) so
the file diffs cleanly between runs.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import yaml

from slakit.errors import SlakitError
from slakit.sla.spec import Endpoint, Objective, Spec, Story

# The service's slakit_http_request_duration_seconds buckets, in ms (the service's contract).
DEFAULT_BUCKETS_MS: tuple[float, ...] = (
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    15.0,
    22.5,
    25.0,
    50.0,
    100.0,
    250.0,
    500.0,
    1000.0,
    2500.0,
)
DURATION = "slakit_http_request_duration_seconds"
SLI = "story:slakit_sli_good:ratio_rate"  # + the window, e.g. ratio_rate5m
APP_JOB, REDIS_JOB, NODE_JOB = "slakit-app", "redis", "node"
MIN_SAMPLES_PER_WINDOW = 4  # rate() over fewer scrape intervals often sees one sample only
_MINUTE, _HOUR, _DAY = 60, 3600, 86400


@dataclass(frozen=True)
class BurnAlert:
    """Fires while the error ratio over both windows exceeds burn_rate x the story's budget."""

    alert: str
    severity: str
    burn_rate: float
    long_s: int
    short_s: int
    for_s: int
    budget_spent: str  # what a burn at the threshold over long_s costs, for the description


# The SRE workbook ("Alerting on SLOs", multiwindow multi-burn-rate) for a 30-day budget: 14.4x
# over 1 h spends 2 % of it, 6x over 6 h 5 %, 1x over 3 d 10 %. The short window (1/12 of the
# long) lets the alert resolve soon after the burn stops.
BURN_ALERTS: tuple[BurnAlert, ...] = (
    BurnAlert("SlakitBudgetBurnFast", "page", 14.4, _HOUR, 5 * _MINUTE, 2 * _MINUTE, "2 %"),
    BurnAlert("SlakitBudgetBurnMedium", "page", 6.0, 6 * _HOUR, 30 * _MINUTE, 15 * _MINUTE, "5 %"),
    BurnAlert("SlakitBudgetBurnSlow", "ticket", 1.0, 3 * _DAY, 6 * _HOUR, _HOUR, "10 %"),
)


@dataclass(frozen=True)
class Ops:
    """Thresholds and windows (seconds) of the operational alerts."""

    down_for_s: int = _MINUTE
    error_ratio_max: float = 0.01
    error_window_s: int = 5 * _MINUTE
    error_for_s: int = 5 * _MINUTE
    cache_window_s: int = 30 * _MINUTE
    cache_for_s: int = 10 * _MINUTE
    aof_for_s: int = _MINUTE
    disk_trend_window_s: int = 6 * _HOUR
    disk_full_within_s: int = _DAY
    disk_filling_below: float = 0.40  # free share under which a falling trend alerts
    disk_filling_for_s: int = _HOUR
    disk_low_below: float = 0.10
    disk_low_for_s: int = 5 * _MINUTE


@dataclass(frozen=True)
class RuleOptions:
    buckets_ms: tuple[float, ...] = DEFAULT_BUCKETS_MS
    time_scale: float = 1.0  # every window and `for:` is divided by it (the lab's drills)
    scrape_interval_s: float = 15.0
    persist_instance: str | None = None  # node_exporter `instance` regex of the persist host
    burn_alerts: tuple[BurnAlert, ...] = BURN_ALERTS
    ops: Ops = field(default_factory=Ops)


def duration(seconds: int) -> str:
    """A Prometheus duration in its largest whole unit: 300 -> 5m, 4320 -> 72m."""
    for unit, size in (("d", _DAY), ("h", _HOUR), ("m", _MINUTE)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _string(value: str) -> str:
    return json.dumps(value)  # JSON's escapes are valid in a PromQL string


def _selector(metric: str, *matchers: tuple[str, str, str]) -> str:
    inner = ",".join(f"{name}{op}{_string(value)}" for name, op, value in matchers)
    return f"{metric}{{{inner}}}"


def _le(bucket_ms: float) -> str:
    return repr(bucket_ms / 1000)  # the service writes le as Python's repr of seconds


def budget(story: Story) -> float:
    """Error budget of a story: 1 - its compliance objective."""
    return Objective(percentile=story.compliance * 100, scope="story").allowed


def _target_ms(story: Story, endpoint: Endpoint) -> float:
    compliance = Objective(percentile=story.compliance * 100, scope="story")
    return compliance.threshold_ms(endpoint.target_ms)


def _bucket(spec: Spec, story: Story, endpoint: Endpoint, buckets_ms: tuple[float, ...]) -> float:
    target = _target_ms(story, endpoint)
    for bucket in buckets_ms:
        if math.isclose(bucket, target, rel_tol=1e-9):
            return bucket
    raise SlakitError(
        f"{spec.source}: story {story.id}: {endpoint.key}: target {target:g} ms is not a bucket "
        f"boundary of {DURATION} ({', '.join(f'{b:g}' for b in buckets_ms)} ms); the SLI "
        "needs an exact le: add it to the service's buckets and to --buckets-ms"
    )


class _Windows:
    def __init__(self, options: RuleOptions) -> None:
        self.options = options

    def rate(self, seconds: int) -> str:
        scaled = max(1, round(seconds / self.options.time_scale))
        floor = MIN_SAMPLES_PER_WINDOW * self.options.scrape_interval_s
        if scaled < floor:
            raise SlakitError(
                f"--time-scale {self.options.time_scale:g} makes the {duration(seconds)} window "
                f"{duration(scaled)}, under {MIN_SAMPLES_PER_WINDOW} scrape intervals "
                f"({floor:g}s): rate() would see too few samples; lower --time-scale or "
                "--scrape-interval"
            )
        return duration(scaled)

    def for_(self, seconds: int) -> dict[str, str]:
        scaled = round(seconds / self.options.time_scale)
        return {"for": duration(scaled)} if scaled > 0 else {}


def _sli_expr(story: Story, targets: dict[str, float], window: str) -> str:
    endpoints = sorted(story.endpoints, key=lambda e: (e.path, e.method))
    good = [
        _selector(
            f"{DURATION}_bucket",
            ("le", "=", _le(targets[e.key])),
            ("method", "=", e.method),
            ("route", "=", e.path),
        )
        for e in endpoints
    ]
    total = [
        _selector(f"{DURATION}_count", ("method", "=", e.method), ("route", "=", e.path))
        for e in endpoints
    ]

    # `or`, not `+`: an endpoint without series yet must not blank the whole story
    def union(selectors: list[str]) -> str:
        return "\n  or ".join(f"rate({s}[{window}])" for s in selectors)

    return f"sum(\n  {union(good)}\n)\n/\nsum(\n  {union(total)}\n)"


def _sli_rules(
    spec: Spec, options: RuleOptions, windows: _Windows
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    recordings: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    seconds = sorted({s for b in options.burn_alerts for s in (b.long_s, b.short_s)})
    scaled = list(dict.fromkeys(windows.rate(s) for s in seconds))  # a big scale may merge two
    for story in sorted(spec.stories, key=lambda s: s.id):
        targets = {e.key: _bucket(spec, story, e, options.buckets_ms) for e in story.endpoints}
        for window in scaled:
            recordings.append(
                {
                    "record": f"{SLI}{window}",
                    "expr": _sli_expr(story, targets, window),
                    "labels": {"story": story.id},
                }
            )
        alerts += [_burn_alert(spec, story, b, windows) for b in options.burn_alerts]
    return recordings, alerts


def _burn_alert(spec: Spec, story: Story, burn: BurnAlert, windows: _Windows) -> dict[str, Any]:
    allowed = budget(story)
    if burn.burn_rate * allowed >= 1:
        raise SlakitError(
            f"{spec.source}: story {story.id}: compliance {story.compliance:g} leaves an error "
            f"budget of {allowed:g}; {burn.alert} ({burn.burn_rate:g}x) could never fire"
        )
    long, short = windows.rate(burn.long_s), windows.rate(burn.short_s)
    story_label = _selector("", ("story", "=", story.id))
    threshold = f"({burn.burn_rate:g} * {allowed:g})"
    expr = (
        f"(1 - {SLI}{long}{story_label}) > {threshold}\n"
        f"and\n(1 - {SLI}{short}{story_label}) > {threshold}"
    )
    return {
        "alert": burn.alert,
        "expr": expr,
        **windows.for_(burn.for_s),
        "labels": {"severity": burn.severity, "story": story.id},  # one rule per story
        "annotations": {
            "summary": f"Story {story.id} ({story.name}) burns its latency error budget at "
            f"{burn.burn_rate:g}x or faster",
            "description": f"{{{{ $value | humanizePercentage }}}} of story {story.id}'s "
            f"requests were slower than their targets over the last {long} (and over {short}); "
            f"its budget is {allowed:.4g} (compliance {story.compliance:g}). At "
            f"{burn.burn_rate:g}x the story spends {burn.budget_spent} of a 30-day budget "
            f"in {duration(burn.long_s)}.",
            "runbook": "Find the slow routes: histogram_quantile(0.95, sum by (route, le) "
            f"(rate({DURATION}_bucket[{short}]))); measure the story with `invoke check.sla "
            f"--env <env> --story {story.id}`; look for Redis errors (slakit_redis_errors_total) "
            "and tier skips; if a release went out just before, `invoke rollback --env <env>`.",
        },
    }


def _ops_alerts(spec: Spec, options: RuleOptions, windows: _Windows) -> list[dict[str, Any]]:
    ops = options.ops
    out: list[dict[str, Any]] = [
        {
            "alert": "SlakitAppDown",
            "expr": f'up{{job="{APP_JOB}"}} == 0',
            **windows.for_(ops.down_for_s),
            "labels": {"severity": "page"},
            "annotations": {
                "summary": "App host {{ $labels.instance }} does not answer Prometheus",
                "description": "The scrape of {{ $labels.instance }} (job slakit-app) fails: "
                "the service is down or unreachable there; HAProxy sends its share of the "
                "traffic to the other app hosts.",
                "runbook": "On the host: `systemctl status slakit-service`, "
                "`journalctl -u slakit-service -n 200`; check HAProxy still has servers "
                "(haproxy_backend_active_servers); after a bad release: "
                "`invoke rollback --env <env>`.",
            },
        },
        {
            "alert": "SlakitRedisDown",
            "expr": f'redis_up{{job="{REDIS_JOB}"}} == 0\nor\nup{{job="{REDIS_JOB}"}} == 0',
            **windows.for_(ops.down_for_s),
            "labels": {"severity": "page"},
            "annotations": {
                "summary": "Redis instance {{ $labels.instance }} is down",
                "description": "redis_exporter cannot reach Redis at {{ $labels.instance }}, or "
                "Prometheus cannot scrape the exporter.",
                "runbook": "On the Redis host: `systemctl status redis@cache redis@persist`, "
                "`journalctl -u redis@<instance> -n 200`, `systemctl status "
                "prometheus-redis-exporter`; free memory and disk (`df -h /var/lib/redis`).",
            },
        },
    ]
    window = windows.rate(ops.error_window_s)
    requests = "slakit_http_requests_total"
    out.append(
        {
            "alert": "SlakitHighErrorRatio",
            "expr": f'sum(rate({requests}{{status=~"5.."}}[{window}]))\n/\n'
            f"sum(rate({requests}[{window}]))\n> {ops.error_ratio_max:g}",
            **windows.for_(ops.error_for_s),
            "labels": {"severity": "page"},
            "annotations": {
                "summary": "{{ $value | humanizePercentage }} of requests fail with 5xx",
                "description": f"Over the last {window} more than {ops.error_ratio_max:.0%} of "
                "the service's responses were 5xx (the latency SLI does not count them).",
                "runbook": f'Which routes: sum by (route, status) (rate({requests}{{status=~"5.."}}'
                f"[{window}])); the app's journal (`journalctl -u slakit-service`), Redis "
                "(slakit_redis_errors_total); after a release: `invoke rollback --env <env>`.",
            },
        }
    )
    if spec.readiness.min_cache_hit_rate is not None:
        window = windows.rate(ops.cache_window_s)
        cache = "slakit_cache_requests_total"
        minimum = spec.readiness.min_cache_hit_rate
        out.append(
            {
                "alert": "SlakitCacheHitRateLow",
                # every lookup starts at L0; a hit in any tier answers it (the stats endpoint's
                # overall_hit_rate)
                "expr": f'sum(rate({cache}{{result="hit"}}[{window}]))\n/\n'
                f'sum(rate({cache}{{tier="L0"}}[{window}]))\n< {minimum:g}',
                **windows.for_(ops.cache_for_s),
                "labels": {"severity": "ticket"},
                "annotations": {
                    "summary": "Cache hit rate {{ $value | humanizePercentage }} is below "
                    f"{minimum:g}",
                    "description": f"Over the last {window} the overall cache hit rate was "
                    f"below the spec's readiness.min_cache_hit_rate ({spec.source}).",
                    "runbook": f"Per tier: sum by (tier, result) (rate({cache}[{window}])); "
                    "tier skips (slakit_redis_tier_skips_total) and Redis errors mean the "
                    "cache Redis is failing; otherwise warm it (POST /api/v1/cache/warm) and "
                    "check its evictions (redis_evicted_keys_total).",
                },
            }
        )
    out += _redis_disk_alerts(options, windows)
    return out


def _redis_disk_alerts(options: RuleOptions, windows: _Windows) -> list[dict[str, Any]]:
    ops = options.ops
    persist_runbook = (
        "On the Redis host (admin password: /root/.redis-admin.env): "
        "`redis-cli -p 6380 --user admin INFO persistence`, "
        "`df -h /var/lib/redis`, `journalctl -u redis@persist -n 200`; free space or fix the "
        "disk, then `BGREWRITEAOF`."
    )
    matchers = [("job", "=", NODE_JOB), ("fstype", "!~", "tmpfs|ramfs")]
    if options.persist_instance is not None:
        matchers.insert(1, ("instance", "=~", options.persist_instance))
    avail = _selector("node_filesystem_avail_bytes", *matchers)
    size = _selector("node_filesystem_size_bytes", *matchers)
    trend = windows.rate(ops.disk_trend_window_s)
    within = round(ops.disk_full_within_s / options.time_scale)
    return [
        {
            "alert": "SlakitRedisAofWriteError",
            "expr": f'redis_aof_last_write_status{{job="{REDIS_JOB}"}} == 0',
            **windows.for_(ops.aof_for_s),
            "labels": {"severity": "page"},
            "annotations": {
                "summary": "Redis {{ $labels.instance }} cannot write its append-only file",
                "description": "The last AOF write failed: Redis refuses writes until one "
                "succeeds, so the persistent store is read-only.",
                "runbook": persist_runbook,
            },
        },
        {
            "alert": "SlakitRedisAofRewriteFailed",
            "expr": f'redis_aof_last_bgrewrite_status{{job="{REDIS_JOB}"}} == 0',
            **windows.for_(ops.aof_for_s),
            "labels": {"severity": "ticket"},
            "annotations": {
                "summary": "Redis {{ $labels.instance }}: the last AOF rewrite failed",
                "description": "The AOF keeps growing until a rewrite succeeds.",
                "runbook": persist_runbook,
            },
        },
        {
            "alert": "SlakitPersistDiskFilling",
            "expr": f"{avail} / {size} < {ops.disk_filling_below:g}\n"
            f"and\npredict_linear({avail}[{trend}], {within}) < 0",
            **windows.for_(ops.disk_filling_for_s),
            "labels": {"severity": "ticket"},
            "annotations": {
                "summary": "{{ $labels.mountpoint }} on {{ $labels.instance }} fills up within "
                f"{duration(max(1, within))}",
                "description": f"At the trend of the last {trend} the filesystem is full within "
                f"{duration(max(1, within))}; it holds the persistent Redis's AOF and RDB files.",
                "runbook": persist_runbook,
            },
        },
        {
            "alert": "SlakitPersistDiskLow",
            "expr": f"{avail} / {size} < {ops.disk_low_below:g}",
            **windows.for_(ops.disk_low_for_s),
            "labels": {"severity": "page"},
            "annotations": {
                "summary": "{{ $labels.mountpoint }} on {{ $labels.instance }} has "
                "{{ $value | humanizePercentage }} free",
                "description": "An AOF rewrite needs room for a second copy of the data, and "
                "a failed AOF write makes the persistent Redis refuse writes.",
                "runbook": persist_runbook,
            },
        },
    ]


def rule_groups(spec: Spec, options: RuleOptions | None = None) -> dict[str, Any]:
    options = options or RuleOptions()
    if not (options.time_scale > 0 and math.isfinite(options.time_scale)):
        raise SlakitError(f"--time-scale must be a positive number (got {options.time_scale:g})")
    if not (options.scrape_interval_s > 0 and math.isfinite(options.scrape_interval_s)):
        raise SlakitError(
            f"--scrape-interval must be a positive number of seconds "
            f"(got {options.scrape_interval_s:g})"
        )
    windows = _Windows(options)
    recordings, burn = _sli_rules(spec, options, windows)
    return {
        "groups": [
            {"name": "slakit-sli", "rules": recordings},
            {"name": "slakit-slo-burn", "rules": burn},
            {"name": "slakit-ops", "rules": _ops_alerts(spec, options, windows)},
        ]
    }


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)  # lists indented under their key (yamllint's way)


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render(spec: Spec, options: RuleOptions | None = None) -> str:
    """The rule file: a header naming its source and options, then the groups."""
    options = options or RuleOptions()
    body = yaml.dump(
        rule_groups(spec, options),
        Dumper=_Dumper,
        sort_keys=False,
        width=1000,
        allow_unicode=True,
    )
    where = options.persist_instance or "every node"
    buckets = " ".join(f"{b:g}" for b in options.buckets_ms)
    return (
        f"# Prometheus rules generated from {spec.source} by `python -m slakit.sla rules`;\n"
        f"# do not edit. Time scale {options.time_scale:g}, scrape interval "
        f"{options.scrape_interval_s:g}s, buckets (ms) {buckets}, persist host {where}.\n"
        '# sla/README.md, "Alert rules from the spec", says what each rule means.\n'
        f"---\n{body}"
    )
