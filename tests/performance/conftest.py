"""The seed's strict performance suite, run against a deployed environment:

    pytest tests/performance/test_strict_performance_validation.py -v --base-url URL

Not part of the unit suite (pyproject's testpaths are tests/unit and tests/e2e). Every
test drives slakit.sla's engine and statistics; nothing is measured or judged here.
Credentials for `auth: operator` endpoints come from SLAKIT_SLA_USERNAME /
SLAKIT_SLA_PASSWORD; without them those tests are skipped with the reason.
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
                    options=RunOptions(skip_missing_credentials=True, progress=False),
                )
            except SlakitError as err:
                self.error = f"slakit: {err}"
                pytest.fail(self.error, pytrace=False)
            if fresh:
                return result
            self.results[story_id] = result
        return self.results[story_id]


@pytest.fixture(scope="session")
def sla_runs(pytestconfig: pytest.Config) -> StoryRuns:
    return StoryRuns(pytestconfig)
