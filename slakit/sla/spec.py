"""The SLA spec (sla/spec.yml): load, validate, resolve defaults.

Structure is checked with a JSON schema (unknown keys are errors, so typos surface),
then meaning: unique ids, positive targets, and enough planned samples for every
objective to be able to pass at the spec's confidence (see `stats.minimum_samples`).
Every problem is a `SlakitError` (exit 2) naming the file and the offending key.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from slakit.errors import SlakitError
from slakit.sla import stats

DEFAULT_SPEC = Path(__file__).resolve().parents[2] / "sla" / "spec.yml"
MAX_DURATION_S = 3600.0

_NUM = {"type": "number"}
_POS = {"type": "number", "exclusiveMinimum": 0}
_LOAD = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "mode": {"enum": ["open", "closed"]},
        "rate": _POS,
        "concurrency": {"type": "integer", "minimum": 1, "maximum": 4096},
        "duration_s": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_DURATION_S},
        "requests": {"type": "integer", "minimum": 1, "maximum": 10_000_000},
        "connections": {"type": "integer", "minimum": 1, "maximum": 4096},
        "warmup_requests": {"type": "integer", "minimum": 0, "maximum": 100_000},
        "timeout_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 60},
    },
}
_OBJECTIVE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["percentile"],
    "properties": {
        "percentile": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 100},
        "factor": _POS,
        "max_ms": _POS,
        "scope": {"enum": ["endpoint", "story"]},
    },
}
_ENDPOINT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["method", "path"],
    "properties": {
        "method": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]},
        "path": {"type": "string", "pattern": "^/"},
        "name": {"type": "string"},
        "body": {},
        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
        "auth": {"type": ["string", "null"]},
        "expect_status": {
            "oneOf": [
                {"type": "integer", "minimum": 100, "maximum": 599},
                {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "integer", "minimum": 100, "maximum": 599},
                },
            ]
        },
        "target_ms": _NUM,
        "objectives": {"type": "array", "items": _OBJECTIVE},
        "load": _LOAD,
        "scale_in_load_test": {"type": "boolean"},
    },
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["version", "stories"],
    "properties": {
        "version": {"const": 1},
        "defaults": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "target_ms": _NUM,
                "compliance": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                "confidence": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                "bound": {"enum": list(stats.BOUND_METHODS)},
                "objectives": {"type": "array", "items": _OBJECTIVE},
                "load": _LOAD,
            },
        },
        "validity": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "max_schedule_lag_p99_ms": _POS,
                "max_client_cpu": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                "max_rate_per_process": _POS,
            },
        },
        "readiness": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "min_performance_score": {"type": ["number", "null"], "minimum": 0, "maximum": 100},
                "min_cache_hit_rate": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
            },
        },
        "load_test": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "start_multiplier": _POS,
                "growth": {"type": "number", "exclusiveMinimum": 1},
                "max_multiplier": _POS,
                "step_duration_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 600},
                "max_steps": {"type": "integer", "minimum": 1, "maximum": 50},
            },
        },
        "service": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"stats_path": {"type": ["string", "null"], "pattern": "^/"}},
        },
        "auth": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["token_path", "username_env", "password_env"],
                "properties": {
                    "token_path": {"type": "string", "pattern": "^/"},
                    "username_env": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                    "password_env": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                },
            },
        },
        "stories": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "name", "endpoints"],
                "properties": {
                    "id": {"type": "string", "minLength": 1},
                    "name": {"type": "string"},
                    "priority": {"enum": ["critical", "high", "medium", "low"]},
                    "compliance": {
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "exclusiveMaximum": 1,
                    },
                    "objectives": {"type": "array", "items": _OBJECTIVE},
                    "load": _LOAD,
                    "on_demand": {"type": "boolean"},
                    "endpoints": {"type": "array", "minItems": 1, "items": _ENDPOINT},
                },
            },
        },
    },
}

_LOAD_DEFAULTS: dict[str, Any] = {
    "mode": "open",
    "rate": 25.0,
    "duration_s": 12.0,
    "connections": 8,
    "warmup_requests": 16,
    "timeout_s": 5.0,
    "concurrency": 8,
}
_EXCLUSIVE = ("duration_s", "requests")


@dataclass(frozen=True)
class Load:
    mode: str
    rate: float
    concurrency: int
    duration_s: float | None
    requests: int | None
    connections: int
    warmup_requests: int
    timeout_s: float

    @property
    def planned_requests(self) -> int | None:
        """Requests the run will send; None for closed-loop runs bounded by time."""
        if self.requests is not None:
            return self.requests
        if self.mode == "open":
            return math.floor(self.rate * float(self.duration_s or 0) + 1e-9)
        return None

    @property
    def planned_duration_s(self) -> float | None:
        if self.duration_s is not None:
            return self.duration_s
        if self.mode == "open" and self.requests is not None:
            return self.requests / self.rate
        return None


@dataclass(frozen=True)
class Objective:
    percentile: float
    scope: str = "endpoint"
    factor: float | None = 1.0
    max_ms: float | None = None

    @property
    def allowed(self) -> float:
        """Largest admissible fraction of requests above the threshold."""
        return round(1.0 - self.percentile / 100.0, 12)

    def threshold_ms(self, target_ms: float) -> float:
        return self.max_ms if self.max_ms is not None else target_ms * float(self.factor or 1.0)

    def label(self) -> str:
        pct = f"{self.percentile:g}"
        how = f"{self.max_ms:g} ms" if self.max_ms is not None else f"{self.factor:g}x target"
        return f"p{pct} <= {how}"


@dataclass(frozen=True)
class Endpoint:
    story_id: str
    method: str
    path: str
    name: str
    body: Any
    headers: dict[str, str]
    auth: str | None
    expect_status: tuple[int, ...]
    target_ms: float
    objectives: tuple[Objective, ...]
    load: Load
    scale_in_load_test: bool = True

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    def thresholds_ms(self, story: Story) -> list[float]:
        """Every latency threshold this endpoint's requests are counted against."""
        values = {self.target_ms}
        values.update(o.threshold_ms(self.target_ms) for o in self.objectives)
        values.update(o.threshold_ms(self.target_ms) for o in story.objectives)
        return sorted(values)


