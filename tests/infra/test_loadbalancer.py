"""loadbalancer: HAProxy runs with the settings the role resolved and sees every app host UP.

Expected values: the loadbalancer_* variables as Ansible resolves them for the host. Actual
values: HAProxy's admin socket (`show info`, `show stat`) where it reports a setting, else
the configuration file that the running HAProxy loaded (checked with `haproxy -c`).

TLS is checked from the controller, as a client sees it: the certificate chain verifies
against loadbalancer_tls_ca_src (or the system store) for the address the clients use, its
days left (recorded as the `tls_days_left` property of the JUnit case, for the readiness
report's warning) are at least loadbalancer_tls_expiry_fail_days, TLS 1.0/1.1 are refused by
the server (its protocol_version alert, not a client unable to offer them), TLS 1.2 is
accepted. The body limit is probed on the load balancer itself: HAProxy's own 413 page and
its frontend's denied-request counter prove HAProxy answered and no server saw the body.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import socket
import ssl
import urllib.error
import urllib.request
import warnings

import pytest
from conftest import (
    UNIT_HARDENING,
    ansible_inventory,
    ansible_task_on,
    assert_no_mismatches,
    check_unit_hardening,
    expected,
    exposure,
    group_hosts,
    hostname,
    in_container,
    inventory_vars,
    mismatch,
    pid1_nofile_hard,
    unit_listeners,
    unit_properties,
)

from slakit.verify import NOT_APPLICABLE

pytestmark = pytest.mark.group("lb")
# HAProxy keeps this many descriptors for itself (the role: maxconn = (fd - 512) / 2).
FD_RESERVE = 512
TIMEOUT_S = 5
# HAProxy runs as its own user with two ambient capabilities (the role's hardening drop-in);
# everything else is the hardening every slakit unit carries.
HAPROXY_CAPS = "cap_net_bind_service cap_sys_chroot"
HAPROXY_HARDENING = {
    **UNIT_HARDENING,
    "User": "haproxy",
    "CapabilityBoundingSet": HAPROXY_CAPS,
    "AmbientCapabilities": HAPROXY_CAPS,
}


def admin(host, command: str) -> str:
    return host.check_output(
        f"echo {command!r} | socat stdio {expected(host, 'loadbalancer_admin_socket')}"
    )


def show_stat(host) -> list[dict[str, str]]:
    return list(csv.DictReader(admin(host, "show stat").lstrip("# ").splitlines()))


def show_info(host) -> dict[str, str]:
    lines = admin(host, "show info").splitlines()
    return dict(line.split(": ", 1) for line in lines if ": " in line)


def config_sections(host) -> dict[str, list[list[str]]]:
    """The configuration file as {"<kind> <name>": [tokens of each line]}."""
    text = host.file(expected(host, "loadbalancer_config_file")).content_string
    sections: dict[str, list[list[str]]] = {}
    current: list[list[str]] = []
    for raw in text.splitlines():
        tokens = raw.split("#", 1)[0].split()
        if not tokens:
            continue
        if not raw[0].isspace():
            current = sections.setdefault(" ".join(tokens), [])
        else:
            current.append(tokens)
    return sections


def directive(lines: list[list[str]], *keyword: str) -> str | None:
    """The value of the first line starting with `keyword` (tokens joined by spaces)."""
    for tokens in lines:
        if tuple(tokens[: len(keyword)]) == keyword:
            return " ".join(tokens[len(keyword) :])
    return None


def fd_limit(host) -> int:
    nofile = int(expected(host, "loadbalancer_nofile"))
    return min(nofile, pid1_nofile_hard(host)) if in_container(host) else nofile


def test_haproxy_enabled_and_running(host):
    service = host.service("haproxy")
    assert service.is_enabled and service.is_running


def test_config_valid(host):
    check = host.run(f"haproxy -c -f {expected(host, 'loadbalancer_config_file')}")
    assert check.rc == 0, f"{hostname(host)}: haproxy -c: {check.stderr.strip()}"


def tls_on(host) -> bool:
    return bool(expected(host, "loadbalancer_tls_enabled"))


def needs_tls(host) -> None:
    if not tls_on(host):
        pytest.skip(f"{NOT_APPLICABLE}loadbalancer_tls_enabled is false on {hostname(host)}")


def client_address(host) -> str:
    """Where clients reach the frontend: its bind address, else the host's address."""
    bind = expected(host, "loadbalancer_bind_address")
    if bind not in ("*", "", "0.0.0.0", "::"):
        return bind
    return str(inventory_vars(host).get("ansible_host") or hostname(host))


