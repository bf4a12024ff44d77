"""Reports and baseline comparison against a recorded run (tests/unit/sla/data/).

The recorded run is a real run of small_spec.yml against delay_server.py (5 ms +
U(0, 12 ms)): story 1.1 misses its 15 ms p95, story core (250 ms target) passes.
If the text layout changes on purpose, regenerate recorded_report.txt from it.
"""

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from slakit.errors import SlakitError
from slakit.sla import histogram as hist
from slakit.sla import write_reports
from slakit.sla.baseline import compare_with_baseline
from slakit.sla.model import Result
from slakit.sla.reports import render_html, render_junit, render_text

DATA = Path(__file__).parent / "data"


@pytest.fixture
def recorded() -> Result:
    return Result.load(DATA / "recorded_run.json")


def test_text_report_matches_the_recorded_layout(recorded):
    assert render_text(recorded) == (DATA / "recorded_report.txt").read_text()


def test_text_report_has_the_seed_sections(recorded):
    text = render_text(recorded)
    for heading in (
        "COMPREHENSIVE PERFORMANCE BENCHMARK REPORT",
        "🎯 EXECUTIVE SUMMARY",
        "📊 STORY 1.1: Dashboard",
        "   Priority: CRITICAL",
        "   Performance Score: ",
        "Cache Performance Statistics:",
        "🎯 PRODUCTION READINESS ASSESSMENT: ❌ FAILED",
        "Confidence Level: ",
    ):
        assert heading in text
    assert "- not available (GET /api/v1/performance/stats answered HTTP 404)" in text


def test_json_round_trip_is_lossless(recorded):
    again = Result.from_dict(json.loads(recorded.to_json()))
    assert again == recorded


def test_junit_has_one_testcase_per_objective(recorded):
    root = ET.fromstring(render_junit(recorded))
    suites = root.findall("testsuite")
    assert len(suites) == 2
    for suite, story in zip(suites, recorded.stories, strict=True):
        cases = suite.findall("testcase")
        assert len(cases) == len(story.objectives) == int(suite.get("tests"))
        failed = sum(1 for o in story.objectives if o.status == "fail")
        assert int(suite.get("failures")) == failed
    assert int(suites[0].get("failures")) >= 1 and int(suites[1].get("failures")) == 0


def test_html_is_self_contained_with_percentile_plots(recorded):
    page = render_html(recorded)
    assert page.count("<svg") == 1 + len(recorded.stories)
    assert "<polyline" in page and "target 15 ms" in page
    assert "src=" not in page and "href=" not in page and "<script" not in page


def test_write_reports_writes_four_files(recorded, tmp_path):
    paths = write_reports(recorded, tmp_path / "reports")
    assert sorted(p.name for p in paths.values()) == [
        "junit.xml", "report.html", "report.json", "report.txt",
    ]  # fmt: skip
    assert Result.load(paths["json"]) == recorded


def test_a_run_compared_with_itself_has_no_regression(recorded):
    findings = compare_with_baseline(recorded, recorded)
    assert findings and all(f.status == "pass" for f in findings)


def slowed(recorded: Result, factor: float, plus_share_of_target: float) -> Result:
    slower = Result.from_dict(json.loads(recorded.to_json()))
    for story in slower.stories:
        for endpoint in story.endpoints:
            plus_us = int(endpoint.target_ms * 1000 * plus_share_of_target)
            before = hist.decode(endpoint.histogram)
            after = hist.new_histogram()
            for item in before.get_recorded_iterator():
                after.record_value(
                    int(item.value_iterated_to * factor) + plus_us,
                    item.count_added_in_this_iter_step,
                )
            endpoint.histogram = hist.encode(after)
    return slower


def test_a_uniformly_slower_run_is_a_regression(recorded):
    slower = slowed(recorded, 1.3, 0.5)  # +30 % and half of each endpoint's budget
    findings = compare_with_baseline(slower, recorded)
    assert all(f.status == "fail" for f in findings), [f.message for f in findings]
    assert not any(f.status == "fail" for f in compare_with_baseline(recorded, slower))


def test_a_shift_far_inside_the_budget_is_not_a_regression(recorded):
    """+15 % is significant statistically with these samples, yet under a quarter of the
    budget: not a regression for the SLA's purpose."""
    findings = compare_with_baseline(slowed(recorded, 1.15, 0), recorded)
    assert any(f.p_value < 0.001 for f in findings)
    assert findings and not any(f.status == "fail" for f in findings)


def test_a_baseline_that_is_not_a_result_is_bad_input(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"hello": 1}')
    with pytest.raises(SlakitError, match="not a slakit SLA result") as err:
        Result.load(path)
    assert err.value.exit_code == 2


def test_json_written_today_is_the_recorded_json(recorded):
    assert json.loads(recorded.to_json()) == json.loads((DATA / "recorded_run.json").read_text())
