"""Logins, tokens and roles; and the service without auth configuration."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time

from slakit_service.auth import User, hash_password, issue_token, verify_password
from svc_harness import NO_BYTECODE, OPERATOR, PASSWORD, READER, SERVICE_SRC, TOKEN_SECRET

WARM = "/api/v1/cache/warm"


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_login_and_token_checks(redis_pair, start_service) -> None:
    service = start_service(*redis_pair, SLAKIT_TOKEN_TTL_SECONDS="120")
    reply = service.post("/api/v1/auth/token", json={"username": OPERATOR, "password": PASSWORD})
    assert reply.status_code == 200
    body = reply.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 120
    assert service.post(WARM, headers={"Authorization": f"Bearer {body['access_token']}"}).ok

    for username, password in ((OPERATOR, "wrong"), ("nobody", PASSWORD), (OPERATOR, "")):
        denied = service.post(
            "/api/v1/auth/token", json={"username": username, "password": password}
        )
        assert denied.status_code in (401, 422)
        assert "error" in denied.json()
    wrong = service.post("/api/v1/auth/token", json={"username": OPERATOR, "password": "x"})
    unknown = service.post("/api/v1/auth/token", json={"username": "nobody", "password": "x"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()  # no hint whether the user exists

    operator = User(OPERATOR, "", frozenset({"operator"}))
    expired = issue_token(TOKEN_SECRET, operator, ttl=60, now=time.time() - 3600)
    forged = issue_token("some-other-secret-entirely", operator, ttl=600)
    header, _, signature = service.token(READER).split(".")
    escalated = ".".join(
        [header, _b64({"iss": "slakit-service", "sub": READER, "roles": ["operator"],
                       "exp": int(time.time()) + 600}), signature]
    )  # fmt: skip
    unsigned = ".".join([_b64({"alg": "none"}), _b64({"sub": OPERATOR, "roles": ["operator"]}), ""])
    for bad in (expired, forged, escalated, unsigned, "garbage", "a.b.c"):
        reply = service.post(WARM, headers={"Authorization": f"Bearer {bad}"})
        assert reply.status_code == 401, bad
        assert reply.json()["error"] == "invalid_token"
    assert "expired" in service.post(WARM, headers={"Authorization": f"Bearer {expired}"}).text
    basic = service.post(WARM, headers={"Authorization": "Basic b3BzOnB3"})
    assert basic.status_code == 401
    reader = service.post(WARM, headers=service.bearer(READER))
    assert reader.status_code == 403 and reader.json()["error"] == "forbidden"


def test_without_auth_configuration_reads_work_and_auth_answers_503(
    redis_pair, start_service
) -> None:
    for env in ({"SLAKIT_TOKEN_SECRET": ""}, {"SLAKIT_USERS": "{not json"}, {"SLAKIT_USERS": ""}):
        service = start_service(*redis_pair, **env)
        assert service.get("/api/v1/health").json()["status"] == "ok"
        assert service.get("/api/v1/dashboard/executive").status_code == 200
        assert service.get("/api/v1/health/comprehensive").json()["auth"] == "not_configured"
        login = service.post(
            "/api/v1/auth/token", json={"username": OPERATOR, "password": PASSWORD}
        )
        assert login.status_code == 503
        assert login.json()["error"] == "auth_not_configured"
        assert service.post(WARM, headers={"Authorization": "Bearer x.y.z"}).status_code == 503
        service.stop()


def test_hashpw_cli_prints_a_hash_that_verifies() -> None:
    env = {"PYTHONPATH": str(SERVICE_SRC), **NO_BYTECODE}
    done = subprocess.run(
        [sys.executable, "-m", "slakit_service.hashpw"],
        input="s3cret pass\n", capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    stored = done.stdout.strip()
    assert stored.startswith("scrypt:")
    assert verify_password("s3cret pass", stored)
    assert not verify_password("s3cret pas", stored)
    assert stored != hash_password("s3cret pass")  # salted
    empty = subprocess.run(
        [sys.executable, "-m", "slakit_service.hashpw"],
        input="", capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert empty.returncode != 0 and "error" in empty.stderr