def client_context(host) -> ssl.SSLContext:
    """A client that verifies the chain and the address against the CA clients are given."""
    ca = expected(host, "loadbalancer_tls_ca_src")
    return ssl.create_default_context(cafile=ca or None)


def https_url(host, path: str) -> str:
    return f"https://{client_address(host)}:{expected(host, 'loadbalancer_https_port')}{path}"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_listeners(host):
    """The frontend and the stats page listen where configured, and nothing else of HAProxy."""
    bind = expected(host, "loadbalancer_bind_address")
    address = "0.0.0.0" if bind in ("*", "") else bind
    want = {f"{address}:{expected(host, 'loadbalancer_port')}"}
    if tls_on(host):
        want.add(f"{address}:{expected(host, 'loadbalancer_https_port')}")
    if expected(host, "loadbalancer_stats_bind"):
        want.add(expected(host, "loadbalancer_stats_bind"))
    if expected(host, "loadbalancer_promex_enabled"):
        want.add(
            f"{expected(host, 'loadbalancer_promex_address')}:"
            f"{expected(host, 'loadbalancer_promex_port')}"
        )
    seen = set(unit_listeners(host, "haproxy.service"))
    assert seen == want, mismatch(host, "haproxy listeners", sorted(want), sorted(seen))


def test_admin_socket(host):
    sock = host.file(expected(host, "loadbalancer_admin_socket"))
    # made by HAProxy, which runs as user haproxy (the role's hardening drop-in)
    want = ("haproxy", expected(host, "loadbalancer_admin_group"), 0o660)
    actual = (sock.user, sock.group, sock.mode) if sock.is_socket else "not a socket"
    assert actual == want, mismatch(host, f"{sock.path} owner, group, mode", want, actual)


