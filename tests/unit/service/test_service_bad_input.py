"""Bad input gets a 4xx JSON error, never a 500 or a traceback."""

from __future__ import annotations

import pytest
import requests
from svc_harness import ServiceProcess

BAD_BODIES = [
    b"{",
    b"[]",
    b'"text"',
    b"null",
    b"42",
    b"\xff\xfe\x00",
    b'{"query": 5}',
    b'{"query": ""}',
    b'{"query": "' + b"x" * 2000 + b'"}',
    b'{"query": "ok", "session_id": "bad id!"}',
    b'{"data_source": "sales", "insight_type": "astrology"}',
    b'{"data_source": "weather", "insight_type": "forecast"}',
    b'{"insight_type": "forecast", "time_range": "last_century"}',
    b'{"insight_type": ["forecast"]}',
    b'{"username": 1, "password": 2}',
    b'{"username": "ops"}',
    b'{"force": "yes"}',
    b'{"action": "explode"}',
    b'{"action": "up", "reason": 7}',
    b'{"run": "r", "id": "has space"}',
    b'{"run": 5, "id": "a"}',
    b'{"id": "a"}',
    b'{"run": "' + b"r" * 65 + b'", "id": "a"}',
]
POSTS = [
    "/api/v1/ai/query",
    "/api/v1/ai/insights",
    "/api/v1/auth/token",
    "/api/v1/cache/warm",
    "/api/v1/scaling/trigger",
    "/api/v1/drill/ledger",
]
BAD_QUERIES = [
    "/api/v1/dashboard/revenue?granularity=hourly",
    "/api/v1/mobile/sync/status?since=yesterday",
    "/api/v1/mobile/sync/status?device_id=%00%01",
    "/api/v1/ai/conversation/history?limit=0",
    "/api/v1/ai/conversation/history?limit=abc",
    "/api/v1/ai/conversation/history?session_id=" + "x" * 100,
    "/api/v1/drill/ledger?run=bad%20run",
    "/api/v1/no/such/endpoint",
]


@pytest.fixture
def service(redis_pair, start_service) -> ServiceProcess:
    return start_service(*redis_pair)


def _is_json_error(reply: requests.Response) -> bool:
    return 400 <= reply.status_code < 500 and "error" in reply.json()


def test_bad_bodies(service: ServiceProcess) -> None:
    auth = service.bearer()
    for path in POSTS:
        for body in BAD_BODIES:
            reply = service.post(
                path, data=body, headers={**auth, "content-type": "application/json"}
            )
            if reply.status_code == 200:
                # a body the endpoint may legitimately accept (e.g. extra fields ignored)
                continue
            assert _is_json_error(reply), (path, body, reply.status_code, reply.text)
            assert "Traceback" not in reply.text


def test_malformed_json_is_400_and_wrong_types_422(service: ServiceProcess) -> None:
    broken = service.post(
        "/api/v1/ai/query", data=b'{"query": ', headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400 and broken.json()["error"] == "malformed_json"
    typed = service.post("/api/v1/ai/query", json={"query": ["list"]})
    assert typed.status_code == 422 and typed.json()["error"] == "invalid_request"
    unknown = service.post(
        "/api/v1/ai/insights", json={"data_source": "sales", "insight_type": "astrology"}
    )
    assert unknown.status_code == 422
    assert "insight_type" in unknown.json()["detail"][0]["location"]


def test_bad_query_strings_and_methods(service: ServiceProcess) -> None:
    for path in BAD_QUERIES:
        assert _is_json_error(service.get(path)), path
    for method in ("PUT", "DELETE", "PATCH"):
        reply = service.session.request(method, service.base + "/api/v1/dashboard/executive")
        assert reply.status_code == 405 and reply.json()["error"] == "method_not_allowed"
    assert service.stats()["requests"]["by_status"]["5xx"] == 0
