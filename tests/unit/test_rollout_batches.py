"""The rollout's batches (playbooks/app.yml play 2, rollback.yml): the first host alone, then
app_rollout_batch hosts at a time. Ansible itself splits the plays (no task runs, no host is
contacted): each batch is a play start in its JSON output."""

from __future__ import annotations

import json
import subprocess

import pytest

from slakit.ansible import BIN, ROOT, command_env

PLAYS = {"app.yml": "Roll the release out", "rollback.yml": "Roll the app back"}


def batches(tmp_path, playbook: str, app_hosts: int, *extra: str) -> int:
    inventory = tmp_path / "hosts.yml"
    hosts = "".join(
        f"        app-{k}: {{ansible_connection: local}}\n" for k in range(1, app_hosts + 1)
    )
    inventory.write_text(f"all:\n  children:\n    app:\n      hosts:\n{hosts}")
    cmd = [str(BIN / "ansible-playbook"), "-i", str(inventory), f"playbooks/{playbook}"]
    run = subprocess.run(
        [*cmd, "--tags", "slakit-no-such-tag", "--skip-tags", "always", *extra],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**command_env(), "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"},
        check=True,
    )
    plays = [p["play"]["name"] for p in json.loads(run.stdout)["plays"]]
    return sum(name.startswith(PLAYS[playbook]) for name in plays)


@pytest.mark.parametrize("playbook", list(PLAYS))
def test_first_host_alone_then_a_quarter_at_a_time(tmp_path, playbook):
    # 14 hosts: 1, then int(25% of 14) = 3 at a time: 3, 3, 3, 3, 1
    assert batches(tmp_path, playbook, 14) == 6


def test_small_groups_go_host_by_host(tmp_path):
    assert batches(tmp_path, "app.yml", 2) == 2  # 25% of 2 is at least 1


@pytest.mark.parametrize(("batch", "expected"), [("1", 14), ("100%", 2), ("5", 4)])
def test_the_batch_is_an_extra_var(tmp_path, batch, expected):
    assert batches(tmp_path, "app.yml", 14, "-e", f"app_rollout_batch={batch}") == expected
