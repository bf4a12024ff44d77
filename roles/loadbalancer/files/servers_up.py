"""Print which servers of an HAProxy backend are not UP (admin socket `show stat`).

Run by the loadbalancer role (tasks/main.yml) on the HAProxy host: standard library only.
Exit 0 when every server is UP, 1 otherwise. Usage: python3 servers_up.py SOCKET BACKEND
"""

from __future__ import annotations

import csv
import socket
import sys


def show_stat(path: str) -> str:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(path)
        sock.sendall(b"show stat\n")
        return b"".join(iter(lambda: sock.recv(65536), b"")).decode()


def not_up(stat: str, backend: str) -> tuple[int, list[str]]:
    """(servers in the backend, one line per server that is not UP)."""
    rows = [
        r
        for r in csv.DictReader(stat.lstrip("# ").splitlines())
        if r["pxname"] == backend and r["svname"] not in ("FRONTEND", "BACKEND")
    ]
    down = [
        f"{r['svname']} {r['status']} ({r['check_status']} {r['check_desc']})".strip()
        for r in rows
        if r["status"] != "UP"
    ]
    return len(rows), down


if __name__ == "__main__":
    servers, down = not_up(show_stat(sys.argv[1]), sys.argv[2])
    print("; ".join(down) or f"{servers} servers UP")
    sys.exit(1 if down or not servers else 0)