@dataclass(frozen=True)
class Story:
    id: str
    name: str
    priority: str
    compliance: float
    objectives: tuple[Objective, ...]  # story scope, pooled over endpoints
    endpoints: tuple[Endpoint, ...]


@dataclass(frozen=True)
class Validity:
    max_schedule_lag_p99_ms: float = 2.0
    max_client_cpu: float = 0.85
    max_rate_per_process: float = 2500.0


@dataclass(frozen=True)
class Readiness:
    min_performance_score: float | None = 85.0
    min_cache_hit_rate: float | None = None


@dataclass(frozen=True)
class LoadTest:
    start_multiplier: float = 1.0
    growth: float = 1.6
    max_multiplier: float = 16.0
    step_duration_s: float = 6.0
    max_steps: int = 6


@dataclass(frozen=True)
class AuthScheme:
    name: str
    token_path: str
    username_env: str
    password_env: str


@dataclass(frozen=True)
class Spec:
    source: str
    target_ms: float
    confidence: float
    bound: str
    stories: tuple[Story, ...]
    compliance: float = 0.95
    validity: Validity = field(default_factory=Validity)
    readiness: Readiness = field(default_factory=Readiness)
    load_test: LoadTest = field(default_factory=LoadTest)
    stats_path: str | None = "/api/v1/performance/stats"
    auth: dict[str, AuthScheme] = field(default_factory=dict)
    # `on_demand: true` stories: measured only when named (--story), never in a default run
    on_demand: tuple[Story, ...] = ()

    def story(self, story_id: str) -> Story:
        for story in (*self.stories, *self.on_demand):
            if story.id == story_id:
                return story
        known = ", ".join(s.id for s in self.stories)
        extra = f"; on demand: {', '.join(s.id for s in self.on_demand)}" if self.on_demand else ""
        raise SlakitError(f"unknown story {story_id!r} in {self.source} (known: {known}{extra})")

    def select(self, story_ids: list[str] | None) -> Spec:
        if not story_ids:
            return self
        return replace(self, stories=tuple(self.story(sid) for sid in story_ids))


