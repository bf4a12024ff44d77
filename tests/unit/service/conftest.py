"""Fixtures: real redis-server processes and the service as a real HTTP server."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from svc_harness import (
    PASSWORD,
    SERVICE_SRC,
    RedisServer,
    ServiceProcess,
    service_env,
    users_json,
)

if str(SERVICE_SRC) not in sys.path:  # the service is a separate distribution under service/
    sys.path.insert(0, str(SERVICE_SRC))


@pytest.fixture(scope="session")
def password_hash() -> str:
    from slakit_service.auth import hash_password

    return hash_password(PASSWORD)


@pytest.fixture
def redis_factory(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    servers: list[RedisServer] = []

    def make(db: int, start: bool = True) -> RedisServer:
        server = RedisServer(tmp_path, db)
        servers.append(server)
        return server.start() if start else server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def redis_pair(redis_factory: Callable[..., RedisServer]) -> tuple[RedisServer, RedisServer]:
    """(cache instance on db 5, persist instance on db 6), as in production."""
    return redis_factory(5), redis_factory(6)


@pytest.fixture
def start_service(tmp_path: Path, password_hash: str) -> Iterator[Callable[..., ServiceProcess]]:
    started: list[ServiceProcess] = []

    def start(
        l1: RedisServer | None, l2: RedisServer | None, workers: int = 0, **env: str
    ) -> ServiceProcess:
        environment = service_env(l1, l2, tmp_path / "stats", users_json(password_hash), **env)
        service = ServiceProcess(environment, tmp_path, workers)
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()
