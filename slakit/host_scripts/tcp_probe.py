"""Connect to each host:port given, at once, and print one JSON object per target.

    python3 tcp_probe.py [--timeout S] [--send TEXT] HOST:PORT...

Outcome per target: "connected", "refused", "timeout" (a filter dropped the SYN, or nothing
answers) or "error: ..."; with --send, the first line the server answered ("reply").
Runs on managed hosts for the security gate (slakit/security.py): stdlib only, Python 3.9+.
"""

from __future__ import annotations

import argparse
import json
import socket
from concurrent.futures import ThreadPoolExecutor


def probe(target: str, timeout: float, send: str) -> dict:
    host, _, port = target.rpartition(":")
    result = {"target": target, "outcome": "", "reply": ""}
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as sock:
            result["outcome"] = "connected"
            if send:
                sock.sendall(send.encode() + b"\r\n")
                result["reply"] = sock.recv(512).split(b"\r\n", 1)[0].decode(errors="replace")
    except ConnectionRefusedError:
        result["outcome"] = "refused"
    except socket.timeout:  # noqa: UP041 (not TimeoutError before Python 3.10)
        result["outcome"] = result["outcome"] or "timeout"
    except OSError as err:
        result["outcome"] = result["outcome"] or f"error: {err.strerror or err}"
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--send", default="")
    parser.add_argument("targets", nargs="*")
    args = parser.parse_args()
    with ThreadPoolExecutor(max_workers=max(1, min(32, len(args.targets)))) as pool:
        results = list(pool.map(lambda t: probe(t, args.timeout, args.send), args.targets))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
