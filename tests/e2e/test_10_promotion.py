"""Promotion in the lab: the deploy report records the release and its wheel hashes; `invoke
deploy --release <id> --from lab` deploys exactly that release; an unknown id is refused
before any host is touched.

The lab's own report stands in for staging's (`--from lab`). The promotion is conftest's
`promotion` deploy (`--skip-sla`, shared with test_02's drift repair; its verdict is then NOT
APPROVED by design): the release, the wheel hashes and the Promotion gate of the new report are
what is checked, not the verdict.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest

from slakit import wheelhouse
from tests.e2e.support import ROOT, invoke, report_dir

APP_HOSTS = ("app-1", "app-2")
APP_ROOT = "/opt/slakit-service"
FACT = "/etc/ansible/facts.d/app.fact"


def read(outdir: Path) -> dict:
    return json.loads((outdir / "readiness.json").read_text())


def hosts_state(on_host) -> dict[str, str]:
    """{host: what `current` points to and when the app fact was last written}."""
    return {h: on_host(h, f"readlink {APP_ROOT}/current; stat -c %Y {FACT}") for h in APP_HOSTS}


@pytest.fixture(scope="module")
def deployed_release(deployed) -> dict:
    _, outdir = deployed
    release = read(outdir)["release"]
    wheels = len(release["wheels"])
    print(f"\nlab deploy report {outdir.name}: release {release['id']}, {wheels} wheels")
    return release


def test_the_deploy_report_records_the_release_the_hosts_run_and_its_wheel_hashes(
    deployed, deployed_release, on_host
):
    _, outdir = deployed
    rid = deployed_release["id"]
    assert wheelhouse.RELEASE_ID.match(rid or ""), deployed_release
    assert deployed_release["hosts"] == dict.fromkeys(APP_HOSTS, rid)
    for host in APP_HOSTS:  # what the host runs, read on the host
        assert on_host(host, f"readlink -f {APP_ROOT}/current").endswith(f"/releases/{rid}")
    wheels = deployed_release["wheels"]
    assert any(w.startswith("slakit_service-") for w in wheels) and len(wheels) > 10
    kept = wheelhouse.DEFAULT_ROOT / rid
    for name, digest in wheels.items():  # the controller's copy, byte for byte
        assert hashlib.sha256((kept / name).read_bytes()).hexdigest() == digest, name
    on_app1 = on_host("app-1", f"cd {APP_ROOT}/releases/{rid}/wheelhouse && sha256sum *.whl")
    assert {ln.split()[1]: ln.split()[0] for ln in on_app1.splitlines()} == wheels
    text = (outdir / "readiness.txt").read_text()
    assert f"Release: {rid} on app-1, app-2 · {len(wheels)} wheels" in text


def test_an_unknown_release_is_refused_with_exit_2_before_any_host(deployed, on_host):
    before = hosts_state(on_host)
    reports_before = set((ROOT / "reports/lab").glob("*/readiness.json"))
    t0 = time.monotonic()
    result = invoke("deploy", "--env", "lab", "--release", "0123456789abcdef", "--from", "lab")
    seconds = time.monotonic() - t0
    print(f"\nunknown release refused in {seconds:.1f} s: {result.stderr.strip()}")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "no APPROVED readiness report for release 0123456789abcdef" in result.stderr
    assert "Preflight" not in result.stdout and "Converge" not in result.stdout
    assert hosts_state(on_host) == before
    assert set((ROOT / "reports/lab").glob("*/readiness.json")) == reports_before


def test_a_promotion_deploys_the_approved_release_with_equal_wheel_hashes(
    deployed_release, promotion, on_host
):
    rid = deployed_release["id"]
    approved = promotion.approved
    promoted = read(report_dir(promotion.deploy.stdout))
    release = promoted["release"]
    gate = next(g for g in promoted["gates"] if g["name"] == "Promotion")
    print(
        f"\npromotion of {rid} from lab ({'APPROVED' if approved else 'FORCED'} source) in "
        f"{promotion.seconds:.0f} s: report release {release['id']}, "
        f"{len(release['wheels'])} wheels, hashes equal: "
        f"{release['wheels'] == deployed_release['wheels']}; gate: {gate['figure']}"
    )
    assert promotion.release == deployed_release
    assert release["id"] == rid
    assert release["hosts"] == dict.fromkeys(APP_HOSTS, rid)
    assert release["wheels"] == deployed_release["wheels"]
    assert release["promotion"]["from"] == "lab"
    assert release["promotion"]["forced"] is (not approved)
    assert gate["status"] == "passed"
    if approved:  # the newest APPROVED lab report of that release vouched for it
        source = read((ROOT / release["promotion"]["report"]).parent)
        assert source["approved"] is True and source["release"]["id"] == rid
        assert source["release"]["wheels"] == deployed_release["wheels"]
    current = {h: on_host(h, f"readlink {APP_ROOT}/current") for h in APP_HOSTS}
    assert current == promotion.current_before