def test_open_files_and_maxconn(host):
    """LimitNOFILE of haproxy.service and HAProxy's own maxconn follow the resolved limits."""
    limit = fd_limit(host)
    maxconn = min(int(expected(host, "loadbalancer_maxconn")), (limit - FD_RESERVE) // 2)
    info = show_info(host)
    props = unit_properties(host, "haproxy.service", ["LimitNOFILE"])
    actual = {
        "haproxy.service LimitNOFILE": props.get("LimitNOFILE"),
        "show info Maxconn": info.get("Maxconn"),
    }
    want = {"haproxy.service LimitNOFILE": str(limit), "show info Maxconn": str(maxconn)}
    problems = [mismatch(host, k, want[k], actual[k]) for k in want if actual[k] != want[k]]
    front = [r for r in show_stat(host) if r["svname"] == "FRONTEND"]
    for row in front:
        if row["slim"] != str(maxconn):
            problems.append(
                mismatch(host, f"frontend {row['pxname']} maxconn", maxconn, row["slim"])
            )
    assert_no_mismatches(problems)


def test_threads(host):
    """HAProxy runs loadbalancer_nbthread threads; 0: HAProxy's default, one per CPU it may use
    (`nproc`: the CPUs of the affinity mask it inherits)."""
    wanted = int(expected(host, "loadbalancer_nbthread")) or int(host.check_output("nproc"))
    actual = show_info(host).get("Nbthread")
    assert actual == str(wanted), mismatch(host, "show info Nbthread", wanted, actual)


def test_backend_settings(host):
    """balance, health checks and server maxconn live; retries and timeouts as loaded."""
    backend = expected(host, "loadbalancer_backend_name")
    rows = [r for r in show_stat(host) if r["pxname"] == backend]
    kinds = sorted({"BACKEND" if r["svname"] == "BACKEND" else "server" for r in rows})
    assert kinds == ["BACKEND", "server"], mismatch(
        host, f"{backend} rows", "BACKEND and servers", kinds
    )
    problems = []
    for row in rows:
        if row["svname"] == "BACKEND":
            if row["algo"] != expected(host, "loadbalancer_balance"):
                want = expected(host, "loadbalancer_balance")
                problems.append(mismatch(host, f"{backend} balance", want, row["algo"]))
            continue
        live = {
            "maxconn": (row["slim"], expected(host, "loadbalancer_server_maxconn")),
            "rise": (row["check_rise"], expected(host, "loadbalancer_health_rise")),
            "fall": (row["check_fall"], expected(host, "loadbalancer_health_fall")),
        }
        for key, (actual, want) in live.items():
            if str(actual) != str(want):
                problems.append(mismatch(host, f"server {row['svname']} {key}", want, actual))
    sections = config_sections(host)
    defaults = sections.get("defaults", [])
    loaded = {
        "retries": (directive(defaults, "retries"), "loadbalancer_retries"),
        "retry-on": (directive(defaults, "retry-on"), "loadbalancer_retry_on"),
        "http-reuse": (directive(defaults, "http-reuse"), "loadbalancer_http_reuse"),
    }
    for name in ("connect", "client", "server", "http-request", "http-keep-alive", "queue"):
        var = f"loadbalancer_timeout_{name.replace('-', '_')}"
        loaded[f"timeout {name}"] = (directive(defaults, "timeout", name), var)
    server_line = (
        directive(sections.get(f"backend {backend}", []), "default-server") or ""
    ).split()
    for key in ("inter", "fastinter"):
        value = server_line[server_line.index(key) + 1] if key in server_line else None
        loaded[f"default-server {key}"] = (value, f"loadbalancer_health_{key}")
    path = directive(sections.get(f"backend {backend}", []), "option", "httpchk")
    loaded["option httpchk"] = (path, "loadbalancer_health_path")
    for key, (actual, var) in loaded.items():
        want = expected(host, var)
        if key == "option httpchk":
            want = f"GET {want}"
        if str(actual) != str(want):
            problems.append(mismatch(host, key, want, actual))
    assert_no_mismatches(problems)


def test_every_app_host_is_up(host):
    backend = expected(host, "loadbalancer_backend_name")
    servers = group_hosts(host, expected(host, "loadbalancer_backend_group"))
    rows = {r["svname"]: r for r in show_stat(host) if r["pxname"] == backend}
    assert servers, f"{hostname(host)}: the backend group is empty"
    problems = [
        f"{s}: {rows[s]['status']} ({rows[s]['check_status']})" if s in rows else f"{s}: absent"
        for s in servers
        if s not in rows or rows[s]["status"] != "UP"
    ]
    assert not problems, f"{hostname(host)} backend {backend}: " + "; ".join(problems)


def local_base(host) -> str:
    """The frontend as seen from the load balancer itself (HTTPS when TLS is on)."""
    bind = expected(host, "loadbalancer_bind_address")
    address = "127.0.0.1" if bind in ("*", "", "0.0.0.0") else bind
    if tls_on(host):
        return f"https://{address}:{expected(host, 'loadbalancer_https_port')}"
    return f"http://{address}:{expected(host, 'loadbalancer_port')}"


def test_answers_through_the_frontend(host):
    url = local_base(host) + expected(host, "loadbalancer_health_path")
    # the certificate itself is checked from the controller (test_tls_certificate)
    probe = (
        "import json, ssl, urllib.request\n"
        "context = ssl._create_unverified_context()\n"
        f"r = urllib.request.urlopen('{url}', timeout=5, context=context)\n"
        "print(json.dumps({'status': r.status, 'body': json.load(r)}))\n"
    )
    out = json.loads(host.check_output("python3 -c %s", probe))
    assert out["status"] == 200 and out["body"]["status"] == "ok"


def test_tls_certificate(host, record_property):
    """The chain verifies for the clients' address; it expires no sooner than the fail days."""
    needs_tls(host)
    address, port = client_address(host), int(expected(host, "loadbalancer_https_port"))
    try:
        with (
            socket.create_connection((address, port), timeout=TIMEOUT_S) as raw,
            client_context(host).wrap_socket(raw, server_hostname=address) as tls,
        ):
            cert = tls.getpeercert()
    except (OSError, ssl.SSLError) as err:
        raise AssertionError(f"{hostname(host)}: {address}:{port}: TLS: {err}") from err
    not_after = dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(cert["notAfter"]), dt.UTC)
    days = (not_after - dt.datetime.now(dt.UTC)).total_seconds() / 86400
    record_property("tls_days_left", round(days, 1))
    record_property("tls_not_after", not_after.isoformat())
    fail_days = int(expected(host, "loadbalancer_tls_expiry_fail_days"))
    assert days >= fail_days, mismatch(
        host, "certificate days left", f">= {fail_days}", round(days, 1)
    )


