"""The one line a failed run is reported by does not depend on which host finished first."""

from __future__ import annotations

from slakit.ansible import PlayResult


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
