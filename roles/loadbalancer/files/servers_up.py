"""Print which servers of an HAProxy backend are not UP (admin socket `show info; show stat`).

Run by the loadbalancer role (tasks/main.yml) on the HAProxy host: standard library only.
Exit 0 when every server is UP, 1 otherwise. Usage:
  python3 servers_up.py SOCKET BACKEND [--config FILE]
  python3 servers_up.py SOCKET BACKEND --repair-marks DIR

--config FILE: only evidence from the configuration now in FILE counts. Right after a reload
the socket may still reach the old process (its servers UP by the old checks), so the process
that answers must have started after FILE was written, and each server must be UP with a
completed successful check of that process (not INI: not checked yet) at full health (no failed
check since its last success). Exit 3 instead of 1 when every server is DOWN by a failed check
of that process: the configuration takes the whole backend down, waiting longer only makes the
outage longer.
--repair-marks DIR: instead, set READY every server that a rollout marked (DIR/BACKEND/SERVER,
roles/app/files/lb_server_state.py) and left in DRAIN or MAINT (an interrupted run), remove the
backend's marks and print "set READY: <servers>" or "nothing to repair"; exit 0.
"""

from __future__ import annotations

import argparse
import csv
import os
import socket
import sys
import time
from pathlib import Path


def ask(path: str, line: str) -> str:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(path)
        sock.sendall(line.encode() + b"\n")
        return b"".join(iter(lambda: sock.recv(65536), b"")).decode()


def show_stat(path: str) -> str:
    return ask(path, "show stat")


def split_info(text: str) -> tuple[dict[str, str], str]:
    """`show info; show stat` answered on one connection (one process): (info, stat)."""
    head, _, stat = text.partition("# pxname")
    info = dict(line.split(": ", 1) for line in head.splitlines() if ": " in line)
    return info, "# pxname" + stat


def rows_of(stat: str, backend: str) -> list[dict[str, str]]:
    return [
        r
        for r in csv.DictReader(stat.lstrip("# ").splitlines())
        if r["pxname"] == backend and r["svname"] not in ("FRONTEND", "BACKEND")
    ]


def confirmed_up(row: dict[str, str]) -> bool:
    """UP by a completed check of this process, with no failure since its last success."""
    full = int(row.get("check_rise") or 0) + int(row.get("check_fall") or 0) - 1
    return (
        row["status"] == "UP"
        and row.get("check_status", "").startswith("L")
        and row.get("check_status", "").endswith(("OK", "OKC"))
        and int(row.get("check_health") or 0) >= full
    )


def describe(row: dict[str, str]) -> str:
    return f"{row['check_status'] or 'unchecked'} {row['check_desc']}".strip()


def not_up(stat: str, backend: str, confirmed: bool = False) -> tuple[int, list[str]]:
    """(servers in the backend, one line per server that is not UP); confirmed: by a check."""
    rows = rows_of(stat, backend)
    down = [
        f"{r['svname']} {r['status']} ({describe(r)})"
        for r in rows
        if (not confirmed_up(r) if confirmed else r["status"] != "UP")
    ]
    return len(rows), down


def all_down(stat: str, backend: str) -> bool:
    """Every server DOWN by a completed failed check of the process that answered (health 0).

    A new process starts each server at health `rise`: its first failed check takes it DOWN, and
    HAProxy counts no further failures while it is DOWN (chkfail stays put)."""
    rows = rows_of(stat, backend)
    return bool(rows) and all(
        r["status"].startswith("DOWN")
        and r.get("check_status", "") not in ("", "INI")
        and int(r.get("check_health") or 0) == 0
        for r in rows
    )


def stale(info: dict[str, str], config: str) -> str:
    """'' when the answering process started after `config` was written, else why not."""
    if "Start_time_sec" in info:
        started = int(info["Start_time_sec"])
    else:  # HAProxy before 2.6 (approximate, to the second)
        started = int(time.time()) - int(info.get("Uptime_sec") or 0)
    written = int(os.stat(config).st_mtime)
    if started >= written:
        return ""
    return f"HAProxy pid {info.get('Pid', '?')} predates {config} (not reloaded yet)"


def repair(path: str, backend: str, marks: Path) -> list[str]:
    """Set READY the marked servers left in DRAIN or MAINT; remove every mark of the backend."""
    folder = marks / backend
    if not folder.is_dir():
        return []
    rows = {r["svname"]: r for r in rows_of(show_stat(path), backend)}
    repaired = []
    for mark in sorted(folder.iterdir()):
        row = rows.get(mark.name)
        if row and row["status"].startswith(("DRAIN", "MAINT")):
            answer = ask(path, f"set server {backend}/{mark.name} state ready").strip()
            if answer:
                name = f"{backend}/{mark.name}"
                raise SystemExit(f"HAProxy refused 'set server {name} state ready': {answer}")
            repaired.append(mark.name)
        mark.unlink()
    return repaired


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("socket")
    ap.add_argument("backend")
    ap.add_argument("--config", help="count only evidence from the configuration in this file")
    ap.add_argument("--repair-marks", type=Path, help="folder of the rollouts' drain marks")
    args = ap.parse_args(argv)
    if args.repair_marks:
        repaired = repair(args.socket, args.backend, args.repair_marks)
        print(f"set READY: {', '.join(repaired)}" if repaired else "nothing to repair")
        return 0
    info, stat = split_info(ask(args.socket, "show info; show stat"))
    why = stale(info, args.config) if args.config else ""
    servers, down = not_up(stat, args.backend, confirmed=bool(args.config))
    if why:
        down = [why]
    print("; ".join(down) or f"{servers} servers UP")
    if down and not why and args.config and all_down(stat, args.backend):
        return 3
    return 1 if down or not servers else 0


if __name__ == "__main__":
    sys.exit(main())
