"""Every endpoint the service serves, as "METHOD path"; `other` is anything else.

Its order is the order of the per-route counters in the stats files (stats.py).
"""

from __future__ import annotations

ROUTES = (
    "GET /",
    "GET /health",
    "GET /api/v1/health",
    "GET /api/v1/health/comprehensive",
    "POST /api/v1/auth/token",
    "GET /api/v1/dashboard/executive",
    "GET /api/v1/dashboard/revenue",
    "GET /api/v1/performance/stats",
    "POST /api/v1/cache/warm",
    "GET /api/v1/scaling/status",
    "POST /api/v1/scaling/trigger",
    "GET /api/v1/mobile/analytics/dashboard",
    "GET /api/v1/mobile/analytics/kpis",
    "GET /api/v1/mobile/sync/status",
    "POST /api/v1/ai/query",
    "POST /api/v1/ai/insights",
    "GET /api/v1/ai/conversation/history",
    "GET /metrics",
    "POST /api/v1/drill/ledger",
    "GET /api/v1/drill/ledger",
    "other",
)
