"""A lean HTTP/1.1 client on asyncio protocols: the measuring path of the checker.

Why not aiohttp here: on this project's bench (bare ASGI app, 2 cores) aiohttp's
per-request overhead put its p50 at 3x wrk's at the same concurrency; this client, one
callback-driven protocol per keep-alive connection like wrk's, stays within 1.25x.
It timestamps each phase itself (connect, first byte, complete) with `time.monotonic`.
aiohttp still serves the control-plane calls (token, stats), see `control.py`.

HTTPS: every connection verifies the server's certificate against the CA file of the
target (`--cacert`, else the system trust store), its name or IP address included, and
offers only http/1.1 by ALPN (this client speaks nothing else). The TCP connect and the
TLS handshake are separate phases: the socket is connected plain, then `loop.start_tls`
upgrades it, each timed (curl's time_connect, and time_appconnect minus time_connect).
The plain-HTTP path is the same as before: one `create_connection`, no TLS code.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from slakit.errors import SlakitError

USER_AGENT = "slakit-sla/1"
monotonic = time.monotonic


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    base_path: str
    ca_file: str | None = None  # https: the CA bundle to verify with; None = system store

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host_header}{self.base_path}"


def parse_base_url(url: str, ca_file: str | None = None) -> Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SlakitError(f"--base-url must look like http://host:port (got {url!r})")
    if parts.query or parts.fragment:
        # the endpoints' paths are appended to the base URL: a query or fragment would break them
        raise SlakitError(f"--base-url must not carry a query or fragment (got {url!r})")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise SlakitError(f"--base-url has an invalid port: {url!r}") from None
    return Target(parts.scheme, parts.hostname, port, parts.path.rstrip("/"), ca_file or None)


@lru_cache(maxsize=8)
def client_ssl_context(ca_file: str | None = None) -> ssl.SSLContext:
    """A verifying client context: `ca_file`'s CAs (None: the system trust store), the
    server's name or IP address checked, ALPN http/1.1 only. One per CA file and process."""
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except ssl.SSLError as err:  # before OSError: an SSLError is one
        raise SlakitError(
            f"CA file {ca_file}: not a PEM certificate bundle ({_ssl_reason(err)})"
        ) from None
    except OSError as err:
        raise SlakitError(f"CA file {ca_file}: {_describe(err)}") from None
    context.set_alpn_protocols(["http/1.1"])
    return context


def trust_of(ca_file: str | None) -> str:
    return f"CA file {ca_file}" if ca_file else "the system trust store"


def describe_tls_error(err: ssl.SSLError, ca_file: str | None) -> str:
    """One line for a failed handshake: what did not verify, and against what."""
    if isinstance(err, ssl.SSLCertVerificationError):
        why = (err.verify_message or _ssl_reason(err)).rstrip(".")
        return f"TLS certificate verify failed: {why} (verified with {trust_of(ca_file)})"
    return f"TLS handshake failed: {_ssl_reason(err)}"


def _ssl_reason(err: ssl.SSLError) -> str:
    reason = getattr(err, "reason", None)
    if reason:
        return str(reason).replace("_", " ").lower()
    return str(err) or type(err).__name__


@dataclass(frozen=True)
class PreparedRequest:
    raw: bytes
    head_only: bool


def prepare_request(
    target: Target, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> PreparedRequest:
    lines = [
        f"{method} {target.base_path}{path} HTTP/1.1",
        f"Host: {target.host_header}",
        f"User-Agent: {USER_AGENT}",
        "Accept: */*",
    ]
    payload = b""
    given = {k.lower() for k in (headers or {})}
    if body is not None:
        if isinstance(body, str | bytes):
            payload = body.encode() if isinstance(body, str) else body
        else:
            payload = json.dumps(body, separators=(",", ":")).encode()
            if "content-type" not in given:
                lines.append("Content-Type: application/json")
    if body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(payload)}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return PreparedRequest(head + payload, method == "HEAD")


class Exchange:
    """One request: intended send time, phase timestamps, outcome."""

    __slots__ = (
        "connect_s",
        "endpoint",
        "error",
        "intended",
        "lag",
        "request",
        "retried",
        "reused",
        "status",
        "t_done",
        "t_first",
        "t_send",
        "tls_s",
    )

    def __init__(self, request: PreparedRequest, intended: float, endpoint: int = 0) -> None:
        self.request = request
        self.intended = intended
        self.endpoint = endpoint
        self.lag = 0.0
        self.t_send = 0.0
        self.t_first = 0.0
        self.t_done = 0.0
        self.connect_s = -1.0
        self.tls_s = -1.0
        self.status = 0
        self.error: str | None = None
        self.reused = False
        self.retried = False


class ProtocolError(Exception):
    pass


