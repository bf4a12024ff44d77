"""`invoke tune`'s parts that need no hosts (slakit/tune.py, slakit/tune_report.py): the grid's
bad input, the incumbents from resolved role variables, the choice rule, the search order and
what it applies, and the report. The tuner against the lab: tests/e2e/test_14_tune.py."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from slakit import tune, tune_report
from slakit.errors import SlakitError
from slakit.sla.model import LoadTestResult, LoadTestStep
from slakit.status import Status

INVENTORY = {"app": {"hosts": ["app-1", "app-2"]}, "lb": {"hosts": ["lb-1"]}}


def grid_file(tmp_path: Path, settings: Any) -> Path:
    path = tmp_path / "grid.yml"
    path.write_text(yaml.safe_dump({"version": 1, "settings": settings}))
    return path


def two_settings(tmp_path: Path) -> tune.Grid:
    return tune.load_grid(
        grid_file(
            tmp_path,
            [
                {"var": "app_workers_per_cpu", "values": [1, 2, 3], "playbook": "app.yml",
                 "group": "app"},
                {"var": "loadbalancer_http_reuse", "values": ["safe", "aggressive"],
                 "playbook": "loadbalancer.yml", "group": "lb"},
            ],
        )
    )  # fmt: skip


def test_the_default_grid_names_real_playbooks_and_groups() -> None:
    grid = tune.load_grid(tune.DEFAULT_GRID)
    assert [s.var for s in grid.settings][:2] == ["app_workers_per_cpu", "app_worker_class"]
    assert {s.playbook for s in grid.settings} == {"app.yml", "loadbalancer.yml"}
    assert {s.group for s in grid.settings} == {"app", "lb"}


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ([], "needs a non-empty list 'settings'"),
        ([{"var": "app_keepalive", "values": [5]}], "setting 1: needs exactly var, values"),
        ([{"var": "x", "values": [], "playbook": "app.yml", "group": "app"}],
         "setting 1 (x): values must be a list of distinct values"),
        ([{"var": "x", "values": [1, 1], "playbook": "app.yml", "group": "app"}],
         "setting 1 (x): values must be a list of distinct values"),
        ([{"var": "x", "values": [1], "playbook": "nope.yml", "group": "app"}],
         "setting 1 (x): no playbook playbooks/nope.yml"),
        ([{"var": "x", "values": [1], "playbook": "app.yml", "group": "app"}] * 2,
         "setting 2: x is in the grid twice"),
    ],
)  # fmt: skip
def test_a_bad_grid_is_one_line_naming_the_file_and_setting(tmp_path, settings, says) -> None:
    path = grid_file(tmp_path, settings)
    with pytest.raises(SlakitError) as err:
        tune.load_grid(path)
    assert err.value.exit_code == 2
    assert str(err.value).startswith(f"{path}: {says}")
    assert "\n" not in str(err.value)


def test_incumbents_are_the_resolved_values_one_per_group(tmp_path: Path) -> None:
    grid = two_settings(tmp_path)
    resolved = {
        "app-1": {"app_workers_per_cpu": 2},
        "app-2": {"app_workers_per_cpu": 2},
        "lb-1": {"loadbalancer_http_reuse": "safe"},
    }
    assert tune.incumbents(grid, INVENTORY, resolved) == {
        "app_workers_per_cpu": 2,
        "loadbalancer_http_reuse": "safe",
    }
    resolved["app-2"] = {"app_workers_per_cpu": 3}
    with pytest.raises(SlakitError, match=r"differs across group app \(app-1=2, app-2=3\)"):
        tune.incumbents(grid, INVENTORY, resolved)
    del resolved["lb-1"]["loadbalancer_http_reuse"]
    resolved["app-2"] = {"app_workers_per_cpu": 2}
    with pytest.raises(SlakitError, match="loadbalancer_http_reuse is not a role variable"):
        tune.incumbents(grid, INVENTORY, resolved)
    with pytest.raises(SlakitError, match="group lb has no hosts"):
        tune.incumbents(grid, {"app": INVENTORY["app"]}, resolved)


def load_test(story: str, nominal: float, capacity: float | None, p99: float) -> LoadTestResult:
    passed = capacity is not None
    step = LoadTestStep(1.0, nominal, 6.0, Status.PASS if passed else Status.FAIL, 600, 1, 2, p99)
    return LoadTestResult(story, nominal, capacity, step.status, [step])


def trial(value: Any, caps: dict[str, float | None], p99: float = 5.0) -> tune.Trial:
    tests = [load_test(s, 100.0, c, p99) for s, c in caps.items()]
    return tune.record(tune.Trial("v", value, {"v": value}), tests)


def test_the_bottleneck_story_decides_then_the_p99_then_the_incumbent() -> None:
    current = trial(2, {"1.1": 400, "4.2": 160})
    assert current.multiplier == 1.6 and current.nominal_passed
    # more capacity on one story only does not move the bottleneck: not better
    assert not tune.better(trial(3, {"1.1": 1000, "4.2": 160}), current)
    assert tune.better(trial(3, {"1.1": 256, "4.2": 256}), current)
    # equal capacity: a p99 lower by more than the margin wins, within it the incumbent stays
    assert tune.better(trial(3, {"1.1": 400, "4.2": 160}, p99=4.0), current)
    assert not tune.better(trial(3, {"1.1": 400, "4.2": 160}, p99=4.7), current)
    # a value that fails at the nominal rate never wins
    failed = trial(1, {"1.1": None, "4.2": 1000})
    assert not failed.nominal_passed and not tune.better(failed, current)
    assert tune.choose([trial(1, {"1.1": 400, "4.2": 160}), current], current=2) is current
    assert tune.choose([failed], current=1) is None


def test_the_search_tries_each_value_with_the_others_at_their_best(tmp_path: Path) -> None:
    grid = two_settings(tmp_path)
    start = {"app_workers_per_cpu": 2, "loadbalancer_http_reuse": "safe"}
    applied: list[dict[str, Any]] = []

    def measure(values: dict[str, Any]) -> list[LoadTestResult]:
        workers = values["app_workers_per_cpu"]
        cap = {1: 160.0, 2: 256.0, 3: 256.0}[workers]
        cap *= 1.6 if values["loadbalancer_http_reuse"] == "aggressive" and workers == 2 else 1
        return [load_test("1.1", 100.0, cap, 5.0)]

    result = tune.TuneResult("lab", str(grid.source), ["1.1"], 2, start)
    ticks = iter(range(100))
    tune.search(grid, start, applied.append, measure, result, lambda _: None, lambda: next(ticks))
    # 3 is no better than the current 2: the incumbent stays; aggressive reuse wins on top of 2
    assert result.chosen == {"app_workers_per_cpu": 2, "loadbalancer_http_reuse": "aggressive"}
    assert [a["app_workers_per_cpu"] for a in applied] == [1, 2, 3, 2, 2]
    assert [a["loadbalancer_http_reuse"] for a in applied] == ["safe"] * 3 + ["safe", "aggressive"]
    assert [t.seconds for t in result.trials] == [1.0] * 5 and result.passed


def test_a_value_that_fails_is_measured_twice_and_none_passing_keeps_the_start(tmp_path) -> None:
    grid = two_settings(tmp_path)
    start = {"app_workers_per_cpu": 2, "loadbalancer_http_reuse": "safe"}
    result = tune.TuneResult("lab", str(grid.source), ["1.1"], 2, start)
    calls: list[dict[str, Any]] = []

    def measure(values: dict[str, Any]) -> list[LoadTestResult]:
        calls.append(values)
        return [load_test("1.1", 100.0, None, 30.0)]

    tune.search(grid, start, lambda _: None, measure, result, lambda _: None)
    assert len(calls) == 2 * 5 and result.chosen == start and not result.passed
    assert result.trials[0].note.startswith("measured twice; the first: capacity at SLA 1.1 none")
    assert result.problems[0] == (
        "no value of app_workers_per_cpu passed every story at its nominal rate"
    )


def test_a_current_value_the_grid_does_not_list_is_measured_and_kept_without_a_gain(
    tmp_path,
) -> None:
    grid = tune.load_grid(
        grid_file(tmp_path, [{"var": "app_backlog", "values": [512, 4096], "playbook": "app.yml",
                              "group": "app"}])
    )  # fmt: skip
    start = {"app_backlog": 65536}
    applied: list[dict[str, Any]] = []
    result = tune.TuneResult("lab", str(grid.source), ["1.1"], 2, start)

    def measure(values: dict[str, Any]) -> list[LoadTestResult]:
        return [load_test("1.1", 100.0, 256.0, 5.0)]  # every value alike

    tune.search(grid, start, applied.append, measure, result, lambda _: None)
    assert [a["app_backlog"] for a in applied] == [65536, 512, 4096]
    assert result.chosen == start  # no measured gain: the incumbent stays


def test_rounds_are_combined_by_their_medians_and_a_majority_of_passes(tmp_path) -> None:
    """Three rounds of a value: the noisy one is outvoted. One story's capacities 256, 1000, 160
    give 256; nominal p99s 4, 9, 5 give 5; two passes of three pass."""
    grid = tune.load_grid(
        grid_file(tmp_path, [{"var": "app_backlog", "values": [512], "playbook": "app.yml",
                              "group": "app"}])
    )  # fmt: skip
    start = {"app_backlog": 512}
    rounds = iter([(256.0, 4.0), (1000.0, 9.0), (None, 5.0)])

    def measure(values: dict[str, Any]) -> list[LoadTestResult]:
        cap, p99 = next(rounds)
        return [load_test("1.1", 100.0, cap, p99)]

    result = tune.TuneResult("lab", str(grid.source), ["1.1"], 2, start, rounds=3)
    tune.search(grid, start, lambda _: None, measure, result, lambda _: None)
    [trial] = result.trials
    assert trial.capacity_rps == {"1.1": 256.0} and trial.nominal_p99_ms == {"1.1": 5.0}
    assert trial.nominal_passed and trial.note.count("round ") == 3
    assert "round 3: capacity at SLA 1.1 none" in trial.note  # no second try within rounds
    assert "medians of 3 rounds per value" in tune_report.render_text(result)


class Playbooks:
    """Records which playbooks the applier runs, with which extra vars."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, dict[str, Any] | None]] = []

    def __call__(self, name: str, values: dict[str, Any] | None) -> None:
        self.runs.append((name, values))


