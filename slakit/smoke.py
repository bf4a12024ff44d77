"""Smoke: every endpoint of the SLA spec answers its expected status, through each load
balancer and on each app host. One request per endpoint and place, bounded timeouts.

Through a load balancer: from here, verifying its certificate (`verify`: the CA bundle the
roles published, or True for the system store). On an app host: only the load balancers may
connect to the app port, so each app host asks itself over loopback (a throwaway play with
ansible.builtin.uri). There, `${NAME}` of the spec and the operator credentials are read from
this process's environment by `lookup('env')` inside Ansible: no value is in the play file
or an argv, and the tasks that carry one are no_log.
"""

from __future__ import annotations

import os
import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from slakit import ansible
from slakit.errors import SlakitError
from slakit.sla.control import substitute, variables_in
from slakit.sla.spec import Spec

TIMEOUT_S = 10.0
PLAY_TIMEOUT_S = 300
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Probe:
    place: str  # host name
    method: str
    path: str
    expected: tuple[int, ...]
    got: str  # status code, or the connection error

    @property
    def ok(self) -> bool:
        return self.got.isdigit() and int(self.got) in self.expected

    def line(self) -> str:
        want = "/".join(map(str, self.expected))
        return f"{self.place}: {self.method} {self.path} -> {self.got} (expected {want})"


def _token(
    session: requests.Session, base_url: str, spec: Spec, scheme: str, verify: str | bool
) -> str:
    auth = spec.auth[scheme]
    username, password = os.environ.get(auth.username_env), os.environ.get(auth.password_env)
    if not username or not password:
        raise SlakitError(
            f"endpoints with auth {scheme!r} need {auth.username_env} and {auth.password_env}"
        )
    try:
        reply = session.post(
            base_url + auth.token_path,
            json={"username": username, "password": password},
            timeout=TIMEOUT_S,
            verify=verify,
        )
    except requests.RequestException:
        return ""  # the endpoints that need it fail and say why
    if reply.status_code != 200:
        return ""
    return str(reply.json().get("access_token", ""))


def _reason(err: requests.RequestException) -> str:
    """The innermost cause worth a line, e.g. the certificate verification failure."""
    cause: BaseException | None = err
    while cause.__cause__ is not None or cause.__context__ is not None:
        cause = cause.__cause__ or cause.__context__
    return str(cause)[:160] if isinstance(cause, ssl.SSLError) else ""


def probe_all(places: dict[str, str], spec: Spec, verify: str | bool = True) -> list[Probe]:
    """One request per endpoint per place (host name -> base URL), from here; `verify`: a CA
    bundle path or True (the system trust store) for HTTPS."""
    probes = []
    for place, base_url in places.items():
        with requests.Session() as session:
            tokens: dict[str, str] = {}
            for story in spec.stories:
                for ep in story.endpoints:
                    headers = dict(substitute(ep.headers, os.environ))
                    if ep.auth:
                        if ep.auth not in tokens:
                            tokens[ep.auth] = _token(session, base_url, spec, ep.auth, verify)
                        headers["Authorization"] = f"Bearer {tokens[ep.auth]}"
                    try:
                        reply = session.request(
                            ep.method,
                            base_url + substitute(ep.path, os.environ),
                            json=substitute(ep.body, os.environ),
                            headers=headers,
                            timeout=TIMEOUT_S,
                            verify=verify,  # per request: a session's own is overridden
                        )  # by REQUESTS_CA_BUNDLE in the environment (requests #3829)
                        got = str(reply.status_code)
                    except requests.RequestException as err:
                        got = type(err).__name__ + (f" ({_reason(err)})" if _reason(err) else "")
                    probes.append(Probe(place, ep.method, ep.path, ep.expect_status, got))
    return probes


# --- on the app hosts, over loopback ----------------------------------------------------------


