"""Ask every server the health check of a configuration before HAProxy loads it.

Run by the loadbalancer role (tasks/main.yml) on the HAProxy host, so each request takes the
path HAProxy's checks will take: standard library only. Usage:
  python3 health_check.py PATH STATUS TIMEOUT NAME ADDRESS PORT [NAME ADDRESS PORT ...]
Asks every server `GET PATH` at once and prints one line; exit 0 when every one answers STATUS,
1 otherwise (each other answer named: `app-1 (404)`, `app-2 (ConnectionRefusedError)`).
"""

from __future__ import annotations

import http.client
import sys
from concurrent.futures import ThreadPoolExecutor


def answer(address: str, port: int, path: str, timeout: float) -> str:
    """The status `GET path` gets from the server, or the name of the error that stopped it."""
    conn = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        return str(conn.getresponse().status)
    except (OSError, http.client.HTTPException) as err:
        return type(err).__name__
    finally:
        conn.close()


def main(argv: list[str]) -> int:
    path, expect, timeout, *flat = argv
    if not flat or len(flat) % 3:
        print("usage: health_check.py PATH STATUS TIMEOUT NAME ADDRESS PORT [...]")
        return 2
    servers = [(flat[i], flat[i + 1], int(flat[i + 2])) for i in range(0, len(flat), 3)]
    with ThreadPoolExecutor(len(servers)) as pool:
        answers = pool.map(lambda s: (s[0], answer(s[1], s[2], path, float(timeout))), servers)
        other = [f"{name} ({got})" for name, got in answers if got != expect]
    if other:
        print(f"GET {path} is answered other than {expect} by {', '.join(other)}")
        return 1
    print(f"{len(servers)}/{len(servers)} servers answer GET {path} with {expect}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
