"""The readiness verdict: APPROVED only when there are gates and every one of them passed.

Checked where a deploy shows it: the rendered report's "Deployment Recommendation" line,
readiness.json's `approved`, and the exit code of `invoke deploy` (0 approved, 1 not,
2 bad input), through the real task, pipeline and report writer. Only what the
pipeline talks to (ansible, hosts, the SLA run) is replaced, by gates chosen per test.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from invoke import Context
from invoke.exceptions import Exit

from slakit import ansible, checks, credentials, envs, preflight, readiness, security, stack
from slakit.errors import SlakitError
from slakit.gates import Gate, Status, gate
from slakit.tasks.deploy import deploy as deploy_task

GENERATED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
APPROVED = "Deployment Recommendation: ✅ APPROVED"
NOT_APPROVED = "Deployment Recommendation: ❌ NOT APPROVED"


def gates_of(statuses: tuple[Status, ...]) -> list[Gate]:
    return [Gate(f"gate {i}", s, "figure", detail="why") for i, s in enumerate(statuses)]


def written(tmp_path: Path, gates: list[Gate]) -> tuple[str, dict[str, Any]]:
    text = readiness.write(tmp_path, "staging", GENERATED, gates, []).read_text()
    return text, json.loads((tmp_path / "readiness.json").read_text())


def recommendation(text: str) -> str:
    [line] = [ln for ln in text.splitlines() if ln.startswith("Deployment Recommendation:")]
    return line


P, F, S = Status.PASS, Status.FAIL, Status.SKIPPED
# what readiness.json has always written for each status
REPORTED = {P: "passed", F: "failed", S: "skipped", Status.INVALID: "invalid", Status.INFO: "info"}


@pytest.mark.parametrize(
    "statuses",
    [(F,), (S,), (), (P, F), (P, S), (P, P, F), (S, P, P), (F, S)],
    ids=["failed", "skipped", "no gates", "pass+fail", "pass+skip", "one fail of 3", "skip first",
         "fail+skip"],
)  # fmt: skip
def test_any_gate_not_passed_or_no_gate_at_all_is_not_approved(tmp_path, statuses):
    gates = gates_of(statuses)
    text, data = written(tmp_path, gates)
    assert not readiness.approved(gates)
    assert recommendation(text) == NOT_APPROVED
    assert "PRODUCTION READINESS ASSESSMENT: ❌ FAILED" in text
    assert data["approved"] is False
    blocked = [g.name for g in gates if g.status is not P]
    if blocked:
        assert f"Blocked by: {', '.join(blocked)}" in text


@pytest.mark.parametrize("count", [1, 2, 5])
def test_all_gates_passed_is_approved(tmp_path, count):
    gates = gates_of((P,) * count)
    text, data = written(tmp_path, gates)
    assert readiness.approved(gates)
    assert recommendation(text) == APPROVED
    assert data["approved"] is True
    assert "Blocked by" not in text


COMBINATIONS = [c for n in range(4) for c in itertools.product(list(Status), repeat=n)]


@pytest.mark.parametrize("statuses", COMBINATIONS, ids=lambda c: "-".join(c) or "none")
def test_every_combination_of_up_to_three_gates(tmp_path, statuses):
    only_passed = len(statuses) > 0 and all(s is P for s in statuses)
    text, data = written(tmp_path, gates_of(statuses))
    assert data["approved"] is only_passed
    assert [g["status"] for g in data["gates"]] == [REPORTED[s] for s in statuses]
    assert recommendation(text) == (APPROVED if only_passed else NOT_APPROVED)


# --- the deploy path: invoke task -> slakit.deploy.run -> readiness report -> exit code


class World:
    """What the replaced outside world reports to the pipeline; tests set the gates."""

    def __init__(self) -> None:
        self.converge_rc = 0
        self.smoke_ok = True
        self.sla: list[Gate] = [gate("SLA measurement valid", True, "400 samples")]
        self.verify_ok = True
        self.security_ok = True
        self.sla_calls = 0

    def sla_gates(self, *args: Any, **kwargs: Any) -> tuple[list[Gate], list[str]]:
        self.sla_calls += 1
        return list(self.sla), []


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> World:
    w = World()
    monkeypatch.chdir(tmp_path)  # reports/<env>/ is relative to the working directory
    real_resolve = envs.resolve
    monkeypatch.setattr(
        envs,
        "resolve",
        lambda name: envs.Environment(name, tmp_path) if name == "staging" else real_resolve(name),
    )
    monkeypatch.setattr(preflight, "run", lambda env, **kw: ["checked"])
    monkeypatch.setattr(credentials, "export", lambda env: None)
    monkeypatch.setattr(
        ansible,
        "playbook",
        lambda env, name, **kw: ansible.PlayResult(
            returncode=w.converge_rc, hosts={"app1": {"changed": 0, "failures": w.converge_rc}}
        ),
    )
    monkeypatch.setattr(stack, "load", lambda env: stack.Stack({}))
    monkeypatch.setattr(
        checks,
        "http_gates",
        lambda deployed, spec, env: [gate("Smoke: endpoints", w.smoke_ok, "1/1")],
    )
    monkeypatch.setattr(
        checks, "host_smoke_gate", lambda env, since: gate("Smoke: hosts", True, "")
    )
    monkeypatch.setattr(checks, "sla_gates", w.sla_gates)
    monkeypatch.setattr(
        checks, "verify_gate", lambda env, junit, **kw: gate("Host verification", w.verify_ok, "")
    )
    monkeypatch.setattr(checks, "host_tuning_notes", lambda env: [])
    monkeypatch.setattr(
        security,
        "checked",
        lambda env, deployed: ([gate("Security: TLS on lb-1", w.security_ok, "TLSv1.3")], []),
    )
    return w


def deploy(**options: Any) -> tuple[int, dict[str, Any] | None, str]:
    """Exit code of `invoke deploy`, its readiness.json and readiness.txt (if written)."""
    try:
        deploy_task(Context(), **{"env": "staging", **options})
        code = 0
    except Exit as exit_:
        code = exit_.code
    reports = sorted(Path("reports/staging").glob("*/readiness.json"))
    if not reports:
        return code, None, ""
    return code, json.loads(reports[-1].read_text()), reports[-1].with_suffix(".txt").read_text()


def test_deploy_with_every_gate_passed_is_approved_and_exits_0(world):
    code, data, text = deploy()
    assert code == 0
    assert data is not None and data["approved"] is True
    assert recommendation(text) == APPROVED
    names = [g["name"] for g in data["gates"]]
    assert names[0].startswith("Converge") and "SLA measurement valid" in names


def test_skip_sla_is_not_approved_and_exits_1(world):
    code, data, text = deploy(skip_sla=True)
    assert code == 1
    assert world.sla_calls == 0
    assert data is not None and data["approved"] is False
    [sla] = [g for g in data["gates"] if g["name"] == "SLA"]
    assert sla["status"] == "skipped"
    assert recommendation(text) == NOT_APPROVED and "Blocked by: SLA" in text


@pytest.mark.parametrize(
    "sla",
    [
        [gate("SLA measurement valid", False, "12 samples in 1 s")],
        [gate("SLA measurement valid", True, ""), gate("Measurement Validity", False, "INVALID")],
        [gate("SLA measurement valid", True, ""), gate("Load Testing", False, "FAILED")],
        [gate("SLA measurement valid", True, ""), gate("Regression Tests", False, "FAILED (1)")],
    ],
    ids=["invalid measurement", "invalid objective", "load test failed", "regression"],
)
def test_a_failed_sla_gate_is_not_approved_and_exits_1(world, sla):
    world.sla = sla
    code, data, text = deploy()
    assert code == 1
    assert data is not None and data["approved"] is False
    assert recommendation(text) == NOT_APPROVED


@pytest.mark.parametrize("what", ["smoke", "verify", "security"])
def test_a_failed_host_gate_is_not_approved_and_exits_1(world, what):
    setattr(world, f"{what}_ok", False)
    code, data, _ = deploy()
    assert code == 1 and data is not None and data["approved"] is False


def test_a_failed_converge_stops_the_checks_and_exits_1(world):
    world.converge_rc = 2
    code, data, text = deploy()
    assert code == 1
    assert data is not None and [g["status"] for g in data["gates"]] == ["failed"]
    assert world.sla_calls == 0
    assert recommendation(text) == NOT_APPROVED


def test_an_unknown_environment_exits_2_before_anything_runs(world):
    code, data, _ = deploy(env="no-such-env")
    assert code == 2 and data is None


def test_unreadable_role_facts_fail_smoke_and_roll_back_a_switched_release(world, monkeypatch):
    calls: list[tuple[str, str]] = []

    def playbook(env, name, **kw):
        calls.append((name, kw.get("limit", "")))
        switched = {"app1": {"slakit_release_switched": "abc123"}}
        return ansible.PlayResult(0, {"app1": {"changed": 1}}, published=switched)

    def unreachable(env):
        raise SlakitError("lb-1: reading local facts failed: unreachable")

    monkeypatch.setattr(ansible, "playbook", playbook)
    monkeypatch.setattr(stack, "load", unreachable)
    code, data, text = deploy()
    assert code == 1 and data is not None and data["approved"] is False
    smoke = next(g for g in data["gates"] if g["name"] == "Smoke: what the roles published")
    assert smoke["status"] == "failed" and "unreachable" in smoke["detail"]
    assert ("rollback.yml", "app1") in calls and world.sla_calls == 0
    assert "Automatic rollback" in text and recommendation(text) == NOT_APPROVED
