"""Prometheus rules from sla/spec.yml (`python -m slakit.sla rules`), judged by the real promtool.

Synthetic series go through `promtool test rules`; which alert must fire when is computed here
from the spec and the SRE workbook's burn-rate formulas, not read from the generated file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from slakit.sla.spec import load_spec

ROOT = Path(__file__).resolve().parents[3]
PROMTOOL = Path(os.environ.get("SLAKIT_PROMTOOL") or ROOT / "build" / "tools" / "promtool")
SPEC = load_spec(ROOT / "sla" / "spec.yml")
STORIES = {s.id: s for s in SPEC.stories}  # on-demand stories (the canary) get no SLO rules

# The multiwindow multi-burn-rate alerts of the SRE workbook as sla/README.md documents them,
# in minutes: name -> (burn rate, long window, short window, for).
WORKBOOK = {
    "SlakitBudgetBurnFast": (14.4, 60, 5, 2),
    "SlakitBudgetBurnMedium": (6.0, 360, 30, 15),
    "SlakitBudgetBurnSlow": (1.0, 3 * 1440, 360, 60),
}
SEVERITY = {"SlakitBudgetBurnFast": "page", "SlakitBudgetBurnMedium": "page"}
PER_STEP = 1000  # requests per endpoint per step (one step = one minute before time scaling)


@pytest.fixture(scope="module")
def promtool() -> Path:
    if not os.access(PROMTOOL, os.X_OK):
        pytest.fail(f"no promtool at {PROMTOOL}: scripts/setup.sh puts it there")
    return PROMTOOL


def generate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "slakit.sla", "rules", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def rules_file(tmp_path: Path, *args: str) -> Path:
    """The generated rules, annotations stripped: alerts are matched on labels here (promtool
    compares annotations verbatim, templates expanded); test_check_rules checks the full file."""
    done = generate(*args)
    assert done.returncode == 0, done.stderr
    data = yaml.safe_load(done.stdout)
    for group in data["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def counter(phases: Iterable[tuple[int, int]]) -> str:
    """promtool's expanding notation for a counter growing `per_step` for `steps` steps each."""
    parts: list[str] = []
    value = 0
    for per_step, steps in phases:
        if not parts:
            parts.append(f"0+{per_step}x{steps}")
        else:
            parts.append(f"{value + per_step}+{per_step}x{steps - 1}")
        value += per_step * steps
    return " ".join(parts)


def gauge(phases: Iterable[tuple[int, int]]) -> str:
    """A gauge holding each value for `steps` steps (the first one also at t=0)."""
    parts = []
    for i, (value, steps) in enumerate(phases):
        parts.append(f"{value}+0x{steps if i == 0 else steps - 1}")
    return " ".join(parts)


def series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


def http_series(profiles: dict[str, list[tuple[float, int]]]) -> list[dict[str, str]]:
    """Latency histograms of every endpoint of every story; a story's profile is phases of
    (share of its requests over their endpoint's target, steps)."""
    out = []
    seen = set()
    for story in STORIES.values():
        phases = profiles[story.id]
        for endpoint in story.endpoints:
            if endpoint.key in seen:
                continue
            seen.add(endpoint.key)
            # the compliance objective counts requests within the endpoint's own target
            le = repr(endpoint.target_ms / 1000)
            labels = {"job": "slakit-app", "instance": "app-1:8000", "route": endpoint.path}
            labels["method"] = endpoint.method
            good = [(round(PER_STEP * (1 - bad)), n) for bad, n in phases]
            total = [(PER_STEP, n) for _, n in phases]
            duration = "slakit_http_request_duration_seconds"
            out.append(series(f"{duration}_bucket", {**labels, "le": le}, counter(good)))
            out.append(series(f"{duration}_count", labels, counter(total)))
    return out


def bad_share(phases: list[tuple[float, int]], start: int, end: int) -> float | None:
    """Share of bad requests in steps (start, end], clipped to the data (the series start at 0)."""
    start = max(start, 0)
    if end - start < 2:
        return None
    bad = 0.0
    step = 0
    for share, steps in phases:
        first, last = step + 1, step + steps
        bad += share * max(0, min(last, end) - max(first - 1, start))
        step = last
    return bad / (end - start)


def burn_expected(
    story_id: str, phases: list[tuple[float, int]], alert: str, t: int
) -> bool | None:
    """Whether the alert fires at step t for this profile; None when too close to call."""
    rate, long, short, for_ = WORKBOOK[alert]
    threshold = rate * (1 - STORIES[story_id].compliance)
    held = True
    for step in range(t - for_, t + 1):
        ratios = [bad_share(phases, step - w, step) for w in (long, short)]
        if any(r is None for r in ratios):
            return None
        if any(abs(r - threshold) < 0.03 * threshold for r in ratios if r is not None):
            return None  # rate()'s extrapolation may fall either side
        held = held and all(r is not None and r > threshold for r in ratios)
    return held


