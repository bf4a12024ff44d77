"""GET answers that need neither routing nor validation: the fast path (fastpath.py) sends
them for a request without a query string; with one, FastAPI answers as before.

Constant documents are encoded once (the root, history without a session), the performance
stats once per refresh (service.py); the others are built per request without FastAPI's
routing, validation and serialisation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cache

from .cache import encode
from .dataset import AS_OF, START_DATE
from .endpoints import ROUTES
from .health import Health
from .service import Service

Answer = Callable[[], Awaitable[bytes]]
NO_SESSION = {"session_id": None, "turns": [], "count": 0, "source": "none"}


def root_document(svc: Service) -> dict:
    data = svc.data
    return {
        "service": "slakit-service",
        "version": svc.version,
        "description": "retail sales analytics over a tiered cache (memory, Redis, Redis)",
        "dataset": {
            "orders": data.orders,
            "from": START_DATE.isoformat(),
            "to": AS_OF.isoformat(),
            "fingerprint": data.fingerprint,
        },
        "endpoints": [r for r in ROUTES if r != "other"],
    }


def answers(svc: Service, health: Health) -> dict[str, Answer]:
    """path -> its answer's JSON bytes (asked only once the service has started)."""
    root = cache(lambda: encode(root_document(svc)))  # the dataset exists once started
    no_session = encode(NO_SESSION)

    async def root_answer() -> bytes:
        return root()

    async def history() -> bytes:
        return no_session

    async def stats() -> bytes:
        return svc.stats_body()

    async def liveness() -> bytes:
        return encode(health.liveness())

    async def comprehensive() -> bytes:
        return encode(await health.comprehensive())

    async def scaling() -> bytes:
        return encode(await svc.scaler.status(svc.live_workers()))

    return {
        "/": root_answer,
        "/health": liveness,
        "/api/v1/health": liveness,
        "/api/v1/health/comprehensive": comprehensive,
        "/api/v1/ai/conversation/history": history,
        "/api/v1/performance/stats": stats,
        "/api/v1/scaling/status": scaling,
    }
