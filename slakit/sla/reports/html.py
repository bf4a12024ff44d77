"""A self-contained HTML report: tables plus inline-SVG latency percentile plots."""

from __future__ import annotations

import math
from html import escape

from slakit.sla.model import Result, StoryResult
from slakit.sla.reports.text import render_text
from slakit.status import Status

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
W, H, PAD_L, PAD_B, PAD_T, PAD_R = 720, 320, 60, 40, 20, 170
STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;
font-size:13px;text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}
.pass{color:#1a7f37;font-weight:600}.fail{color:#cf222e;font-weight:600}
.invalid{color:#9a6700;font-weight:600}.skipped{color:#777}
pre{background:#f6f8fa;padding:1em;overflow:auto;font-size:12px}svg{background:#fff}
"""


def _x(percentile: float) -> float:
    """Plot position: log10 of 1/(1-p), so p90, p99, p99.9 are evenly spaced."""
    return math.log10(1.0 / max(1e-4, 1.0 - percentile / 100.0))


def percentile_svg(series: list[tuple[str, list[list[float]]]], target_ms: float | None) -> str:
    points = [v for _, curve in series for _, v in curve]
    if not points:
        return "<p>No latency samples.</p>"
    y_max = max(max(points), target_ms or 0.0) * 1.1 or 1.0
    x_max = 4.0
    plot_w, plot_h = W - PAD_L - PAD_R, H - PAD_T - PAD_B

    def px(p: float) -> float:
        return PAD_L + plot_w * min(_x(p), x_max) / x_max

    def py(v: float) -> float:
        return PAD_T + plot_h * (1 - v / y_max)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" role="img">']
    parts.append(
        f'<rect x="{PAD_L}" y="{PAD_T}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>'
    )
    for label, p in (("0", 0), ("90", 90), ("99", 99), ("99.9", 99.9), ("99.99", 99.99)):
        x = px(p)
        parts.append(f'<line x1="{x:.1f}" y1="{PAD_T}" x2="{x:.1f}" y2="{PAD_T + plot_h}" stroke="#eee"/>')
        parts.append(
            f'<text x="{x:.1f}" y="{H - PAD_B + 16}" font-size="11" text-anchor="middle">p{label}</text>'
        )
    for i in range(6):
        v = y_max * i / 5
        parts.append(
            f'<text x="{PAD_L - 6}" y="{py(v) + 4:.1f}" font-size="11" text-anchor="end">{v:.1f}</text>'
        )
    parts.append(
        f'<text x="14" y="{PAD_T + plot_h / 2}" font-size="11" transform="rotate(-90 14 {PAD_T + plot_h / 2})"'
        ' text-anchor="middle">latency (ms)</text>'
    )
    if target_ms:
        y = py(target_ms)
        parts.append(
            f'<line x1="{PAD_L}" y1="{y:.1f}" x2="{PAD_L + plot_w}" y2="{y:.1f}" stroke="#cf222e" stroke-dasharray="5,4"/>'
        )
        parts.append(f'<text x="{PAD_L + plot_w + 6}" y="{y + 4:.1f}" font-size="11" fill="#cf222e">target {target_ms:g} ms</text>')
    for i, (label, curve) in enumerate(series):
        color = COLORS[i % len(COLORS)]
        path = " ".join(f"{px(p):.1f},{py(v):.1f}" for p, v in curve)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        ly = PAD_T + 14 + 16 * i
        parts.append(f'<rect x="{PAD_L + plot_w + 6}" y="{ly + 10}" width="10" height="3" fill="{color}"/>')
        parts.append(
            f'<text x="{PAD_L + plot_w + 20}" y="{ly + 15}" font-size="10">{escape(label[:26])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _cls(status: str) -> str:
    return f'<span class="{escape(status)}">{escape(status.upper())}</span>'


def _f(value: float | None, fmt: str = "{:.2f}") -> str:
    return "–" if value is None else fmt.format(value)  # noqa: RUF001


def _story(story: StoryResult) -> str:
    out = [f"<h2>Story {escape(story.id)}: {escape(story.name)} — {_cls(story.status)}</h2>"]
    if story.skip_reason and not story.samples:
        return "".join([*out, f"<p>Skipped: {escape(story.skip_reason)}</p>"])
    targets = {e.target_ms for e in story.endpoints}
    target = targets.pop() if len(targets) == 1 else min(targets)
    series = [(e.key, e.curve) for e in story.endpoints if e.curve]
    out.append(percentile_svg(series, target))
    out.append(
        "<table><tr><th class=l>endpoint</th><th>n</th><th>errors</th><th>target</th><th>mean</th>"
        "<th>p50</th><th>p95</th><th>p99</th><th>max</th><th>first byte p50</th>"
        "<th>connect p50</th><th>TLS handshake p50</th><th>score</th><th>status</th></tr>"
    )
    for e in story.endpoints:
        lat = e.latency
        out.append(
            f"<tr><td class=l>{escape(e.key)}</td><td>{e.sent}</td><td>{e.error_count}</td>"
            f"<td>{e.target_ms:g}</td><td>{_f(lat.get('mean'))}</td><td>{_f(lat.get('p50'))}</td>"
            f"<td>{_f(lat.get('p95'))}</td><td>{_f(lat.get('p99'))}</td><td>{_f(lat.get('max'))}</td>"
            f"<td>{_f(e.ttfb.get('p50'))}</td><td>{_f(e.connect.get('p50'))}</td>"
            f"<td>{_f(e.tls.get('p50'))}</td>"
            f"<td>{_f(e.score, '{:.1f}')}</td><td>{_cls(e.status)}</td></tr>"
        )
    out.append("</table>")
    out.append(
        "<table><tr><th class=l>objective</th><th>n</th><th>over</th><th>upper bound</th>"
        "<th>allowed</th><th>confidence</th><th>status</th></tr>"
    )
    for o in story.objectives:
        out.append(
            f"<tr><td class=l>{escape(o.endpoint or 'story ' + o.story_id)} {escape(o.name)}</td>"
            f"<td>{o.samples}</td><td>{o.exceedances}</td><td>{_f(o.upper_bound, '{:.2%}')}</td>"
            f"<td>{o.allowed:.2%}</td><td>{_f(o.confidence_level, '{:.1%}')}</td>"
            f"<td>{_cls(o.status)}</td></tr>"
        )
    out.append("</table>")
    return "".join(out)


def render_html(result: Result) -> str:
    verdict = "PRODUCTION READY" if result.platform.ready else "NOT PRODUCTION READY"
    body = [
        f"<h1>SLA report — {escape(result.base_url)}</h1>",
        f"<p>Generated {escape(result.generated)} · verdict {_cls(result.status)}"
        f" (exit {result.exit_code}) · {escape(verdict)}</p>",
        "<h2>Platform</h2>",
        percentile_svg(
            [(f"story {s.id}", s.curve) for s in result.stories if s.curve], result.target_ms
        ),
        "<table><tr><th class=l>check</th><th class=l>value</th><th class=l>target</th>"
        "<th>status</th></tr>",
    ]
    for c in result.readiness:
        cell = "info" if c.status == Status.INFO else _cls(c.status)
        body.append(
            f"<tr><td class=l>{escape(c.name)}</td><td class=l>{escape(c.value)}</td>"
            f"<td class=l>{escape(c.target)}</td><td>{cell}</td></tr>"
        )
    body.append("</table>")
    body += [_story(s) for s in result.stories]
    body.append("<h2>Text report</h2><pre>" + escape(render_text(result, True)) + "</pre>")
    ok = "✅" if result.status == Status.PASS else "❌"
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{ok} slakit SLA report</title><style>{STYLE}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )
