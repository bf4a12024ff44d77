"""Smoke: every endpoint of the SLA spec answers its expected status, through each load
balancer and on each app host directly. One request per endpoint and place, bounded timeouts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import requests

from slakit.errors import SlakitError
from slakit.sla.control import substitute
from slakit.sla.spec import Spec

TIMEOUT_S = 10.0


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


def _token(session: requests.Session, base_url: str, spec: Spec, scheme: str) -> str:
    auth = spec.auth[scheme]
    username, password = os.environ.get(auth.username_env), os.environ.get(auth.password_env)
    if not username or not password:
        raise SlakitError(
            f"endpoints with auth {scheme!r} need {auth.username_env} and {auth.password_env}"
        )
    reply = session.post(
        base_url + auth.token_path,
        json={"username": username, "password": password},
        timeout=TIMEOUT_S,
    )
    if reply.status_code != 200:
        return ""
    return str(reply.json().get("access_token", ""))


def probe_all(places: dict[str, str], spec: Spec) -> list[Probe]:
    """One request per endpoint per place (host name -> base URL)."""
    probes = []
    for place, base_url in places.items():
        with requests.Session() as session:
            tokens: dict[str, str] = {}
            for story in spec.stories:
                for ep in story.endpoints:
                    headers = dict(substitute(ep.headers, os.environ))
                    if ep.auth:
                        if ep.auth not in tokens:
                            tokens[ep.auth] = _token(session, base_url, spec, ep.auth)
                        headers["Authorization"] = f"Bearer {tokens[ep.auth]}"
                    try:
                        reply = session.request(
                            ep.method,
                            base_url + substitute(ep.path, os.environ),
                            json=substitute(ep.body, os.environ),
                            headers=headers,
                            timeout=TIMEOUT_S,
                        )
                        got = str(reply.status_code)
                    except requests.RequestException as err:
                        got = type(err).__name__
                    probes.append(Probe(place, ep.method, ep.path, ep.expect_status, got))
    return probes