def handshake(host, version: ssl.TLSVersion) -> str:
    """The TLS version agreed, or the reason the handshake failed."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # so this client can offer the old versions
    with warnings.catch_warnings():  # the old versions are deprecated: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = context.maximum_version = version
    address, port = client_address(host), int(expected(host, "loadbalancer_https_port"))
    with socket.create_connection((address, port), timeout=TIMEOUT_S) as raw:
        try:
            with context.wrap_socket(raw) as tls:
                return str(tls.version())
        except ssl.SSLError as err:
            return str(err.reason)


def test_tls_versions(host):
    """TLS 1.0 and 1.1 refused by the server (protocol_version alert), TLS 1.2 accepted."""
    needs_tls(host)
    want = {
        "TLSv1": "TLSV1_ALERT_PROTOCOL_VERSION",
        "TLSv1_1": "TLSV1_ALERT_PROTOCOL_VERSION",
        "TLSv1_2": "TLSv1.2",
    }
    if expected(host, "loadbalancer_tls_min_version") == "TLSv1.3":
        want["TLSv1_2"] = "TLSV1_ALERT_PROTOCOL_VERSION"
    actual = {name: handshake(host, getattr(ssl.TLSVersion, name)) for name in want}
    assert_no_mismatches(
        [mismatch(host, f"handshake {k}", want[k], actual[k]) for k in want if actual[k] != want[k]]
    )


def test_http_port(host):
    """Port loadbalancer_port redirects to HTTPS (308), or serves plain HTTP when it may."""
    path = expected(host, "loadbalancer_health_path")
    url = f"http://{client_address(host)}:{expected(host, 'loadbalancer_port')}{path}?q=1"
    opener = urllib.request.build_opener(NoRedirect)
    try:
        reply = opener.open(url, timeout=TIMEOUT_S)
        status, location = reply.status, reply.headers.get("Location")
    except urllib.error.HTTPError as err:
        status, location = err.code, err.headers.get("Location")
    if tls_on(host) and expected(host, "loadbalancer_http_redirect"):
        want = (308, https_url(host, f"{path}?q=1").replace(":443/", "/"))
    else:
        want = (200, None)
    assert (status, location) == want, mismatch(host, f"GET {url}", want, (status, location))


def test_hsts(host):
    needs_tls(host)
    max_age = int(expected(host, "loadbalancer_hsts_max_age"))
    url = https_url(host, expected(host, "loadbalancer_health_path"))
    with urllib.request.urlopen(url, timeout=TIMEOUT_S, context=client_context(host)) as reply:
        actual = reply.headers.get("Strict-Transport-Security")
    want = f"max-age={max_age}" if max_age > 0 else None
    assert actual == want, mismatch(host, "Strict-Transport-Security", want, actual)


def test_unit_hardening(host):
    """haproxy.service runs hardened, within loadbalancer_exposure_max."""
    problems = check_unit_hardening(host, "haproxy.service", HAPROXY_HARDENING)
    score, target = (
        exposure(host, "haproxy.service"),
        float(expected(host, "loadbalancer_exposure_max")),
    )
    if score > target:
        problems.append(mismatch(host, "haproxy.service exposure", f"<= {target}", score))
    assert_no_mismatches(problems)


# Runs on the load balancer: POSTs bodies to the frontend and prints each status and the start
# of each answer. Content-Length one byte over the limit, chunked one byte over, and (the
# control) Content-Length at the limit, which HAProxy must pass on.
BODY_PROBE = """
import http.client, json, ssl, sys
base, path, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
scheme, address = base.split("://")
host, port = address.rsplit(":", 1)
def post(body, chunked):
    if scheme == "https":
        c = http.client.HTTPSConnection(host, int(port), timeout=10,
                                        context=ssl._create_unverified_context())
    else:
        c = http.client.HTTPConnection(host, int(port), timeout=10)
    c.request("POST", path, body=iter([body]) if chunked else body,
              encode_chunked=chunked, headers={"Content-Type": "application/octet-stream"})
    r = c.getresponse()
    out = [r.status, r.read(200).decode(errors="replace")]
    c.close()
    return out
print(json.dumps({"over": post(b"x" * (limit + 1), False),
                  "over_chunked": post(b"x" * (limit + 1), True),
                  "at_limit": post(b"x" * limit, False)}))
