"""The harness holds the service to production's rules: the redis role's ACL for the app user,
and a source tree (service/src) that the tests never write into."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from svc_harness import (
    ACL_LINES,
    REDIS_APP_ACL,
    REDIS_USER,
    SERVICE_SRC,
    source_tree_changes,
    source_tree_snapshot,
)

# The role's ACL forbids these to the app ("-@dangerous", "-@scripting").
FORBIDDEN = [
    ("KEYS", "*"),
    ("FLUSHALL",),
    ("FLUSHDB",),
    ("CONFIG", "GET", "maxmemory"),
    ("CLIENT", "LIST"),  # in @connection too: -@dangerous wins
    ("SWAPDB", "0", "1"),  # in @write too
    ("SHUTDOWN", "NOSAVE"),
    ("ACL", "LIST"),
    ("EVAL", "return 1", "0"),  # -@scripting
]


def test_the_app_user_has_the_role_acl_line() -> None:
    acl = REDIS_APP_ACL  # as Ansible resolves redis_app_acl
    assert "{" not in acl and "-@dangerous" in acl.split() and "~*" not in acl.split()
    line = next(ln for ln in ACL_LINES if ln.startswith(f"user {REDIS_USER} "))
    assert line.endswith(f" resetkeys resetchannels {acl}")
    assert any(ln.startswith("user default off ") for ln in ACL_LINES)  # no usable default user


@pytest.mark.parametrize("command", FORBIDDEN, ids=lambda c: " ".join(c))
def test_a_command_the_role_forbids_fails_for_the_app(redis_factory, command) -> None:
    server = redis_factory(5)
    with pytest.raises(redis.exceptions.NoPermissionError):
        server.app_client().execute_command(*command)
    assert server.client().ping()  # still up: the admin user inspects it


def test_the_app_user_runs_what_the_service_uses(redis_factory) -> None:
    app = redis_factory(6).app_client()  # the service's keys all start with "slakit:"
    assert app.set("slakit:t:k", "v", ex=60) and app.set("slakit:t:n", "1", nx=True, px=5000)
    assert app.get("slakit:t:k") == b"v" and app.pttl("slakit:t:n") > 0
    with app.pipeline(transaction=True) as pipe:
        pipe.lpush("slakit:t:l", "a").ltrim("slakit:t:l", 0, 9).expire("slakit:t:l", 60)
        pipe.execute()
    assert app.lrange("slakit:t:l", 0, -1) == [b"a"]


def test_the_source_tree_check_sees_bytecode(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("x = 1\n")
    before = source_tree_snapshot(tmp_path)
    (tmp_path / "pkg" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "pkg" / "mod.py").write_text("x = 22\n")
    assert source_tree_changes(before, source_tree_snapshot(tmp_path)) == [
        "changed pkg/mod.py",
        "created pkg/__pycache__",
        "created pkg/__pycache__/mod.cpython-311.pyc",
    ]


def test_running_the_service_writes_nothing_under_service_src(redis_pair, start_service) -> None:
    before = source_tree_snapshot()
    service = start_service(*redis_pair, workers=2)
    assert service.get("/api/v1/dashboard/executive").status_code == 200
    service.stop()
    assert source_tree_changes(before, source_tree_snapshot()) == [], SERVICE_SRC
