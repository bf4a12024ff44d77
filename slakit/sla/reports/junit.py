"""JUnit XML: one testsuite per story, one testcase per objective (+ load test, regressions)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from slakit.sla.model import Result
from slakit.status import Status


def _case(suite: ET.Element, classname: str, name: str, status: Status, message: str, seconds: float = 0.0) -> None:
    case = ET.SubElement(suite, "testcase", classname=classname, name=name, time=f"{seconds:.3f}")
    if status == Status.FAIL:
        ET.SubElement(case, "failure", message=message or "objective not met", type="SLA")
    elif status == Status.INVALID:
        ET.SubElement(case, "error", message=message or "measurement invalid", type="INVALID")
    elif status == Status.SKIPPED:
        ET.SubElement(case, "skipped", message=message or "skipped")


def _finish(suite: ET.Element) -> None:
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    for tag, attr in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
        suite.set(attr, str(sum(1 for c in cases if c.find(tag) is not None)))


def render_junit(result: Result) -> str:
    root = ET.Element("testsuites", name="slakit-sla", time=f"{result.duration_s:.3f}")
    for story in result.stories:
        suite = ET.SubElement(
            root,
            "testsuite",
            name=f"story {story.id}: {story.name}",
            timestamp=result.generated,
            time=f"{story.duration_s or 0.0:.3f}",
        )
        classname = f"sla.story_{story.id.replace('.', '_')}"
        for o in story.objectives:
            where = o.endpoint or f"story {story.id}"
            detail = (
                f"{o.exceedances}/{o.samples} over, upper bound {o.upper_bound:.4%}"
                f" vs allowed {o.allowed:.2%}"
                if o.upper_bound is not None
                else ""
            )
            _case(suite, classname, f"{where} {o.name}", o.status, "; ".join(filter(None, [o.message, detail])))
        for e in story.endpoints:
            if e.status == Status.SKIPPED:
                _case(suite, classname, f"{e.key}", Status.SKIPPED, e.skip_reason)
        if story.status == Status.SKIPPED and not story.endpoints:
            _case(suite, classname, "story", Status.SKIPPED, story.skip_reason)
        _finish(suite)
    if result.load_tests:
        suite = ET.SubElement(root, "testsuite", name="load test", timestamp=result.generated)
        for t in result.load_tests:
            capacity = "none" if t.capacity_rps is None else f"{t.capacity_rps:.0f} req/s"
            _case(
                suite,
                "sla.load_test",
                f"story {t.story_id} sustains {t.nominal_rps:g} req/s (capacity {capacity})",
                t.status,
                t.note or (t.steps[0].note if t.steps else ""),
            )
        _finish(suite)
    if result.baseline_source:
        suite = ET.SubElement(root, "testsuite", name="regression", timestamp=result.generated)
        for r in result.regressions:
            _case(suite, "sla.regression", f"story {r.story_id} {r.endpoint} {r.metric}", r.status, r.message)
        _finish(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
