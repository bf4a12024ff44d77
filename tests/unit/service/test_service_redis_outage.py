"""Redis stopped and restarted under a running service, and Redis absent at start."""

from __future__ import annotations

from svc_harness import cache_key, until_not_l0, wait_until

EXECUTIVE = "/api/v1/dashboard/executive"


def _health(service) -> dict:
    reply = service.get("/api/v1/health/comprehensive")
    assert reply.status_code == 200
    return reply.json()


def test_cache_tier_down_then_back(redis_pair, start_service) -> None:
    l1, l2 = redis_pair
    service = start_service(l1, l2, SLAKIT_L0_TTL_SECONDS="0.3")
    assert service.get(EXECUTIVE).status_code == 200
    assert _health(service)["status"] == "healthy"

    l1.stop()
    health = _health(service)
    assert health["status"] == "degraded"
    assert health["tiers"]["l1"]["status"] == "down"
    assert health["tiers"]["l2"]["status"] == "up"
    assert service.get("/api/v1/health").json()["status"] == "ok"
    from_l2 = until_not_l0(service, EXECUTIVE)
    assert from_l2.status_code == 200
    assert from_l2.headers["x-cache"] == "L2"
    assert service.stats()["cache"]["l1"]["errors"] >= 1
    warm = service.post("/api/v1/cache/warm", headers=service.bearer())
    assert warm.status_code == 200
    assert warm.json()["complete"] is False
    assert warm.json()["tiers_unavailable"] == ["l1"]

    l1.start()  # same port, empty: the service reconnects by itself
    wait_until(lambda: _health(service)["status"] == "healthy", "health to recover")
    warm = service.post("/api/v1/cache/warm", headers=service.bearer()).json()
    assert warm["complete"] is True
    assert warm["summary"]["computed"] == 0  # copied from L0/L2, nothing recomputed
    assert cache_key(l1, "dashboard:executive") is not None


def test_both_tiers_down_the_service_still_answers(redis_pair, start_service) -> None:
    l1, l2 = redis_pair
    service = start_service(l1, l2, SLAKIT_L0_TTL_SECONDS="0.3")
    first = service.post("/api/v1/ai/query", json={"query": "orders in Q3"}).json()
    session = first["session_id"]
    l1.stop()
    l2.stop()
    health = _health(service)
    assert health["status"] == "degraded"
    assert sorted(health["degraded_tiers"]) == ["l1", "l2"]
    reply = until_not_l0(service, EXECUTIVE)
    assert reply.status_code == 200
    assert reply.headers["x-cache"] == "MISS"  # no tier left: computed again
    asked = service.post(
        "/api/v1/ai/query", json={"query": "revenue by region", "session_id": session}
    )
    assert asked.status_code == 200
    assert asked.json()["history_persisted"] is False
    history = service.get("/api/v1/ai/conversation/history", params={"session_id": session})
    assert history.json()["source"] == "memory"
    assert history.json()["turns"][0]["query"] == "revenue by region"
    # an id this worker never saw cannot be checked now: answered, not recorded, no history
    stranger = service.post(
        "/api/v1/ai/query", json={"query": "orders", "session_id": "someone-elses"}
    )
    assert stranger.status_code == 200 and stranger.json()["history_persisted"] is False
    unread = service.get("/api/v1/ai/conversation/history", params={"session_id": "someone-elses"})
    assert unread.status_code == 503 and unread.json()["error"] == "history_unavailable"
    for path in ("/api/v1/scaling/status", "/api/v1/mobile/analytics/kpis", "/"):
        assert service.get(path).status_code == 200, path
    assert service.stats()["requests"]["by_status"]["5xx"] == 1  # the unreadable history

    l1.start()
    l2.start()
    wait_until(lambda: _health(service)["status"] == "healthy", "health to recover")
    assert until_not_l0(service, EXECUTIVE).status_code == 200
    wait_until(lambda: cache_key(l2, "dashboard:executive"), "L2 to be written again")


def test_redis_down_at_start(redis_factory, start_service) -> None:
    l1, l2 = redis_factory(5, start=False), redis_factory(6, start=False)
    service = start_service(l1, l2, SLAKIT_L0_TTL_SECONDS="0.3")
    assert _health(service)["status"] == "degraded"
    assert service.get(EXECUTIVE).status_code == 200
    assert service.post("/api/v1/cache/warm", headers=service.bearer()).status_code == 200
    l1.start()
    l2.start()
    wait_until(lambda: _health(service)["status"] == "healthy", "health to recover")
    warm = service.post("/api/v1/cache/warm", headers=service.bearer()).json()
    assert warm["complete"] is True
    for server in (l1, l2):
        assert cache_key(server, "dashboard:executive") is not None
