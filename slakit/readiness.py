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


def release_lines(release: dict[str, Any] | None) -> list[str]:
    """The report's Release line (and Promotion line): the id every app host runs, how many
    wheel hashes readiness.json records for it; or which host runs what when they differ."""
    if not release:
        return []
    hosts = release.get("hosts") or {}
    if release.get("id"):
        wheels = release.get("wheels") or {}
        kept = (
            f"{len(wheels)} wheels, sha256 in readiness.json"
            if wheels
            else f"wheel hashes not recorded: {release.get('error', 'wheelhouse not kept')}"
        )
        lines = [f"Release: {release['id']} on {', '.join(sorted(hosts))} · {kept}"]
    else:
        ran = ", ".join(f"{h} {r}" for h, r in sorted(hosts.items())) or "none read"
        lines = [f"Release: none common ({release.get('error', 'unknown')}): {ran}"]
    promo = release.get("promotion")
    if promo:
        how = (
            f"FORCED ({promo.get('why_forced')})"
            if promo.get("forced")
            else f"APPROVED in {promo.get('report')}"
        )
        lines.append(f"Promoted from {promo.get('from')}: {how}")
    return lines


def render_text(
    env: str,
    generated: datetime,
    gates: list[Gate],
    notes: list[str],
    release: dict[str, Any] | None = None,
) -> str:
    ok = approved(gates)
    lines = [
        RULE,
        f"🎯 PRODUCTION READINESS ASSESSMENT: {'✅ PASSED' if ok else '❌ FAILED'}",
        f"Environment: {env} · Generated: {generated.isoformat(timespec='seconds')}",
        *release_lines(release),
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
    release: dict[str, Any] | None = None,
) -> Path:
    """Write readiness.txt and readiness.json into outdir; returns the text report's path.
    `release` (slakit.release.record, + "promotion") is recorded as the "release" object."""
    outdir.mkdir(parents=True, exist_ok=True)
    text = render_text(env, generated, gates, notes, release)
    (outdir / "readiness.txt").write_text(text)
    payload = {
        "env": env,
        "generated": generated.isoformat(timespec="seconds"),
        "approved": approved(gates),
        "gates": [g.to_dict() for g in gates],
        "notes": notes,
        **({"release": release} if release is not None else {}),
        **(extra or {}),
    }
    (outdir / "readiness.json").write_text(json.dumps(payload, indent=2) + "\n")
    return outdir / "readiness.txt"
