"""The label sets of the Prometheus request metrics, as fixed tables of counter slots.

A request is one *series* (route template path x method) and one *status* label. Every label
value comes from a fixed table, whatever the client sends: an unknown path is `other`, a method
outside METHODS is `other`, a status outside STATUSES is its class (`5xx`, which a `5..` regex
still matches). So the number of time series is bounded and the label values never need
escaping.
"""

from __future__ import annotations

import itertools
import math
from typing import Final

from .endpoints import ROUTES

DEFAULT_BUCKETS_MS: Final = (1, 2.5, 5, 7.5, 10, 15, 22.5, 25, 50, 100, 250, 500, 1000, 2500)

PATHS: Final = (*dict.fromkeys(r.split(" ", 1)[1] for r in ROUTES if r != "other"), "other")
PATH_INDEX: Final = {path: i for i, path in enumerate(PATHS)}
OTHER_PATH: Final = PATH_INDEX["other"]
METHODS: Final = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other")
METHOD_INDEX: Final = {method: i for i, method in enumerate(METHODS)}
OTHER_METHOD: Final = METHOD_INDEX["other"]
SERIES: Final = len(PATHS) * len(METHODS)

# What this stack answers (the service, uvicorn, gunicorn); anything else counts by its class.
STATUSES: Final = (
    200, 201, 204, 301, 302, 304, 307, 308, 400, 401, 403, 404, 405, 406, 408, 409, 411, 413,
    414, 415, 422, 429, 431, 500, 501, 502, 503, 504,
)  # fmt: skip
STATUS_LABELS: Final = (*map(str, STATUSES), "1xx", "2xx", "3xx", "4xx", "5xx")
_STATUS_INDEX: Final = {status: i for i, status in enumerate(STATUSES)}


def series_of(method: str, path: str) -> int:
    path_index = PATH_INDEX.get(path, OTHER_PATH)
    return path_index * len(METHODS) + METHOD_INDEX.get(method, OTHER_METHOD)


def series_labels(series: int) -> tuple[str, str]:
    """(route, method) of a series."""
    return PATHS[series // len(METHODS)], METHODS[series % len(METHODS)]


def status_slot(status: int) -> int:
    slot = _STATUS_INDEX.get(status)
    if slot is None:
        return len(STATUSES) + min(max(status // 100, 1), 5) - 1
    return slot


# The series of every declared route (with its own method), shown even before any request.
DECLARED: Final = frozenset(series_of(*r.split(" ", 1)) for r in ROUTES if r != "other")


def parse_buckets_ms(raw: str) -> tuple[tuple[float, ...], str]:
    """Bucket upper bounds in ms from "1,2.5,..." -> (bounds, problem); the default when empty
    or not strictly increasing finite numbers above 0 (then `problem` says why)."""
    if not raw.strip():
        return DEFAULT_BUCKETS_MS, ""
    try:
        bounds = tuple(float(part) for part in raw.split(","))
    except ValueError:
        return DEFAULT_BUCKETS_MS, f"not a list of numbers: {raw!r}"
    ok = all(math.isfinite(b) and b > 0 for b in bounds)
    if not ok or any(a >= b for a, b in itertools.pairwise(bounds)):
        return DEFAULT_BUCKETS_MS, f"not strictly increasing numbers above 0: {raw!r}"
    return bounds, ""
