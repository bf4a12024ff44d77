"""The tiered cache seen from outside: x-cache headers, Redis contents, statistics."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests
from svc_harness import cache_key, until_not_l0, wait_until

EXECUTIVE = "/api/v1/dashboard/executive"


def _tier_invariants(cache: dict) -> None:
    assert cache["l0"]["misses"] == cache["l1"]["hits"] + cache["l1"]["misses"]
    assert cache["l1"]["misses"] == cache["l2"]["hits"] + cache["l2"]["misses"]
    lookups = cache["l0"]["hits"] + cache["l0"]["misses"]
    answered = cache["l0"]["hits"] + cache["l1"]["hits"] + cache["l2"]["hits"]
    assert cache["overall_hit_rate"] == round(answered / lookups, 6)


def test_a_miss_fills_every_tier_with_the_same_bytes(redis_pair, start_service) -> None:
    l1, l2 = redis_pair
    service = start_service(l1, l2, SLAKIT_L0_TTL_SECONDS="0.3")
    first = service.get(EXECUTIVE)
    assert first.headers["x-cache"] == "MISS"
    for server in (l1, l2):
        key = cache_key(server, "dashboard:executive")
        assert key is not None
        assert server.client().get(key) == first.content
        assert server.client().ttl(key) > 0
    second = service.get(EXECUTIVE)
    assert second.headers["x-cache"] == "L0"
    assert second.content == first.content


def test_each_tier_answers_in_turn_and_fills_the_tiers_above(redis_pair, start_service) -> None:
    l1, l2 = redis_pair
    service = start_service(l1, l2, SLAKIT_L0_TTL_SECONDS="0.3")
    computed = service.get(EXECUTIVE)
    generated_at = computed.json()["generated_at"]

    from_l1 = until_not_l0(service, EXECUTIVE)
    assert from_l1.headers["x-cache"] == "L1"
    assert from_l1.json()["generated_at"] == generated_at

    l1.client().delete(cache_key(l1, "dashboard:executive"))
    from_l2 = until_not_l0(service, EXECUTIVE)
    assert from_l2.headers["x-cache"] == "L2"
    assert from_l2.content == computed.content
    assert cache_key(l1, "dashboard:executive") is not None  # L2 refilled L1

    for server in (l1, l2):
        server.client().delete(cache_key(server, "dashboard:executive"))
    recomputed = until_not_l0(service, EXECUTIVE)
    assert recomputed.headers["x-cache"] == "MISS"
    assert recomputed.json()["generated_at"] != generated_at

    cache = service.stats()["cache"]
    assert cache["computes"] == 2
    assert cache["l1"]["hits"] >= 1 and cache["l2"]["hits"] >= 1
    _tier_invariants(cache)


def test_fast_path_serves_l0_hits_and_can_be_switched_off(redis_pair, start_service) -> None:
    for switch, expect_fast in (("1", True), ("0", False)):
        service = start_service(*redis_pair, SLAKIT_L0_FASTPATH=switch)
        bodies = {service.get(EXECUTIVE).content for _ in range(5)}
        assert len(bodies) == 1
        stats = wait_until(
            lambda svc=service: (s := svc.stats())["requests"]["total"] >= 5 and s,
            "stats of 5 GETs",
        )
        assert stats["cache"]["l0"]["hits"] >= 4
        assert (stats["requests"]["fast_path"] >= 4) is expect_fast
        assert (stats["requests"]["fast_path"] == 0) is not expect_fast
        service.stop()


def test_concurrent_cold_requests_compute_once(redis_pair, start_service) -> None:
    service = start_service(*redis_pair)
    url = service.base + "/api/v1/mobile/analytics/dashboard"
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: requests.get(url, timeout=30), range(16)))
    assert {r.status_code for r in replies} == {200}
    assert len({r.content for r in replies}) == 1
    cache = service.stats()["cache"]
    assert cache["computes"] == 1
    assert cache["lookups"] == 16


def test_warm_fills_all_tiers_and_is_cheap_when_fresh(redis_pair, start_service) -> None:
    l1, l2 = redis_pair
    service = start_service(l1, l2)
    auth = service.bearer()
    first = service.post("/api/v1/cache/warm", headers=auth).json()
    names = [e["name"] for e in first["entries"]]
    assert first["complete"] is True
    assert first["summary"]["computed"] == len(names) >= 6
    for name in names:
        assert cache_key(l1, name) is not None and cache_key(l2, name) is not None
    assert service.stats()["cache"]["warm_computes"] == len(names)

    again = service.post("/api/v1/cache/warm", headers=auth).json()
    assert again["summary"] == {"fresh": len(names), "filled": 0, "computed": 0}
    assert service.stats()["cache"]["warm_computes"] == len(names)

    l2.client().delete(cache_key(l2, "dashboard:executive"))
    repaired = service.post("/api/v1/cache/warm", headers=auth).json()
    outcome = {e["name"]: e for e in repaired["entries"]}["dashboard:executive"]
    assert outcome["outcome"] == "filled"
    assert outcome["tiers"]["l2"] == "filled"
    assert cache_key(l2, "dashboard:executive") is not None
    assert service.stats()["cache"]["warm_computes"] == len(names)

    forced = service.post("/api/v1/cache/warm", headers=auth, json={"force": True}).json()
    assert forced["summary"]["computed"] == len(names)

    for path in ("/api/v1/dashboard/executive", "/api/v1/mobile/analytics/kpis"):
        assert service.get(path).headers["x-cache"] == "L0"
    assert service.stats()["cache"]["computes"] == 0  # requests never computed anything
