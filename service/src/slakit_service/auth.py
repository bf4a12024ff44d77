"""Users from SLAKIT_USERS (scrypt hashes), signed expiring tokens (HS256 JWT), roles.

Hash strings use werkzeug's scrypt format, `scrypt:<n>:<r>:<p>$<salt>$<hex digest>`, so
hashes made by either tool verify in both.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import secrets
import string
import time
from dataclasses import dataclass

from .errors import ApiError

ROLES = frozenset({"reader", "operator"})
SCRYPT_N, SCRYPT_R, SCRYPT_P = 32768, 8, 1
ISSUER = "slakit-service"
_SALT_CHARS = string.ascii_letters + string.digits


def hash_password(password: str, salt: str | None = None) -> str:
    salt = salt or "".join(secrets.choice(_SALT_CHARS) for _ in range(16))
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt:{SCRYPT_N}:{SCRYPT_R}:{SCRYPT_P}${salt}${digest.hex()}"


def _scrypt(password: str, salt: str, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt.encode(), n=n, r=r, p=p, maxmem=132 * n * r * p, dklen=64
    )


def parse_hash(stored: str) -> tuple[int, int, int, str, bytes]:
    """(n, r, p, salt, digest); ValueError when `stored` is not a usable scrypt hash."""
    try:
        method, salt, digest_hex = stored.split("$")
        name, n, r, p = method.split(":")
        n_i, r_i, p_i = int(n), int(r), int(p)
        digest = bytes.fromhex(digest_hex)
    except (ValueError, binascii.Error) as err:
        raise ValueError("not a scrypt:<n>:<r>:<p>$<salt>$<hex> hash") from err
    if name != "scrypt" or n_i < 2 or n_i & (n_i - 1) or n_i > 2**20 or not 0 < r_i * p_i <= 64:
        raise ValueError("unsupported scrypt parameters")
    if not salt or not digest:
        raise ValueError("empty salt or digest")
    return n_i, r_i, p_i, salt, digest


def verify_password(password: str, stored: str) -> bool:
    n, r, p, salt, digest = parse_hash(stored)
    return hmac.compare_digest(_scrypt(password, salt, n, r, p)[: len(digest)], digest)


@dataclass(frozen=True)
class User:
    name: str
    password_hash: str
    roles: frozenset[str]


def parse_users(raw: str) -> dict[str, User]:
    """SLAKIT_USERS: {"name": {"password_hash": "...", "roles": ["operator"]}}."""
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ValueError(f"SLAKIT_USERS is not JSON ({err.msg})") from None
    if not isinstance(doc, dict) or not doc:
        raise ValueError("SLAKIT_USERS must be a non-empty JSON object of users")
    users = {}
    for name, spec in doc.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("password_hash"), str):
            raise ValueError(f"SLAKIT_USERS: user {name!r} needs a password_hash string")
        roles = spec.get("roles", ["reader"])
        if not isinstance(roles, list) or not set(roles) <= ROLES or not roles:
            raise ValueError(f"SLAKIT_USERS: user {name!r} roles must be a list of {sorted(ROLES)}")
        try:
            parse_hash(spec["password_hash"])
        except ValueError as err:
            raise ValueError(f"SLAKIT_USERS: user {name!r}: {err}") from None
        users[name] = User(name, spec["password_hash"], frozenset(roles))
    return users


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_HEADER = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())


def issue_token(secret: str, user: User, ttl: int, now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": ISSUER,
        "sub": user.name,
        "roles": sorted(user.roles),
        "iat": issued,
        "exp": issued + ttl,
        "jti": secrets.token_hex(8),
    }
    body = f"{_HEADER}.{_b64(json.dumps(claims, separators=(',', ':')).encode())}"
    signature = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(signature)}"


def verify_token(secret: str, token: str, now: float | None = None) -> dict:
    """The token's claims; ValueError naming what is wrong otherwise."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("malformed token")
    header, payload, signature = parts
    expected = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    try:
        valid = hmac.compare_digest(_unb64(signature), expected)
        head, claims = json.loads(_unb64(header)), json.loads(_unb64(payload))
    except (ValueError, binascii.Error):
        raise ValueError("malformed token") from None
    if not valid or not isinstance(head, dict) or head.get("alg") != "HS256":
        raise ValueError("bad token signature")
    if not isinstance(claims, dict) or claims.get("iss") != ISSUER:
        raise ValueError("token not issued by this service")
    exp = claims.get("exp")
    if not isinstance(exp, int) or exp <= (now if now is not None else time.time()):
        raise ValueError("token expired")
    return claims


class Authenticator:
    """Logins and role checks; answers 503 when the service has no auth configuration."""

    def __init__(self, secret: str, users_json: str, token_ttl: int) -> None:
        self.secret, self.token_ttl = secret, token_ttl
        self.users: dict[str, User] = {}
        self.problem = ""
        if not secret:
            self.problem = "SLAKIT_TOKEN_SECRET is not set"
        elif not users_json:
            self.problem = "SLAKIT_USERS is not set"
        else:
            try:
                self.users = parse_users(users_json)
            except ValueError as err:
                self.problem = str(err)
        # scrypt is slow and memory-hungry by design: bound how many run at once. Every
        # login pays it (no memo of past successes), so the token endpoint's SLA is honest.
        self._slots = asyncio.Semaphore(2)
        self._dummy_hash = ""  # for unknown users, so that they cost as much as known ones

    @property
    def status(self) -> str:
        return "configured" if not self.problem else "not_configured"

    def _require_config(self) -> None:
        if self.problem:
            raise ApiError(
                503, "auth_not_configured", f"authentication unavailable: {self.problem}"
            )

    async def login(self, username: str, password: str) -> dict:
        self._require_config()
        user = self.users.get(username)
        if user is None and not self._dummy_hash:
            self._dummy_hash = await asyncio.to_thread(hash_password, secrets.token_hex(8))
        stored = user.password_hash if user else self._dummy_hash
        async with self._slots:
            ok = await asyncio.to_thread(verify_password, password, stored)
        if not ok or user is None:
            raise ApiError(401, "invalid_credentials", "wrong username or password")
        token = issue_token(self.secret, user, self.token_ttl)
        return {"access_token": token, "token_type": "bearer", "expires_in": self.token_ttl}

    def require(self, authorization: str | None, role: str) -> dict:
        self._require_config()
        challenge = {"WWW-Authenticate": 'Bearer realm="slakit"'}
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "missing_token", "send Authorization: Bearer <token>", challenge)
        try:
            claims = verify_token(self.secret, token.strip())
        except ValueError as err:
            challenge = {"WWW-Authenticate": 'Bearer realm="slakit", error="invalid_token"'}
            raise ApiError(401, "invalid_token", str(err), challenge) from None
        roles = claims.get("roles")
        if not isinstance(roles, list) or role not in roles:
            raise ApiError(403, "forbidden", f"this needs the {role!r} role")
        return claims
