"""The one verdict vocabulary of slakit: gates, SLA objectives, stories, the ramp, readiness.

The values are the strings the SLA's JSON result has always carried ("pass", "fail", ...);
a StrEnum compares equal to them and serialises as them.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INVALID = "invalid"  # measured, but the measurement cannot decide (SLA exit 3)
    SKIPPED = "skipped"  # not run or not measured: never counts as passed
    INFO = "info"  # reported, not gated


# How a report shows each status (text reports and the readiness assessment).
MARK = {
    Status.PASS: "✅",
    Status.FAIL: "❌",
    Status.INVALID: "⚠️",
    Status.SKIPPED: "⏭️",
    Status.INFO: "ℹ️",  # noqa: RUF001
}
