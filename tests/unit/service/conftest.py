"""Fixtures: real redis-server processes and the service as a real HTTP server.

The tests never write under service/src: this process imports the service without writing
bytecode (set here, before any test module imports it), the harness's subprocesses run with
PYTHONDONTWRITEBYTECODE=1, and the session fails at its end if anything there changed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sentinel_harness import PersistHA
from svc_harness import (
    PASSWORD,
    SERVICE_SRC,
    RedisServer,
    ServiceProcess,
    service_env,
    source_tree_changes,
    source_tree_snapshot,
    users_json,
)

sys.dont_write_bytecode = True  # in-process imports of slakit_service (service/src)
if str(SERVICE_SRC) not in sys.path:  # the service is a separate distribution under service/
    sys.path.insert(0, str(SERVICE_SRC))
_SOURCE_BEFORE = source_tree_snapshot()  # before any test module of this folder is imported


@pytest.fixture(scope="session", autouse=True)
def service_src_untouched() -> Iterator[None]:
    """Fails the session (an error at its last test's teardown) if anything under service/src
    was created, changed or removed while it ran: __pycache__, *.pyc, stray files."""
    yield
    changes = source_tree_changes(_SOURCE_BEFORE, source_tree_snapshot())
    assert not changes, f"the tests wrote into {SERVICE_SRC}: " + ", ".join(changes[:20])


@pytest.fixture(scope="session")
def password_hash() -> str:
    from slakit_service.auth import hash_password

    return hash_password(PASSWORD)


@pytest.fixture
def redis_factory(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    servers: list[RedisServer] = []

    def make(db: int, start: bool = True, config: tuple[str, ...] = ()) -> RedisServer:
        server = RedisServer(tmp_path, db, config)
        servers.append(server)
        return server.start() if start else server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def persist_ha(tmp_path: Path) -> Iterator[Callable[[int], PersistHA]]:
    """make(replicas): a persist primary, its replicas and three Sentinels, started."""
    made: list[PersistHA] = []

    def make(replicas: int) -> PersistHA:
        ha = PersistHA(tmp_path, replicas)
        made.append(ha)
        return ha.start()

    yield make
    for ha in made:
        ha.stop()


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
