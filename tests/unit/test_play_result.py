"""The one line a failed run is reported by does not depend on which host finished first."""

from __future__ import annotations

import json
import subprocess

import yaml

from slakit.ansible import BIN, ROOT, PlayResult, command_env


def failure(host: str, task: str, kind: str = "failed") -> dict[str, str]:
    return {"host": host, "task": task, "kind": kind, "msg": f"{task} broke on {host}"}


def test_the_first_failed_task_on_the_first_host_by_name():
    later_first = PlayResult(2, failures=[failure("app-2", "Check"), failure("app-1", "Check")])
    in_order = PlayResult(2, failures=[failure("app-1", "Check"), failure("app-2", "Check")])
    assert (
        later_first.first_failure()
        == in_order.first_failure()
        == ("app-1: Check: Check broke on app-1")
    )


def test_a_later_task_never_wins_over_the_first_failed_one():
    result = PlayResult(2, failures=[failure("b-2", "First"), failure("a-1", "Second")])
    assert result.first_failure() == "b-2: First: First broke on b-2"


def test_unreachable_and_no_failure_recorded():
    down = PlayResult(4, failures=[failure("lb-1", "Gathering Facts", "unreachable")])
    assert down.first_failure() == "host lb-1 unreachable: Gathering Facts broke on lb-1"
    assert PlayResult(2).first_failure() == "ansible-playbook exited 2"


def test_a_failure_a_rescue_handles_is_not_recorded_and_the_rescue_own_is(tmp_path):
    """A real run of the summary callback: only the failure that ends the run is recorded."""
    play = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "tasks": [
                {
                    "block": [{"block": [{"ansible.builtin.fail": {"msg": "inner"}}]}],
                    "rescue": [{"name": "Say why", "ansible.builtin.fail": {"msg": "outer"}}],
                },
            ],
        }
    ]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    summary = tmp_path / "summary.json"
    run = subprocess.run(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            "localhost,",
            "-c",
            "local",
            str(tmp_path / "play.yml"),
        ],
        cwd=ROOT,
        env={**command_env(), "SLAKIT_ANSIBLE_SUMMARY": str(summary)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 2, run.stdout[-2000:]
    failures = json.loads(summary.read_text())["failures"]
    assert [(f["task"], f["msg"]) for f in failures] == [("Say why", "outer")]