def _templated(value: Any) -> Any:
    """`${NAME}` -> Ansible's lookup of the environment variable; other text kept literal."""
    if isinstance(value, str):
        parts, last = [], 0
        for m in _VAR.finditer(value):
            parts.append(_literal(value[last : m.start()]))
            parts.append(_env_lookup(m.group(1)))
            last = m.end()
        parts.append(_literal(value[last:]))
        return "".join(parts)
    if isinstance(value, dict):
        return {_templated(k): _templated(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_templated(item) for item in value]
    return value


def _env_lookup(name: str) -> str:
    return f"{{{{ lookup('ansible.builtin.env', '{name}') }}}}"


def _literal(text: str) -> str:
    return f"{{% raw %}}{text}{{% endraw %}}" if "{" in text or "%" in text else text


def on_host_plays(hosts: dict[str, int], spec: Spec) -> list[dict[str, Any]]:
    """One play over `hosts` ({host: app port}): each endpoint requested on 127.0.0.1, then one
    task that shows {index: status or error} of every request."""
    missing = sorted(
        {n for story in spec.stories for ep in story.endpoints for n in _needs(ep, spec)}
        - set(os.environ)
    )
    if missing:
        raise SlakitError(f"smoke needs the environment variables {', '.join(missing)}")
    base = "http://127.0.0.1:{{ slakit_smoke_port[inventory_hostname] }}"
    tasks: list[dict[str, Any]] = []
    schemes = sorted({ep.auth for s in spec.stories for ep in s.endpoints if ep.auth})
    for scheme in schemes:
        auth = spec.auth[scheme]
        tasks.append(
            {
                "name": f"Get a token ({scheme})",
                "ansible.builtin.uri": {
                    "url": base + auth.token_path,
                    "method": "POST",
                    "body_format": "json",
                    "body": {
                        "username": _env_lookup(auth.username_env),
                        "password": _env_lookup(auth.password_env),
                    },
                    "timeout": int(TIMEOUT_S),
                    "status_code": [200],
                },
                "register": f"slakit_token_{scheme}",
                "failed_when": False,
                "no_log": True,
            }
        )
    endpoints = [ep for story in spec.stories for ep in story.endpoints]
    for i, ep in enumerate(endpoints):
        headers = _templated(dict(ep.headers))
        if ep.auth:
            headers["Authorization"] = (
                f"Bearer {{{{ slakit_token_{ep.auth}.json.access_token | default('') }}}}"
            )
        args: dict[str, Any] = {
            "url": base + _templated(ep.path),
            "method": ep.method,
            "headers": headers,
            "timeout": int(TIMEOUT_S),
            "status_code": list(ep.expect_status),
        }
        if ep.body is not None:
            args["body_format"] = "raw" if isinstance(ep.body, str) else "json"
            args["body"] = _templated(ep.body)
        tasks.append(
            {
                "name": f"{ep.method} {ep.path}",
                "ansible.builtin.uri": args,
                "register": f"slakit_smoke_{i}",
                "failed_when": False,
                "no_log": bool(ep.auth or list(variables_in([ep.path, ep.headers, ep.body]))),
            }
        )
    shown = ", ".join(
        f"'{i}': (slakit_smoke_{i}.status | default(-1) | int > 0)"
        f" | ternary(slakit_smoke_{i}.status | default(-1) | string,"
        f" slakit_smoke_{i}.msg | default('no answer') | truncate(80))"
        for i in range(len(endpoints))
    )
    tasks.append(
        {"name": "Show the statuses", "ansible.builtin.debug": {"msg": f"{{{{ {{{shown}}} }}}}"}}
    )
    return [
        {
            "name": "Smoke the app over loopback on each app host",
            "hosts": ",".join(hosts),
            "gather_facts": False,
            "vars": {"slakit_smoke_port": hosts},
            "tasks": tasks,
        }
    ]


def _needs(ep: Any, spec: Spec) -> set[str]:
    names = set(variables_in([ep.path, ep.headers, ep.body]))
    if ep.auth:
        names |= {spec.auth[ep.auth].username_env, spec.auth[ep.auth].password_env}
    return names


def probe_on_hosts(inventory: str | Path, hosts: dict[str, int], spec: Spec) -> list[Probe]:
    """One request per endpoint on each app host, over its loopback ({host: app port})."""
    if not hosts:
        return []
    out = ansible.run_plays(inventory, on_host_plays(hosts, spec), PLAY_TIMEOUT_S)
    endpoints = [ep for story in spec.stories for ep in story.endpoints]
    shown: dict[str, dict[str, str]] = {}
    for task in out["plays"][0]["tasks"]:
        for host, result in task["hosts"].items():
            if result.get("unreachable") or (result.get("failed") and "msg" in result):
                shown.setdefault(host, {"error": str(result.get("msg", "failed"))[:120]})
            if task["task"]["name"] == "Show the statuses" and isinstance(result.get("msg"), dict):
                shown[host] = {str(k): str(v) for k, v in result["msg"].items()}
    probes = []
    for host in hosts:
        got = shown.get(host, {})
        for i, ep in enumerate(endpoints):
            answer = got.get(str(i), got.get("error", "no answer"))
            probes.append(Probe(host, ep.method, ep.path, ep.expect_status, answer))
    return probes
