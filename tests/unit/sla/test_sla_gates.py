"""How a real SLA run becomes the deploy's gates (slakit.checks.sla_gates) and verdict.

Each test runs the real checker against a loopback server with a known behaviour and
maps its result with the real code; only the environment and the deployed stack (where
the reports go, which URL to load) are stand-ins. INVALID, a load test that ran and
failed, and a regression against the previous run must each keep the deploy from
APPROVED; a clean run must pass every gate it produces.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from slakit import checks, readiness
from slakit.gates import Gate, Status
from slakit.sla.model import EXIT_FAIL, EXIT_PASS, Result
from slakit.sla.spec import Spec, parse_spec
from slakit.sla.verdict import verdict

VALID_GATE = "SLA measurement valid"


def spec(load: dict[str, Any], target_ms: float = 40.0, **extra: Any) -> Spec:
    return parse_spec(
        {
            "version": 1,
            "defaults": {
                "target_ms": target_ms,
                "objectives": [{"percentile": 95}],
                "load": {"warmup_requests": 4, "connections": 8, **load},
            },
            "service": {"stats_path": None},
            "stories": [
                {"id": "g", "name": "gate", "endpoints": [{"method": "GET", "path": "/ok"}]}
            ],
            **extra,
        }
    )


OPEN = {"rate": 150, "requests": 300}


def sla_gates(
    url: str, spec: Spec, reports: Path, run: str, load_test: bool = False
) -> tuple[list[Gate], dict[str, Any]]:
    """The deploy's SLA gates for a run into reports/<run>/, and the SLA result's JSON."""
    env = SimpleNamespace(reports_dir=reports)
    deployed = SimpleNamespace(lb_urls=lambda: {"lb1": url})
    outdir = reports / run
    gates, _notes = checks.sla_gates(env, deployed, spec, outdir, load_test=load_test)
    return gates, json.loads((outdir / "sla" / "report.json").read_text())


def by_name(gates: list[Gate]) -> dict[str, Status]:
    return {g.name: g.status for g in gates}


def test_a_clean_run_passes_every_sla_gate(delay_server, tmp_path):
    url = delay_server(1.0, 0.0)
    gates, result = sla_gates(url, spec(OPEN), tmp_path, "20240101T000000Z")
    assert result["status"] == Status.PASS and result["exit_code"] == EXIT_PASS
    assert by_name(gates)[VALID_GATE] is Status.PASS
    assert all(g.passed for g in gates), [(g.name, g.figure) for g in gates if not g.passed]
    assert readiness.approved(gates)


INVALID_RUN = {"mode": "closed", "concurrency": 1, "duration_s": 0.3}  # ~15 of 59 samples


def test_an_invalid_run_is_not_approved(delay_server, tmp_path):
    url = delay_server(20.0, 0.0)
    gates, result = sla_gates(url, spec(INVALID_RUN), tmp_path, "20240101T000000Z")
    assert result["status"] == Status.INVALID, result["status"]
    assert not readiness.approved(gates)
    assert by_name(gates)["SLA Objectives"] is Status.FAIL


def test_an_invalid_run_fails_the_measurement_valid_gate(delay_server, tmp_path):
    url = delay_server(20.0, 0.0)
    gates, result = sla_gates(url, spec(INVALID_RUN), tmp_path, "20240101T000000Z")
    assert result["status"] == Status.INVALID, result["status"]
    assert by_name(gates)[VALID_GATE] is Status.FAIL


def test_a_load_test_that_ran_and_failed_is_not_approved(delay_server, tmp_path):
    # 10 ms a request, one at a time: the nominal 50 req/s passes, the ramp's first
    # step at 3x (150 req/s, over the 100 req/s capacity) fails
    url = delay_server(0.0, 0.0, serial_ms=10)
    ramp = {"start_multiplier": 3, "max_steps": 1, "step_duration_s": 1.5}
    run_spec = spec({"rate": 50, "requests": 75}, target_ms=100, load_test=ramp)
    gates, result = sla_gates(url, run_spec, tmp_path, "20240101T000000Z", load_test=True)
    assert [s["status"] for s in result["stories"]] == [Status.PASS]
    assert result["load_tests"][0]["status"] == Status.FAIL
    assert result["exit_code"] == EXIT_FAIL
    # and without --validate-production too (the CLI's plain run)
    assert verdict(Result.from_dict(result), False) == (Status.FAIL, EXIT_FAIL)
    assert by_name(gates)["Load Testing"] is Status.FAIL
    assert not readiness.approved(gates)


def test_a_regression_against_the_previous_run_is_not_approved(delay_server, tmp_path):
    # the previous deploy's run (1 ms) is the baseline; now 25 ms: within the 40 ms
    # target, but more than a quarter of the target slower, on every request
    before, _ = sla_gates(delay_server(1.0, 0.0), spec(OPEN), tmp_path, "20240101T000000Z")
    assert readiness.approved(before)
    gates, result = sla_gates(delay_server(25.0, 0.0), spec(OPEN), tmp_path, "20240102T000000Z")
    assert [s["status"] for s in result["stories"]] == [Status.PASS]
    assert result["baseline_source"].endswith("20240101T000000Z/sla/report.json")
    assert result["exit_code"] == EXIT_FAIL
    assert verdict(Result.from_dict(result), False) == (Status.FAIL, EXIT_FAIL)
    assert by_name(gates)["Regression Tests"] is Status.FAIL
    assert not readiness.approved(gates)
