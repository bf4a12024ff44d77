"""Settings, read once from environment variables (the only way to configure the service)."""

from __future__ import annotations

import ipaddress
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .series import DEFAULT_BUCKETS_MS, parse_buckets_ms


def _env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def _env_float(name: str, default: float, minimum: float = 0.0) -> float:
    raw = _env_str(name)
    try:
        value = float(raw) if raw else default
    except ValueError:
        value = default
    return max(minimum, value)


def _env_int(name: str, default: int, minimum: int = 0) -> int:
    return int(_env_float(name, float(default), float(minimum)))


def _env_bool(name: str, default: bool) -> bool:
    raw = _env_str(name).lower()
    if not raw:
        return default
    return raw not in {"0", "false", "no", "off"}


Network = ipaddress.IPv4Network | ipaddress.IPv6Network
LOOPBACK: tuple[Network, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)


def _env_networks(name: str) -> tuple[Network, ...]:
    """Loopback plus the comma-separated IPs or prefixes of `name`; a malformed entry is left
    out (it admits nobody)."""
    found: list[Network] = list(LOOPBACK)
    for entry in filter(None, (e.strip() for e in _env_str(name).split(","))):
        try:
            found.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            continue
    return tuple(found)


def _default_stats_dir() -> Path:
    runtime = _env_str("RUNTIME_DIRECTORY").split(":")[0]
    if runtime:
        return Path(runtime) / "stats"
    return Path(tempfile.gettempdir()) / f"slakit-service-stats-{os.getuid()}"


@dataclass(frozen=True)
class Settings:
    redis_url: str  # L1, the cache instance; empty = tier disabled
    redis_persist_url: str  # L2, the persist instance; empty = tier disabled
    token_secret: str
    users_json: str
    stats_dir: Path
    l0_fastpath: bool
    l0_max_entries: int
    l0_ttl: float
    l1_ttl: int
    l2_ttl: int
    redis_timeout: float
    redis_retry_after: float
    redis_health_check: float  # PING a pooled connection idle this long before using it
    token_ttl: int
    dataset_orders: int
    dataset_seed: int
    scale_min_workers: int
    scale_max_workers: int
    scale_cooldown: float
    scale_signal: bool
    max_body_bytes: int  # larger request bodies are refused with 413 (limits.py)
    openapi_docs: bool  # /docs, /redoc and /openapi.json served
    conversation_max_turns: int  # turns kept per session (newest)
    conversation_max_sessions: int  # sessions kept in the persist tier (least recent go first)
    conversation_ttl: int  # a session expires this long after its last turn
    drill_delay_ms: float = 0.0  # drills only: added to every HTTP request (drill.py); 0 = off
    metrics_buckets_ms: tuple[float, ...] = DEFAULT_BUCKETS_MS  # request histogram of /metrics
    metrics_buckets_problem: str = ""  # why SLAKIT_METRICS_BUCKETS_MS was not used, if it was not
    metrics_clients: tuple[Network, ...] = LOOPBACK  # may read /metrics: SLAKIT_METRICS_CLIENTS

    def may_scrape(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.metrics_clients)

    @classmethod
    def from_env(cls) -> Settings:
        cpus = os.cpu_count() or 1
        min_workers = _env_int("SLAKIT_SCALE_MIN_WORKERS", 1, 1)
        buckets, buckets_problem = parse_buckets_ms(_env_str("SLAKIT_METRICS_BUCKETS_MS"))
        return cls(
            redis_url=_env_str("REDIS_URL"),
            redis_persist_url=_env_str("REDIS_PERSIST_URL"),
            token_secret=_env_str("SLAKIT_TOKEN_SECRET"),
            users_json=_env_str("SLAKIT_USERS"),
            stats_dir=Path(_env_str("SLAKIT_STATS_DIR") or _default_stats_dir()),
            l0_fastpath=_env_bool("SLAKIT_L0_FASTPATH", True),
            l0_max_entries=_env_int("SLAKIT_L0_MAX_ENTRIES", 512, 1),
            l0_ttl=_env_float("SLAKIT_L0_TTL_SECONDS", 30.0, 0.001),
            l1_ttl=_env_int("SLAKIT_L1_TTL_SECONDS", 300, 1),
            l2_ttl=_env_int("SLAKIT_L2_TTL_SECONDS", 86400, 1),
            redis_timeout=_env_float("SLAKIT_REDIS_TIMEOUT_SECONDS", 0.1, 0.001),
            redis_retry_after=_env_float("SLAKIT_REDIS_RETRY_SECONDS", 1.0, 0.0),
            redis_health_check=_env_float("SLAKIT_REDIS_HEALTH_CHECK_SECONDS", 30.0, 0.0),
            token_ttl=_env_int("SLAKIT_TOKEN_TTL_SECONDS", 900, 1),
            dataset_orders=_env_int("SLAKIT_DATASET_ORDERS", 60_000, 1_000),
            dataset_seed=_env_int("SLAKIT_DATASET_SEED", 20240101, 0),
            scale_min_workers=min_workers,
            scale_max_workers=max(min_workers, _env_int("SLAKIT_SCALE_MAX_WORKERS", 2 * cpus, 1)),
            scale_cooldown=_env_float("SLAKIT_SCALE_COOLDOWN_SECONDS", 30.0, 0.0),
            scale_signal=_env_bool("SLAKIT_SCALE_SIGNAL", False),
            max_body_bytes=_env_int("SLAKIT_MAX_BODY_BYTES", 65536, 1024),
            openapi_docs=_env_bool("SLAKIT_OPENAPI_DOCS", False),
            conversation_max_turns=_env_int("SLAKIT_CONVERSATION_MAX_TURNS", 20, 1),
            conversation_max_sessions=_env_int("SLAKIT_CONVERSATION_MAX_SESSIONS", 2000, 1),
            conversation_ttl=_env_int("SLAKIT_CONVERSATION_TTL_SECONDS", 86400, 60),
            drill_delay_ms=min(_env_float("SLAKIT_DRILL_DELAY_MS", 0.0), 10_000.0),
            metrics_buckets_ms=buckets,
            metrics_buckets_problem=buckets_problem,
            metrics_clients=_env_networks("SLAKIT_METRICS_CLIENTS"),
        )
