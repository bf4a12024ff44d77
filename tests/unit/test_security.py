"""The security gates' judgement, on probe results of the shape the hosts return, and the
probe script itself against real sockets on loopback."""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from slakit import security
from slakit.lab.tls import SERVER_DAYS, ensure_tls
from slakit.stack import Stack

INVENTORY = {
    "lb": {"hosts": ["lb-1"]},
    "app": {"hosts": ["app-1", "app-2"]},
    "redis": {"hosts": ["redis-1"]},
    "_meta": {"hostvars": {"lb-1": {}, "app-1": {}, "app-2": {}, "redis-1": {}}},
}
FACTS = {
    "lb-1": {"loadbalancer": {"url": "https://10.0.0.10:443", "http_url": "http://10.0.0.10:80"}},
    "app-1": {"app": {"url": "http://10.0.0.21:8000", "unit": "api.service"}},
    "app-2": {"app": {"url": "http://10.0.0.22:8000", "unit": "api.service"}},
    "redis-1": {
        "redis": {
            "urls": {"cache": "redis://10.0.0.31:6379", "persist": "redis://10.0.0.31:6380"},
            "instances": {"cache": {"port": 6379}, "persist": {"port": 6380}},
        }
    },
}
STACK = Stack(INVENTORY, FACTS)


def probe(target: str, outcome: str, reply: str = "") -> dict[str, str]:
    return {"target": target, "outcome": outcome, "reply": reply}


def found(**app_outcomes: str) -> dict[str, dict]:
    """Probe results as run_probes returns them: every app probe with the given outcome per host."""
    plan = security.probe_plan(STACK)
    return {
        host: {
            "app": [
                probe(t, app_outcomes.get(host.replace("-", "_"), "timeout")) for t in p["app"]
            ],
            "redis": [
                probe(t, "connected", "-NOAUTH Authentication required.") for t in p["redis"]
            ],
            "units": {u: f"→ Overall exposure level for {u}: 1.2 OK :-)" for u in p["units"]},
        }
        for host, p in plan.items()
    }


def test_plan_probes_other_app_hosts_redis_from_app_hosts_and_each_roles_units():
    plan = security.probe_plan(STACK)
    assert plan["app-1"] == {
        "app": ["10.0.0.22:8000"],
        "redis": ["10.0.0.31:6379", "10.0.0.31:6380"],
        "units": ["api.service"],
    }
    assert plan["redis-1"]["app"] == ["10.0.0.21:8000", "10.0.0.22:8000"]
    assert plan["redis-1"]["units"] == ["redis@cache.service", "redis@persist.service"]
    assert plan["lb-1"] == {
        "app": ["10.0.0.21:8000", "10.0.0.22:8000"],
        "redis": [],
        "units": ["haproxy.service"],
    }


def test_app_port_passes_when_refused_from_others_and_reached_from_lb():
    result = security.app_port_gate(STACK, found(lb_1="connected"))
    assert result.passed, result
    assert result.figure == (
        "4/4 connects from other hosts kept out (4 timeout); 2/2 from LB hosts reached"
    )


def test_app_port_counts_the_scrapers_the_app_lets_in_as_allowed():
    """A monitoring host in app_metrics_allowed_clients reaches the port on purpose; a host the
    variable does not name is still a leak."""
    inventory = {
        **INVENTORY,
        "monitoring": {"hosts": ["mon-1"]},
        "_meta": {
            "hostvars": {
                **{h: {"ansible_host": f"10.0.0.{n}"} for h, n in
                   (("lb-1", 10), ("app-1", 21), ("app-2", 22), ("redis-1", 31))},
                "mon-1": {"ansible_host": "10.0.0.41"},
            }
        },
    }  # fmt: skip
    lab = Stack(inventory, FACTS)
    variables = {h: {"app_metrics_allowed_clients": ["10.0.0.40/30"]} for h in ("app-1", "app-2")}
    assert security.scrapers(lab, variables) == {"mon-1"}
    assert security.scrapers(lab, {}) == set()
    plan = security.probe_plan(lab)
    results = {
        host: {"app": [probe(t, "connected" if host in ("lb-1", "mon-1") else "refused")
                       for t in p["app"]]}
        for host, p in plan.items()
    }  # fmt: skip
    allowed = security.app_port_gate(lab, results, security.scrapers(lab, variables))
    assert allowed.passed, allowed
    assert allowed.figure == (
        "4/4 connects from other hosts kept out (4 refused); "
        "4/4 from LB hosts and scrapers (mon-1) reached"
    )
    leaked = security.app_port_gate(lab, results)
    assert not leaked.passed
    assert leaked.detail == "reachable: mon-1 -> 10.0.0.21:8000, mon-1 -> 10.0.0.22:8000"


def test_app_port_fails_naming_the_host_that_reached_it():
    result = security.app_port_gate(STACK, found(lb_1="connected", redis_1="connected"))
    assert not result.passed
    assert "redis-1 -> 10.0.0.21:8000" in result.detail


def test_app_port_fails_when_the_lb_cannot_reach_the_app_either():
    """A probe that reaches nothing from anywhere proves nothing: the LB is the control."""
    result = security.app_port_gate(STACK, found())
    assert not result.passed
    assert "an allowed host cannot reach an app host" in result.detail


def test_redis_gate_fails_on_an_instance_that_answers_without_credentials():
    results = found(lb_1="connected")
    results["app-2"]["redis"][1]["reply"] = "+PONG"
    result = security.redis_gate(results)
    assert not result.passed
    assert "app-2 -> 10.0.0.31:6380: connected +PONG" in result.detail
    assert security.redis_gate(found(lb_1="connected")).passed


def test_redis_gate_fails_when_no_probe_ran():
    results = {h: {"app": [], "redis": [], "units": {}} for h in ("app-1", "lb-1")}
    assert not security.redis_gate(results).passed


def test_exposure_gate_per_role_against_its_own_target():
    results = found(lb_1="connected")
    results["lb-1"]["units"]["haproxy.service"] = (
        "→ Overall exposure level for haproxy.service: 3.4 OK"
    )
    targets = {
        h: {"loadbalancer_exposure_max": 3.0, "app_exposure_max": 2.0, "redis_exposure_max": 2.0}
        for h in results
    }
    by_name = {g.name: g for g in security.exposure_gates(STACK, results, targets)}
    assert not by_name["Security: exposure of haproxy units"].passed
    assert "lb-1 haproxy.service 3.4 > 3" in by_name["Security: exposure of haproxy units"].detail
    assert by_name["Security: exposure of redis units"].passed
    assert by_name["Security: exposure of api units"].figure == (
        "worst 1.2 (app-1 api.service) of 2 units"
    )


def test_exposure_gate_fails_when_the_score_is_missing():
    results = found(lb_1="connected")
    results["app-2"]["units"]["api.service"] = "Unit api.service not found."
    targets = {
        h: {"loadbalancer_exposure_max": 3.0, "app_exposure_max": 2.0, "redis_exposure_max": 2.0}
        for h in results
    }
    by_name = {g.name: g for g in security.exposure_gates(STACK, results, targets)}
    assert not by_name["Security: exposure of api units"].passed


@pytest.fixture
def servers():
    """A listener that answers one line, and a port nothing listens on."""
    listener = socket.create_server(("127.0.0.1", 0))
    closed = socket.create_server(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()

    def answer() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(64)
                conn.sendall(b"-NOAUTH Authentication required.\r\n")

    threading.Thread(target=answer, daemon=True).start()
    yield listener.getsockname()[1], closed_port
    listener.close()


def test_probe_script_reports_reply_and_refusal(servers):
    open_port, closed_port = servers
    out = subprocess.run(
        [
            sys.executable,
            str(security.PROBE_SCRIPT),
            "--timeout",
            "2",
            "--send",
            "PING",
            f"127.0.0.1:{open_port}",
            f"127.0.0.1:{closed_port}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    first, second = json.loads(out.stdout)
    assert first == probe(f"127.0.0.1:{open_port}", "connected", "-NOAUTH Authentication required.")
    assert second == probe(f"127.0.0.1:{closed_port}", "refused")


@pytest.fixture
def tls_server(tmp_path):
    """Serve the lab's kind of certificate for lb-1 at 127.0.0.1 (real TLS handshakes).

    Yields a function (days the certificate has left) -> (a Stack whose lb-1 publishes the
    server's URL and CA, the CA file)."""
    listeners: list[socket.socket] = []

    def serve(days_left: int) -> tuple[Stack, Path]:
        pki = tmp_path / f"pki-{days_left}"
        issued = dt.datetime.now(dt.UTC) - dt.timedelta(days=SERVER_DAYS - days_left)
        ensure_tls({"lb-1": "127.0.0.1"}, pki, now=issued)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(pki / "lb-1.crt", pki / "lb-1.key")
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)

        def accept() -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                try:
                    with context.wrap_socket(conn, server_side=True):
                        pass
                except (OSError, ssl.SSLError):
                    pass  # a client that refused our certificate

        threading.Thread(target=accept, daemon=True).start()
        port = listener.getsockname()[1]
        fact = {"url": f"https://127.0.0.1:{port}", "tls": {"ca_file": str(pki / "ca.crt")}}
        return Stack({"lb": {"hosts": ["lb-1"]}}, {"lb-1": {"loadbalancer": fact}}), pki / "ca.crt"

    yield serve
    for listener in listeners:
        listener.close()


LIMITS = {"lb-1": {"loadbalancer_tls_expiry_fail_days": 7, "loadbalancer_tls_expiry_warn_days": 30}}


def test_tls_gate_verifies_and_reports_protocol_and_days(tls_server):
    deployed, _ = tls_server(200)
    [result], notes = security.tls_gates(deployed, LIMITS)
    assert result.passed, result
    assert result.figure.startswith("TLSv1.3, verified against ca.crt, certificate expires in 19")
    assert notes == []


def test_tls_gate_warns_under_warn_days_and_fails_under_fail_days(tls_server):
    soon, _ = tls_server(20)
    [warned], notes = security.tls_gates(soon, LIMITS)
    assert warned.passed and notes and "expires in 19 days" in notes[0]
    expiring, _ = tls_server(5)
    [failed], _ = security.tls_gates(expiring, LIMITS)
    assert not failed.passed and "renew it" in failed.detail


def test_tls_gate_fails_against_another_ca(tls_server, tmp_path):
    deployed, _ = tls_server(200)
    other = tmp_path / "other"
    ensure_tls({"lb-1": "127.0.0.1"}, other)
    fact = deployed.published("lb-1", "loadbalancer")
    stranger = Stack(
        deployed.inventory,
        {"lb-1": {"loadbalancer": {**fact, "tls": {"ca_file": str(other / "ca.crt")}}}},
    )
    [result], _ = security.tls_gates(stranger, LIMITS)
    assert not result.passed
    assert result.figure == "certificate not verified"
    assert "unable to get local issuer certificate" in result.detail
