"""Settings, read once from environment variables (the only way to configure the service)."""

from __future__ import annotations

import ipaddress
import os
import tempfile
from dataclasses import dataclass, field
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


class ConfigError(Exception):
    """A setting that must not fall back to a default: the service refuses to start, with this
    one-line message (app.py)."""


def _env_strict_int(name: str, default: int, low: int, high: int) -> int:
    """A whole number in [low, high]; unlike the tuning knobs above, a value that does not parse
    is an error, not the default (these decide whether writes are durable)."""
    raw = _env_str(name)
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ConfigError(f"{name}={raw!r}: needs a whole number from {low} to {high}")
    return int(raw)


@dataclass(frozen=True)
class SentinelTarget:
    """The persist tier found through Sentinel: REDIS_PERSIST_SENTINELS and the rest."""

    addresses: tuple[tuple[str, int], ...]  # Sentinels, asked in order for the primary
    master: str  # the name Sentinel monitors the primary under
    sentinel_username: str = ""  # Sentinel's own user; "" = `default` (Sentinel's requirepass)
    sentinel_password: str = field(default="", repr=False)
    username: str = ""  # the data connection's ACL user (the app's), on primary and replicas
    password: str = field(default="", repr=False)
    db: int = 0

    def describe(self) -> str:
        """For logs: addresses and master, never a credential."""
        listed = ",".join(f"{_host_port(h, p)}" for h, p in self.addresses)
        return f"sentinel {listed} master {self.master}"


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


SENTINEL_ONLY = (
    "REDIS_PERSIST_MASTER",
    "REDIS_PERSIST_SENTINEL_USERNAME",
    "REDIS_PERSIST_SENTINEL_PASSWORD",
    "REDIS_PERSIST_USERNAME",
    "REDIS_PERSIST_PASSWORD",
    "REDIS_PERSIST_DB",
)


def _parse_address(entry: str) -> tuple[str, int]:
    host, colon, port = entry.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:  # an IPv6 address without brackets: where does it end?
        host = ""
    valid = bool(colon and host and port.isdigit() and 0 < int(port) < 65536)
    if not valid or any(c.isspace() or c in "/@[]" for c in host):
        raise ConfigError(
            f"REDIS_PERSIST_SENTINELS: {entry!r} is not host:port (an IPv6 address as [addr]:port)"
        )
    return host, int(port)


def persist_sentinel_from_env() -> SentinelTarget | None:
    """The Sentinel settings of the persist tier, None when REDIS_PERSIST_SENTINELS is empty;
    ConfigError (one line, no secret in it) for a combination that cannot be meant."""
    raw = _env_str("REDIS_PERSIST_SENTINELS")
    if not raw:
        stray = [name for name in SENTINEL_ONLY if _env_str(name)]
        if stray:
            raise ConfigError(
                f"{stray[0]} is set but REDIS_PERSIST_SENTINELS is empty: it is used only with"
                " Sentinel (REDIS_PERSIST_URL carries its own user, password and database)"
            )
        return None
    if _env_str("REDIS_PERSIST_URL"):
        raise ConfigError(
            "REDIS_PERSIST_URL and REDIS_PERSIST_SENTINELS are both set: the persist tier is"
            " either one address (the URL) or found through Sentinel, not both"
        )
    addresses: list[tuple[str, int]] = []
    for entry in (e.strip() for e in raw.split(",")):
        address = _parse_address(entry)
        if address in addresses:
            raise ConfigError(f"REDIS_PERSIST_SENTINELS: {entry!r} is listed twice")
        addresses.append(address)
    master = _env_str("REDIS_PERSIST_MASTER")
    if not master:
        raise ConfigError(
            "REDIS_PERSIST_SENTINELS is set but REDIS_PERSIST_MASTER is empty: name the master"
            " Sentinel monitors (its `sentinel monitor <name> ...`)"
        )
    if any(c.isspace() for c in master):
        raise ConfigError(f"REDIS_PERSIST_MASTER={master!r}: a master name has no spaces")
    return SentinelTarget(
        addresses=tuple(addresses),
        master=master,
        sentinel_username=_env_str("REDIS_PERSIST_SENTINEL_USERNAME"),
        sentinel_password=os.environ.get("REDIS_PERSIST_SENTINEL_PASSWORD", ""),
        username=_env_str("REDIS_PERSIST_USERNAME"),
        password=os.environ.get("REDIS_PERSIST_PASSWORD", ""),
        db=_env_strict_int("REDIS_PERSIST_DB", 0, 0, 1_000_000),
    )


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
    redis_persist_url: str  # L2, the persist instance; empty = tier disabled (or Sentinel below)
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
    persist_sentinel: SentinelTarget | None = None  # L2 found through Sentinel instead of a URL
    persist_min_replicas: int = 0  # durable writes WAIT for this many replicas; 0 = no WAIT
    persist_wait_timeout_ms: int = 500  # how long a durable write WAITs for them
    persist_probe_seconds: float = 2.0  # freshness of the replication figures of the health
    drill_ledger_max_ids: int = 20_000  # ids one drill ledger (run) holds at most
    # figures summed over the workers (performance stats, live workers): at most this old
    stats_refresh_seconds: float = 1.0
    health_probe_seconds: float = 1.0  # the comprehensive health's Redis PINGs: at most this old

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
        sentinel = persist_sentinel_from_env()
        min_replicas = _env_strict_int("REDIS_PERSIST_MIN_REPLICAS", 0, 0, 100)
        wait_ms = _env_strict_int("REDIS_PERSIST_WAIT_TIMEOUT_MS", 500, 1, 60_000)
        if min_replicas and not (sentinel or _env_str("REDIS_PERSIST_URL")):
            raise ConfigError(
                f"REDIS_PERSIST_MIN_REPLICAS={min_replicas} but the persist tier is not"
                " configured (REDIS_PERSIST_URL or REDIS_PERSIST_SENTINELS)"
            )
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
            persist_sentinel=sentinel,
            persist_min_replicas=min_replicas,
            persist_wait_timeout_ms=wait_ms,
            persist_probe_seconds=_env_float("SLAKIT_PERSIST_PROBE_SECONDS", 2.0, 0.1),
            drill_ledger_max_ids=_env_int("SLAKIT_DRILL_LEDGER_MAX_IDS", 20_000, 1),
            stats_refresh_seconds=min(_env_float("SLAKIT_STATS_REFRESH_SECONDS", 1.0), 60.0),
            health_probe_seconds=min(_env_float("SLAKIT_HEALTH_PROBE_SECONDS", 1.0), 60.0),
        )