class ResponseParser:
    """Incremental HTTP/1.1 response parser: Content-Length, chunked, or until close."""

    __slots__ = ("buf", "keep_alive", "mode", "no_body", "remaining", "status")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.reset(False)

    def reset(self, no_body: bool) -> None:
        if self.buf:
            self.buf = bytearray()
        self.mode = "head"
        self.no_body = no_body
        self.remaining = 0
        self.status = 0
        self.keep_alive = True

    def feed(self, data: bytes) -> bool:
        """Add bytes; True once the response is complete."""
        if self.mode == "head" and not self.buf:
            # fast path: the whole head arrived in one piece (the usual case)
            end = data.find(b"\r\n\r\n")
            if end >= 0:
                self._parse_head(data[:end])
                if self.mode == "length" and len(data) - end - 4 >= self.remaining:
                    self.mode = "done"
                    return True
                if self.mode == "done":
                    return True
                data = data[end + 4 :]
        self.buf += data
        if self.mode == "head":
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > 65536:
                    raise ProtocolError("response head too large")
                return False
            self._parse_head(bytes(self.buf[:end]))
            del self.buf[: end + 4]
        if self.mode == "length":
            if len(self.buf) < self.remaining:
                return False
            del self.buf[: self.remaining]
            self.mode = "done"
            return True
        if self.mode.startswith("chunk"):
            return self._feed_chunked()
        return self.mode == "done"

    def finish_at_eof(self) -> bool:
        if self.mode == "close":
            self.mode = "done"
            return True
        return False

    def _parse_head(self, head: bytes) -> None:
        if head[:5] != b"HTTP/" or head[8:9] != b" ":
            raise ProtocolError(f"bad status line {head[:40]!r}")
        try:
            self.status = int(head[9:12])
        except ValueError:
            raise ProtocolError(f"bad status line {head[:40]!r}") from None
        lower = head.lower()
        length = None
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            end = lower.find(b"\r\n", at + 17)
            length = int(lower[at + 17 : end if end >= 0 else len(lower)])
        chunked = b"\r\ntransfer-encoding:" in lower and b"chunked" in lower
        if b"\r\nconnection:" in lower:
            at = lower.find(b"\r\nconnection:")
            end = lower.find(b"\r\n", at + 13)
            connection = lower[at + 13 : end if end >= 0 else len(lower)].strip()
        else:
            connection = b""
        self.keep_alive = connection != b"close" and (
            head[5:8] == b"1.1" or connection == b"keep-alive"
        )
        if self.no_body or self.status in (204, 304) or 100 <= self.status < 200:
            self.mode = "done"
        elif chunked:
            self.mode = "chunk-size"
        elif length is not None:
            self.mode, self.remaining = "length", length
        else:
            self.mode, self.keep_alive = "close", False

    def _feed_chunked(self) -> bool:
        while True:
            if self.mode == "chunk-size":
                end = self.buf.find(b"\r\n")
                if end < 0:
                    return False
                size = int(bytes(self.buf[:end]).split(b";")[0].strip() or b"0", 16)
                del self.buf[: end + 2]
                self.mode, self.remaining = (
                    ("chunk-trailer", 0) if size == 0 else ("chunk-data", size + 2)
                )
            elif self.mode == "chunk-data":
                if len(self.buf) < self.remaining:
                    return False
                del self.buf[: self.remaining]
                self.mode = "chunk-size"
            else:  # trailer lines until an empty one
                end = self.buf.find(b"\r\n")
                if end < 0:
                    return False
                del self.buf[: end + 2]
                if end == 0:
                    self.mode = "done"
                    return True


class _Connection(asyncio.Protocol):
    __slots__ = ("closed", "exchange", "opened", "parser", "pool", "transport", "uses")

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.exchange: Exchange | None = None
        self.parser = ResponseParser()
        self.closed = False
        self.opened = False  # counted in the pool: set once connected (and TLS done)
        self.uses = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.parser.reset(exchange.request.head_only)
        self.uses += 1
        exchange.reused = self.uses > 1
        self.pool.busy.add(self)
        exchange.t_send = monotonic()
        self.transport.write(exchange.request.raw)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None:
            self.abort()
            return
        if not exchange.t_first:
            exchange.t_first = monotonic()
        try:
            done = self.parser.feed(data)
        except (ProtocolError, ValueError) as err:
            self.fail(f"protocol error: {err}")
            return
        if done:
            self._complete(exchange)

    def eof_received(self) -> bool:
        if self.exchange is not None and self.parser.finish_at_eof():
            self._complete(self.exchange)
        return False

    def _complete(self, exchange: Exchange) -> None:
        exchange.t_done = monotonic()
        exchange.status = self.parser.status
        self.exchange = None
        self.pool.busy.discard(self)
        keep = self.parser.keep_alive and not self.closed
        if not keep:
            self.abort()
        self.pool.completed(self, exchange, keep)

    def fail(self, reason: str) -> None:
        exchange = self.exchange
        self.exchange = None
        self.pool.busy.discard(self)
        self.abort()
        if exchange is not None:
            exchange.error = reason
            exchange.t_done = monotonic()
            self.pool.on_done(exchange)

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.opened:  # else the failed connect or handshake is reported by the pool
            self.pool.lost(self, exc)


