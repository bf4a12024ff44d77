"""The production readiness assessment: the seed's checklist as gates with measured figures."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from slakit.gates import Gate
from slakit.status import MARK

RULE = "=" * 80


def approved(gates: list[Gate]) -> bool:
    return bool(gates) and all(g.passed for g in gates)


def render_text(env: str, generated: datetime, gates: list[Gate], notes: list[str]) -> str:
    ok = approved(gates)
    lines = [
        RULE,
        f"🎯 PRODUCTION READINESS ASSESSMENT: {'✅ PASSED' if ok else '❌ FAILED'}",
        f"Environment: {env} · Generated: {generated.isoformat(timespec='seconds')}",
        RULE,
    ]
    for g in gates:
        target = f" (target: {g.target})" if g.target else ""
        why = f" — {g.detail}" if g.detail else ""
        mark = MARK[g.status] + (" " if "\ufe0f" in MARK[g.status] else "")  # 1 cell wide
        lines.append(f"{mark} {g.name}: {g.figure}{target}{why}")
    lines += [""] + [f"Note: {n}" for n in notes] + ([""] if notes else [])
    failed = [g.name for g in gates if not g.passed]
    lines += [
        f"Platform Status: {'PRODUCTION READY' if ok else 'NOT READY'}",
        f"Gates passed: {sum(g.passed for g in gates)}/{len(gates)}",
        f"Deployment Recommendation: {'✅ APPROVED' if ok else '❌ NOT APPROVED'}",
    ]
    if failed:
        lines.append(f"Blocked by: {', '.join(failed)}")
    return "\n".join(lines) + "\n"


def write(
    outdir: Path,
    env: str,
    generated: datetime,
    gates: list[Gate],
    notes: list[str],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write readiness.txt and readiness.json into outdir; returns the text report's path."""
    outdir.mkdir(parents=True, exist_ok=True)
    text = render_text(env, generated, gates, notes)
    (outdir / "readiness.txt").write_text(text)
    payload = {
        "env": env,
        "generated": generated.isoformat(timespec="seconds"),
        "approved": approved(gates),
        "gates": [g.to_dict() for g in gates],
        "notes": notes,
        **(extra or {}),
    }
    (outdir / "readiness.json").write_text(json.dumps(payload, indent=2) + "\n")
    return outdir / "readiness.txt"
