#!/usr/bin/env python3
"""Drain or re-enable one server on HAProxy through its admin socket, and wait for the result.

Runs on a load balancer (standard library only). Prints one JSON line:
{"changed": bool, "status": "...", "msg": "..."}; exit 1 when the wait times out.
A missing socket or an unknown backend/server is not an error: there is nothing to drain.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import socket
import sys
import time


def command(path: str, line: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(path)
        sock.sendall(line.encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def server_row(path: str, backend: str, server: str) -> dict[str, str] | None:
    text = command(path, "show stat").lstrip("# ")
    for row in csv.DictReader(text.splitlines()):
        if row.get("pxname") == backend and row.get("svname") == server:
            return row
    return None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--backend", required=True)
    ap.add_argument("--server", required=True)
    ap.add_argument("--action", choices=["drain", "ready", "maint"], required=True)
    ap.add_argument("--timeout", type=float, default=30)
    args = ap.parse_args()
    name = f"{args.backend}/{args.server}"

    def out(changed: bool, status: str, msg: str, rc: int = 0) -> int:
        print(json.dumps({"changed": changed, "status": status, "msg": msg}))
        return rc

    if not os.path.exists(args.socket):
        return out(False, "absent", f"no HAProxy admin socket at {args.socket}")
    row = server_row(args.socket, args.backend, args.server)
    if row is None:
        return out(False, "unknown", f"HAProxy has no server {name}")
    before = row["status"]
    reply = command(args.socket, f"set server {name} state {args.action}").strip()
    if reply:
        refused = f"HAProxy refused 'set server {name} state {args.action}': {reply}"
        return out(True, before, refused, 1)
    changed = not (
        (args.action == "drain" and before.startswith("DRAIN"))
        or (args.action == "maint" and before.startswith("MAINT"))
        or (args.action == "ready" and before == "UP")
    )
    deadline = time.monotonic() + args.timeout
    while True:
        row = server_row(args.socket, args.backend, args.server) or {}
        status = row.get("status", "?")
        sessions = int(row.get("scur") or 0) + int(row.get("qcur") or 0)
        done = sessions == 0 if args.action != "ready" else status == "UP"
        if done:
            return out(changed, status, f"{name} {status}, {sessions} sessions")
        if time.monotonic() > deadline:
            check = f"{row.get('check_status', '?')} {row.get('check_desc', '')}".strip()
            what = (
                f"{sessions} sessions left"
                if args.action != "ready"
                else f"not UP (status {status}, check {check})"
            )
            return out(changed, status, f"{name} {what} after {args.timeout:.0f}s", 1)
        time.sleep(0.25)


if __name__ == "__main__":
    sys.exit(main())
