"""Promotion: `invoke deploy --release ID --from ENV` deploys exactly the release that ENV's
readiness report APPROVED, and refuses (exit 2, one line, before any host) otherwise.

Real parts: readiness reports written by slakit.readiness, a wheelhouse built by
slakit.wheelhouse (from hand-made wheels: no build backend to wait for), the invoke task and
the deploy pipeline; only Ansible and the hosts are replaced (the `world` of test_readiness).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from slakit import ansible, canary, deploy, envs, readiness, release, wheelhouse
from slakit.errors import SlakitError
from slakit.gates import gate
from tests.unit.test_readiness import deploy as run_deploy
from tests.unit.test_readiness import world  # noqa: F401  (the deploy-path fixture)
from tests.unit.test_wheelhouse import make_wheel

GENERATED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def kept(tmp_path_factory, monkeypatch: pytest.MonkeyPatch) -> wheelhouse.Wheelhouse:
    """A release kept in the controller's wheelhouse root (a temporary one, outside
    tmp_path: that is the inventory folder of the `world`)."""
    build = tmp_path_factory.mktemp("controller")
    root = build / "wheelhouse"
    monkeypatch.setattr(wheelhouse, "DEFAULT_ROOT", root)
    app = make_wheel(build / "src", "tinyapp", "1.0", requires="slakittestdep>=1")
    dep = make_wheel(build / "src")
    return wheelhouse.build([app, dep], root)


def report(
    env_dir: Path, stamp: str, release_id: str, wheels: dict[str, str], ok: bool = True
) -> Path:
    """A readiness report as `invoke deploy` writes it, recording `release_id`."""
    gates = [gate("Converge", True, "0 failed"), gate("SLA", ok, "p95 80 ms")]
    ran = {"id": release_id, "hosts": {"app-1": release_id}, "wheels": wheels}
    readiness.write(env_dir / stamp, env_dir.name, GENERATED, gates, [], release=ran)
    return env_dir / stamp / "readiness.json"


def staging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An environment "staging" whose reports are in tmp_path/reports/staging/."""
    monkeypatch.chdir(tmp_path)  # reports/<env>/ is relative to the working directory
    monkeypatch.setattr(envs, "resolve", lambda name: envs.Environment(name, tmp_path))
    return Path("reports/staging")


def test_an_approved_release_with_the_same_wheels_is_promoted(tmp_path, monkeypatch, kept):
    reports = staging(tmp_path, monkeypatch)
    report(reports, "20240501T100000Z", kept.release_id, kept.sha256, ok=False)
    approved = report(reports, "20240501T110000Z", kept.release_id, kept.sha256)
    report(reports, "20240501T120000Z", "0123456789abcdef", {}, ok=True)  # another release
    promo = release.check_promotion(kept.release_id, "staging")
    assert (promo.report, promo.forced, promo.wheels) == (str(approved), "", kept.sha256)
    assert promo.extra_vars() == {
        "app_release": kept.release_id,
        "app_wheelhouse_root": str(kept.path.parent),
    }


@pytest.mark.parametrize(
    "reports_there, expected",
    [
        ([], r"no APPROVED readiness report for release \w+ in reports/staging/ \(--force"),
        ([False], r"no APPROVED .* \(newest report for it: .*20240501T100000Z.*, NOT APPROVED\)"),
        (["other id"], r"no APPROVED readiness report for release"),
        (["other wheels"], r"not byte-for-byte the one .* approved: 1 wheel\(s\) differ"),
    ],
    ids=["no report", "not approved", "approved for another id", "other wheel hashes"],
)
def test_a_release_without_an_approval_for_exactly_it_is_refused_with_exit_2(
    tmp_path, monkeypatch, kept, reports_there, expected
):
    reports = staging(tmp_path, monkeypatch)
    for i, what in enumerate(reports_there):
        rid = "0123456789abcdef" if what == "other id" else kept.release_id
        wheels = dict(kept.sha256)
        if what == "other wheels":
            name = next(iter(wheels))
            wheels[name] = "0" * 64
        report(reports, f"20240501T1{i}0000Z", rid, wheels, ok=what is not False)
    with pytest.raises(SlakitError, match=expected) as err:
        release.check_promotion(kept.release_id, "staging")
    assert err.value.exit_code == 2 and "\n" not in str(err.value)
    forced = release.check_promotion(kept.release_id, "staging", force=True)
    assert forced.forced and forced.as_json()["forced"] is True


