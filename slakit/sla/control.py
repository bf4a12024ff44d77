"""Control-plane calls made once per run with aiohttp: operator token, cache stats.

Over HTTPS they verify the server as the measuring client does (`http.client_ssl_context`:
the run's CA file, else the system trust store; name or address checked).

Credentials come from environment variables named in the spec (never from the spec
itself or argv); `${NAME}` in an endpoint's path, headers or body is replaced with
the variable's value when the request is prepared. Values never reach reports.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Mapping
from typing import Any

import aiohttp

from slakit.errors import SlakitError
from slakit.sla.http import client_ssl_context, describe_tls_error
from slakit.sla.model import CacheReport
from slakit.sla.spec import AuthScheme

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
CONTROL_TIMEOUT_S = 10.0


class MissingCredentials(SlakitError):
    """Environment variables an endpoint needs are not set (exit 2)."""

    def __init__(self, what: str, names: list[str]) -> None:
        self.names = sorted(set(names))
        super().__init__(
            f"{what} needs environment variable(s) {', '.join(self.names)}: set them, "
            "or pass --skip-missing-credentials to report such endpoints as skipped"
        )


def variables_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return _VAR.findall(value)
    if isinstance(value, Mapping):
        return [n for k, v in value.items() for n in variables_in(k) + variables_in(v)]
    if isinstance(value, list | tuple):
        return [n for item in value for n in variables_in(item)]
    return []


def substitute(value: Any, env: Mapping[str, str]) -> Any:
    """Replace ${NAME} in strings (recursively); raise MissingCredentials when unset."""
    missing = [n for n in variables_in(value) if n not in env]
    if missing:
        raise MissingCredentials("the request", missing)
    if isinstance(value, str):
        return _VAR.sub(lambda m: env[m.group(1)], value)
    if isinstance(value, Mapping):
        return {substitute(k, env): substitute(v, env) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [substitute(item, env) for item in value]
    return value


def credentials(scheme: AuthScheme, env: Mapping[str, str] | None = None) -> tuple[str, str]:
    env = os.environ if env is None else env
    missing = [n for n in (scheme.username_env, scheme.password_env) if not env.get(n)]
    if missing:
        raise MissingCredentials(f"auth scheme {scheme.name!r}", missing)
    return env[scheme.username_env], env[scheme.password_env]


def _tls(url: str, ca_file: str | None) -> ssl.SSLContext | bool:
    """aiohttp's `ssl` argument: the verifying context for https, its default otherwise."""
    return client_ssl_context(ca_file) if url.startswith("https:") else True


async def fetch_token(
    base_url: str,
    scheme: AuthScheme,
    env: Mapping[str, str] | None = None,
    ca_file: str | None = None,
) -> str:
    """POST the credentials to the token endpoint once; return the bearer token."""
    username, password = credentials(scheme, env)
    url = base_url.rstrip("/") + scheme.token_path
    timeout = aiohttp.ClientTimeout(total=CONTROL_TIMEOUT_S)
    body = {"username": username, "password": password}
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(url, json=body, ssl=_tls(url, ca_file)) as resp,
        ):
            if resp.status != 200:
                raise SlakitError(
                    f"could not obtain a {scheme.name!r} token: POST {scheme.token_path} "
                    f"answered HTTP {resp.status} (check {scheme.username_env} / "
                    f"{scheme.password_env})"
                )
            data = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError) as err:
        raise SlakitError(f"cannot reach {base_url}: {_describe(err, ca_file)}") from None
    except ValueError:
        raise SlakitError(f"POST {scheme.token_path} did not answer JSON") from None
    token = data.get("access_token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        raise SlakitError(f"POST {scheme.token_path} answered without an access_token")
    return token


async def fetch_cache_stats(
    base_url: str, path: str | None, ca_file: str | None = None
) -> CacheReport:
    """Read the service's cache hit rates; anything missing or odd is 'not available'."""
    if not path:
        return CacheReport(False, "no stats_path in the spec")
    timeout = aiohttp.ClientTimeout(total=5.0)
    url = base_url.rstrip("/") + path
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url, ssl=_tls(url, ca_file)) as resp,
        ):
            if resp.status != 200:
                return CacheReport(False, f"GET {path} answered HTTP {resp.status}")
            data = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError) as err:
        return CacheReport(False, f"GET {path} failed: {_describe(err, ca_file)}")
    except ValueError:
        return CacheReport(False, f"GET {path} did not answer JSON")
    return parse_cache_stats(data, path)


def parse_cache_stats(data: Any, path: str = "stats") -> CacheReport:
    cache = data.get("cache") if isinstance(data, dict) else None
    if not isinstance(cache, dict):
        return CacheReport(False, f"{path} has no 'cache' object")

    def rate(value: Any) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value) if 0.0 <= value <= 1.0 else None

    tiers = {
        tier: rate(cache[tier].get("hit_rate")) if isinstance(cache.get(tier), dict) else None
        for tier in ("l0", "l1", "l2")
    }
    overall = rate(cache.get("overall_hit_rate"))
    workers = data.get("workers")
    if overall is None and all(v is None for v in tiers.values()):
        return CacheReport(False, f"{path} has no hit rates in [0, 1]")
    return CacheReport(
        True,
        "",
        tiers["l0"],
        tiers["l1"],
        tiers["l2"],
        overall,
        workers if isinstance(workers, int) and not isinstance(workers, bool) else None,
    )


def _describe(err: BaseException, ca_file: str | None = None) -> str:
    if isinstance(err, TimeoutError):
        return "timed out"
    if isinstance(err, aiohttp.ClientConnectorCertificateError):
        return describe_tls_error(err.certificate_error, ca_file)  # type: ignore[arg-type]
    if isinstance(err, aiohttp.ClientConnectorSSLError) and isinstance(err.os_error, ssl.SSLError):
        return describe_tls_error(err.os_error, ca_file)
    if isinstance(err, aiohttp.ClientConnectorError):
        return (err.strerror or str(err.os_error) or "connection failed").lower()
    return str(err) or type(err).__name__
