"""`invoke bench` section "endpoints": every endpoint of sla/spec.yml on one server.

One gunicorn server (the service section's worker count), two redis-server instances
(cache, persist), caches warmed first, all on loopback. Per endpoint of the spec's default
stories (on-demand stories only repeat them):
  - service time p50 and p99 at the spec's nominal open-loop rate, from send to last byte,
    measured by the SLA checker's engine story by story (as `python -m slakit.sla` does,
    each endpoint's duration cut to NOMINAL_S);
  - requests/s at saturation, wrk closed loop (the token endpoint, which hashes a password
    on purpose, with TOKEN_CONNECTIONS).
ROUNDS interleaved rounds (checker, then wrk on every endpoint) so that drifting background
load hits every endpoint alike; each figure is the median of its rounds.
SLAKIT_BENCH_ROUNDS (default 3), SLAKIT_BENCH_NOMINAL_SECONDS (default 8) and
SLAKIT_BENCH_SATURATION_SECONDS (default 2) tune it.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from statistics import median

from slakit.bench import BenchRow
from slakit.benches.servers import (
    PASSWORD,
    SERVICE_APP,
    USERNAME,
    WORKERS,
    gunicorn,
    redis,
    service_env,
    token,
    warm,
    wrk,
)
from slakit.benches.service import CONNECTIONS, THREADS
from slakit.errors import SlakitError
from slakit.sla.control import substitute
from slakit.sla.engine import RunOptions, run_checks
from slakit.sla.spec import Endpoint, Spec, load_spec

SECTION = "endpoints"
TARGET_P50_MS = 1.5
ROUNDS = int(os.environ.get("SLAKIT_BENCH_ROUNDS", "3"))
NOMINAL_S = float(os.environ.get("SLAKIT_BENCH_NOMINAL_SECONDS", "8"))
SATURATION_S = int(os.environ.get("SLAKIT_BENCH_SATURATION_SECONDS", "2"))
TOKEN_CONNECTIONS = 4  # scrypt: more would only queue behind the service's two hashing slots


def _shortened(spec: Spec, seconds: float) -> Spec:
    """The spec with every endpoint's run cut to `seconds` at its nominal rate."""

    def cut(e: Endpoint) -> Endpoint:
        duration = min(e.load.duration_s or seconds, seconds)
        return replace(e, load=replace(e.load, duration_s=duration, requests=None))

    stories = tuple(replace(s, endpoints=tuple(map(cut, s.endpoints))) for s in spec.stories)
    return replace(spec, stories=stories)


def _token_paths(spec: Spec) -> set[str]:
    return {scheme.token_path for scheme in spec.auth.values()}


def _credentials(spec: Spec) -> dict[str, str]:
    env = dict(os.environ)
    for scheme in spec.auth.values():
        env[scheme.username_env], env[scheme.password_env] = USERNAME, PASSWORD
    return env


def _wrk_script(endpoint: Endpoint, env: dict[str, str], bearer: str, path: Path) -> Path:
    lines = [f'wrk.method = "{endpoint.method}"']
    headers = dict(substitute(endpoint.headers, env))
    if endpoint.body is not None:
        body = json.dumps(substitute(endpoint.body, env))
        lines.append(f"wrk.body = [==[{body}]==]")
        headers["Content-Type"] = "application/json"
    if endpoint.auth:
        headers["Authorization"] = f"Bearer {bearer}"
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def _nominal(spec: Spec, base: str, env: dict[str, str]) -> dict[str, tuple[float, float]]:
    """Service time (p50, p99) in ms per endpoint key, one checker run."""
    result = run_checks(spec, base, options=RunOptions(env=env, progress=False))
    figures = {}
    for story in result.stories:
        for e in story.endpoints:
            p50, p99 = e.service.get("p50"), e.service.get("p99")
            if p50 is None or p99 is None or e.error_count:
                raise SlakitError(f"endpoints bench: {e.key} failed: {e.errors}", exit_code=3)
            figures[e.key] = (p50, p99)
    return figures


def _measure(base: str, workdir: Path) -> tuple[list[Endpoint], dict[str, list[tuple]]]:
    spec = _shortened(load_spec(), NOMINAL_S)
    env = _credentials(spec)
    endpoints = list({e.key: e for s in spec.stories for e in s.endpoints}.values())
    bearer = token(base)
    scripts = {
        e.key: _wrk_script(e, env, bearer, workdir / f"wrk-{i}.lua")
        for i, e in enumerate(endpoints)
    }
    tokens = _token_paths(spec)
    rounds: dict[str, list[tuple]] = {e.key: [] for e in endpoints}
    for _ in range(ROUNDS):
        nominal = _nominal(spec, base, env)
        for e in endpoints:
            connections = TOKEN_CONNECTIONS if e.path in tokens else CONNECTIONS
            threads = min(THREADS, connections)
            saturated = wrk(base + e.path, SATURATION_S, connections, threads, scripts[e.key])
            rounds[e.key].append((*nominal[e.key], saturated.requests_per_s))
    return endpoints, rounds


def run() -> list[BenchRow]:
    with tempfile.TemporaryDirectory(prefix="slakit-bench-endpoints-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        l1 = stack.enter_context(redis(workdir, "cache"))
        l2 = stack.enter_context(redis(workdir, "persist"))
        env = service_env(l1, l2, workdir)
        base = stack.enter_context(gunicorn(SERVICE_APP, env, workdir, "service"))
        warm(base)
        endpoints, rounds = _measure(base, workdir)
        tokens = _token_paths(load_spec())

    setup = f"{WORKERS} workers, median of {ROUNDS} rounds"
    rows = []
    for e in endpoints:
        p50 = median(r[0] for r in rounds[e.key])
        p99 = median(r[1] for r in rounds[e.key])
        rps = median(r[2] for r in rounds[e.key])
        rate = f"{e.load.rate:g}/s"
        target = "" if e.path in tokens else f"<= {TARGET_P50_MS:g} ms"
        met = None if e.path in tokens else p50 <= TARGET_P50_MS
        conns = TOKEN_CONNECTIONS if e.path in tokens else CONNECTIONS
        rows += [
            BenchRow(SECTION, f"{e.key}: service p50 at {rate} ({setup})", p50, "ms", target, met),
            BenchRow(SECTION, f"{e.key}: service p99 at {rate}", p99, "ms"),
            BenchRow(
                SECTION, f"{e.key}: saturation (wrk -c{conns}, {SATURATION_S}s)", rps, "req/s"
            ),
        ]
    return rows
