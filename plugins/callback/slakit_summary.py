"""Write a JSON summary of a playbook run for slakit: per-host stats, failures, published data.

Enabled in ansible.cfg; writes only when SLAKIT_ANSIBLE_SUMMARY names a file, so plain
ansible-playbook runs are unaffected.
"""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: slakit_summary
type: aggregate
short_description: JSON summary of a run for slakit's orchestration
description:
  - Records per-host stats, failed or unreachable tasks (not those a rescue handles) and
    the data that roles publish with set_stats into the file named by the
    SLAKIT_ANSIBLE_SUMMARY environment variable.
"""


def handled_by_a_rescue(task) -> bool:
    """Whether the task sits in the `block:` part (at any depth) of a block with a `rescue:`:
    its failure is handled there, and what the run failed on is told by the rescue's tasks."""
    child, parent = task, task._parent
    while parent is not None:
        if getattr(parent, "rescue", None) and any(t._uuid == child._uuid for t in parent.block):
            return True
        child, parent = parent, getattr(parent, "_parent", None)
    return False


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "slakit_summary"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._path = os.environ.get("SLAKIT_ANSIBLE_SUMMARY")
        self._failures: list[dict[str, str]] = []
        self._changed: dict[str, list[str]] = {}

    def _record(self, result, kind: str) -> None:
        res = result._result
        # a loop that failed: the first failed item says why ("One or more items failed" does not)
        failed_items = [
            r for r in res.get("results") or [] if isinstance(r, dict) and r.get("failed")
        ]
        res = failed_items[0] if failed_items else res
        msg = res.get("msg") or res.get("stderr") or res.get("reason") or ""
        if res.get("_ansible_no_log"):
            msg = "(output hidden: task handles a secret)"
        self._failures.append(
            {
                "host": result._host.get_name(),
                "task": result._task.get_name(),
                "kind": kind,
                "msg": " ".join(str(msg).split())[:400],
            }
        )

    def v2_runner_on_failed(self, result, ignore_errors=False):
        if not ignore_errors and not handled_by_a_rescue(result._task):
            self._record(result, "failed")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable")

    def v2_runner_on_ok(self, result):
        if result._result.get("changed"):
            self._changed.setdefault(result._host.get_name(), []).append(result._task.get_name())

    def v2_playbook_on_stats(self, stats):
        if not self._path:
            return
        hosts = sorted(stats.processed)
        summary = {
            "hosts": {h: stats.summarize(h) for h in hosts},
            "changed_tasks": self._changed,
            "failures": self._failures,
            # set_stats data (docs/contract.md): {host: {...}} when per_host, else {"_run": {...}}
            "published": getattr(stats, "custom", {}) or {},
        }
        with open(self._path, "w", encoding="utf-8") as out:
            json.dump(summary, out, indent=1)
