#!/usr/bin/env python3
"""Drain or re-enable one server on HAProxy through its admin socket, and wait for the result.

Runs on a load balancer (standard library only). Prints one JSON line:
{"changed": bool, "status": "...", "msg": "..."}; exit 1 on any failure, with the cause in msg.
A missing socket, or a backend or server HAProxy does not know, is a failure: the server would
stay in rotation while it restarts. Only with --absent-ok (the host has never run a release, so
it cannot be in rotation: the first converge runs the app before HAProxy exists) is it "nothing
to do".

Every drain or maint writes a mark (MARKS/<backend>/<server>); ready removes it. A mark whose
server is still in DRAIN or MAINT when another server of the backend is drained was left by an
interrupted run: that server is set READY first and must be UP before this one leaves rotation
(an operator's own `set server ... state maint` has no mark and is left alone). The servers of
this rollout's batch (--batch: the hosts playbooks/app.yml switches at once) drain together:
their marks are not left-overs.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import socket
import sys
import time
from pathlib import Path

# HAProxy's proxy and server names: letters, digits, '-', '_', '.', ':' (no space or ';', which
# would end the command on the admin socket).
NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")
OUT_OF_ROTATION = ("DRAIN", "MAINT")


def name_arg(value: str) -> str:
    if not NAME.match(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not an HAProxy name ([A-Za-z0-9_.:-]+)")
    return value


def command(path: str, line: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(path)
        sock.sendall(line.encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def backend_rows(path: str, backend: str) -> dict[str, dict[str, str]] | None:
    """{server: its `show stat` row} of the backend; None when HAProxy has no such backend."""
    text = command(path, "show stat").lstrip("# ")
    rows = [r for r in csv.DictReader(text.splitlines()) if r.get("pxname") == backend]
    if not rows:
        return None
    return {r["svname"]: r for r in rows if r["svname"] not in ("FRONTEND", "BACKEND")}


def out_of_rotation(row: dict[str, str]) -> bool:
    return row.get("status", "").startswith(OUT_OF_ROTATION)


def check_text(row: dict[str, str]) -> str:
    check = f"{row.get('check_status', '?')} {row.get('check_desc', '')}".strip()
    return f"{row.get('status', '?')}, check {check}"


def set_state(path: str, backend: str, server: str, state: str) -> str:
    """'' when HAProxy accepted it, else its answer."""
    return command(path, f"set server {backend}/{server} state {state}").strip()


def repair_leftovers(
    path: str, backend: str, server: str, marks: Path, timeout: float, batch: frozenset[str]
) -> tuple[list[str], str]:
    """Set READY the other servers an interrupted run left out of rotation (marked, not of this
    batch), and wait until they are UP: (their names, '' or why this server must not be drained
    now)."""
    folder = marks / backend
    mine = batch | {server}
    left = sorted(p.name for p in folder.iterdir() if p.name not in mine) if folder.is_dir() else []
    rows = backend_rows(path, backend) or {}
    repaired = [s for s in left if s in rows and out_of_rotation(rows[s])]
    for other in repaired:
        refused = set_state(path, backend, other, "ready")
        if refused:
            answer = f"HAProxy refused 'set server {backend}/{other} state ready': {refused}"
            return repaired, answer
    for other in left:
        (folder / other).unlink(missing_ok=True)
    deadline = time.monotonic() + timeout
    while repaired:
        rows = backend_rows(path, backend) or {}
        down = [s for s in repaired if rows.get(s, {}).get("status") != "UP"]
        if not down:
            break
        if time.monotonic() > deadline:
            what = "; ".join(f"{s} {check_text(rows.get(s, {}))}" for s in down)
            return repaired, (
                f"set READY again after an interrupted run, {what} after {timeout:.0f}s: "
                f"not draining {backend}/{server} too"
            )
        time.sleep(0.25)
    return repaired, ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--backend", required=True, type=name_arg)
    ap.add_argument("--server", required=True, type=name_arg)
    ap.add_argument("--action", choices=["drain", "ready", "maint"], required=True)
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--marks", required=True, type=Path, help="folder of the drain marks")
    ap.add_argument("--absent-ok", action="store_true", help="no socket/server: nothing to do")
    ap.add_argument(
        "--batch",
        default="",
        type=lambda v: frozenset(name_arg(n) for n in v.split(",") if n),
        help="comma-separated servers drained at the same time as this one (not left-overs)",
    )
    args = ap.parse_args(argv)
    name = f"{args.backend}/{args.server}"

    def out(changed: bool, status: str, msg: str, rc: int = 0) -> int:
        print(json.dumps({"changed": changed, "status": status, "msg": msg}))
        return rc

    def absent(msg: str) -> int:
        if args.absent_ok:
            return out(False, "absent", f"{msg}: nothing to {args.action} (no release here yet)")
        return out(False, "absent", msg, 1)

    if not os.path.exists(args.socket):
        return absent(f"no HAProxy admin socket at {args.socket} (is HAProxy running?)")
    rows = backend_rows(args.socket, args.backend)
    if rows is None:
        return absent(f"HAProxy has no backend {args.backend}")
    if args.server not in rows:
        return absent(
            f"HAProxy has no server {name} (its servers: {', '.join(sorted(rows)) or 'none'})"
        )
    repaired: list[str] = []
    mark = args.marks / args.backend / args.server
    if args.action != "ready":
        repaired, problem = repair_leftovers(
            args.socket, args.backend, args.server, args.marks, args.timeout, args.batch
        )
        if problem:
            return out(bool(repaired), rows[args.server]["status"], problem, 1)
        mark.parent.mkdir(parents=True, exist_ok=True)
        mark.write_text(f"{time.time():.0f}\n")
    before = rows[args.server]["status"]
    refused = set_state(args.socket, args.backend, args.server, args.action)
    if refused:
        msg = f"HAProxy refused 'set server {name} state {args.action}': {refused}"
        return out(True, before, msg, 1)
    changed = bool(repaired) or not (
        (args.action == "drain" and before.startswith("DRAIN"))
        or (args.action == "maint" and before.startswith("MAINT"))
        or (args.action == "ready" and before == "UP")
    )
    also = f"; set READY again after an interrupted run: {', '.join(repaired)}" if repaired else ""
    deadline = time.monotonic() + args.timeout
    while True:
        row = (backend_rows(args.socket, args.backend) or {}).get(args.server, {})
        status = row.get("status", "?")
        sessions = int(row.get("scur") or 0) + int(row.get("qcur") or 0)
        done = sessions == 0 if args.action != "ready" else status == "UP"
        if done:
            if args.action == "ready":
                mark.unlink(missing_ok=True)
            return out(changed, status, f"{name} {status}, {sessions} sessions{also}")
        if time.monotonic() > deadline:
            what = (
                f"{sessions} sessions left"
                if args.action != "ready"
                else f"not UP ({check_text(row)})"
            )
            return out(changed, status, f"{name} {what} after {args.timeout:.0f}s{also}", 1)
        time.sleep(0.25)


if __name__ == "__main__":
    sys.exit(main())
