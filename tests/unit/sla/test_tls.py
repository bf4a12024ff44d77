"""The checker over real TLS: the loopback delay server serves HTTPS with a certificate of a
throwaway CA made here (cryptography), and the checker must verify it.

Verified runs pass and report the TLS handshake as its own, non-zero phase; a CA that did
not sign the server's certificate, a certificate for another address, and the system
trust store (which knows no throwaway CA) each fail in one line naming what did not
verify; the control-plane calls (aiohttp) verify with the same CA; plain HTTP still runs
and reports no handshake.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path

import pytest

from slakit.errors import SlakitError
from slakit.sla import RunOptions, run_checks
from slakit.sla.cli import main
from slakit.sla.control import fetch_cache_stats
from slakit.sla.http import client_ssl_context
from slakit.sla.reports import render_text
from slakit.sla.spec import AuthScheme, parse_spec
from slakit.status import Status
from tests.unit.sla.tls_pki import Pki

SMALL = str(Path(__file__).parent / "data" / "small_spec.yml")
VERIFY_FAILED = "TLS certificate verify failed"


@pytest.fixture(scope="module")
def https_url(delay_server, pki: Pki) -> str:
    return delay_server(1.0, 0.0, tls_cert=pki.cert, tls_key=pki.key)


def spec(rate: float = 100, requests: int = 200):
    return parse_spec(
        {
            "version": 1,
            "defaults": {
                "target_ms": 50,
                "objectives": [{"percentile": 95}],
                "load": {"rate": rate, "requests": requests, "connections": 6},
            },
            "service": {"stats_path": None},
            "stories": [
                {"id": "t", "name": "tls", "endpoints": [{"method": "GET", "path": "/ok"}]}
            ],
        }
    )


def cli(url: str, *extra: str) -> list[str]:
    return ["--spec", SMALL, "--story", "core", "--base-url", url, "--no-progress", *extra]


def test_a_verified_https_run_reports_the_handshake_as_its_own_phase(https_url, pki):
    result = run_checks(spec(), https_url, options=RunOptions(ca_file=pki.ca, progress=False))
    story = result.stories[0]
    e = story.endpoints[0]
    assert story.status == Status.PASS and not e.errors, (story.status, e.errors)
    # every connection the run opened (6, at warm-up) has a TCP connect and a handshake
    assert e.connect["count"] == e.tls["count"] == 6, (e.connect, e.tls)
    assert e.tls["min"] > 0 and e.tls["p50"] > 0
    # keep-alive: steady state, the handshakes are not in the measured requests
    assert e.connections_made == 0 and e.sent == 200
    text = render_text(result, True)
    assert f"TLS handshake p50 {e.tls['p50']:.2f}ms" in text
    assert "connect p50" in text and "first byte p50" in text


def test_load_processes_verify_with_the_same_ca_and_merge_the_handshakes(https_url, pki):
    # the CA file travels with the target to spawned processes (an SSLContext cannot)
    options = RunOptions(ca_file=pki.ca, progress=False, processes=2)
    result = run_checks(spec(), https_url, options=options)
    e = result.stories[0].endpoints[0]
    assert result.stories[0].validity.processes == 2 and not e.errors, e.errors
    assert e.connect["count"] == e.tls["count"] == 6  # 3 connections in each process


def test_plain_http_still_runs_and_has_no_handshake(delay_server):
    result = run_checks(spec(), delay_server(1.0, 0.0), options=RunOptions(progress=False))
    e = result.stories[0].endpoints[0]
    assert result.stories[0].status == Status.PASS and not e.errors
    assert e.connect["count"] == 6 and e.tls["count"] == 0
    assert "TLS handshake" not in render_text(result, True)


def test_the_cli_verifies_with_cacert_or_its_environment_variable(
    https_url, pki, capsys, monkeypatch
):
    monkeypatch.delenv("SLAKIT_SLA_CACERT", raising=False)
    assert main(cli(https_url, "--cacert", pki.ca, "--comprehensive")) == 0
    assert "TLS handshake p50" in capsys.readouterr().out
    monkeypatch.setenv("SLAKIT_SLA_CACERT", pki.ca)
    assert main(cli(https_url, "--quiet")) == 0


def _one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.err.startswith("slakit: ") and captured.err.count("\n") == 1, captured.err
    assert "Traceback" not in captured.err
    return captured.err


def test_an_unknown_ca_fails_in_one_line(https_url, pki, capsys, monkeypatch):
    monkeypatch.delenv("SLAKIT_SLA_CACERT", raising=False)
    assert main(cli(https_url, "--cacert", pki.rogue_ca)) == 2
    err = _one_line_error(capsys)
    assert f"slakit: cannot reach {https_url}: {VERIFY_FAILED}: " in err
    assert "unable to get local issuer certificate" in err and pki.rogue_ca in err


def test_the_system_trust_store_is_the_default_and_knows_no_lab_ca(https_url, capsys, monkeypatch):
    monkeypatch.delenv("SLAKIT_SLA_CACERT", raising=False)
    assert main(cli(https_url)) == 2
    err = _one_line_error(capsys)
    assert VERIFY_FAILED in err and "the system trust store" in err


def test_a_certificate_for_another_address_fails_in_one_line(delay_server, pki, capsys):
    url = delay_server(1.0, 0.0, tls_cert=pki.other_cert, tls_key=pki.other_key)
    assert main(cli(url, "--cacert", pki.ca)) == 2
    err = _one_line_error(capsys)
    assert VERIFY_FAILED in err and "IP address mismatch" in err and "127.0.0.1" in err


def test_a_name_is_checked_too(https_url, pki):
    # the certificate names localhost and 127.0.0.1: reached by another name it must fail
    context = client_ssl_context(pki.ca)
    port = int(https_url.rsplit(":", 1)[1])

    async def handshake(name: str) -> None:
        _, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=context, server_hostname=name
        )
        writer.close()

    asyncio.run(handshake("localhost"))
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        asyncio.run(handshake("lb-2.example"))


def test_alpn_offers_only_http_1_1_although_the_server_prefers_h2(https_url, pki):
    port = int(https_url.rsplit(":", 1)[1])

    async def alpn() -> tuple[str | None, bytes]:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_ssl_context(pki.ca), server_hostname="127.0.0.1"
        )
        writer.write(b"GET /alpn HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        body = await reader.readexactly(length)
        negotiated = writer.get_extra_info("ssl_object").selected_alpn_protocol()
        writer.close()
        return negotiated, body

    negotiated, body = asyncio.run(alpn())
    assert negotiated == "http/1.1" and json.loads(body) == "http/1.1"


@pytest.mark.parametrize(
    ("which", "message"),
    [("missing", "no such file or directory"), ("not_pem", "not a PEM certificate bundle")],
)
def test_an_unusable_ca_file_exits_2_before_any_request(which, message, pki, capsys):
    path = "/nonexistent/ca.crt" if which == "missing" else pki.not_pem
    # the port is closed: exit 2 must come from the CA file, not from the connection
    assert main(cli("https://127.0.0.1:9", "--cacert", path)) == 2
    err = _one_line_error(capsys)
    assert f"CA file {path}: " in err and message in err


def test_the_control_plane_verifies_with_the_same_ca(https_url, pki):
    # /ok answers JSON without a "cache" object: reached, and read
    ok = asyncio.run(fetch_cache_stats(https_url, "/ok", pki.ca))
    assert ok.reason == "/ok has no 'cache' object", ok.reason
    rogue = asyncio.run(fetch_cache_stats(https_url, "/ok", pki.rogue_ca))
    assert not rogue.available and rogue.reason.startswith(f"GET /ok failed: {VERIFY_FAILED}")


def test_the_operator_token_call_fails_in_one_line_on_an_unknown_ca(https_url, pki):
    from slakit.sla.control import fetch_token

    scheme = AuthScheme("operator", "/token", "U", "P")
    env = {"U": "operator", "P": "x" * 20}
    # verified: the server is reached and answers 404 (it has no token endpoint)
    with pytest.raises(SlakitError, match="answered HTTP 404"):
        asyncio.run(fetch_token(https_url, scheme, env, pki.ca))
    with pytest.raises(SlakitError, match=f"cannot reach {https_url}: {VERIFY_FAILED}: "):
        asyncio.run(fetch_token(https_url, scheme, env, pki.rogue_ca))


def test_a_redirect_during_warm_up_says_https(delay_server):
    url = delay_server(1.0, 0.0)
    redirecting = parse_spec(
        {
            "version": 1,
            "defaults": {"target_ms": 50, "load": {"rate": 50, "requests": 300}},
            "service": {"stats_path": None},
            "stories": [
                {"id": "r", "name": "r", "endpoints": [{"method": "GET", "path": "/status/308"}]}
            ],
        }
    )
    with pytest.raises(SlakitError, match=r"answered HTTP 308 during warm-up.*want HTTPS"):
        run_checks(redirecting, url, options=RunOptions(progress=False))


def test_the_tls_bench_times_connect_and_handshake_of_each_fresh_connection(
    delay_server, https_url, pki
):
    from slakit.benches.tls import fresh_connections, percentile
    from slakit.sla import run_loop

    urls = {"HTTP": delay_server(0.0, 0.0), "HTTPS": https_url}
    fresh = run_loop(fresh_connections(urls, pki.ca, 5, path="/fast"))
    assert [len(v) for v in fresh.values()] == [5, 5]
    assert all(ex.connect_s > 0 and ex.tls_s == -1.0 for ex in fresh["HTTP"])
    assert all(ex.connect_s > 0 and ex.tls_s > 0 for ex in fresh["HTTPS"])
    assert percentile([3.0, 1.0, 2.0, 4.0], 50) == 2.0 and percentile([1.0, 9.0], 99) == 9.0
    with pytest.raises(SlakitError, match=VERIFY_FAILED):
        run_loop(fresh_connections({"HTTPS": https_url}, pki.rogue_ca, 1, path="/fast"))


def test_a_result_from_before_tls_still_loads_as_a_baseline():
    from slakit.sla.model import Result

    data = json.loads((Path(__file__).parent / "data" / "recorded_run.json").read_text())
    for story in data["stories"]:
        for endpoint in story["endpoints"]:
            endpoint.pop("tls", None)
    loaded = Result.from_dict(data)
    assert loaded.stories[0].endpoints[0].tls == {}
