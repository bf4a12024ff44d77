"""The edge's abuse limits, each proven with real requests through the lab's load balancer
over HTTPS, verified against the lab CA (`verify=` on each request: a session's own is
overridden by REQUESTS_CA_BUNDLE in the environment):

- a body over the limit gets 413 from HAProxy and never reaches the app: the backend's request
  counter on HAProxy's admin socket does not move (a normal request, the control, moves it);
- the 11th failed login from one source within the window gets 429 and never reaches the app,
  while another source still logs in, and a story measured during a flood of failed logins
  gets every answer it expects (its latency is printed, not gated: README, Tests);
- a conversation's history is readable only with that conversation's own id;
- the plain-HTTP listener redirects, and HTTPS answers with HSTS.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from pathlib import Path

import pytest
import requests

from slakit import credentials, envs, stack
from slakit.sla import RunOptions, load_spec, run_checks

ATTACKER = "redis-1"  # a lab host that never logs in otherwise: its block harms no other test
TIMEOUT_S = 15
STORE_ATTEMPTS = 5
FLOOD = 60  # failed logins sent by the attacker during the measured story


@pytest.fixture(scope="module")
def edge(deployed) -> tuple[str, str, stack.Stack]:
    """(the LB's HTTPS URL, the CA file that verifies it, the deployed stack)."""
    deployed_stack = stack.load(envs.resolve("lab"))
    ca_file = deployed_stack.lb_ca_file()
    assert ca_file and Path(ca_file).is_file(), f"the LB publishes no lab CA: {ca_file!r}"
    return deployed_stack.lb_urls()["lb-1"], ca_file, deployed_stack


@pytest.fixture(scope="module")
def backend_requests(edge, on_host):
    """How many requests HAProxy has passed to the app backend so far (its admin socket)."""
    _, _, deployed_stack = edge
    fact = deployed_stack.published("lb-1", "loadbalancer")
    command = f"echo 'show stat' | socat stdio {fact['admin_socket']}"

    def count() -> int:
        lines = on_host("lb-1", command).splitlines()
        header = lines[0].lstrip("# ").split(",")
        for line in lines[1:]:
            row = dict(zip(header, line.split(","), strict=False))
            if row.get("pxname") == fact["backend"] and row.get("svname") == "BACKEND":
                return int(row["req_tot"])
        raise AssertionError(f"no BACKEND row for {fact['backend']} in show stat")

    return count


def test_an_oversize_body_gets_413_from_haproxy_and_never_reaches_the_app(edge, backend_requests):
    url, ca_file, _ = edge
    limit = 65536  # loadbalancer_max_body_bytes and app_max_body_bytes of the lab
    oversize = json.dumps({"query": "x" * (limit + 1024)}).encode()
    with requests.Session() as session:
        before = backend_requests()
        declared = session.post(
            f"{url}/api/v1/ai/query", data=oversize, timeout=TIMEOUT_S, verify=ca_file
        )
        chunked = session.post(
            f"{url}/api/v1/ai/query",
            data=(oversize[i : i + 8192] for i in range(0, len(oversize), 8192)),
            headers={"Content-Type": "application/json"},
            timeout=TIMEOUT_S,
            verify=ca_file,
        )
        after = backend_requests()
        control = session.get(f"{url}/api/v1/health", timeout=TIMEOUT_S, verify=ca_file)
        after_control = backend_requests()
    print(f"\n413s: Content-Length {declared.status_code}, chunked {chunked.status_code}; "
          f"backend requests {before} -> {after} -> {after_control} (control)")  # fmt: skip
    assert (declared.status_code, chunked.status_code) == (413, 413)
    assert after == before, "an oversize body reached the app backend"
    assert control.status_code == 200 and after_control == after + 1


LOGIN_FLOOD = r"""
import json, ssl, sys, urllib.error, urllib.request
url, count, cadata = sys.argv[1], int(sys.argv[2]), sys.stdin.read()
context = ssl.create_default_context(cadata=cadata)
body = json.dumps({"username": "operator", "password": "not-the-password"}).encode()
codes = []
for _ in range(count):
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=15, context=context) as reply:
            codes.append(reply.status)
    except urllib.error.HTTPError as err:
        codes.append(err.code)
print(json.dumps(codes))
"""


def _flood(on_host, url: str, ca_file: str, count: int) -> list[int]:
    """`count` failed logins, one after another, from the attacker host; their statuses."""
    script = LOGIN_FLOOD.replace("'", "'\"'\"'")
    ca = Path(ca_file).read_text().replace("'", "")
    out = on_host(
        ATTACKER,
        f"printf '%s' '{ca}' | python3 -c '{script}' {url}/api/v1/auth/token {count}",
    )
    return json.loads(out.splitlines()[-1])


def _clear_login_table(on_host, deployed_stack: stack.Stack) -> None:
    socket = deployed_stack.published("lb-1", "loadbalancer")["admin_socket"]
    on_host("lb-1", f"echo 'clear table www' | socat stdio {socket}")


def test_the_11th_failed_login_gets_429_and_never_reaches_the_app(edge, on_host, backend_requests):
    url, ca_file, deployed_stack = edge
    _clear_login_table(on_host, deployed_stack)
    before = backend_requests()
    codes = _flood(on_host, url, ca_file, 11)
    reached = backend_requests() - before
    lab = envs.resolve("lab")
    login = credentials.sla_credentials(lab)
    other_source = requests.post(
        f"{url}/api/v1/auth/token",
        json={"username": login["SLAKIT_SLA_USERNAME"], "password": login["SLAKIT_SLA_PASSWORD"]},
        verify=ca_file,
        timeout=TIMEOUT_S,
    )
    print(f"\nfailed logins from {ATTACKER}: {codes}; reached the app: {reached}; "
          f"a login from the controller meanwhile: {other_source.status_code}")  # fmt: skip
    assert codes == [401] * 10 + [429]
    assert reached == 10, "the refused login reached the app (or other traffic ran meanwhile)"
    assert other_source.status_code == 200, "the limit is per source: the controller is not it"
    _clear_login_table(on_host, deployed_stack)


def test_a_story_keeps_every_answer_during_a_login_flood(edge, on_host):
    url, ca_file, deployed_stack = edge
    _clear_login_table(on_host, deployed_stack)
    flood: list[int] = []
    attacker = threading.Thread(
        target=lambda: flood.extend(_flood(on_host, url, ca_file, FLOOD)), daemon=True
    )
    attacker.start()
    result = run_checks(
        load_spec(),
        url,
        ["1.1"],
        options=RunOptions(progress=False, ca_file=ca_file),
    )
    attacker.join(timeout=300)
    _clear_login_table(on_host, deployed_stack)
    [story] = result.stories
    sent = sum(e.sent for e in story.endpoints)
    answered = sum(e.ok for e in story.endpoints)
    print(f"\nstory 1.1 during {len(flood)} failed logins ({flood.count(429)} refused with 429): "
          f"{answered}/{sent} answered as expected, p50 {story.p50_ms} ms, p99 {story.p99_ms} ms, "
          f"status {story.status}")  # fmt: skip
    assert flood.count(429) >= FLOOD - 10, flood
    assert sent > 0 and answered == sent, [e.errors for e in story.endpoints]


def test_history_is_readable_only_with_its_own_session_id(edge):
    url, ca_file, _ = edge
    with requests.Session() as session:

        def call(method: str, path: str, **kwargs) -> requests.Response:
            return session.request(method, url + path, timeout=TIMEOUT_S, verify=ca_file, **kwargs)

        def ask(question: str, **extra: str) -> requests.Response:
            return call("POST", "/api/v1/ai/query", json={"query": question, **extra})

        def history(session_id: str) -> requests.Response:
            return call("GET", "/api/v1/ai/conversation/history", params={"session_id": session_id})

        def stored(question: str) -> requests.Response:
            """A new session the store took (history_persisted): a worker that could not
            reach Redis keeps it in its own memory only, where another worker cannot see it."""
            for _ in range(STORE_ATTEMPTS):
                reply = ask(question)
                assert reply.status_code == 200, reply.text
                if reply.json()["history_persisted"]:
                    return reply
                time.sleep(1.0)
            raise AssertionError(f"no session reached the store in {STORE_ATTEMPTS} tries")

        first, second = stored("What were our sales trends in Q4?"), stored("Top products?")
        mine, theirs = first.json()["session_id"], second.json()["session_id"]
        own = history(mine)
        guessed = history(secrets.token_urlsafe(24))
        chosen = ask("hello", session_id=secrets.token_urlsafe(24))
        other = history(theirs)
    assert mine != theirs
    assert own.status_code == 200
    assert [t["query"] for t in own.json()["turns"]] == ["What were our sales trends in Q4?"]
    assert guessed.status_code == 404, "a session id the server never issued read a history"
    assert chosen.status_code == 404, "a client-chosen session id started a session"
    assert "What were our sales trends in Q4?" not in other.text
    assert other.status_code == 200, "the other session reads its own history"


def test_plain_http_redirects_and_https_sends_hsts(edge):
    url, ca_file, deployed_stack = edge
    [http_url] = deployed_stack.lb_http_urls().values()
    plain = requests.get(f"{http_url}/api/v1/health", allow_redirects=False, timeout=TIMEOUT_S)
    tls = requests.get(f"{url}/api/v1/health", verify=ca_file, timeout=TIMEOUT_S)
    assert plain.status_code in (301, 302, 307, 308)
    assert plain.headers["Location"] == f"{url.removesuffix(':443')}/api/v1/health"
    assert tls.status_code == 200 and "max-age=" in tls.headers["Strict-Transport-Security"]


def test_metrics_are_not_served_through_the_load_balancer(edge, on_host):
    """/metrics answers loopback on an app host, and 404 through the public frontend however
    its path is spelled: the service reads the client's address, not the path HAProxy saw."""
    url, ca_file, deployed_stack = edge
    port = deployed_stack.published("app-1", "app")["port"]
    local = on_host(
        "app-1",
        'python3 -c "import urllib.request as u; '
        f"print(u.urlopen('http://127.0.0.1:{port}/metrics', timeout=5).status)\"",
    )

    def status(path: str) -> int:
        with requests.Session() as session:
            sent = session.prepare_request(requests.Request("GET", url))
            sent.url = url + path  # as written: requests would decode %6d to "m"
            return session.send(sent, verify=ca_file, timeout=TIMEOUT_S).status_code

    answers = {path: status(path) for path in ("/metrics", "/%6detrics", "/metrics?x=1")}
    print(f"\n/metrics on app-1 over loopback: {local}; through the load balancer: {answers}")
    assert local == "200"
    assert set(answers.values()) == {404}, answers
