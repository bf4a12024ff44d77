"""AI conversation sessions: issued by the server, private to their id, bounded in the store."""

from __future__ import annotations

import time

from svc_harness import RedisServer, ServiceProcess

QUERY = "/api/v1/ai/query"
HISTORY = "/api/v1/ai/conversation/history"


def _ask(service: ServiceProcess, query: str, session: str | None = None) -> dict:
    body = {"query": query} if session is None else {"query": query, "session_id": session}
    reply = service.post(QUERY, json=body)
    assert reply.status_code == 200, reply.text
    return reply.json()


def _store(l2: RedisServer) -> tuple[list[bytes], list[bytes]]:
    """(session ids in the registry, session list keys) in the persist instance."""
    admin = l2.client()
    return admin.zrange("slakit:chat:sessions", 0, -1), sorted(
        k for k in admin.keys("slakit:chat:*") if k != b"slakit:chat:sessions"
    )


def test_the_server_issues_session_ids(redis_pair, start_service) -> None:
    service = start_service(*redis_pair)
    ids = {_ask(service, "revenue in Q4")["session_id"] for _ in range(5)}
    assert len(ids) == 5  # a new id per query without one
    assert all(len(i) >= 32 for i in ids)  # 192 random bits, url-safe
    # a client-chosen id is not a session: refused, and nothing is stored under it
    chosen = service.post(QUERY, json={"query": "revenue", "session_id": "my-own-id"})
    assert chosen.status_code == 404 and chosen.json()["error"] == "unknown_session"
    assert service.get(HISTORY, params={"session_id": "my-own-id"}).status_code == 404
    registry, keys = _store(redis_pair[1])
    assert sorted(r.decode() for r in registry) == sorted(ids)
    assert keys == sorted(f"slakit:chat:{i}".encode() for i in ids)


def test_history_is_readable_only_with_its_own_id(redis_pair, start_service) -> None:
    service = start_service(*redis_pair)
    alice = _ask(service, "orders by region last year")["session_id"]
    bob = _ask(service, "top categories by revenue")["session_id"]
    mine = service.get(HISTORY, params={"session_id": alice}).json()
    assert [t["query"] for t in mine["turns"]] == ["orders by region last year"]
    theirs = service.get(HISTORY, params={"session_id": bob}).json()
    assert [t["query"] for t in theirs["turns"]] == ["top categories by revenue"]
    for guess in ("default", alice[:-1], alice.upper(), "slakit:chat:sessions"):
        reply = service.get(HISTORY, params={"session_id": guess})
        assert reply.status_code == 404, (guess, reply.text)
    # the pre-session scheme's shared history ("default") is not readable any more
    redis_pair[1].client().lpush("slakit:conversation:default", b'{"query":"old"}')
    assert service.get(HISTORY, params={"session_id": "default"}).status_code == 404


def test_turns_per_session_are_capped_and_sessions_expire(redis_pair, start_service) -> None:
    l1, l2 = redis_pair
    service = start_service(
        l1, l2, SLAKIT_CONVERSATION_MAX_TURNS="3", SLAKIT_CONVERSATION_TTL_SECONDS="60"
    )
    session = _ask(service, "question 0")["session_id"]
    for n in range(1, 6):
        _ask(service, f"question {n}", session)
    turns = service.get(HISTORY, params={"session_id": session, "limit": 50}).json()["turns"]
    assert [t["query"] for t in turns] == ["question 5", "question 4", "question 3"]
    admin = l2.client()
    key = f"slakit:chat:{session}"
    assert admin.llen(key) == 3
    assert 0 < admin.ttl(key) <= 60
    assert 0 < admin.ttl("slakit:chat:sessions") <= 60
    expires = admin.zscore("slakit:chat:sessions", session)
    assert time.time() < expires <= time.time() + 60
    admin.delete(key)  # as its TTL would: the session is gone for everyone
    assert service.get(HISTORY, params={"session_id": session}).status_code == 404
    assert service.post(QUERY, json={"query": "more", "session_id": session}).status_code == 404


def test_sessions_are_capped_least_recent_first(redis_pair, start_service) -> None:
    l1, l2 = redis_pair
    service = start_service(l1, l2, workers=2, SLAKIT_CONVERSATION_MAX_SESSIONS="4")
    first = [_ask(service, f"q{n}")["session_id"] for n in range(4)]
    _ask(service, "again", first[0])  # the oldest session is used again: now the most recent
    later = [_ask(service, f"later {n}")["session_id"] for n in range(3)]
    registry, keys = _store(l2)
    kept = {first[0], *later}
    assert {r.decode() for r in registry} == kept
    assert keys == sorted(f"slakit:chat:{s}".encode() for s in kept)
    for gone in first[1:]:
        assert service.get(HISTORY, params={"session_id": gone}).status_code == 404
    # many more sessions: the store never holds more than the cap
    for n in range(20):
        _ask(service, f"flood {n}")
    registry, keys = _store(l2)
    assert len(registry) == 4 and len(keys) == 4


def test_expired_registry_entries_leave_on_the_next_session(redis_pair, start_service) -> None:
    l1, l2 = redis_pair
    service = start_service(l1, l2)
    stale = _ask(service, "q")["session_id"]
    l2.client().zadd("slakit:chat:sessions", {stale: time.time() - 1})  # as if it had expired
    assert service.get(HISTORY, params={"session_id": stale}).status_code == 404
    fresh = _ask(service, "q2")["session_id"]
    registry, _ = _store(l2)
    assert [r.decode() for r in registry] == [fresh]
