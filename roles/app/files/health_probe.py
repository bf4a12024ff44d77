"""GET the health URL N times; print {"ok", "pids", "error"} as JSON; exit 1 on any failure.

Run by the app role (tasks/wait.yml) with the host's Python: standard library only.
Usage: python3 health_probe.py URL N
"""

from __future__ import annotations

import json
import sys
import urllib.request


def probe(url: str, n: int) -> dict:
    pids, bad = set(), []
    for _ in range(n):
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                pids.add(str(json.loads(resp.read() or b"{}").get("pid", "?")))
        except Exception as err:  # any failure counts, whatever it is
            bad.append(f"{type(err).__name__}: {err}")
    return {"ok": n - len(bad), "pids": sorted(pids), "error": bad[-1:]}


if __name__ == "__main__":
    result = probe(sys.argv[1], int(sys.argv[2]))
    print(json.dumps(result))
    sys.exit(1 if result["error"] else 0)
