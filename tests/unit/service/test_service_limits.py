"""The service's own abuse limits: request body size (413) and the OpenAPI pages (off)."""

from __future__ import annotations

import socket

from svc_harness import ServiceProcess

LIMIT = 4096  # SLAKIT_MAX_BODY_BYTES in these tests


def _raw(service: ServiceProcess, request: bytes, send_all: bool = True) -> bytes:
    """Send raw bytes (chunked bodies, lying headers) and read the answer until close."""
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


def _query(size: int) -> bytes:
    padding = "x" * max(0, size - len('{"query": "revenue", "pad": ""}'))
    return f'{{"query": "revenue", "pad": "{padding}"}}'.encode()


def test_bodies_over_the_limit_get_413(redis_pair, start_service) -> None:
    service = start_service(*redis_pair, SLAKIT_MAX_BODY_BYTES=str(LIMIT))
    at_limit = service.post(
        "/api/v1/ai/query", data=_query(LIMIT), headers={"content-type": "application/json"}
    )
    assert at_limit.status_code == 200, at_limit.text  # the limit itself is allowed
    over = service.post(
        "/api/v1/ai/query", data=_query(LIMIT + 1), headers={"content-type": "application/json"}
    )
    assert over.status_code == 413
    assert over.json()["error"] == "payload_too_large"
    assert over.headers["connection"] == "close"
    for path in ("/api/v1/auth/token", "/api/v1/ai/insights", "/api/v1/cache/warm"):
        assert service.post(path, data=b"{" + b" " * LIMIT + b"}").status_code == 413, path


def test_streamed_bodies_are_counted(redis_pair, start_service) -> None:
    service = start_service(*redis_pair, SLAKIT_MAX_BODY_BYTES=str(LIMIT))
    head = (
        b"POST /api/v1/ai/query HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )

    def chunked(body: bytes, size: int = 1000) -> bytes:
        parts = [body[i : i + size] for i in range(0, len(body), size)]
        return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"

    small = _raw(service, head + chunked(_query(LIMIT)))
    assert small.startswith(b"HTTP/1.1 200"), small[:200]
    big = _raw(service, head + chunked(_query(3 * LIMIT)))
    assert big.startswith(b"HTTP/1.1 413"), big[:200]
    assert b"payload_too_large" in big
    # a declared length over the limit is refused before the body arrives
    declared = (
        b"POST /api/v1/ai/query HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: 10000000\r\n\r\n{"
    )
    assert _raw(service, declared).startswith(b"HTTP/1.1 413")
    stats = service.stats()
    assert stats["requests"]["by_status"]["5xx"] == 0


def test_openapi_pages_are_off_by_default(redis_pair, start_service) -> None:
    service = start_service(*redis_pair)
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert service.get(path).status_code == 404, path


def test_openapi_pages_when_enabled(redis_pair, start_service) -> None:
    service = start_service(*redis_pair, SLAKIT_OPENAPI_DOCS="1")
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert service.get(path).status_code == 200, path
    assert "/api/v1/ai/query" in service.get("/openapi.json").json()["paths"]
