"""How a real SLA run becomes the deploy's gates (slakit.checks.sla_gates) and verdict.

Each test runs the real checker against a loopback server with a known behaviour and
maps its result with the real code; only the environment (where the reports go) is a
stand-in, and the deployed stack is a real `Stack` built from the facts a load balancer
would publish (its URL, its `tls` object). INVALID, a load test that ran and failed, and a
regression against the previous run must each keep the deploy from APPROVED; a clean run
must pass every gate it produces, over HTTPS verified with the CA the fact names too.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from slakit import checks, readiness
from slakit.errors import SlakitError
from slakit.gates import Gate, Status
from slakit.sla.model import EXIT_FAIL, EXIT_PASS, Result
from slakit.sla.spec import Spec, parse_spec
from slakit.sla.verdict import verdict
from slakit.stack import Stack

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


def lb_stack(url: str, tls: dict[str, Any] | None = None) -> Stack:
    """A deployed stack of one load balancer that published `url` (and `tls`, if given)."""
    fact: dict[str, Any] = {"url": url, "http_url": url.replace("https:", "http:")}
    if tls is not None:
        fact["tls"] = tls
    return Stack({"lb": {"hosts": {"lb1": {}}}}, {"lb1": {"loadbalancer": fact}})


def sla_gates(
    url: str,
    spec: Spec,
    reports: Path,
    run: str,
    load_test: bool = False,
    tls: dict[str, Any] | None = None,
) -> tuple[list[Gate], dict[str, Any]]:
    """The deploy's SLA gates for a run into reports/<run>/, and the SLA result's JSON."""
    env = SimpleNamespace(reports_dir=reports)
    deployed = lb_stack(url, tls)
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


def test_the_lb_ca_file_comes_from_the_loadbalancer_fact():
    url = "https://192.0.2.10:443"
    assert lb_stack(url, {"enabled": True, "ca_file": "/ctl/ca.crt"}).lb_ca_file() == "/ctl/ca.crt"
    assert lb_stack(url, {"enabled": True, "ca_file": ""}).lb_ca_file() is None  # system store
    assert lb_stack(url).lb_ca_file() is None  # a fact from before TLS
    assert lb_stack(url).lb_http_urls() == {"lb1": "http://192.0.2.10:443"}
    unpublished = Stack({"lb": {"hosts": {"lb1": {}}}}, {})
    try:
        unpublished.lb_ca_file()
    except SlakitError as err:
        assert "lb1: the loadbalancer role has published nothing" in str(err)
    else:
        raise AssertionError("an unpublished load balancer must not pass for the system store")


def test_over_https_the_gates_verify_with_the_ca_of_the_fact(delay_server, pki, tmp_path):
    url = delay_server(1.0, 0.0, tls_cert=pki.cert, tls_key=pki.key)
    tls = {"enabled": True, "ca_file": pki.ca, "http_redirect": True}
    gates, result = sla_gates(url, spec(OPEN), tmp_path, "20240101T000000Z", tls=tls)
    assert result["base_url"] == url and result["status"] == Status.PASS
    assert all(g.passed for g in gates), [(g.name, g.figure) for g in gates if not g.passed]
    endpoint = result["stories"][0]["endpoints"][0]
    assert endpoint["tls"]["count"] == endpoint["connect"]["count"] > 0
    # the fact's CA is what is trusted: another CA is refused before any gate
    rogue = {**tls, "ca_file": pki.rogue_ca}
    try:
        sla_gates(url, spec(OPEN), tmp_path, "20240102T000000Z", tls=rogue)
    except SlakitError as err:
        assert "TLS certificate verify failed" in str(err) and pki.rogue_ca in str(err)
    else:
        raise AssertionError("a certificate the fact's CA did not sign was accepted")
