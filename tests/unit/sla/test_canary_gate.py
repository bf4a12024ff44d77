"""The canary's gate (slakit.canary): the real checker measures two loopback servers of known
latency, the second with the first as its baseline, and the gate says whether the "canary"
may go on. A canary 20 ms slower must fail with the regression named; an equal one must pass;
an invalid measurement or nothing compared must fail (an unverifiable canary is not promoted).
Also: the on-demand story of sla/spec.yml and how the canary stage merges its converge runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from slakit import ansible, canary
from slakit.errors import SlakitError
from slakit.sla.model import Result
from slakit.sla.spec import load_spec, parse_spec
from slakit.status import Status

LOAD = {"rate": 100, "duration_s": 1.5, "warmup_requests": 4, "connections": 4}


def spec(target_ms: float = 15.0):
    return parse_spec(
        {
            "version": 1,
            "defaults": {
                "target_ms": target_ms,
                "objectives": [{"percentile": 95}],
                "load": LOAD,
            },
            "service": {"stats_path": None},
            "stories": [
                {"id": "main", "name": "m", "endpoints": [{"method": "GET", "path": "/fast"}]},
                {
                    "id": canary.STORY,
                    "name": "pinned",
                    "on_demand": True,
                    "endpoints": [
                        {
                            "method": "GET",
                            "path": path,
                            "headers": {canary.PIN_HEADER: "${" + canary.PIN_ENV + "}"},
                        }
                        for path in ("/ok", "/ok?b=1")
                    ],
                },
            ],
        },
        source="test",
    ).select([canary.STORY])


def run_pair(delay_server, tmp_path: Path, canary_ms: float) -> tuple[Result, Result]:
    old = delay_server(1.0)
    new = delay_server(1.0 + canary_ms)
    s = spec()
    before = canary.measure(s, old, None, "app-2", tmp_path / "baseline", baseline=None)
    after = canary.measure(
        s, new, None, "app-1", tmp_path / "canary", baseline=tmp_path / "baseline/report.json"
    )
    return after, before


def test_a_slower_canary_fails_with_the_regression_named(delay_server, tmp_path) -> None:
    after, before = run_pair(delay_server, tmp_path, canary_ms=20.0)
    g = canary.judge("Canary: app-1 against app-2", after, before)
    print(f"\n{g.name}: {g.figure} — {g.detail}")
    assert not g.passed
    assert "slower than the old release" in g.detail and "/ok" in g.detail
    assert "comparisons regressed" in g.figure and not g.figure.startswith("p50 -")
    assert (tmp_path / "canary" / "report.json").exists()


def test_an_equal_canary_passes(delay_server, tmp_path) -> None:
    after, before = run_pair(delay_server, tmp_path, canary_ms=0.0)
    g = canary.judge("Canary", after, before)
    print(f"\n{g.name}: {g.figure}")
    assert g.passed, g.detail
    assert g.figure.endswith(f"0/{len(after.regressions)} comparisons regressed")
    assert len(after.regressions) == 4  # 2 endpoints x p50, p95


def test_invalid_or_nothing_compared_fails(delay_server, tmp_path) -> None:
    after, before = run_pair(delay_server, tmp_path, canary_ms=0.0)
    after.status = Status.INVALID
    g = canary.judge("Canary", after, before)
    assert not g.passed and "canary's measurement is invalid" in g.detail
    after.status, after.regressions = Status.PASS, []
    g = canary.judge("Canary", after, before)
    assert not g.passed and "nothing compared" in g.detail


def test_the_canary_story_runs_only_when_named() -> None:
    real = load_spec()
    assert canary.STORY not in [s.id for s in real.stories]  # never in a default run
    story = real.select([canary.STORY]).stories[0]
    assert story.endpoints and all(
        e.headers == {canary.PIN_HEADER: "${" + canary.PIN_ENV + "}"} for e in story.endpoints
    )
    with pytest.raises(SlakitError, match=r"on demand: (\w+, )*canary"):
        real.select(["nope"])
    with pytest.raises(SlakitError, match="every story is on_demand"):
        parse_spec(
            {
                "version": 1,
                "stories": [
                    {
                        "id": "x",
                        "name": "x",
                        "on_demand": True,
                        "endpoints": [{"method": "GET", "path": "/"}],
                    }
                ],
            },
            source="t",
        )


def test_the_rollout_reads_as_one_converge() -> None:
    first = ansible.PlayResult(
        0,
        {"app-1": {"changed": 3, "failures": 0}, "lb-1": {"changed": 0}},
        {"app-1": ["Switch current"]},
        [],
        {"app-1": {canary.SWITCHED: "r2", canary.PREVIOUS: "r1"}},
    )
    second = ansible.PlayResult(
        2,
        {"app-1": {"changed": 0, "failures": 0}, "app-2": {"changed": 2, "failures": 1}},
        {"app-2": ["Switch current"]},
        [{"host": "app-2", "task": "Restart", "kind": "failed", "msg": "boom"}],
        {"app-2": {canary.SWITCHED: "r2", canary.PREVIOUS: "r1"}},
    )
    merged = canary.Rollout([first, second]).converge
    assert merged.returncode == 2 and merged.changed == 5
    assert merged.hosts["app-2"]["failures"] == 1
    assert sorted(merged.published_by_host(canary.SWITCHED)) == ["app-1", "app-2"]
    assert merged.first_failure() == "app-2: Restart: boom"
