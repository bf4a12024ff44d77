"""Turn a spec's stories into load plans: ${VAR} substitution, tokens, ready-made requests.

An endpoint whose credentials are missing stops the run (exit 2), or with
`skip_missing` is left out of the plans and reported as skipped with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from slakit.sla.control import MissingCredentials, fetch_token, substitute
from slakit.sla.histogram import us
from slakit.sla.http import PreparedRequest, Target, prepare_request
from slakit.sla.measure import EndpointPlan
from slakit.sla.spec import Endpoint, Spec, Story


@dataclass(frozen=True)
class PreparedStory:
    story: Story
    plans: list[EndpointPlan]  # one per measured endpoint, in the spec's order
    measured: list[Endpoint]
    skipped: dict[str, str]  # endpoint key -> why it is not measured


class Tokens:
    """Bearer tokens per auth scheme, fetched once per run."""

    def __init__(
        self, spec: Spec, base_url: str, env: Mapping[str, str], ca_file: str | None = None
    ) -> None:
        self.spec, self.base_url, self.env, self.ca_file = spec, base_url, env, ca_file
        self.cache: dict[str, str] = {}

    async def get(self, scheme_name: str) -> str:
        if scheme_name not in self.cache:
            scheme = self.spec.auth[scheme_name]
            self.cache[scheme_name] = await fetch_token(
                self.base_url, scheme, self.env, self.ca_file
            )
        return self.cache[scheme_name]


def make_plan(endpoint: Endpoint, story: Story, request: PreparedRequest) -> EndpointPlan:
    load = endpoint.load
    return EndpointPlan(
        key=endpoint.key,
        request=request,
        expect_status=endpoint.expect_status,
        mode=load.mode,
        rate=load.rate,
        concurrency=load.concurrency,
        requests=load.requests,
        duration_s=load.duration_s,
        connections=load.connections,
        warmup_requests=load.warmup_requests,
        timeout_s=load.timeout_s,
        target_us=us(endpoint.target_ms),
        thresholds_us=tuple(us(t) for t in endpoint.thresholds_ms(story)),
    )


async def prepare_story(
    story: Story, target: Target, env: Mapping[str, str], tokens: Tokens, skip_missing: bool
) -> PreparedStory:
    plans, measured, skipped = [], [], {}
    for endpoint in story.endpoints:
        try:
            headers = dict(substitute(endpoint.headers, env))
            body = substitute(endpoint.body, env)
            path = substitute(endpoint.path, env)
            if endpoint.auth:
                headers["Authorization"] = f"Bearer {await tokens.get(endpoint.auth)}"
        except MissingCredentials as err:
            if not skip_missing:
                raise MissingCredentials(f"story {story.id}: {endpoint.key}", err.names) from None
            skipped[endpoint.key] = f"{', '.join(err.names)} not set"
            continue
        request = prepare_request(target, endpoint.method, path, body, headers)
        plans.append(make_plan(endpoint, story, request))
        measured.append(endpoint)
    return PreparedStory(story, plans, measured, skipped)