class ConnectionPool:
    """Keep-alive connections to one target, at most `limit`; callers queue beyond that.

    `on_done(exchange)` is called exactly once per submitted exchange, with either a
    status or an `error`.
    """

    def __init__(
        self,
        target: Target,
        limit: int,
        on_done: Callable[[Exchange], None],
        timeout_s: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.target = target
        self.limit = limit
        self.on_done = on_done
        self.timeout_s = timeout_s
        self.idle: deque[_Connection] = deque()
        self.waiting: deque[Exchange] = deque()
        self.busy: set[_Connection] = set()
        self.open_count = 0
        self.connections_made = 0
        self._ssl = ssl_context if target.scheme == "https" else None
        if target.scheme == "https" and self._ssl is None:
            self._ssl = client_ssl_context(target.ca_file)
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, exchange: Exchange) -> None:
        idle = self.idle
        while idle:
            conn = idle.popleft()
            if not conn.closed:
                conn.send(exchange)
                return
        if self.open_count < self.limit:
            self.open_count += 1
            task = asyncio.get_running_loop().create_task(self._open_and_send(exchange))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        self.waiting.append(exchange)

    async def _open_and_send(self, exchange: Exchange) -> None:
        conn = _Connection(self)
        try:
            if self._ssl is None:
                started = monotonic()
                await asyncio.wait_for(
                    asyncio.get_running_loop().create_connection(
                        lambda: conn, self.target.host, self.target.port
                    ),
                    timeout=self.timeout_s,
                )
                exchange.connect_s = monotonic() - started
            else:
                await asyncio.wait_for(self._dial_tls(conn, exchange), timeout=self.timeout_s)
        except (OSError, TimeoutError) as err:  # ssl.SSLError is an OSError
            conn.abort()
            self.open_count -= 1
            if isinstance(err, ssl.SSLError):
                exchange.error = f"connect: {describe_tls_error(err, self.target.ca_file)}"
            elif self._ssl is not None and exchange.connect_s >= 0:  # TCP up, handshake not
                exchange.error = f"connect: TLS handshake failed: {_describe(err)}"
            else:
                exchange.error = f"connect: {_describe(err)}"
            exchange.connect_s = exchange.tls_s = -1.0
            exchange.t_done = monotonic()
            self.on_done(exchange)
            self._serve_waiting()
            return
        self.connections_made += 1
        conn.opened = True
        if conn.closed:  # the server hung up right after the handshake
            self.open_count -= 1
            exchange.error = "connection closed"
            exchange.t_done = monotonic()
            self.on_done(exchange)
            self._serve_waiting()
            return
        conn.send(exchange)

    async def _dial_tls(self, conn: _Connection, exchange: Exchange) -> None:
        """TCP connect, then the TLS handshake on that socket, each phase timed."""
        loop = asyncio.get_running_loop()
        started = monotonic()
        transport, _ = await loop.create_connection(
            lambda: conn, self.target.host, self.target.port
        )
        connected = monotonic()
        exchange.connect_s = connected - started
        try:
            tls = await loop.start_tls(
                transport,
                conn,
                self._ssl,  # type: ignore[arg-type]
                server_hostname=self.target.host,
                ssl_handshake_timeout=self.timeout_s,
            )
        except BaseException:
            transport.abort()
            raise
        exchange.tls_s = monotonic() - connected
        conn.transport = tls  # type: ignore[assignment]

    def completed(self, conn: _Connection, exchange: Exchange, keep: bool) -> None:
        self.on_done(exchange)
        if keep:
            if self.waiting:
                conn.send(self.waiting.popleft())
            else:
                self.idle.append(conn)

    def lost(self, conn: _Connection, exc: Exception | None) -> None:
        self.open_count -= 1
        self.busy.discard(conn)
        exchange, conn.exchange = conn.exchange, None
        if exchange is not None:
            if exchange.reused and not exchange.t_first and not exchange.retried:
                # the server closed an idle keep-alive connection as we reused it: retry once
                exchange.retried = True
                exchange.t_send = 0.0
                self.submit(exchange)
            else:
                exchange.error = "connection closed" + (f": {_describe(exc)}" if exc else "")
                exchange.t_done = monotonic()
                self.on_done(exchange)
        self._serve_waiting()

    def _serve_waiting(self) -> None:
        while self.waiting and (self.idle or self.open_count < self.limit):
            self.submit(self.waiting.popleft())

    def sweep(self, now: float) -> None:
        """Fail requests in flight for longer than the timeout."""
        limit = self.timeout_s
        for conn in [c for c in self.busy if c.exchange and now - c.exchange.t_send > limit]:
            conn.fail(f"timeout after {limit:g} s")

    def fail_outstanding(self, reason: str) -> None:
        for conn in list(self.busy):
            conn.fail(reason)
        while self.waiting:
            exchange = self.waiting.popleft()
            exchange.error = reason
            exchange.t_done = monotonic()
            self.on_done(exchange)

    @property
    def outstanding(self) -> int:
        return len(self.busy) + len(self.waiting) + len(self._tasks)

    def close(self) -> None:
        for conn in list(self.idle) + list(self.busy):
            conn.abort()
        self.idle.clear()


def _describe(err: BaseException | None) -> str:
    if isinstance(err, TimeoutError):
        return "timed out"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror.lower()
    return str(err) or type(err).__name__