def test_a_release_not_kept_or_altered_on_this_controller_is_refused_even_forced(
    tmp_path, monkeypatch, kept
):
    reports = staging(tmp_path, monkeypatch)
    report(reports, "20240501T110000Z", kept.release_id, kept.sha256)
    wheel = next(kept.path.glob("*.whl"))
    wheel.write_bytes(wheel.read_bytes() + b"\0")
    with pytest.raises(SlakitError, match=r"was altered"):
        release.check_promotion(kept.release_id, "staging", force=True)
    report(reports, "20240501T120000Z", "0123456789abcdef", kept.sha256)
    with pytest.raises(SlakitError, match=r"not kept on this controller"):
        release.check_promotion("0123456789abcdef", "staging", force=True)
    with pytest.raises(SlakitError, match=r"16 hex digits"):
        release.check_promotion("../../etc", "staging")


# --- through `invoke deploy` (the pipeline, the report) ---------------------------------------


def test_an_unknown_release_is_refused_before_any_host_is_touched(
    world,  # noqa: F811
    kept,
    monkeypatch,
):
    touched: list[str] = []
    monkeypatch.setattr(deploy, "ensure_lab", lambda console: touched.append("lab"))
    code, data, _ = run_deploy(env="lab", release="0123456789abcdef", from_="staging")
    assert code == 2 and data is None
    assert world.calls == [] and touched == []  # no playbook ran, no lab was adopted


def test_a_promotion_deploys_the_kept_release_and_the_report_records_it(
    world,  # noqa: F811
    kept,
    monkeypatch,
):
    approved = report(Path("reports/staging"), "20240501T110000Z", kept.release_id, kept.sha256)
    world.releases_after = {"app-1": kept.release_id, "app-2": kept.release_id}
    converge_vars: list[dict] = []

    def rollout(env, outdir, console, **kw):  # the converge runs, as the world has them
        converge_vars.append(dict(kw.get("extra_vars") or {}))
        return canary.Rollout([ansible.playbook(env, "site.yml")])

    monkeypatch.setattr(canary, "rollout", rollout)
    code, data, text = run_deploy(release=kept.release_id, from_="staging")
    assert code == 0 and data is not None
    # the app role deploys the kept wheelhouse as it is (wheelhouse.yml: app_release)
    assert converge_vars == [
        {"app_release": kept.release_id, "app_wheelhouse_root": str(kept.path.parent)}
    ]
    assert data["release"]["id"] == kept.release_id
    assert data["release"]["wheels"] == kept.sha256
    assert data["release"]["promotion"] == {
        "from": "staging",
        "report": str(approved),
        "forced": False,
        "why_forced": "",
    }
    [promotion] = [g for g in data["gates"] if g["name"] == "Promotion"]
    assert promotion["status"] == "passed"
    assert f"Release: {kept.release_id} on app-1, app-2 · 2 wheels" in text
    assert f"Promoted from staging: APPROVED in {approved}" in text


def test_a_forced_promotion_says_so_and_a_host_on_another_release_fails_it(world, kept):  # noqa: F811
    world.releases_after = {"app-1": kept.release_id, "app-2": "fedcba9876543210"}
    code, data, text = run_deploy(release=kept.release_id, from_="staging", force=True)
    assert code == 1 and data is not None
    assert data["release"]["id"] is None and data["release"]["promotion"]["forced"] is True
    [promotion] = [g for g in data["gates"] if g["name"] == "Promotion"]
    assert promotion["status"] == "failed" and "FORCED" in promotion["figure"]
    assert "Promoted from staging: FORCED (no APPROVED readiness report" in text
    assert "Release: none common (mixed releases)" in text


def test_an_ordinary_deploy_records_the_release_the_hosts_run_and_its_wheels(world, kept):  # noqa: F811
    world.releases_after = {"app-1": kept.release_id, "app-2": kept.release_id}
    code, data, _ = run_deploy()
    assert code == 0 and data is not None
    assert data["release"] == {
        "id": kept.release_id,
        "hosts": world.releases_after,
        "wheels": kept.sha256,
        "wheelhouse": str(kept.path),
    }
    assert "promotion" not in data["release"]
    assert not [g for g in data["gates"] if g["name"] == "Promotion"]
