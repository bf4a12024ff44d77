"""The seed's strict performance suite, run against a deployed environment:

    pytest tests/performance/test_strict_performance_validation.py -v --base-url URL \
        [--cacert CA.pem]

Over HTTPS the checker verifies the server's certificate with --cacert (default
$SLAKIT_SLA_CACERT, else the system trust store).

Not collected by the unit suite (pyproject's testpaths are tests/unit and tests/e2e):
tests/e2e/test_03_strict_performance.py runs it, as above, against the lab's load balancer.
Every test drives slakit.sla's engine and statistics; nothing is measured or judged here.
Credentials for `auth: operator` endpoints come from SLAKIT_SLA_USERNAME /
SLAKIT_SLA_PASSWORD; without them the rest is still measured, and the tests of endpoints
left unmeasured (and of their stories) fail, naming the missing variables.
"""

from __future__ import annotations

import os

import pytest

from slakit.errors import SlakitError

MARKERS = {
    "critical": "endpoints of critical-priority stories",
    "story_1_1": "story 1.1 Real-time BI Dashboard",
    "story_2_2": "story 2.2 Cache Warming and Auto-Scaling",
    "story_4_1": "story 4.1 Mobile Analytics",
    "story_4_2": "story 4.2 AI/LLM Analytics",
    "story_core": "core platform endpoints",
    "regression": "comparison with a baseline or within a sustained run",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("slakit-sla")
    group.addoption(
        "--base-url",
        default=os.environ.get("SLAKIT_SLA_BASE_URL", "http://localhost:8000"),
        help="API under test (default $SLAKIT_SLA_BASE_URL or http://localhost:8000)",
    )
    group.addoption(
        "--cacert",
        default=os.environ.get("SLAKIT_SLA_CACERT") or None,
        metavar="PATH",
        help="https: CA bundle to verify the server with "
        "(default $SLAKIT_SLA_CACERT, else the system trust store)",
    )
    group.addoption("--sla-spec", default=None, help="SLA spec YAML (default sla/spec.yml)")
    group.addoption("--target-sla", type=float, default=None, help="SLA target in ms")
    group.addoption("--baseline", default=None, help="earlier `--json` result to compare with")


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")


class StoryRuns:
    """Runs each story at most once per session through slakit.sla.run_checks."""

    def __init__(self, config: pytest.Config) -> None:
        from slakit.sla import load_spec

        self.base_url = config.getoption("--base-url")
        self.ca_file = config.getoption("--cacert")
        self.baseline = config.getoption("--baseline")
        try:
            self.spec = load_spec(
                config.getoption("--sla-spec"), target_sla_ms=config.getoption("--target-sla")
            )
        except SlakitError as err:
            raise pytest.UsageError(f"slakit: {err}") from None
        self.results: dict[str, object] = {}
        self.error: str | None = None

    def run(self, story_id: str, fresh: bool = False):
        from slakit.sla import RunOptions, run_checks

        if self.error:
            pytest.fail(self.error, pytrace=False)
        if fresh or story_id not in self.results:
            try:
                result = run_checks(
                    self.spec,
                    self.base_url,
                    [story_id],
                    options=RunOptions(
                        skip_missing_credentials=True, progress=False, ca_file=self.ca_file
                    ),
                )
            except SlakitError as err:
                self.error = f"slakit: {err}"
                pytest.fail(self.error, pytrace=False)
            if fresh:
                return result
            self.results[story_id] = result
        return self.results[story_id]


RUNS = pytest.StashKey[StoryRuns]()


@pytest.fixture(scope="session")
def sla_runs(pytestconfig: pytest.Config) -> StoryRuns:
    pytestconfig.stash[RUNS] = StoryRuns(pytestconfig)
    return pytestconfig.stash[RUNS]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """What was measured, passed or not: one line per story (latencies in ms)."""
    runs = config.stash.get(RUNS, None)
    if runs is None or not runs.results:
        return
    terminalreporter.section("slakit SLA measurements")
    for story_id, result in runs.results.items():
        story = result.stories[0]
        v = story.validity
        terminalreporter.write_line(
            f"story {story_id}: {story.status.upper()} {story.samples} samples "
            f"p50 {_ms(story.p50_ms)} p95 {_ms(story.p95_ms)} p99 {_ms(story.p99_ms)} "
            f"(client lag p99 {_ms(v.lag_p99_ms)}, cpu {_ms(v.client_cpu)})"
        )
        for e in story.endpoints:
            if e.status != "pass":
                p95 = e.latency.get("p95") if e.latency else None
                terminalreporter.write_line(
                    f"  {e.key}: {e.status.upper()} p95 {_ms(p95)} (target {e.target_ms:g})"
                )
