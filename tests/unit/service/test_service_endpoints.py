"""Every endpoint over real HTTP, against real Redis: status, shape, real work."""

from __future__ import annotations

import pytest
from svc_harness import READER, ServiceProcess

READS = [
    "/",
    "/health",
    "/api/v1/health",
    "/api/v1/health/comprehensive",
    "/api/v1/dashboard/executive",
    "/api/v1/dashboard/revenue",
    "/api/v1/performance/stats",
    "/api/v1/scaling/status",
    "/api/v1/mobile/analytics/dashboard",
    "/api/v1/mobile/analytics/kpis",
    "/api/v1/mobile/sync/status",
    "/api/v1/ai/conversation/history",
]


@pytest.fixture
def service(redis_pair, start_service) -> ServiceProcess:
    return start_service(*redis_pair)


def test_every_read_answers_json_without_a_token(service: ServiceProcess) -> None:
    for path in READS:
        reply = service.get(path)
        assert reply.status_code == 200, (path, reply.text)
        assert reply.headers["content-type"].startswith("application/json"), path
        assert isinstance(reply.json(), dict), path


def test_liveness_is_ok_on_both_paths(service: ServiceProcess) -> None:
    for path in ("/health", "/api/v1/health"):
        body = service.get(path).json()
        assert body["status"] == "ok"


def test_root_lists_the_endpoints_it_serves(service: ServiceProcess) -> None:
    listed = service.get("/").json()["endpoints"]
    for entry in listed:
        method, path = entry.split(" ", 1)
        if method == "GET":
            assert service.get(path).status_code == 200, entry
    assert "POST /api/v1/ai/query" in listed


def test_dashboards_are_consistent_with_each_other(service: ServiceProcess) -> None:
    executive = service.get("/api/v1/dashboard/executive").json()
    monthly = service.get("/api/v1/dashboard/revenue", params={"granularity": "monthly"}).json()
    # the same revenue, computed by two different scans, must agree
    by_month = sum(m["revenue"] for m in executive["revenue_by_month"])
    assert abs(by_month - executive["kpis"]["revenue"]) < 1.0
    assert abs(monthly["summary"]["revenue"] - executive["kpis"]["revenue"]) < 1.0
    assert monthly["summary"]["orders"] == executive["kpis"]["orders"]
    shares = sum(c["share_pct"] for c in executive["channels"])
    assert abs(shares - 100) < 0.1


def test_revenue_granularities_differ_and_default_is_monthly(service: ServiceProcess) -> None:
    periods = {}
    for granularity in ("daily", "weekly", "monthly"):
        body = service.get(f"/api/v1/dashboard/revenue?granularity={granularity}").json()
        assert body["granularity"] == granularity
        periods[granularity] = len(body["series"])
    assert len(set(periods.values())) == 3
    default = service.get("/api/v1/dashboard/revenue").json()
    assert default["granularity"] == "monthly"


def test_mobile_kpis_and_sync_status(service: ServiceProcess) -> None:
    kpis = service.get("/api/v1/mobile/analytics/kpis").json()
    windows = {w["window"]: w for w in kpis["windows"]}
    assert windows["today"]["orders"] <= windows["last_7_days"]["orders"]
    assert windows["last_7_days"]["orders"] <= windows["last_30_days"]["orders"]
    early = service.get("/api/v1/mobile/sync/status", params={"since": "2024-06-01"}).json()
    late = service.get("/api/v1/mobile/sync/status", params={"since": "2024-12-30"}).json()
    assert early["pending_records"] > late["pending_records"] > 0
    assert early["sync_required"] is True
    cached = {v["name"]: v["cached_here"] for v in late["views"]}
    assert cached["mobile:kpis"] is True  # fetched above, so this single worker holds it


def test_ai_query_answers_from_the_data_and_keeps_history(service: ServiceProcess) -> None:
    first = service.post("/api/v1/ai/query", json={"query": "What were our sales trends in Q4?"})
    assert first.status_code == 200, first.text
    q4 = first.json()
    session = q4["session_id"]  # issued by the server
    assert q4["history_persisted"] is True
    assert q4["interpretation"]["metric"] == "revenue"
    assert q4["result"]["period"]["from"].endswith("-10-01")
    daily = service.get("/api/v1/dashboard/revenue?granularity=monthly").json()["series"]
    q4_months = [m["revenue"] for m in daily if m["period"] in ("2024-10", "2024-11", "2024-12")]
    assert abs(q4["result"]["value"] - sum(q4_months)) < 1.0
    other = service.post(
        "/api/v1/ai/query", json={"query": "top regions by orders last year", "session_id": session}
    ).json()
    assert other["session_id"] == session
    assert other["interpretation"]["dimension"] == "region"
    assert (
        other["result"]["breakdown"]["rows"][0]["value"]
        >= other["result"]["breakdown"]["rows"][-1]["value"]
    )
    history = service.get("/api/v1/ai/conversation/history", params={"session_id": session}).json()
    assert history["source"] == "persist"
    assert [t["query"] for t in history["turns"]] == [
        "top regions by orders last year",
        "What were our sales trends in Q4?",
    ]
    unknown = service.get("/api/v1/ai/conversation/history", params={"session_id": "nobody"})
    assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_session"
    none = service.get("/api/v1/ai/conversation/history").json()
    assert none["session_id"] is None and none["turns"] == []


def test_ai_insights_every_type(service: ServiceProcess) -> None:
    for kind in (
        "trend_analysis",
        "anomaly_detection",
        "forecast",
        "segmentation",
        "top_performers",
    ):
        reply = service.post(
            "/api/v1/ai/insights",
            json={"data_source": "sales", "insight_type": kind, "time_range": "last_30_days"},
        )
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["insight_type"] == kind
        assert body["summary"]
    forecast = service.post(
        "/api/v1/ai/insights", json={"data_source": "mobile", "insight_type": "forecast"}
    ).json()
    assert len(forecast["findings"]) == 7


def test_writes_need_an_operator_token(service: ServiceProcess) -> None:
    for path in ("/api/v1/cache/warm", "/api/v1/scaling/trigger"):
        anonymous = service.post(path)
        assert anonymous.status_code == 401
        assert anonymous.json()["error"] == "missing_token"
        reader = service.post(path, headers=service.bearer(READER))
        assert reader.status_code == 403
        assert service.post(path, headers=service.bearer()).status_code == 200