"""


def frontend_denied(host) -> int:
    return sum(int(r["dreq"] or 0) for r in show_stat(host) if r["svname"] == "FRONTEND")


def test_body_limit(host):
    """Bodies over loadbalancer_max_body_bytes get HAProxy's 413; one at the limit passes."""
    limit = int(expected(host, "loadbalancer_max_body_bytes"))
    before = frontend_denied(host)
    out = json.loads(
        host.check_output(
            "python3 -c %s %s %s %s",
            BODY_PROBE,
            local_base(host),
            expected(host, "loadbalancer_health_path"),
            str(limit),
        )
    )
    denied = frontend_denied(host) - before
    problems = [
        mismatch(
            host,
            f"POST {name} ({limit + 1} bytes)",
            "HAProxy's 413 page",
            " ".join(map(str, out[name]))[:60],
        )
        for name in ("over", "over_chunked")
        if out[name][0] != 413 or "<h1>413 Payload Too Large</h1>" not in out[name][1]
    ]
    if out["at_limit"][0] == 413:
        problems.append(mismatch(host, f"POST at the limit ({limit} bytes)", "passed on", 413))
    if denied < 2:
        problems.append(mismatch(host, "frontend denied requests (dreq) added", ">= 2", denied))
    assert_no_mismatches(problems)


# Runs on the load balancer: `count` failing logins from 127.0.0.1; prints the statuses.
LOGIN_PROBE = """
import http.client, json, ssl, sys
base, path, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
scheme, address = base.split("://")
host, port = address.rsplit(":", 1)
codes = []
for _ in range(count):
    if scheme == "https":
        c = http.client.HTTPSConnection(host, int(port), timeout=10,
                                        context=ssl._create_unverified_context())
    else:
        c = http.client.HTTPConnection(host, int(port), timeout=10)
    body = json.dumps({"username": "slakit-probe-nobody", "password": "not-the-password"})
    c.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    codes.append(c.getresponse().status)
    c.close()
print(json.dumps(codes))
"""


@pytest.mark.destructive
def test_failed_login_limit(host):
    """After loadbalancer_auth_fail_limit failed logins a source gets 429 on the token path.

    Destructive (lab only): it locks out 127.0.0.1 of the load balancer, cleared afterwards.
    """
    limit = int(expected(host, "loadbalancer_auth_fail_limit"))
    base = local_base(host)
    key = "::ffff:127.0.0.1" if base.split("://")[1].startswith("127.") else None
    try:
        codes = json.loads(
            host.check_output(
                "python3 -c %s %s %s %s",
                LOGIN_PROBE,
                base,
                expected(host, "loadbalancer_auth_path"),
                str(limit + 2),
            )
        )
    finally:
        admin(host, f"clear table www key {key}" if key else "clear table www")
    want = [401] * limit + [429, 429]
    assert codes == want, mismatch(host, f"{limit + 2} failed logins", want, codes)


# Runs on another host: GET the PROMEX frontend's /metrics; prints the status and whether the
# answer is HAProxy's exporter, or the connection's error.
PROMEX_PROBE = """
import sys, urllib.request
try:
    r = urllib.request.urlopen(sys.argv[1], timeout=5)
    body = r.read().decode(errors="replace")
    print(r.status, "haproxy_process_" in body)
except Exception as err:
    print("error", type(err).__name__)
"""


def test_prometheus_frontend(host, request):
    """frontend stats_prometheus answers /metrics to a monitoring host, and rejects the
    connection of an app host (not in loadbalancer_promex_allowed_clients)."""
    if not expected(host, "loadbalancer_promex_enabled"):
        pytest.skip(f"{NOT_APPLICABLE}loadbalancer_promex_enabled is false")
    url = (
        f"http://{expected(host, 'loadbalancer_promex_address')}:"
        f"{expected(host, 'loadbalancer_promex_port')}/metrics"
    )
    sources = {g: members[0] for g in ("monitoring", "app") if (members := group_hosts(host, g))}
    task = {
        "name": f"GET {url}",
        "ansible.builtin.command": {"argv": ["python3", "-c", PROMEX_PROBE, url]},
    }
    answers = ansible_task_on(ansible_inventory(request), sorted(set(sources.values())), task)
    probes = {g: (source, answers[source].strip()) for g, source in sources.items()}
    problems = []
    for group, (source, answer) in probes.items():
        want = "200 True" if group == "monitoring" else "error"
        if not answer.startswith(want):
            problems.append(mismatch(host, f"GET {url} from {source}", want, answer))
    assert_no_mismatches(problems)
