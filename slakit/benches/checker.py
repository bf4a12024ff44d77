"""`invoke bench` section "checker": slakit's SLA checker against wrk on the same endpoint.

A bare ASGI app (fixed bytes) runs under uvicorn (uvloop, httptools) on 127.0.0.1.
wrk (Debian package) and one checker process (closed loop, slakit.sla's measuring
client) take turns against it at the same concurrency and duration, ROUNDS times
interleaved so that a noisy neighbour hits both alike; each figure is the median of
its rounds. Targets (issue 7): checker p50 within 1.25x of wrk's, and at least
5,000 requests/s from one checker process.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from slakit.bench import BenchRow
from slakit.errors import SlakitError

SECTION = "checker"
CONCURRENCY = 16
DURATION_S = 4
ROUNDS = 3
P50_RATIO_TARGET = 1.25
MIN_CHECKER_RPS = 5000.0
ROOT = Path(__file__).resolve().parents[2]
BODY = b'{"status":"ok"}'
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def bare_app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    """The ceiling: an ASGI app that answers every request with the same bytes."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SlakitError(f"the bench's uvicorn did not listen on 127.0.0.1:{port}", exit_code=3)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _wrk_ms(text: str, label: str) -> float:
    match = re.search(rf"^\s*{re.escape(label)}\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if not match:
        raise SlakitError(f"could not read {label} from wrk's output", exit_code=3)
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(url: str, concurrency: int, duration_s: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{duration_s}s", "--latency", url],
        capture_output=True,
        text=True,
        timeout=duration_s + 30,
        check=True,
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not rps:
        raise SlakitError("could not read Requests/sec from wrk's output", exit_code=3)
    return {"p50": _wrk_ms(out, "50%"), "p99": _wrk_ms(out, "99%"), "rps": float(rps.group(1))}


def run_checker(url: str, concurrency: int, duration_s: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "slakit.benches.checker", url, str(concurrency), str(duration_s)],
        capture_output=True,
        text=True,
        timeout=duration_s + 60,
        check=True,
        cwd=ROOT,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def checker_closed_loop(
    url: str, concurrency: int, duration_s: float, path: str = "/", ca_file: str | None = None
) -> dict[str, float]:
    """One checker process, closed loop: p50/p99 in ms and completed requests/s
    (https: verified with ca_file, else the system trust store)."""
    from slakit.sla import histogram as hist
    from slakit.sla import run_loop
    from slakit.sla.http import parse_base_url, prepare_request
    from slakit.sla.measure import EndpointPlan, measure_story_async

    target = parse_base_url(url, ca_file)
    plan = EndpointPlan(
        key=f"GET {path}",
        request=prepare_request(target, "GET", path),
        expect_status=(200,),
        mode="closed",
        rate=1.0,
        concurrency=concurrency,
        requests=None,
        duration_s=duration_s,
        connections=concurrency,
        warmup_requests=concurrency * 4,
        timeout_s=5.0,
        target_us=15_000,
        thresholds_us=(15_000,),
    )
    measurement = run_loop(measure_story_async([plan], target))
    e = measurement.endpoints[0]
    if e.errors:
        raise SlakitError(f"checker saw errors against {url}: {e.errors}", exit_code=3)
    return {
        "p50": hist.percentile_ms(e.latency, 50) or 0.0,
        "p99": hist.percentile_ms(e.latency, 99) or 0.0,
        "rps": e.ok / measurement.wall_s,
    }


def run() -> list[BenchRow]:
    if shutil.which("wrk") is None:
        raise SlakitError("the checker bench needs wrk: apt-get install wrk")
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "slakit.benches.checker:bare_app", "--host",
         "127.0.0.1", "--port", str(port), "--loop", "uvloop", "--http", "httptools",
         "--log-level", "warning", "--no-access-log"],
        cwd=ROOT,
    )  # fmt: skip
    try:
        _wait_for_port(port)
        url = f"http://127.0.0.1:{port}/"
        run_wrk(url, CONCURRENCY, 1)  # warm the server
        wrk, checker = [], []
        for _ in range(ROUNDS):
            wrk.append(run_wrk(url, CONCURRENCY, DURATION_S))
            checker.append(run_checker(url, CONCURRENCY, DURATION_S))
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()

    def med(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    load = f"c={CONCURRENCY}, {DURATION_S}s x{ROUNDS}"
    ratio = med(checker, "p50") / med(wrk, "p50")
    rps = med(checker, "rps")
    return [
        BenchRow(SECTION, f"wrk p50 ({load})", med(wrk, "p50"), "ms"),
        BenchRow(SECTION, f"checker p50 ({load})", med(checker, "p50"), "ms"),
        BenchRow(SECTION, "wrk p99", med(wrk, "p99"), "ms"),
        BenchRow(SECTION, "checker p99", med(checker, "p99"), "ms"),
        BenchRow(SECTION, "wrk requests/s", med(wrk, "rps"), "req/s"),
        BenchRow(
            SECTION, "checker requests/s (1 process)", rps, "req/s",
            f">= {MIN_CHECKER_RPS:,.0f}", rps >= MIN_CHECKER_RPS,
        ),
        BenchRow(
            SECTION, "checker p50 / wrk p50", ratio, "x",
            f"<= {P50_RATIO_TARGET}", ratio <= P50_RATIO_TARGET,
        ),
    ]  # fmt: skip


if __name__ == "__main__":
    result = checker_closed_loop(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
    print(json.dumps(result))
