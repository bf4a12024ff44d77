"""A gate is one check of the main job with its measured figure; the report is made of them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from slakit.status import Status

__all__ = ["Gate", "Status", "gate", "skipped"]

# readiness.json has always written gates in the past tense; other statuses as they are
REPORTED = {Status.PASS: "passed", Status.FAIL: "failed"}


@dataclass(frozen=True)
class Gate:
    name: str  # e.g. "Smoke: endpoints through the load balancer"
    status: Status
    figure: str  # what was measured, e.g. "16/16 answered as expected"
    target: str = ""  # e.g. ">= 95%"
    detail: str = ""  # why it failed or was skipped, one line

    @property
    def passed(self) -> bool:
        return self.status is Status.PASS

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = REPORTED.get(self.status, self.status.value)
        return data


def gate(name: str, ok: bool, figure: str, target: str = "", detail: str = "") -> Gate:
    return Gate(name, Status.PASS if ok else Status.FAIL, figure, target, "" if ok else detail)


def skipped(name: str, why: str) -> Gate:
    """A gate that was not run (e.g. --skip-sla): the verdict cannot be APPROVED."""
    return Gate(name, Status.SKIPPED, "not run", detail=why)
