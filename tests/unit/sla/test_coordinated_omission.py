"""Coordinated omission: a server that stalls once must show the stall in every request
whose *intended* send time fell inside it, not only in the few already on the wire.

The checker sends on an open-loop schedule through 4 keep-alive connections. The
loopback server freezes once for STALL_MS (like a GC pause). Requests intended during
the stall queue in the client (all connections busy) and go out when it ends; measured
from their intended send time a request intended at stall start + t waits STALL_MS - t,
so about (STALL_MS - THRESHOLD_MS) x rate of them exceed THRESHOLD_MS. Their service
time, from the actual send, is short: only the requests that were on a connection
during the stall (at most one per connection) show it. A checker that timed from the
actual send would report the service view as latency and hide the stall.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request

from slakit.sla import histogram as hist
from slakit.sla.http import parse_base_url, prepare_request
from slakit.sla.measure import EndpointMeasurement, measure_story_async
from slakit.sla.prepare import make_plan
from slakit.sla.spec import parse_spec

RATE = 200.0
REQUESTS = 400  # 2 s of schedule
CONNECTIONS = 4
WARMUP = 4
STALL_AFTER = WARMUP + 150  # the 150th measured request starts the stall, 0.75 s in
STALL_MS = 300.0
THRESHOLD_MS = 100.0


def measure_once(url: str) -> EndpointMeasurement:
    spec = parse_spec(
        {
            "version": 1,
            "defaults": {
                "target_ms": THRESHOLD_MS,
                "objectives": [{"percentile": 50}],
                "load": {
                    "rate": RATE,
                    "requests": REQUESTS,
                    "connections": CONNECTIONS,
                    "warmup_requests": WARMUP,
                },
            },
            "stories": [
                {"id": "co", "name": "stall", "endpoints": [{"method": "GET", "path": "/ok"}]}
            ],
        }
    )
    story = spec.stories[0]
    endpoint = story.endpoints[0]
    target = parse_base_url(url)
    plan = make_plan(endpoint, story, prepare_request(target, "GET", endpoint.path))
    measurement = asyncio.run(measure_story_async([plan], target))
    return measurement.endpoints[0]


def stall_window_ms(url: str) -> float:
    with urllib.request.urlopen(f"{url}/stall", timeout=5) as resp:
        window = json.loads(resp.read())
    assert window is not None, "the server never stalled: fewer requests than planned?"
    return (window[1] - window[0]) * 1000.0


def test_requests_intended_during_a_stall_carry_the_wait(delay_server):
    url = delay_server(1.0, 0.0, stall_after=STALL_AFTER, stall_ms=STALL_MS)
    m = measure_once(url)
    assert m.sent == REQUESTS and m.ok == REQUESTS, m.errors
    stalled_ms = stall_window_ms(url)
    late = hist.count_above(m.latency, THRESHOLD_MS * 1000)
    late_service = hist.count_above(m.service, THRESHOLD_MS * 1000)
    # slots intended in [stall start, stall end - threshold), less two slots of slack
    # for where the stall falls between slots
    expected = (stalled_ms - THRESHOLD_MS) / 1000.0 * RATE
    assert late >= expected - 2, (late, expected, hist.summary_ms(m.latency))
    # and not more than those plus the requests in flight when it began (and a little
    # room for a scheduling hiccup of the machine longer than the threshold)
    assert late <= expected + CONNECTIONS + 4, (late, expected, hist.summary_ms(m.latency))
    # the service-time view hides the stall: only the requests on the wire saw it
    assert late_service <= CONNECTIONS + 2, (late_service, hist.summary_ms(m.service))
    assert late >= 4 * late_service