def promtool_test(
    promtool: Path,
    tmp_path: Path,
    rules: Path,
    scale: int,
    inputs: list[dict[str, str]],
    alerts: list[dict[str, Any]],
) -> None:
    step = f"{60 // scale}s"
    for case in alerts:
        case["eval_time"] = f"{case.pop('step') * 60 // scale}s"
    test = {
        "rule_files": [rules.name],
        "evaluation_interval": step,
        "tests": [{"interval": step, "input_series": inputs, "alert_rule_test": alerts}],
    }
    path = rules.with_name("test.yml")
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    done = subprocess.run(
        [str(promtool), "test", "rules", path.name],
        cwd=path.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def burn_cases(
    profiles: dict[str, list[tuple[float, int]]], steps: Iterable[int]
) -> tuple[list[dict[str, Any]], dict[tuple[str, int], set[str]]]:
    """An alert test per (step, burn alert) with the stories expected to fire; undecidable
    (story, alert, step) triples make that step's case for the alert be left out."""
    cases = []
    firing: dict[tuple[str, int], set[str]] = {}
    for t in steps:
        for alert in WORKBOOK:
            verdicts = {sid: burn_expected(sid, profiles[sid], alert, t) for sid in STORIES}
            if None in verdicts.values():
                continue
            fired = {sid for sid, fires in verdicts.items() if fires}
            firing[(alert, t)] = fired
            cases.append(
                {
                    "step": t,
                    "alertname": alert,
                    "exp_alerts": [
                        {"exp_labels": {"severity": SEVERITY.get(alert, "ticket"), "story": sid}}
                        for sid in sorted(fired)
                    ],
                }
            )
    return cases, firing


def healthy_ops(steps: int) -> list[dict[str, str]]:
    hit_rate = min(1.0, (SPEC.readiness.min_cache_hit_rate or 0.0) + 0.02)
    redis = {"job": "redis", "instance": "redis://redis-1:6380"}
    out = [
        series("up", {"job": "slakit-app", "instance": "app-1:8000"}, gauge([(1, steps)])),
        series("up", redis, gauge([(1, steps)])),
        series("redis_up", redis, gauge([(1, steps)])),
        *cache_series(hit_rate, steps),
        series("redis_aof_last_write_status", redis, gauge([(1, steps)])),
        series("redis_aof_last_bgrewrite_status", redis, gauge([(1, steps)])),
    ]
    disk = {"job": "node", "instance": "redis-1:9100", "fstype": "ext4", "mountpoint": "/"}
    out += [
        series("node_filesystem_avail_bytes", disk, gauge([(8_000_000_000, steps)])),
        series("node_filesystem_size_bytes", disk, gauge([(10_000_000_000, steps)])),
    ]
    requests = "slakit_http_requests_total"
    app = {"job": "slakit-app", "instance": "app-1:8000", "route": "/", "method": "GET"}
    out += [
        series(requests, {**app, "status": "200"}, counter([(995, steps)])),
        series(requests, {**app, "status": "500"}, counter([(5, steps)])),  # 0.5 %
    ]
    return out


def cache_series(hit_rate: float, steps: int) -> list[dict[str, str]]:
    """Tiers as the service counts them: every lookup starts at L0, a miss goes on to L1, L2;
    the overall hit rate is hits in any tier over L0 lookups."""
    lookups, lower = 1000, 50
    hits = round(lookups * hit_rate)
    counts = {
        ("L0", "hit"): hits - 2 * lower,
        ("L0", "miss"): lookups - hits + 2 * lower,
        ("L1", "hit"): lower,
        ("L1", "miss"): lookups - hits + lower,
        ("L2", "hit"): lower,
        ("L2", "miss"): lookups - hits,
    }
    return [
        series(
            "slakit_cache_requests_total",
            {"job": "slakit-app", "instance": "app-1:8000", "tier": tier, "result": result},
            counter([(n, steps)]),
        )
        for (tier, result), n in counts.items()
    ]


def alert_names(rules: Path) -> list[str]:
    data = yaml.safe_load(rules.read_text())
    return sorted({r["alert"] for g in data["groups"] for r in g["rules"] if "alert" in r})


# --- the generated file -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args", [(), ("--time-scale", "60", "--scrape-interval", "1")], ids=["spec", "lab-scale-60"]
)
def test_check_rules_accepts_the_rules_of_the_real_spec(promtool, tmp_path, args):
    out = tmp_path / "rules.yml"
    done = generate("--spec", "sla/spec.yml", "--out", str(out), *args)
    assert done.returncode == 0, done.stderr
    checked = subprocess.run(
        [str(promtool), "check", "rules", str(out)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    data = yaml.safe_load(out.read_text())
    rules = [r for g in data["groups"] for r in g["rules"]]
    records = {(r["record"], r["labels"]["story"]) for r in rules if "record" in r}
    # the windows of WORKBOOK, divided by the time scale
    windows = ["5s", "30s", "1m", "6m", "72m"] if args else ["5m", "30m", "1h", "6h", "3d"]
    sli = "story:slakit_sli_good:ratio_rate"
    assert records == {(f"{sli}{w}", story) for w in windows for story in STORIES}
    for rule in rules:
        if "alert" in rule:
            assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
            for key in ("summary", "description", "runbook"):
                assert rule["annotations"].get(key), (rule["alert"], key)


def test_output_is_identical_across_runs():
    first, second = generate(), generate()
    assert first.returncode == second.returncode == 0
    assert first.stdout == second.stdout


def test_target_that_is_not_a_bucket_is_refused_in_one_line(tmp_path):
    data = yaml.safe_load((ROOT / "sla" / "spec.yml").read_text())
    data["stories"][0]["endpoints"][1]["target_ms"] = 12
    spec = tmp_path / "spec.yml"
    spec.write_text(yaml.safe_dump(data))
    done = generate("--spec", str(spec))
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "GET /api/v1/dashboard/revenue" in lines[0]
    assert "target 12 ms is not a bucket" in lines[0]

    # the same spec passes once the service's buckets hold 12 ms
    assert generate("--spec", str(spec), "--buckets-ms", "5,12,15,250").returncode == 0
    done = generate("--buckets-ms", "1,2.5,5,10")
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1
    assert "target 15 ms is not a bucket" in done.stderr


def test_budget_too_large_for_a_burn_alert_is_refused_in_one_line(tmp_path):
    data = yaml.safe_load((ROOT / "sla" / "spec.yml").read_text())
    data["stories"][1]["compliance"] = 0.9  # 14.4 x 0.1 > 1: the fast page could never fire
    spec = tmp_path / "spec.yml"
    spec.write_text(yaml.safe_dump(data))
    done = generate("--spec", str(spec))
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert f"story {data['stories'][1]['id']}" in done.stderr
    assert "SlakitBudgetBurnFast" in done.stderr


def test_time_scale_below_four_scrapes_is_refused_in_one_line():
    done = generate("--time-scale", "60")  # 5m -> 5s at the default 15 s scrape interval
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1
    assert "scrape" in done.stderr


# --- burn-rate alerts on synthetic series -------------------------------------------------------


@pytest.mark.parametrize("scale", [1, 60], ids=["spec", "lab-scale-60"])
def test_fast_burn_pages_within_the_long_window(promtool, tmp_path, scale):
    """(a) 6 h healthy, then 1 h with enough requests over target for a burn above 14.4x."""
    story = "1.1"
    budget = 1 - STORIES[story].compliance
    burn = min(1.0, 14.4 * budget * 1.25)
    healthy, burning, after = 360, 60, 60
    profiles = {story: [(budget / 2, healthy), (burn, burning), (budget / 2, after)]}
    total = healthy + burning + after
    profiles.update({sid: [(0.0, total)] for sid in STORIES if sid != story})
    steps = range(healthy, total + 1, 5)
    cases, firing = burn_cases(profiles, steps)
    assert any(story in firing.get(("SlakitBudgetBurnFast", t), ()) for t in steps)
    assert firing[("SlakitBudgetBurnFast", healthy + 30)] == set()  # 1 h window not yet burnt
    assert firing[("SlakitBudgetBurnFast", healthy + burning)] == {story}
    assert firing[("SlakitBudgetBurnFast", total)] == set()  # resolved: the 5m window is clean
    medium = [fired for (alert, _), fired in firing.items() if alert == "SlakitBudgetBurnMedium"]
    assert medium and not any(medium)  # 1 h of it is not enough to burn 6x over 6 h
    args = ("--time-scale", str(scale), "--scrape-interval", "1") if scale > 1 else ()
    rules = rules_file(tmp_path, *args)
    inputs = http_series(profiles)
    promtool_test(promtool, tmp_path, rules, scale, inputs, cases)


def test_slow_burn_tickets_and_never_pages(promtool, tmp_path):
    """(b) 8 h at 1.2x the budget: the 1x ticket, never a page."""
    story = "1.1"
    budget = 1 - STORIES[story].compliance
    total = 480
    profiles = {sid: [(0.0, total)] for sid in STORIES}
    profiles[story] = [(1.2 * budget, total)]
    steps = range(60, total + 1, 60)
    cases, firing = burn_cases(profiles, steps)
    for t in steps:
        assert firing[("SlakitBudgetBurnFast", t)] == set()
        assert firing[("SlakitBudgetBurnMedium", t)] == set()
    assert firing[("SlakitBudgetBurnSlow", total)] == {story}
    rules = rules_file(tmp_path)
    promtool_test(promtool, tmp_path, rules, 1, http_series(profiles), cases)


def test_healthy_service_fires_nothing(promtool, tmp_path):
    """(c) every story within half its budget, every operational figure fine."""
    total = 480
    profiles = {sid: [((1 - s.compliance) / 2, total)] for sid, s in STORIES.items()}
    rules = rules_file(tmp_path)
    steps = range(60, total + 1, 60)
    cases = [{"step": t, "alertname": name, "exp_alerts": []} for t in steps for name in
             alert_names(rules)]  # fmt: skip
    inputs = http_series(profiles) + healthy_ops(total)
    promtool_test(promtool, tmp_path, rules, 1, inputs, cases)


# --- operational alerts -------------------------------------------------------------------------


def test_cache_hit_rate_below_the_spec_minimum_opens_a_ticket(promtool, tmp_path):
    """(d) readiness.min_cache_hit_rate of the spec, missed by 10 points."""
    minimum = SPEC.readiness.min_cache_hit_rate
    assert minimum is not None
    rules = rules_file(tmp_path)
    inputs = cache_series(minimum - 0.10, 120)
    cases = [
        {"step": 60, "alertname": "SlakitCacheHitRateLow",
         "exp_alerts": [{"exp_labels": {"severity": "ticket"}}]},
        {"step": 5, "alertname": "SlakitCacheHitRateLow", "exp_alerts": []},  # `for:` 10m
    ]  # fmt: skip
    promtool_test(promtool, tmp_path, rules, 1, inputs, cases)


def test_app_host_or_redis_down_pages(promtool, tmp_path):
    """(e) app-2 stops answering at 30 min, the persistent Redis at 40, its AOF breaks at 50."""
    rules = rules_file(tmp_path)
    persist = {"job": "redis", "instance": "redis://redis-1:6380"}
    inputs = [
        series("up", {"job": "slakit-app", "instance": "app-1:8000"}, gauge([(1, 60)])),
        series("up", {"job": "slakit-app", "instance": "app-2:8000"}, gauge([(1, 30), (0, 30)])),
        series("up", persist, gauge([(1, 60)])),
        series("redis_up", persist, gauge([(1, 40), (0, 20)])),
        series("redis_aof_last_write_status", persist, gauge([(1, 50), (0, 10)])),
    ]
    app2 = {"severity": "page", "job": "slakit-app", "instance": "app-2:8000"}
    cases = [
        {"step": 29, "alertname": "SlakitAppDown", "exp_alerts": []},
        {"step": 35, "alertname": "SlakitAppDown", "exp_alerts": [{"exp_labels": app2}]},
        {"step": 35, "alertname": "SlakitRedisDown", "exp_alerts": []},
        {"step": 45, "alertname": "SlakitRedisDown",
         "exp_alerts": [{"exp_labels": {"severity": "page", **persist}}]},
        {"step": 45, "alertname": "SlakitRedisAofWriteError", "exp_alerts": []},
        {"step": 55, "alertname": "SlakitRedisAofWriteError",
         "exp_alerts": [{"exp_labels": {"severity": "page", **persist}}]},
    ]  # fmt: skip
    promtool_test(promtool, tmp_path, rules, 1, inputs, cases)


def test_persist_disk_filling_then_low_alerts_on_the_persist_host_only(promtool, tmp_path):
    """A 100 GB disk at 30 GB free losing 0.2 GB a minute, on the persist host and on another."""
    rules = rules_file(tmp_path, "--persist-instance", "redis-1:9100")
    gb = 1_000_000_000
    inputs = []
    for host in ("redis-1:9100", "app-1:9100"):
        disk = {"job": "node", "instance": host, "fstype": "ext4", "mountpoint": "/"}
        inputs += [
            series("node_filesystem_size_bytes", disk, gauge([(100 * gb, 150)])),
            series("node_filesystem_avail_bytes", disk, f"{30 * gb}-{gb // 5}x150"),
        ]
    persist = {"job": "node", "instance": "redis-1:9100", "fstype": "ext4", "mountpoint": "/"}
    # full within a day from the start, under 40 % free: fires once `for:` (1 h) has held;
    # under 10 % free after 100 min, paging 5 min later
    cases = [
        {"step": 50, "alertname": "SlakitPersistDiskFilling", "exp_alerts": []},
        {"step": 90, "alertname": "SlakitPersistDiskFilling",
         "exp_alerts": [{"exp_labels": {"severity": "ticket", **persist}}]},
        {"step": 90, "alertname": "SlakitPersistDiskLow", "exp_alerts": []},
        {"step": 115, "alertname": "SlakitPersistDiskLow",
         "exp_alerts": [{"exp_labels": {"severity": "page", **persist}}]},
    ]  # fmt: skip
    promtool_test(promtool, tmp_path, rules, 1, inputs, cases)
