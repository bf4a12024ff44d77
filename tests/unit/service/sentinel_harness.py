"""A persist tier with replicas and Sentinel on loopback: real redis-server processes (the redis
role's ACL users), replicas by `replicaof`, and Sentinels (`redis-server <conf> --sentinel`)
with `requirepass`, quorum 2 and short timeouts so that a failover takes seconds."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import redis
import requests
from svc_harness import (
    REDIS_ADMIN,
    REDIS_PASSWORD,
    REDIS_PASSWORDS,
    REDIS_USER,
    RedisServer,
    free_port,
    wait_until,
)

MASTER = "slakit-persist"
SENTINEL_PASSWORD = "unit-test-sentinel-password"
ADMIN_PASSWORD = REDIS_PASSWORDS["redis_admin_password"]
PERSIST_DB = 6
LEDGER = "/api/v1/drill/ledger"
# every instance authenticates to whichever is primary (a demoted primary rejoins as a replica)
REPLICATION_AUTH = (f"masteruser {REDIS_ADMIN}", f"masterauth {ADMIN_PASSWORD}")


def in_sync(replica: RedisServer) -> bool:
    return replica.client().info("replication").get("master_link_status") == "up"


class SentinelServer:
    def __init__(self, workdir: Path, primary_port: int, down_after_ms: int, failover_ms: int):
        self.port = free_port()
        self.dir = workdir / f"sentinel-{self.port}"
        self.dir.mkdir(parents=True)
        self.conf = self.dir / "sentinel.conf"  # Sentinel rewrites it: its own copy
        lines = [
            f"port {self.port}",
            "bind 127.0.0.1",
            f'dir "{self.dir}"',
            f'logfile "{self.dir / "sentinel.log"}"',
            f"requirepass {SENTINEL_PASSWORD}",
            f"sentinel sentinel-pass {SENTINEL_PASSWORD}",
            f"sentinel monitor {MASTER} 127.0.0.1 {primary_port} 2",
            f"sentinel auth-user {MASTER} {REDIS_ADMIN}",
            f"sentinel auth-pass {MASTER} {ADMIN_PASSWORD}",
            f"sentinel down-after-milliseconds {MASTER} {down_after_ms}",
            f"sentinel failover-timeout {MASTER} {failover_ms}",
            f"sentinel parallel-syncs {MASTER} 1",
        ]
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, password=SENTINEL_PASSWORD, socket_timeout=2)

    def start(self) -> SentinelServer:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen(
            [binary, str(self.conf), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until(lambda: self.client().ping(), f"sentinel on port {self.port}")
        return self

    def master(self) -> dict:
        return self.client().sentinel_master(MASTER)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def log(self) -> str:
        path = self.dir / "sentinel.log"
        return path.read_text(errors="replace") if path.exists() else ""


class PersistHA:
    """A primary, `replicas` replicas and three Sentinels, all on loopback."""

    def __init__(self, workdir: Path, replicas: int, down_after_ms: int = 1000) -> None:
        self.workdir = workdir
        self.replicas = replicas
        self.down_after_ms = down_after_ms
        self.servers: list[RedisServer] = []  # [the first primary, its replicas]
        self.sentinels: list[SentinelServer] = []

    def start(self) -> PersistHA:
        primary = RedisServer(self.workdir, PERSIST_DB, REPLICATION_AUTH)
        self.servers.append(primary.start())
        follow = (f"replicaof 127.0.0.1 {primary.port}", *REPLICATION_AUTH)
        for _ in range(self.replicas):
            replica = RedisServer(self.workdir, PERSIST_DB, follow)
            self.servers.append(replica.start())
            wait_until(lambda r=replica: in_sync(r), f"replica {replica.port} in sync")
        # Sentinels start after the replicas are attached: their first INFO lists them
        for _ in range(3):
            sentinel = SentinelServer(self.workdir, primary.port, self.down_after_ms, 3000)
            self.sentinels.append(sentinel.start())
        for sentinel in self.sentinels:
            wait_until(
                lambda s=sentinel: (
                    s.master()["num-slaves"] == self.replicas
                    and s.master()["num-other-sentinels"] == 2
                ),
                f"sentinel {sentinel.port} to know the replicas and the other sentinels",
                timeout=60,
                describe=lambda s=sentinel: str(s.master()),
            )
        return self

    def env(self, min_replicas: int, wait_ms: int = 500) -> dict[str, str]:
        """What the service gets: Sentinels, master name, both credentials, database, WAIT."""
        return {
            "REDIS_PERSIST_SENTINELS": ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels),
            "REDIS_PERSIST_MASTER": MASTER,
            "REDIS_PERSIST_SENTINEL_PASSWORD": SENTINEL_PASSWORD,
            "REDIS_PERSIST_USERNAME": REDIS_USER,
            "REDIS_PERSIST_PASSWORD": REDIS_PASSWORD,
            "REDIS_PERSIST_DB": str(PERSIST_DB),
            "REDIS_PERSIST_MIN_REPLICAS": str(min_replicas),
            "REDIS_PERSIST_WAIT_TIMEOUT_MS": str(wait_ms),
        }

    def primary_port(self) -> int | None:
        """The primary's port as the Sentinels that answer agree on it, else None."""
        seen = set()
        for sentinel in self.sentinels:
            try:
                address = sentinel.client().sentinel_get_master_addr_by_name(MASTER)
            except (redis.RedisError, OSError):
                continue
            seen.add(int(address[1]) if address else None)
        return seen.pop() if len(seen) == 1 else None

    def server(self, port: int) -> RedisServer:
        return next(s for s in self.servers if s.port == port)

    def describe(self) -> str:
        return "\n".join(f"--- sentinel {s.port}\n{s.log()[-3000:]}" for s in self.sentinels)

    def stop(self) -> None:
        for sentinel in self.sentinels:  # first: no failover while the servers stop
            sentinel.stop()
        for server in self.servers:
            server.stop()


@dataclass
class Outcome:
    id: str
    sent: float  # monotonic
    status: int  # 0: no HTTP answer
    error: str  # the error code of the body, or the exception


@dataclass
class Writers:
    """Threads that each send one drill write every `interval` seconds (paced, so the rate does
    not rise when the service answers fast) and record every outcome."""

    base: str
    headers: dict[str, str]
    run: str
    threads: int = 2
    interval: float = 0.02
    outcomes: list[Outcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._write, args=(n,), daemon=True)
            for n in range(self.threads)
        ]

    def _write(self, n: int) -> None:
        with requests.Session() as session:
            start, sent = time.monotonic(), 0
            while not self._stop.is_set():
                entry = f"w{n}-{sent}"
                at = time.monotonic()
                try:
                    reply = session.post(
                        self.base + LEDGER,
                        json={"run": self.run, "id": entry},
                        headers=self.headers,
                        timeout=10,
                    )
                    status = reply.status_code
                    error = "" if status == 200 else reply.json().get("error", "")
                except requests.RequestException as err:
                    status, error = 0, type(err).__name__
                with self._lock:
                    self.outcomes.append(Outcome(entry, at, status, error))
                sent += 1
                self._stop.wait(max(0.0, start + sent * self.interval - time.monotonic()))

    def start(self) -> Writers:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def snapshot(self) -> list[Outcome]:
        with self._lock:
            return list(self.outcomes)

    def acked(self, after: float = 0.0) -> list[Outcome]:
        return [o for o in self.snapshot() if o.status == 200 and o.sent > after]

    def refused(self) -> Counter[str]:
        return Counter(f"{o.status} {o.error}" for o in self.snapshot() if o.status != 200)
