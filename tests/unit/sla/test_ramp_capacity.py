"""--load-test finds the knee of a server whose capacity is known.

The loopback server serves one request at a time, SERVICE_MS each: capacity
1000 / SERVICE_MS = 100 req/s. The checker's arrivals are evenly spaced, so below the
knee nothing queues (latency = SERVICE_MS, far under the 100 ms target); above it the
queue grows by (rate - capacity) requests a second and most of a 2 s step exceeds the
target. The ramp (50, 62.5, 78, 97.7, 122 req/s) must stop at the first step above the
knee and report a capacity below it, and not below the step a hiccup of the machine
could at worst cost (62.5 req/s). Rates this low leave the client idle.
"""

from __future__ import annotations

from slakit.sla import RunOptions, run_checks
from slakit.sla.model import LoadTestResult
from slakit.sla.spec import parse_spec
from slakit.status import Status

SERVICE_MS = 10.0
KNEE_RPS = 1000.0 / SERVICE_MS
NOMINAL_RPS = 50.0
ATTEMPTS = 2


def spec():
    return parse_spec(
        {
            "version": 1,
            "defaults": {
                "target_ms": 100,
                "compliance": 0.9,
                "objectives": [{"percentile": 95}],
                "load": {
                    "rate": NOMINAL_RPS,
                    "duration_s": 2,
                    "connections": 16,
                    "warmup_requests": 4,
                },
            },
            "load_test": {
                "start_multiplier": 1,
                "growth": 1.25,
                "max_multiplier": 4,
                "max_steps": 6,
                "step_duration_s": 2,
            },
            "stories": [
                {"id": "knee", "name": "knee", "endpoints": [{"method": "GET", "path": "/ok"}]}
            ],
        }
    )


def ramp(url: str) -> LoadTestResult:
    """The ramp's result; a ramp cut short by the client (an INVALID step) is re-run."""
    for _attempt in range(ATTEMPTS):
        result = run_checks(spec(), url, options=RunOptions(load_test=True, progress=False))
        [load_test] = result.load_tests
        if load_test.steps[-1].status != Status.INVALID:
            return load_test
    raise AssertionError(
        f"the client could not keep its schedule in {ATTEMPTS} ramps (machine overloaded?): "
        f"{[(s.rate_rps, s.status, s.note) for s in load_test.steps]}"
    )


def test_ramp_reports_a_capacity_just_below_the_known_knee(delay_server):
    url = delay_server(0.0, 0.0, serial_ms=SERVICE_MS)
    load_test = ramp(url)
    steps = [(round(s.rate_rps, 1), s.status, s.p95_ms) for s in load_test.steps]
    # it ramps until the first failing step and no further
    assert [s.status for s in load_test.steps[:-1]] == [Status.PASS] * (len(steps) - 1), steps
    assert load_test.steps[-1].status == Status.FAIL, steps
    assert load_test.steps[-1].rate_rps > KNEE_RPS, steps
    assert load_test.status == Status.PASS  # the nominal rate is sustained
    assert load_test.capacity_rps is not None, steps
    assert NOMINAL_RPS * 1.25 <= load_test.capacity_rps < KNEE_RPS, steps
    assert load_test.capacity_rps == load_test.steps[-2].rate_rps, steps
