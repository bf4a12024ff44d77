"""`invoke bench` section "tls": one SLA story through the lab's load balancer over HTTPS
and over plain HTTP, in one run, and the cost of a TLS handshake on its own.

With `loadbalancer_http_redirect: true` (the default) port 80 only redirects, so the bench
converges the first LB host with `loadbalancer_http_redirect: false` (tags loadbalancer,
that host only), measures, and converges it again with the inventory's own setting in a
`finally`: the lab ends as it began (the restore's changes are a row). It needs a lab
whose load balancer serves HTTPS (its fact's `tls.enabled`); it recreates nothing.

What it measures, every request by slakit's checker (verified against the CA file the
load balancer's fact names), HTTP and HTTPS interleaved, ROUNDS times, medians:
- story STORY of sla/spec.yml, open loop at its nominal rate on keep-alive connections:
  p50, p99 and SLA compliance (the steady state an SLA is about; handshakes happen at
  warm-up, before the measured requests);
- closed loop, CLOSED_CONCURRENCY keep-alive connections on GET PATH: requests/s;
- FRESH new connections each (`Connection: close`, GET PATH): TCP connect and TLS
  handshake (a full handshake: the client resumes no session) as separate phases, and the
  whole first request on a fresh connection, HTTP next to HTTPS.
"""

from __future__ import annotations

import asyncio
import statistics
from typing import Any

from slakit import ansible, envs, stack
from slakit.bench import BenchRow
from slakit.errors import SlakitError

SECTION = "tls"
STORY = "1.1"
PATH = "/api/v1/health"
ROUNDS = 2
CLOSED_CONCURRENCY, CLOSED_S = 16, 4
FRESH = 100  # new connections per scheme
PLAYBOOK = "site.yml"


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100.0 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _converge(env: envs.Environment, host: str, plain: bool) -> ansible.PlayResult:
    """Converge the LB host's loadbalancer tag; plain=True keeps port 80 serving HTTP."""
    extra = ansible.extra_vars_args({"loadbalancer_http_redirect": False} if plain else None)
    result = ansible.playbook(
        env, PLAYBOOK, tags="loadbalancer", limit=host, extra_args=extra, quiet=True
    )
    if result.returncode != 0:
        what = "with loadbalancer_http_redirect=false" if plain else "to restore it"
        raise SlakitError(f"tls bench: converging {host} {what} failed: {result.first_failure()}")
    return result


def _story_run(url: str, ca_file: str | None) -> Any:
    from slakit.sla import RunOptions, load_spec, run_checks

    spec = load_spec().select([STORY])
    return run_checks(spec, url, options=RunOptions(progress=False, ca_file=ca_file))


async def fresh_connections(
    urls: dict[str, str], ca_file: str | None, count: int, path: str = PATH
) -> dict[str, list[Any]]:
    """`count` requests per scheme, each on a new connection, the schemes interleaved:
    the checker's exchanges, with their connect and TLS handshake phases."""
    from slakit.sla import http

    targets = {scheme: http.parse_base_url(url, ca_file) for scheme, url in urls.items()}
    requests = {
        scheme: http.prepare_request(target, "GET", path, headers={"Connection": "close"})
        for scheme, target in targets.items()
    }
    out: dict[str, list[Any]] = {scheme: [] for scheme in urls}
    loop = asyncio.get_running_loop()
    for _ in range(count):
        for scheme, target in targets.items():
            done: asyncio.Future[Any] = loop.create_future()
            pool = http.ConnectionPool(target, 1, done.set_result, timeout_s=5.0)
            pool.submit(http.Exchange(requests[scheme], http.monotonic()))
            ex = await done
            pool.close()
            if ex.error or ex.status != 200:
                why = ex.error or f"HTTP {ex.status}"
                raise SlakitError(f"tls bench: GET {urls[scheme]}{path}: {why}", exit_code=3)
            out[scheme].append(ex)
    return out


async def _negotiated(url: str, ca_file: str | None) -> str:
    """'TLSv1.3 TLS_AES_256_GCM_SHA384, ALPN http/1.1' of one verified connection."""
    from slakit.sla.http import client_ssl_context, parse_base_url

    target = parse_base_url(url, ca_file)
    _, writer = await asyncio.open_connection(
        target.host, target.port, ssl=client_ssl_context(ca_file), server_hostname=target.host
    )
    tls = writer.get_extra_info("ssl_object")
    text = f"{tls.version()} {tls.cipher()[0]}, ALPN {tls.selected_alpn_protocol()}"
    writer.close()
    return text


