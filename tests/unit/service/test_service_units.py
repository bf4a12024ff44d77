"""Finer behaviour in-process: dataset, L0, histogram, fast path, rule-based answers."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from slakit_service import dataset, insights
from slakit_service.catalog import fast_path_table
from slakit_service.fastpath import FastPath
from slakit_service.l0 import MemoryTier
from slakit_service.stats import ROUTE_INDEX, WorkerStats, aggregate, bucket_of, bucket_upper_us


@pytest.fixture(scope="module")
def data() -> dataset.SalesData:
    return dataset.generate(8000, 7)


def test_dataset_is_deterministic(data: dataset.SalesData) -> None:
    again = dataset.generate(8000, 7)
    assert again.fingerprint == data.fingerprint
    assert again.revenue == data.revenue
    assert dataset.generate(8000, 8).fingerprint != data.fingerprint
    assert list(data.day) == sorted(data.day)


def test_l0_expires_and_stays_bounded() -> None:
    now = [100.0]
    l0 = MemoryTier(max_entries=3, ttl=10, clock=lambda: now[0])
    for name in "abcd":
        l0.put(name, name.encode())
    assert len(l0) == 3 and l0.get("a") is None  # least recently used went first
    entry = l0.get("b")
    assert entry is not None and entry.body == b"b"
    assert (b"content-length", b"1") in entry.headers
    now[0] += 10
    assert l0.get("b") is None and l0.remaining("c") == 0


def test_histogram_percentiles_come_from_recorded_values() -> None:
    stats = WorkerStats()
    route = ROUTE_INDEX["GET /api/v1/dashboard/executive"]
    for us in range(1, 1001):  # 1 us .. 1 ms, evenly
        stats.record(route, 200, us * 1000)
    timing = aggregate(stats)["requests"]["by_endpoint"]["GET /api/v1/dashboard/executive"]
    assert timing["count"] == 1000
    assert 0.5 <= timing["p50"] <= 0.5 * 1.125
    assert 0.99 <= timing["p99"] <= 1.0
    assert timing["max"] == 1.0
    for us in (0, 1, 15, 16, 17, 1000, 123_456, 10**9):
        assert bucket_upper_us(bucket_of(us)) >= us
        assert bucket_upper_us(bucket_of(us)) <= max(us * 1.125, us + 1)


class _Inner:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: dict, receive: object, send) -> None:
        self.calls += 1
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def _get(app: FastPath, path: str, method: str = "GET", query: bytes = b"") -> list[dict]:
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "method": method, "path": path, "query_string": query}
    asyncio.run(app(scope, receive, send))
    return sent


def test_fast_path_answers_l0_hits_without_the_app() -> None:
    inner, l0, stats = _Inner(), MemoryTier(8, 60), WorkerStats()
    app = FastPath(inner, l0, stats, enabled=True)
    path = "/api/v1/dashboard/executive"
    assert _get(app, path)[0]["status"] == 204 and inner.calls == 1  # L0 empty: app answers
    l0.put("dashboard:executive", b'{"k":1}')
    sent = _get(app, path)
    assert inner.calls == 1
    assert sent[0]["status"] == 200 and sent[1]["body"] == b'{"k":1}'
    _get(app, path, method="POST")
    _get(app, path, query=b"x=1")
    assert inner.calls == 3  # other methods and unknown query strings go to the app
    off = FastPath(inner, l0, stats, enabled=False)
    _get(off, path)
    assert inner.calls == 4
    figures = aggregate(stats)
    assert figures["requests"]["fast_path"] == 1
    assert figures["requests"]["by_status"]["2xx"] == 5


def test_fast_path_sends_precomputed_answers_to_gets_without_a_query() -> None:
    inner, stats = _Inner(), WorkerStats()

    async def history() -> bytes:
        return b'{"count":0}'

    async def failing() -> bytes:
        raise RuntimeError("the app answers instead, and reports it its own way")

    answers = {"/api/v1/ai/conversation/history": history, "/": failing}
    app = FastPath(inner, MemoryTier(8, 60), stats, enabled=True, answers=answers)
    path = "/api/v1/ai/conversation/history"
    sent = _get(app, path)
    assert inner.calls == 0 and sent[0]["status"] == 200 and sent[1]["body"] == b'{"count":0}'
    assert (b"content-length", b"11") in sent[0]["headers"]
    _get(app, path, query=b"session_id=abc")
    _get(app, path, method="POST")
    assert inner.calls == 2  # a query string or another method: the app answers
    assert _get(app, "/")[0]["status"] == 204 and inner.calls == 3  # a failed answer: the app
    off = FastPath(inner, MemoryTier(8, 60), stats, enabled=False, answers=answers)
    _get(off, path)
    assert inner.calls == 4  # SLAKIT_L0_FASTPATH=0: everything through the app
    figures = aggregate(stats)
    assert figures["requests"]["by_endpoint"][f"GET {path}"]["count"] == 3  # and a POST
    assert figures["requests"]["fast_path"] == 0  # that figure counts L0 hits only


def test_fast_path_table_covers_every_revenue_granularity() -> None:
    table = fast_path_table()
    for granularity in ("daily", "weekly", "monthly"):
        key = ("/api/v1/dashboard/revenue", f"granularity={granularity}".encode())
        assert table[key] == f"dashboard:revenue:{granularity}"
    assert table[("/api/v1/dashboard/revenue", b"")] == "dashboard:revenue:monthly"


def test_questions_are_interpreted() -> None:
    q4 = insights.interpret("What were our sales trends in Q4?")
    assert (q4.metric, q4.intent) == ("revenue", "trend")
    assert dataset.day_date(q4.first_day) == date(2024, 10, 1)
    assert dataset.day_date(q4.last_day) == date(2024, 12, 31)
    march = insights.interpret("How many orders in March 2023 by region?")
    assert (march.metric, march.dimension) == ("orders", "region")
    assert dataset.day_date(march.first_day) == date(2023, 3, 1)
    same = insights.interpret("what were the SALES trends in q4")
    assert same.cache_name() == q4.cache_name()
    vague = insights.interpret("hello there")
    assert vague.understood == ()


def test_answers_match_an_independent_sum(data: dataset.SalesData) -> None:
    meaning = insights.interpret("revenue by channel in Q2 2024")
    result = insights.answer(data, meaning)["result"]
    first, last = meaning.first_day, meaning.last_day
    expected = sum(r for d, r in zip(data.day, data.revenue, strict=True) if first <= d <= last)
    assert abs(result["value"] - expected) < 0.01
    mobile = dataset.MOBILE
    by_mobile = sum(
        r
        for d, c, r in zip(data.day, data.channel, data.revenue, strict=True)
        if first <= d <= last and c == mobile
    )
    rows = {row["name"]: row["value"] for row in result["breakdown"]["rows"]}
    assert abs(rows["mobile_app"] - by_mobile) < 0.01
