"""The cacheable views: what `cache/warm` fills and what the L0 fast path may answer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import analytics
from .dataset import SalesData

DEFAULT_GRANULARITY = "monthly"


@dataclass(frozen=True)
class View:
    name: str  # cache key name, e.g. "dashboard:executive"
    path: str
    query_strings: tuple[bytes, ...]  # raw query strings that address exactly this view
    compute: Callable[[SalesData], dict]


def _revenue(granularity: str) -> Callable[[SalesData], dict]:
    return lambda data: analytics.revenue(data, granularity)


def revenue_name(granularity: str) -> str:
    return f"dashboard:revenue:{granularity}"


VIEWS: tuple[View, ...] = (
    View("dashboard:executive", "/api/v1/dashboard/executive", (b"",), analytics.executive),
    *(
        View(
            revenue_name(g),
            "/api/v1/dashboard/revenue",
            (f"granularity={g}".encode(),) + ((b"",) if g == DEFAULT_GRANULARITY else ()),
            _revenue(g),
        )
        for g in analytics.REVENUE_GRANULARITIES
    ),
    View(
        "mobile:dashboard", "/api/v1/mobile/analytics/dashboard", (b"",), analytics.mobile_dashboard
    ),
    View("mobile:kpis", "/api/v1/mobile/analytics/kpis", (b"",), analytics.mobile_kpis),
)
VIEW_BY_NAME = {view.name: view for view in VIEWS}


def fast_path_table() -> dict[tuple[str, bytes], str]:
    """(path, raw query string) -> view name, for GETs the fast path may answer."""
    return {(v.path, q): v.name for v in VIEWS for q in v.query_strings}