def measure(http_url: str, https_url: str, ca_file: str | None) -> list[BenchRow]:
    """The rows, from both URLs of one load balancer (port 80 must serve, not redirect)."""
    from slakit.benches.checker import checker_closed_loop
    from slakit.sla import run_loop

    urls = {"HTTP": http_url, "HTTPS": https_url}
    cas = {"HTTP": None, "HTTPS": ca_file}
    stories: dict[str, list[Any]] = {"HTTP": [], "HTTPS": []}
    closed: dict[str, list[float]] = {"HTTP": [], "HTTPS": []}
    for _ in range(ROUNDS):
        for scheme, url in urls.items():
            stories[scheme].append(_story_run(url, cas[scheme]).stories[0])
        for scheme, url in urls.items():
            run = checker_closed_loop(url, CLOSED_CONCURRENCY, CLOSED_S, PATH, cas[scheme])
            closed[scheme].append(run["rps"])
    fresh = run_loop(fresh_connections(urls, ca_file, FRESH))
    negotiated = run_loop(_negotiated(https_url, ca_file))

    def med(scheme: str, attr: str) -> float:
        return statistics.median(getattr(s, attr) or 0.0 for s in stories[scheme])

    rate = stories["HTTPS"][0].rate_rps or 0.0
    load = f"open loop {rate:g} req/s, median of {ROUNDS}"
    rows = []
    for scheme in urls:
        rows += [
            BenchRow(SECTION, f"story {STORY} over {scheme}: p50 ({load})", med(scheme, "p50_ms"),
                     "ms"),
            BenchRow(SECTION, f"story {STORY} over {scheme}: p99", med(scheme, "p99_ms"), "ms"),
        ]  # fmt: skip
    http_p50, https_p50 = med("HTTP", "p50_ms"), med("HTTPS", "p50_ms")
    cost = 100.0 * (https_p50 / http_p50 - 1.0) if http_p50 else float("inf")
    rows.append(
        BenchRow(SECTION, f"story {STORY}: HTTPS p50 cost over HTTP (kept-alive connections)",
                 cost, "%", "< 10%", cost < 10.0)
    )  # fmt: skip
    for scheme in urls:
        statuses = "/".join(s.status for s in stories[scheme])
        threshold = stories[scheme][0].compliance_threshold
        rows.append(
            BenchRow(
                SECTION, f"story {STORY} over {scheme}: SLA compliance ({statuses})",
                100.0 * med(scheme, "compliance"), "%", f">= {threshold:.0%}",
                all(s.status == "pass" for s in stories[scheme]),
            )
        )  # fmt: skip
    for scheme in urls:
        rows.append(
            BenchRow(
                SECTION,
                f"closed loop over {scheme}: GET {PATH} (c={CLOSED_CONCURRENCY}, {CLOSED_S}s, "
                f"median of {ROUNDS})",
                statistics.median(closed[scheme]),
                "req/s",
            )
        )
    https = fresh["HTTPS"]
    connect_ms = [ex.connect_s * 1000.0 for ex in https]
    tls_ms = [ex.tls_s * 1000.0 for ex in https]
    rows += [
        BenchRow(SECTION, f"TCP connect p50 ({FRESH} fresh connections)",
                 percentile(connect_ms, 50), "ms"),
        BenchRow(SECTION, f"TLS handshake p50 ({negotiated}, full)", percentile(tls_ms, 50),
                 "ms"),
        BenchRow(SECTION, "TLS handshake p99", percentile(tls_ms, 99), "ms"),
    ]  # fmt: skip
    for scheme in urls:
        whole = [(ex.t_done - ex.t_send + ex.connect_s + max(ex.tls_s, 0.0)) * 1000.0
                 for ex in fresh[scheme]]  # fmt: skip
        rows.append(
            BenchRow(SECTION, f"request on a fresh connection over {scheme}: p50",
                     percentile(whole, 50), "ms")
        )  # fmt: skip
    return rows


def run() -> list[BenchRow]:
    env = envs.resolve("lab")
    deployed = stack.load(env)
    host = next(iter(deployed.hosts("lb")), "")
    if not host:
        raise SlakitError("tls bench: the lab inventory has no host in group lb")
    https_url = deployed.lb_urls()[host]
    if not deployed.lb_tls(host).get("enabled") or not https_url.startswith("https://"):
        raise SlakitError(
            f"tls bench: {host} serves no HTTPS (its loadbalancer fact's tls.enabled is not "
            "true): deploy a loadbalancer role with TLS first"
        )
    ca_file = deployed.lb_ca_file(host)
    restored: ansible.PlayResult | None = None
    try:
        _converge(env, host, plain=True)
        plain = stack.load(env)
        if plain.lb_tls(host).get("http_redirect") is not False:
            raise SlakitError(f"tls bench: {host} still publishes http_redirect after the converge")
        rows = measure(plain.lb_http_urls()[host], https_url, ca_file)
    finally:
        restored = _converge(env, host, plain=False)
    return [
        *rows,
        BenchRow(SECTION, f"{host} restored (converge, tags loadbalancer): changes",
                 restored.changed, "changes"),
    ]  # fmt: skip


if __name__ == "__main__":
    from slakit.bench import render

    render(run())
