"""`invoke tune`'s report: reports/<env>/tune/<ts>/ with tune.json (every trial), report.txt
(the table), report.html (the table and, per setting, a plot of each story's capacity at SLA
against the setting's value) and tuned-<group>.yml (what `--apply` writes to the inventory)."""

from __future__ import annotations

import json
from dataclasses import asdict
from html import escape
from pathlib import Path

from slakit.sla.reports.html import COLORS, STYLE
from slakit.tune import Grid, Trial, TuneResult, tuned_files, tuned_yaml

W, H, PAD_L, PAD_B, PAD_T, BAR_GAP = 520, 240, 56, 36, 16, 12


def table(result: TuneResult) -> list[list[str]]:
    stories = result.stories
    head = ["setting", "value", *(f"{s} req/s at SLA" for s in stories), "bottleneck x nominal"]
    head += ["worst p99 at nominal (ms)", "nominal", "chosen", "seconds"]
    rows = [head]
    for t in result.trials:
        caps = [f"{c:.0f}" if (c := t.capacity_rps.get(s)) else "none" for s in stories]
        p99 = "?" if t.worst_p99_ms == float("inf") else f"{t.worst_p99_ms:.1f}"
        chosen = "yes" if repr(result.chosen.get(t.setting)) == repr(t.value) else ""
        ok = "passed" if t.nominal_passed else "FAILED"
        rows.append(
            [
                t.setting,
                str(t.value),
                *caps,
                f"{t.multiplier:.2f}",
                p99,
                ok,
                chosen,
                f"{t.seconds:.0f}",
            ]
        )
    return rows


def render_text(result: TuneResult) -> str:
    rows = table(result)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        f"slakit tune — env {result.env}, grid {result.grid}, stories {', '.join(result.stories)}, "
        f"{result.steps} ramp steps"
        + (f", medians of {result.rounds} rounds per value" if result.rounds > 1 else ""),
        "",
    ]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines += [f"note: {t.setting}={t.value}: {t.note}" for t in result.trials if t.note]
    lines += ["", "chosen: " + ", ".join(f"{k}={v}" for k, v in result.chosen.items())]
    lines += [f"problem: {p}" for p in result.problems]
    return "\n".join(lines) + "\n"


def capacity_svg(setting: str, trials: list[Trial], stories: list[str]) -> str:
    """Grouped bars: one group per value, one bar per story's capacity at SLA (req/s)."""
    caps = [[t.capacity_rps.get(s) or 0.0 for s in stories] for t in trials]
    top = max((c for row in caps for c in row), default=0.0) * 1.1 or 1.0
    plot_w, plot_h = W - PAD_L - 120, H - PAD_T - PAD_B
    group_w = plot_w / max(1, len(trials))
    bar_w = (group_w - BAR_GAP) / max(1, len(stories))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" role="img">']
    parts.append(f"<title>capacity at SLA against {escape(setting)}</title>")
    parts.append(
        f'<rect x="{PAD_L}" y="{PAD_T}" width="{plot_w}" height="{plot_h}" fill="none" '
        'stroke="#999"/>'
    )
    for i in range(5):
        v = top * i / 4
        y = PAD_T + plot_h * (1 - v / top)
        parts.append(
            f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{v:.0f}</text>'
        )
    for g, (trial, row) in enumerate(zip(trials, caps, strict=True)):
        x0 = PAD_L + g * group_w + BAR_GAP / 2
        for k, cap in enumerate(row):
            h = plot_h * cap / top
            parts.append(
                f'<rect x="{x0 + k * bar_w:.1f}" y="{PAD_T + plot_h - h:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{COLORS[k % len(COLORS)]}"/>'
            )
        label = escape(str(trial.value)[-22:])
        parts.append(
            f'<text x="{x0 + (group_w - BAR_GAP) / 2:.1f}" y="{H - PAD_B + 16}" font-size="11" '
            f'text-anchor="middle">{label}</text>'
        )
    for k, story in enumerate(stories):
        y = PAD_T + 14 + 16 * k
        parts.append(
            f'<rect x="{PAD_L + plot_w + 8}" y="{y - 8}" width="10" height="10" '
            f'fill="{COLORS[k % len(COLORS)]}"/>'
            f'<text x="{PAD_L + plot_w + 22}" y="{y + 1}" font-size="11">'
            f"story {escape(story)}</text>"
        )
    parts.append(
        f'<text x="14" y="{PAD_T + plot_h / 2}" font-size="11" '
        f'transform="rotate(-90 14 {PAD_T + plot_h / 2})" text-anchor="middle">req/s at SLA</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def render_html(result: TuneResult, grid: Grid) -> str:
    rows = table(result)
    cells = "".join(
        "<tr>" + "".join(f"<{'th' if i == 0 else 'td'}>{escape(c)}</{'th' if i == 0 else 'td'}>"
                         for c in r) + "</tr>"
        for i, r in enumerate(rows)
    )  # fmt: skip
    body = [f"<h1>slakit tune — {escape(result.env)}</h1>", f"<table>{cells}</table>"]
    for setting in grid.settings:
        trials = [t for t in result.trials if t.setting == setting.var]
        if trials:
            body.append(f"<h2>{escape(setting.var)}</h2>")
            body.append(capacity_svg(setting.var, trials, result.stories))
    body.append(f"<pre>{escape(render_text(result))}</pre>")
    return f"<!doctype html><meta charset=utf-8><style>{STYLE}</style>" + "".join(body)


def write(result: TuneResult, grid: Grid, outdir: Path) -> Path:
    outdir.mkdir(parents=True, exist_ok=True)
    data = asdict(result) | {"passed": result.passed}
    data["trials"] = [
        asdict(t) | {"multiplier": t.multiplier, "worst_p99_ms": _finite(t.worst_p99_ms)}
        for t in result.trials
    ]
    (outdir / "tune.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    (outdir / "report.txt").write_text(render_text(result))
    (outdir / "report.html").write_text(render_html(result, grid))
    if result.chosen:
        for group, values in tuned_files(grid, result.chosen).items():
            (outdir / f"tuned-{group}.yml").write_text(tuned_yaml(values))
    return outdir


def _finite(value: float) -> float | None:
    return None if value == float("inf") else value
