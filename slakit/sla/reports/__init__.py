"""Report writers: text (seed layout), JSON, JUnit XML, self-contained HTML."""

from __future__ import annotations

from pathlib import Path

from slakit.errors import SlakitError
from slakit.sla.model import Result
from slakit.sla.reports.html import render_html
from slakit.sla.reports.junit import render_junit
from slakit.sla.reports.text import render_text

__all__ = ["render_html", "render_junit", "render_text", "write_all", "write_text_file"]


def write_text_file(path: str | Path, text: str) -> Path:
    target = Path(path)
    try:
        if target.parent and not target.parent.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as err:
        raise SlakitError(f"cannot write {target}: {err.strerror or err}") from None
    return target


def write_all(result: Result, outdir: Path) -> dict[str, Path]:
    return {
        "text": write_text_file(outdir / "report.txt", render_text(result, True)),
        "json": write_text_file(outdir / "report.json", result.to_json()),
        "junit": write_text_file(outdir / "junit.xml", render_junit(result)),
        "html": write_text_file(outdir / "report.html", render_html(result)),
    }
