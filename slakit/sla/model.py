"""The checker's result: plain dataclasses, JSON both ways (reports, baselines)."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from slakit.errors import SlakitError
from slakit.status import Status

EXIT_PASS, EXIT_FAIL, EXIT_BAD_INPUT, EXIT_INVALID, EXIT_INTERNAL = 0, 1, 2, 3, 4
RESULT_FORMAT = "slakit-sla-result/1"

Summary = dict[str, float | None]


@dataclass
class ObjectiveResult:
    story_id: str
    scope: str  # endpoint | story
    endpoint: str | None
    name: str
    kind: str  # percentile | compliance
    threshold_ms: float | None
    allowed: float
    samples: int
    exceedances: int
    upper_bound: float | None
    min_samples: int
    confidence_level: float | None
    status: Status
    message: str = ""

    @property
    def observed(self) -> float | None:
        return self.exceedances / self.samples if self.samples else None


@dataclass
class EndpointResult:
    key: str
    method: str
    path: str
    name: str
    target_ms: float
    status: Status
    skip_reason: str = ""
    planned: int = 0
    sent: int = 0
    ok: int = 0
    within_target: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latency: Summary = field(default_factory=dict)
    service: Summary = field(default_factory=dict)
    ttfb: Summary = field(default_factory=dict)
    connect: Summary = field(default_factory=dict)  # TCP connect of every connection opened
    tls: Summary = field(default_factory=dict)  # TLS handshake of each (empty over HTTP)
    lag: Summary = field(default_factory=dict)
    connections_made: int = 0
    score: float | None = None
    curve: list[list[float]] = field(default_factory=list)
    histogram: str = ""  # latency HdrHistogram, base64 (for --baseline)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def compliance(self) -> float | None:
        return self.within_target / self.sent if self.sent else None


@dataclass
class Validity:
    valid: bool = True
    problems: list[str] = field(default_factory=list)
    lag_p99_ms: float | None = None
    client_cpu: float | None = None
    processes: int = 1


@dataclass
class StoryResult:
    id: str
    name: str
    priority: str
    status: Status
    mode: str = "open"
    rate_rps: float | None = None
    duration_s: float | None = None
    samples: int = 0
    within_target: int = 0
    compliance: float | None = None
    compliance_lower: float | None = None
    compliance_threshold: float = 0.95
    confidence_level: float | None = None
    mean_ms: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    score: float | None = None
    credit: float = 0.0
    curve: list[list[float]] = field(default_factory=list)
    validity: Validity = field(default_factory=Validity)
    endpoints: list[EndpointResult] = field(default_factory=list)
    objectives: list[ObjectiveResult] = field(default_factory=list)
    skip_reason: str = ""

    @property
    def production_ready(self) -> bool:
        return self.status == Status.PASS and all(
            e.status != Status.SKIPPED for e in self.endpoints
        )


@dataclass
class LoadTestStep:
    multiplier: float
    rate_rps: float
    duration_s: float
    status: Status
    samples: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    compliance: float | None = None
    note: str = ""


@dataclass
class LoadTestResult:
    story_id: str
    nominal_rps: float
    capacity_rps: float | None
    status: Status
    steps: list[LoadTestStep] = field(default_factory=list)
    note: str = ""


@dataclass
class RegressionFinding:
    story_id: str
    endpoint: str
    metric: str
    baseline: float | None
    current: float | None
    p_value: float | None
    status: Status
    message: str = ""


@dataclass
class CacheReport:
    available: bool
    reason: str = ""
    l0: float | None = None
    l1: float | None = None
    l2: float | None = None
    overall: float | None = None
    workers: int | None = None


@dataclass
class ReadinessCheck:
    name: str
    value: str
    target: str
    status: Status  # pass | fail | info


@dataclass
class Platform:
    stories_tested: int = 0
    stories_ready: int = 0
    endpoints_tested: int = 0
    endpoints_passed: int = 0
    endpoints_skipped: int = 0
    samples: int = 0
    compliance: float | None = None
    compliance_lower: float | None = None
    compliance_threshold: float = 0.95
    confidence_level: float | None = None
    mean_ms: float | None = None
    score: float | None = None
    ready: bool = False


@dataclass
class LoadHost:
    """What one load host of a distributed run (`--from GROUP`) contributed."""

    host: str
    share: str  # "1/2": every 2nd slot of each schedule from the 1st
    sent: int = 0
    ok: int = 0
    stories: dict[str, int] = field(default_factory=dict)  # story id -> requests sent
    processes: int = 1
    lag_p99_ms: float | None = None  # the worst of its stories
    client_cpu: float | None = None  # the busiest of its load processes
    clock: str = ""  # the kernel's NTP state on that host (adjtimex)
    offset_ms: list[float] = field(default_factory=list)  # [low, high] vs the controller


@dataclass
class Result:
    generated: str
    base_url: str
    spec_source: str
    target_ms: float
    confidence: float
    bound: str
    status: Status
    exit_code: int
    duration_s: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)
    stories: list[StoryResult] = field(default_factory=list)
    platform: Platform = field(default_factory=Platform)
    cache: CacheReport = field(default_factory=lambda: CacheReport(False, "not read"))
    readiness: list[ReadinessCheck] = field(default_factory=list)
    load_tests: list[LoadTestResult] = field(default_factory=list)
    regressions: list[RegressionFinding] = field(default_factory=list)
    baseline_source: str | None = None
    load_hosts: list[LoadHost] = field(default_factory=list)  # distributed runs only
    format: str = RESULT_FORMAT

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if not self.load_hosts:  # a single run's JSON is as it always was
            del data["load_hosts"]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        if not isinstance(data, dict) or data.get("format") != RESULT_FORMAT:
            raise SlakitError(f"not a slakit SLA result (expected format {RESULT_FORMAT})")
        return _build(cls, data)

    @classmethod
    def load(cls, path: str | Path) -> Result:
        data = read_json(path)
        try:
            return cls.from_dict(data)
        except SlakitError as err:
            raise SlakitError(f"{path}: {err}") from None
        except (KeyError, TypeError, ValueError) as err:
            raise SlakitError(f"{path}: malformed SLA result ({err})") from None


def read_json(path: str | Path) -> Any:
    """A JSON file's content; one SlakitError line when it cannot be read or parsed."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise SlakitError(f"cannot read {path}: {err.strerror or err}") from None
    except ValueError:
        raise SlakitError(f"{path} is not JSON") from None


def _build(tp: Any, value: Any) -> Any:
    """Rebuild typed dataclasses from `dataclasses.asdict` output."""
    if value is None:
        return None
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(value)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        hints = typing.get_type_hints(tp)
        kwargs = {
            f.name: _build(hints[f.name], value[f.name])
            for f in dataclasses.fields(tp)
            if f.name in value
        }
        return tp(**kwargs)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _build(inner[0], value) if len(inner) == 1 else value
    if origin is list:
        return [_build(args[0], v) for v in value] if args else list(value)
    if origin is dict:
        return {k: _build(args[1], v) for k, v in value.items()} if args else dict(value)
    return value