def load_spec(path: str | Path | None = None, *, target_sla_ms: float | None = None) -> Spec:
    """Read and validate a spec file; `target_sla_ms` overrides `defaults.target_ms`."""
    source = Path(path) if path is not None else DEFAULT_SPEC
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as err:
        raise SlakitError(f"cannot read SLA spec {source}: {err.strerror or err}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or "not valid YAML"
        raise SlakitError(f"{source}:{where}: {problem}") from None
    return parse_spec(data, source=str(source), target_sla_ms=target_sla_ms)


def _where(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _non_finite(data: Any, path: tuple[str | int, ...] = ()) -> tuple[str | int, ...] | None:
    """Path of the first .inf or .nan anywhere in the spec (JSON Schema numbers allow them)."""
    if isinstance(data, float) and not math.isfinite(data):
        return path
    items = (
        data.items()
        if isinstance(data, dict)
        else enumerate(data)
        if isinstance(data, list)
        else ()
    )
    for key, value in items:
        found = _non_finite(value, (*path, key))
        if found is not None:
            return found
    return None


def parse_spec(data: Any, *, source: str = "<spec>", target_sla_ms: float | None = None) -> Spec:
    if not isinstance(data, dict):
        raise SlakitError(f"{source}: the spec must be a YAML mapping with 'version' and 'stories'")
    where = _non_finite(data)
    if where is not None:
        raise SlakitError(
            f"{source}: {_where(where)}: must be a finite number (.inf and .nan are not)"
        )
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(SCHEMA).iter_errors(data)
    )
    if error is not None:
        raise SlakitError(f"{source}: {_where(error.absolute_path)}: {error.message}")
    if target_sla_ms is not None and not (target_sla_ms > 0 and math.isfinite(target_sla_ms)):
        raise SlakitError(f"--target-sla must be a positive number of ms (got {target_sla_ms:g})")

    defaults = data.get("defaults", {})
    target = float(target_sla_ms if target_sla_ms is not None else defaults.get("target_ms", 15.0))
    if target <= 0:
        raise SlakitError(f"{source}: defaults.target_ms must be > 0 (got {target:g})")
    confidence = float(defaults.get("confidence", 0.95))
    bound = str(defaults.get("bound", "clopper-pearson"))
    default_objectives = [_objective(o) for o in defaults.get("objectives", _DEFAULT_OBJECTIVES)]
    base_load = _merge_load(_LOAD_DEFAULTS, defaults.get("load", {}))
    auth = {
        name: AuthScheme(name, a["token_path"], a["username_env"], a["password_env"])
        for name, a in data.get("auth", {}).items()
    }

    stories: list[Story] = []
    on_demand: list[Story] = []
    seen: set[str] = set()
    for s_index, raw_story in enumerate(data["stories"]):
        where = f"stories[{s_index}]"
        sid = raw_story["id"]
        if sid in seen:
            raise SlakitError(f"{source}: {where}.id: duplicate story id {sid!r}")
        seen.add(sid)
        story_objectives = (
            [_objective(o) for o in raw_story["objectives"]]
            if ("objectives" in raw_story)
            else default_objectives
        )
        story_load = _merge_load(base_load, raw_story.get("load", {}))
        endpoints = []
        keys: set[str] = set()
        for e_index, raw in enumerate(raw_story["endpoints"]):
            endpoint = _endpoint(raw, sid, target, story_objectives, story_load)
            e_where = f"{where}.endpoints[{e_index}]"
            if endpoint.key in keys:
                raise SlakitError(
                    f"{source}: {e_where}: {endpoint.key} listed twice in story {sid}"
                )
            keys.add(endpoint.key)
            if endpoint.target_ms <= 0 or not math.isfinite(endpoint.target_ms):
                raise SlakitError(
                    f"{source}: {e_where}.target_ms: must be > 0 (got {raw['target_ms']})"
                )
            if endpoint.auth is not None and endpoint.auth not in auth:
                raise SlakitError(
                    f"{source}: {e_where}.auth: unknown scheme {endpoint.auth!r} "
                    f"(define it under 'auth:'; known: {', '.join(auth) or 'none'})"
                )
            if endpoint.load.mode == "open" and endpoint.load.planned_requests == 0:
                raise SlakitError(f"{source}: {e_where}.load: rate x duration gives no requests")
            endpoints.append(endpoint)
        story = Story(
            id=sid,
            name=raw_story["name"],
            priority=raw_story.get("priority", "high"),
            compliance=float(raw_story.get("compliance", defaults.get("compliance", 0.95))),
            objectives=tuple(o for o in story_objectives if o.scope == "story"),
            endpoints=tuple(endpoints),
        )
        _check_sample_sizes(story, confidence, bound, f"{source}: {where}")
        (on_demand if raw_story.get("on_demand", False) else stories).append(story)
    if not stories:
        raise SlakitError(f"{source}: stories: every story is on_demand; a default run needs one")

    return Spec(
        source=source,
        target_ms=target,
        confidence=confidence,
        bound=bound,
        stories=tuple(stories),
        on_demand=tuple(on_demand),
        compliance=float(defaults.get("compliance", 0.95)),
        validity=Validity(**data.get("validity", {})),
        readiness=Readiness(**data.get("readiness", {})),
        load_test=LoadTest(**data.get("load_test", {})),
        stats_path=data.get("service", {}).get("stats_path", "/api/v1/performance/stats"),
        auth=auth,
    )


_DEFAULT_OBJECTIVES = [
    {"percentile": 95, "factor": 1.0, "scope": "endpoint"},
    {"percentile": 99, "factor": 1.5, "scope": "story"},
]


def _objective(raw: dict[str, Any]) -> Objective:
    if raw.get("max_ms") is not None and raw.get("factor") is not None:
        raise SlakitError(f"objective p{raw['percentile']}: give either max_ms or factor, not both")
    return Objective(
        percentile=float(raw["percentile"]),
        scope=raw.get("scope", "endpoint"),
        factor=None if raw.get("max_ms") is not None else float(raw.get("factor", 1.0)),
        max_ms=float(raw["max_ms"]) if raw.get("max_ms") is not None else None,
    )


def _merge_load(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key in _EXCLUSIVE:
        if key in override:
            for other in _EXCLUSIVE:
                merged.pop(other, None)
    merged.update(override)
    return merged


def _build_load(values: dict[str, Any]) -> Load:
    return Load(
        mode=values["mode"],
        rate=float(values["rate"]),
        concurrency=int(values["concurrency"]),
        duration_s=float(values["duration_s"]) if "duration_s" in values else None,
        requests=int(values["requests"]) if "requests" in values else None,
        connections=int(values["connections"]),
        warmup_requests=int(values["warmup_requests"]),
        timeout_s=float(values["timeout_s"]),
    )


def _endpoint(
    raw: dict[str, Any],
    story_id: str,
    default_target: float,
    story_objectives: list[Objective],
    story_load: dict[str, Any],
) -> Endpoint:
    status = raw.get("expect_status", 200)
    endpoint_objectives = (
        [_objective(o) for o in raw["objectives"]]
        if "objectives" in raw
        else [o for o in story_objectives if o.scope == "endpoint"]
    )
    for objective in endpoint_objectives:
        if objective.scope != "endpoint":
            raise SlakitError(
                f"{raw['method']} {raw['path']}: endpoint objectives take scope endpoint"
            )
    return Endpoint(
        story_id=story_id,
        method=raw["method"],
        path=raw["path"],
        name=raw.get("name", ""),
        body=raw.get("body"),
        headers=dict(raw.get("headers", {})),
        auth=raw.get("auth"),
        expect_status=tuple(status) if isinstance(status, list) else (int(status),),
        target_ms=float(raw.get("target_ms", default_target)),
        objectives=tuple(endpoint_objectives),
        load=_build_load(_merge_load(story_load, raw.get("load", {}))),
        scale_in_load_test=bool(raw.get("scale_in_load_test", True)),
    )


def _check_sample_sizes(story: Story, confidence: float, bound: str, where: str) -> None:
    """Reject a spec whose planned sample counts could not let an objective pass."""
    planned = [e.load.planned_requests for e in story.endpoints]
    for endpoint, n in zip(story.endpoints, planned, strict=True):
        if n is None:
            continue
        for objective in endpoint.objectives:
            need = stats.minimum_samples(objective.allowed, confidence, bound)
            if n < need:
                raise SlakitError(
                    f"{where}: {endpoint.key}: {objective.label()} needs at least {need} "
                    f"requests at {confidence:.0%} confidence, the load plans {n}"
                )
    if any(n is None for n in planned):
        return
    total = sum(n for n in planned if n is not None)
    pooled = [*story.objectives, Objective(percentile=story.compliance * 100, scope="story")]
    for objective in pooled:
        need = stats.minimum_samples(objective.allowed, confidence, bound)
        if total < need:
            raise SlakitError(
                f"{where}: story {story.id}: {objective.label()} needs at least {need} "
                f"requests at {confidence:.0%} confidence, the load plans {total}"
            )