def test_the_applier_runs_only_the_playbooks_whose_settings_change(tmp_path: Path) -> None:
    grid = two_settings(tmp_path)
    start = {"app_workers_per_cpu": 2, "loadbalancer_http_reuse": "safe"}
    applier = tune.Applier(None, grid, start)  # type: ignore[arg-type]
    applier._playbook = runs = Playbooks()  # type: ignore[method-assign]
    applier.put(start)
    applier.put({**start, "loadbalancer_http_reuse": "aggressive"})
    applier.put(start, extra_vars=False)
    assert runs.runs == [
        ("loadbalancer.yml", {**start, "loadbalancer_http_reuse": "aggressive"}),
        ("loadbalancer.yml", None),
    ]


def test_the_report_has_every_trial_a_plot_per_setting_and_the_tuned_files(tmp_path: Path) -> None:
    grid = two_settings(tmp_path)
    start = {"app_workers_per_cpu": 2, "loadbalancer_http_reuse": "safe"}
    result = tune.TuneResult("lab", str(grid.source), ["1.1"], 2, start)
    tune.search(
        grid, start, lambda _: None, lambda v: [load_test("1.1", 100.0, 160.0, 5.0)], result,
        lambda _: None,
    )  # fmt: skip
    out = tune_report.write(result, grid, tmp_path / "tune")
    text = (out / "report.txt").read_text()
    assert text.count("app_workers_per_cpu ") == 3 and "chosen: app_workers_per_cpu=2" in text
    data = json.loads((out / "tune.json").read_text())
    assert len(data["trials"]) == 5 and data["trials"][0]["capacity_rps"] == {"1.1": 160.0}
    html = (out / "report.html").read_text()
    plots = [ET.fromstring("<svg" + s[: s.index("</svg>") + 6]) for s in html.split("<svg")[1:]]
    assert len(plots) == 2 and all(p.find("{http://www.w3.org/2000/svg}title") is not None
                                   for p in plots)  # fmt: skip
    assert yaml.safe_load((out / "tuned-lb.yml").read_text()) == {"loadbalancer_http_reuse": "safe"}
    assert yaml.safe_load((out / "tuned-app.yml").read_text()) == {"app_workers_per_cpu": 2}
