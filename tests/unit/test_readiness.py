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

from slakit import (
    ansible,
    canary,
    checks,
    credentials,
    envs,
    lock,
    monitoring,
    preflight,
    readiness,
    security,
    stack,
)
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
        self.monitoring_ok = True
        self.sla_calls = 0
        # {host: (release it switched to, release it ran before)} as the app role publishes it
        self.switched: dict[str, tuple[str, str]] = {}
        self.rollback_rc = 0
        self.releases_after: dict[str, str] = {}  # the app fact's `release` after a rollback
        self.calls: list[tuple[str, str, tuple[str, ...]]] = []  # (playbook, limit, extra args)

    def playbook(self, env: Any, name: str, **kw: Any) -> ansible.PlayResult:
        self.calls.append((name, kw.get("limit", ""), tuple(kw.get("extra_args", ()))))
        if name == "rollback.yml":
            failures = [{"host": "app-1", "task": "Drain", "kind": "failed", "msg": "timeout"}]
            return ansible.PlayResult(self.rollback_rc, failures=failures * bool(self.rollback_rc))
        published = {
            h: {"slakit_release_switched": new, "slakit_release_previous": old}
            for h, (new, old) in self.switched.items()
        }
        hosts = {"app1": {"changed": 0, "failures": self.converge_rc}}
        return ansible.PlayResult(self.converge_rc, hosts, published=published)

    def rollbacks(self) -> list[tuple[str, dict[str, str]]]:
        """(limit, slakit_rollback_to) of each rollback.yml run."""
        return [
            (limit, json.loads(args[args.index("-e") + 1])["slakit_rollback_to"])
            for name, limit, args in self.calls
            if name == "rollback.yml"
        ]

    def read_facts(self, env: Any) -> dict[str, dict[str, Any]]:
        return {h: {"app": {"release": r}} for h, r in self.releases_after.items()} | {
            "lb-1": {"loadbalancer": {}}
        }

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
    monkeypatch.setattr(ansible, "playbook", w.playbook)
    monkeypatch.setattr(stack, "load", lambda env: stack.Stack({}))
    # The canary stage reads the inventory and measures hosts: here, the one converge run.
    monkeypatch.setattr(
        canary,
        "rollout",
        lambda env, outdir, console, **kw: canary.Rollout([ansible.playbook(env, "site.yml")]),
    )
    monkeypatch.setattr(stack, "read_facts", w.read_facts)
    # the deploy lock's own tests are tests/unit/test_lock.py (through Ansible, on this host)
    monkeypatch.setattr(lock, "acquire", lambda env, command, **kw: lock.Lock("lb-1", "t0", {}))
    monkeypatch.setattr(lock, "release", lambda env, held: True)
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
    monkeypatch.setattr(ansible, "resolved_role_vars", lambda inventory, **kw: {})
    monkeypatch.setattr(
        security,
        "checked",
        lambda env, deployed, role_vars: (
            [gate("Security: TLS on lb-1", w.security_ok, "TLSv1.3")],
            [],
        ),
    )
    monkeypatch.setattr(
        monitoring,
        "gates",
        lambda deployed, role_vars, spec: [gate("Monitoring: alerts", w.monitoring_ok, "0 firing")],
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


@pytest.mark.parametrize("what", ["smoke", "verify", "security", "monitoring"])
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
    world.switched = {"app1": ("abc123", "old999")}
    world.releases_after = {"app1": "old999"}

    def unreachable(env):
        raise SlakitError("lb-1: reading local facts failed: unreachable")

    monkeypatch.setattr(stack, "load", unreachable)
    code, data, text = deploy()
    assert code == 1 and data is not None and data["approved"] is False
    smoke = next(g for g in data["gates"] if g["name"] == "Smoke: what the roles published")
    assert smoke["status"] == "failed" and "unreachable" in smoke["detail"]
    assert world.rollbacks() == [("app1", {"app1": "old999"})] and world.sla_calls == 0
    assert "ROLLED BACK" in text and recommendation(text) == NOT_APPROVED


# --- rollback: any failure after a host switched puts every switched host back

SWITCHED_ONE = {"app-1": ("new222", "old111")}  # app-1 switched; app-2 failed before its switch


def rollback_line(data: dict[str, Any]) -> dict[str, Any]:
    [line] = [g for g in data["gates"] if g["name"] == "Rollback"]
    return line


def test_a_converge_failure_after_a_switch_rolls_the_switched_host_back(world):
    world.converge_rc, world.switched = 2, SWITCHED_ONE
    world.releases_after = {"app-1": "old111", "app-2": "old111"}
    code, data, text = deploy()
    assert code == 1 and data is not None and data["approved"] is False
    # only the switched host, to the release it ran before (published with the switch)
    assert world.rollbacks() == [("app-1", {"app-1": "old111"})]
    # then the release that failed goes from every app host that does not run it (app-2 got it)
    assert world.calls[-1] == ("discard.yml", "", ("-e", '{"slakit_discard_release": "new222"}'))
    assert world.sla_calls == 0
    line = rollback_line(data)
    assert line["status"] == "passed" and line["figure"].startswith("ROLLED BACK app-1 in ")
    # which release each app host runs, as read from the hosts after the rollback
    assert "now on the hosts: app-1 old111, app-2 old111" in line["figure"]
    assert "why: Converge: playbooks/site.yml failed" in line["detail"]
    assert "✅ Rollback: ROLLED BACK app-1" in text and recommendation(text) == NOT_APPROVED
    assert "Blocked by: Converge: playbooks/site.yml" in text


@pytest.mark.parametrize(
    ("what", "failed_gate", "sla_runs"),
    [
        ("smoke_ok", "Smoke: endpoints", 0),
        ("sla", "Regression Tests", 1),
        ("verify_ok", "Host verification", 1),
        ("security_ok", "Security: TLS on lb-1", 1),
        ("monitoring_ok", "Monitoring: alerts", 1),
    ],
    ids=["smoke", "SLA gate", "testinfra", "security", "monitoring"],
)
def test_any_failed_gate_after_a_switch_rolls_every_switched_host_back(
    world, what, failed_gate, sla_runs
):
    world.switched = {"app-1": ("new222", "old111"), "app-2": ("new222", "old111")}
    world.releases_after = {"app-1": "old111", "app-2": "old111"}
    if what == "sla":
        world.sla = [gate("SLA measurement valid", True, ""), gate(failed_gate, False, "FAILED")]
    else:
        setattr(world, what, False)
    code, data, _ = deploy()
    assert code == 1 and data is not None and data["approved"] is False
    assert world.rollbacks() == [("app-1,app-2", {"app-1": "old111", "app-2": "old111"})]
    assert world.sla_calls == sla_runs  # a failed smoke rolls back at once, without the SLA run
    line = rollback_line(data)
    assert line["status"] == "passed" and "ROLLED BACK app-1, app-2" in line["figure"]
    assert f"why: {failed_gate} failed" in line["detail"]


def test_a_failed_rollback_is_reported_as_failed(world):
    world.converge_rc, world.switched, world.rollback_rc = 2, SWITCHED_ONE, 2
    world.releases_after = {"app-1": "new222", "app-2": "old111"}
    code, data, text = deploy()
    assert code == 1 and data is not None
    line = rollback_line(data)
    assert line["status"] == "failed" and line["figure"].startswith("ROLLBACK FAILED app-1")
    assert "app-1: Drain: timeout" in line["detail"] and "app-1 new222" in line["figure"]
    assert "❌ Rollback: ROLLBACK FAILED" in text and "Rollback" in text.split("Blocked by:")[1]


def test_a_rollback_that_leaves_a_host_on_the_new_release_failed(world):
    world.converge_rc, world.switched = 2, SWITCHED_ONE
    world.releases_after = {"app-1": "new222", "app-2": "old111"}  # rc 0, yet not back
    _, data, _ = deploy()
    assert data is not None
    line = rollback_line(data)
    assert line["status"] == "failed" and "app-1 runs new222, not old111" in line["detail"]


def test_no_rollback_leaves_the_switched_hosts_and_says_so(world):
    world.smoke_ok, world.switched = False, SWITCHED_ONE
    code, data, _ = deploy(no_rollback=True)
    assert code == 1 and data is not None
    assert world.rollbacks() == []
    line = rollback_line(data)
    assert line["status"] == "skipped" and line["figure"] == "NOT ROLLED BACK (--no-rollback)"


@pytest.mark.parametrize("options", [{}, {"skip_sla": True}], ids=["approved", "sla skipped"])
def test_a_switch_without_a_failed_gate_is_not_rolled_back(world, options):
    world.switched = SWITCHED_ONE
    deploy(**options)
    assert world.rollbacks() == []


def test_nothing_switched_nothing_rolled_back(world):
    world.converge_rc = 2  # failed before any host switched
    code, data, _ = deploy()
    assert code == 1 and data is not None and world.rollbacks() == []
    assert [g["name"] for g in data["gates"]] == ["Converge: playbooks/site.yml"]


def test_an_error_in_the_checks_after_a_switch_still_rolls_back(world, monkeypatch):
    world.switched, world.releases_after = SWITCHED_ONE, {"app-1": "old111"}

    def broken(*args, **kwargs):
        raise SlakitError("sla: spec.yml: bad story")

    monkeypatch.setattr(checks, "sla_gates", broken)
    code, data, _ = deploy()
    assert code == 2 and data is None  # the error itself, one line, exit 2
    assert world.rollbacks() == [("app-1", {"app-1": "old111"})]
