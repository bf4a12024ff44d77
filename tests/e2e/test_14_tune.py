"""`invoke tune` end to end on the deployed lab, with a two-value grid: HAProxy's
`loadbalancer_http_reuse` safe and aggressive, story 1.1, two ramp steps.

Required: both values applied through playbooks/loadbalancer.yml and measured (the ramp's
nominal step ran for the story at each), the choice the rule (`tune.choose`) makes on the
figures measured, the report's files, HAProxy's configuration rewritten while it ran (its
mtime) and, at the end, back to what the inventory resolves (no `--apply`: no tuned.yml
written). Whether a value passes at the nominal rate is the machine's business, not this
test's: if none does, tune must say so (exit 1) and still put the hosts back. Printed: the
tuner's table.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import fields

import yaml

from slakit import ansible, envs, tune
from tests.e2e.support import ROOT, invoke

VAR = "loadbalancer_http_reuse"
VALUES = ["safe", "aggressive"]
HAPROXY_CFG = "/etc/haproxy/haproxy.cfg"


def test_tune_measures_each_value_chooses_and_puts_the_inventory_back(deployed, on_host, tmp_path):
    lab = envs.resolve("lab")
    wanted = ansible.resolved_role_vars(lab.inventory)["lb-1"][VAR]  # what the inventory says
    grid = tmp_path / "grid.yml"
    grid.write_text(
        yaml.safe_dump(
            {"version": 1,
             "settings": [{"var": VAR, "values": VALUES, "playbook": "loadbalancer.yml",
                           "group": "lb"}]}
        )
    )  # fmt: skip
    began = time.time()
    run = invoke(
        "tune", "--env", "lab", "--grid", str(grid), "--story", "1.1", "--steps", "2",
        timeout=900,
    )  # fmt: skip
    print(f"\n{run.stdout[-3000:]}{run.stderr[-2000:]}")
    match = re.search(r"^report: (\S+)/$", run.stdout, re.M)
    assert match, run.stdout[-2000:] + run.stderr[-2000:]
    out = ROOT / match.group(1)
    data = json.loads((out / "tune.json").read_text())

    assert data["start"] == {VAR: wanted}
    assert [t["value"] for t in data["trials"]] == VALUES
    trials = [tune.Trial(**{f.name: t[f.name] for f in fields(tune.Trial)}) for t in data["trials"]]
    for trial in trials:  # measured: the ramp's nominal step ran and has a p99
        assert trial.nominal_rps["1.1"] > 0 and trial.nominal_p99_ms["1.1"] is not None, trial
    # the choice is the rule's on the figures measured (a slow machine may fail a value at
    # the nominal rate: then the rule keeps what the hosts ran, or tune says no value passed)
    choice = tune.choose(trials, wanted)
    if choice is None:
        assert run.returncode == 1 and data["problems"] == [
            f"no value of {VAR} passed every story at its nominal rate"
        ], data["problems"]
    else:
        assert run.returncode == 0, run.stderr[-2000:]
        assert data["chosen"] == {VAR: choice.value} and data["applied"] is False
        assert yaml.safe_load((out / "tuned-lb.yml").read_text()) == data["chosen"]
    assert (out / "report.html").read_text().count("<svg") == 1
    assert not (lab.inventory / "group_vars" / "lb" / "tuned.yml").exists()

    written = float(on_host("lb-1", f"stat -c %Y {HAPROXY_CFG}"))
    assert written >= began - 1, "HAProxy's configuration was never rewritten by the tuner"
    lines = on_host("lb-1", f"grep -E '^\\s*http-reuse ' {HAPROXY_CFG}").split()
    assert lines[1] == wanted, f"after tune: http-reuse {lines[1]}, the inventory says {wanted}"
