"""The HTTP endpoints, grouped by the seed's stories."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from typing import Literal, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError

from . import analytics, insights, metrics
from .cache import Cached, encode
from .catalog import DEFAULT_GRANULARITY, VIEW_BY_NAME, revenue_name
from .conversations import Recorded
from .dataset import AS_OF, date_day
from .errors import ApiError
from .health import Health
from .ledger import Added, Ledger
from .models import (
    SESSION_PATTERN,
    AIQuery,
    InsightRequest,
    LedgerEntry,
    ScaleRequest,
    TokenRequest,
    WarmRequest,
)
from .precomputed import NO_SESSION, root_document
from .redis_tier import NotReplicated, TierUnavailable
from .service import Service

M = TypeVar("M", bound=BaseModel)
UNKNOWN_SESSION = "unknown or expired session; send the query without session_id to start a new one"
RETRY_SOON = {"Retry-After": "1"}


def _store_unavailable(err: TierUnavailable) -> ApiError:
    detail = f"the persist store is unavailable ({err}); the write is not acknowledged"
    return ApiError(503, "store_unavailable", detail, RETRY_SOON)


def _not_replicated(err: NotReplicated) -> ApiError:
    detail = f"the write reached the primary but was {err}; it is not acknowledged"
    return ApiError(503, "not_replicated", detail, RETRY_SOON)


def _cached_response(cached: Cached) -> Response:
    return Response(cached.body, media_type="application/json", headers={"x-cache": cached.tier})


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


async def _optional_body(request: Request, model: type[M], required: bool = False) -> M:
    """Parse a JSON body that may be absent (then the model's defaults apply) unless `required`."""
    raw = await request.body()
    if not raw.strip():
        if required:
            problem = {"location": ["body"], "message": "Field required", "type": "missing"}
            raise ApiError(422, "invalid_request", [problem])
        return model()
    try:
        return model.model_validate_json(raw)
    except ValidationError as err:
        malformed = any(e["type"] == "json_invalid" for e in err.errors())
        problems = [
            {"location": [str(p) for p in e["loc"]], "message": e["msg"], "type": e["type"]}
            for e in err.errors()
        ]
        if malformed:
            raise ApiError(400, "malformed_json", problems) from None
        raise ApiError(422, "invalid_request", problems) from None


def build_router(svc: Service, router: APIRouter, health: Health) -> APIRouter:
    """Adds the endpoints to `router`: the app's own (an included router costs every request
    a second round of route matching)."""
    ledger = Ledger(svc.l2, svc.settings.drill_ledger_max_ids)

    async def view(name: str) -> Response:
        data = svc.data
        compute = VIEW_BY_NAME[name].compute
        return _cached_response(await svc.cache.get_or_compute(name, lambda: compute(data)))

    def operator(request: Request) -> dict:
        return svc.auth.require(request.headers.get("authorization"), "operator")

    # --- core ---------------------------------------------------------------------------

    @router.get("/")
    async def root() -> dict:
        return root_document(svc)

    # HEAD too: some load balancers probe with it
    router.add_api_route("/health", health.liveness, methods=["GET", "HEAD"])
    router.add_api_route("/api/v1/health", health.liveness, methods=["GET", "HEAD"])

    @router.get("/api/v1/health/comprehensive")
    async def comprehensive() -> dict:
        return await health.comprehensive()

    @router.post("/api/v1/auth/token")
    async def token(body: TokenRequest) -> dict:
        return await svc.auth.login(body.username, body.password)

    # --- 1.1 real-time BI dashboard -----------------------------------------------------

    @router.get("/api/v1/dashboard/executive")
    async def executive() -> Response:
        return await view("dashboard:executive")

    @router.get("/api/v1/dashboard/revenue")
    async def revenue(
        granularity: Literal["daily", "weekly", "monthly"] = DEFAULT_GRANULARITY,
    ) -> Response:
        return await view(revenue_name(granularity))

    @router.get("/api/v1/performance/stats")
    async def performance() -> Response:
        return Response(svc.stats_body(), media_type="application/json")

    # Prometheus scrapes: no token (the convention). Only the scrapers' addresses may read it
    # (SLAKIT_METRICS_CLIENTS, and loopback): a request the load balancer forwards comes from
    # its client's address (X-Forwarded-For, trusted from the load balancers only), so a path
    # HAProxy did not recognise as /metrics (an encoded letter) still gets 404.
    @router.get("/metrics")
    async def prometheus(request: Request) -> Response:
        if not svc.settings.may_scrape(request.client.host if request.client else ""):
            raise ApiError(404, "not_found", "Not Found")
        return Response(metrics.render(svc.stats), media_type=metrics.CONTENT_TYPE)

    # --- 2.2 API performance --------------------------------------------------------------

    @router.post("/api/v1/cache/warm")
    async def warm(request: Request) -> dict:
        claims = operator(request)
        body = await _optional_body(request, WarmRequest)
        report = await svc.cache.warm(svc.view_computations(), force=body.force)
        return {**report, "requested_by": claims["sub"], "pid": os.getpid()}

    @router.get("/api/v1/scaling/status")
    async def scaling_status() -> dict:
        return await svc.scaler.status(svc.live_workers())

    @router.post("/api/v1/scaling/trigger")
    async def scaling_trigger(request: Request) -> dict:
        claims = operator(request)
        body = await _optional_body(request, ScaleRequest)
        return await svc.scaler.trigger(body.action, body.reason, claims["sub"], svc.live_workers())

    # --- drills ------------------------------------------------------------------------------

    @router.post("/api/v1/drill/ledger")
    async def ledger_add(request: Request) -> dict:
        operator(request)
        entry = await _optional_body(request, LedgerEntry, required=True)
        try:
            added, count = await ledger.add(entry.run, entry.id)
        except TierUnavailable as err:
            raise _store_unavailable(err) from None
        except NotReplicated as err:
            raise _not_replicated(err) from None
        if added is Added.FULL:
            detail = f"run {entry.run} holds its maximum of {ledger.max_ids} ids; use a new run"
            raise ApiError(409, "ledger_full", detail)
        return {
            "run": entry.run,
            "id": entry.id,
            "added": added is Added.NEW,
            "count": count,
            "min_replicas": svc.l2.min_replicas,
        }

    @router.get("/api/v1/drill/ledger")
    async def ledger_read(run: str | None = Query(default=None, pattern=SESSION_PATTERN)) -> dict:
        if run is None:  # no run, no ids (as conversation history without a session)
            return {"run": None, "count": 0, "ids": []}
        try:
            ids = await ledger.read(run)
        except TierUnavailable as err:
            raise ApiError(503, "store_unavailable", str(err), RETRY_SOON) from None
        return {"run": run, "count": len(ids), "ids": ids}

    # --- 4.1 mobile analytics -------------------------------------------------------------

    @router.get("/api/v1/mobile/analytics/dashboard")
    async def mobile_dashboard() -> Response:
        return await view("mobile:dashboard")

    @router.get("/api/v1/mobile/analytics/kpis")
    async def mobile_kpis() -> Response:
        return await view("mobile:kpis")

    @router.get("/api/v1/mobile/sync/status")
    async def sync_status(
        since: date | None = None,
        device_id: str = Query(default="unknown", pattern=SESSION_PATTERN),
    ) -> dict:
        data = svc.data
        since_day = min(max(date_day(since), -1), analytics.LAST_DAY) if since else -1
        views = []
        for name in ("mobile:dashboard", "mobile:kpis"):
            entry = svc.l0.get(name)
            generated = json.loads(entry.body).get("generated_at") if entry else None
            views.append(
                {
                    "name": name,
                    "cached_here": entry is not None,
                    "generated_at": generated,
                    "expires_in_seconds": round(svc.l0.remaining(name), 1),
                }
            )
        pending = data.rows_after(since_day)
        return {
            "device_id": device_id,
            "dataset_version": data.fingerprint,
            "data_through": AS_OF.isoformat(),
            "since": since.isoformat() if since else None,
            "pending_records": pending,
            "sync_required": pending > 0,
            "views": views,
            "server_time": _now(),
        }

    # --- 4.2 AI / LLM insights --------------------------------------------------------------

    @router.post("/api/v1/ai/query")
    async def ai_query(body: AIQuery) -> Response:
        data = svc.data
        meaning = insights.interpret(body.query)
        cached = await svc.cache.get_or_compute(
            meaning.cache_name(), lambda: insights.answer(data, meaning)
        )
        answer = json.loads(cached.body)["answer"]
        turn = {"at": _now(), "query": body.query, "answer": answer}
        if body.session_id is None:  # a new session, its id chosen here
            session, persisted = await svc.conversations.start(turn)
        else:
            session = body.session_id
            recorded = await svc.conversations.append(session, turn)
            if recorded is Recorded.UNKNOWN:
                raise ApiError(404, "unknown_session", UNKNOWN_SESSION)
            persisted = recorded is Recorded.PERSIST
        head = encode({"query": body.query, "session_id": session, "history_persisted": persisted})
        # splice the cached analysis in as-is: it is encoded once, never re-encoded
        content = head[:-1] + b"," + cached.body[1:]
        return Response(content, media_type="application/json", headers={"x-cache": cached.tier})

    @router.post("/api/v1/ai/insights")
    async def ai_insights(body: InsightRequest) -> Response:
        data = svc.data
        name = f"ai:insight:{body.data_source}:{body.insight_type}:{body.time_range}"
        cached = await svc.cache.get_or_compute(
            name,
            lambda: insights.insight(data, body.data_source, body.insight_type, body.time_range),
        )
        return _cached_response(cached)

    @router.get("/api/v1/ai/conversation/history")
    async def history(
        session_id: str | None = Query(default=None, pattern=SESSION_PATTERN),
        limit: int = Query(default=20, ge=1, le=50),
    ) -> JSONResponse:
        if session_id is None:  # no session, no history
            return JSONResponse(NO_SESSION)
        try:
            found = await svc.conversations.history(session_id, limit)
        except TierUnavailable:
            raise ApiError(
                503,
                "history_unavailable",
                "the conversation store is unavailable; try again shortly",
                {"Retry-After": "5"},
            ) from None
        if found is None:
            raise ApiError(404, "unknown_session", UNKNOWN_SESSION)
        turns, source = found
        return JSONResponse(
            {"session_id": session_id, "turns": turns, "count": len(turns), "source": source}
        )

    return router
