"""A loopback HTTP/1.1 server that answers after a known injected delay.

Delay = fixed_ms + uniform(0, random_ms), slept with a timerfd so the injected delay
is accurate to tens of microseconds. Run as a script; it prints its port and serves
until killed. Paths: /ok (200 after the delay), /fast (200 at once: the client's own
overhead), /status/<code>, /realized?path=/ok (the delays as actually slept for that
path, in order, ms), /stall (the stall window, below), anything else 404.

--tls-cert PEM --tls-key PEM: serve HTTPS instead (ALPN offers h2 first, as HAProxy does;
  /alpn answers the protocol the connection negotiated).

Two optional behaviours make known latency shapes:
--stall-after N --stall-ms D: the N-th request freezes the whole server for D ms, once
  (a GC pause): every request arriving in the window is answered after it ends.
--serial-ms S: one request at a time, each S ms (capacity 1000/S req/s); requests queue
  behind each other, so above that rate the latency grows without bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import ssl
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from slakit.sla.timer import precise_clock

BODY = b'{"ok":true}'


@dataclass
class State:
    """What every connection of one server shares."""

    fixed: float  # seconds
    spread: float  # seconds
    draw: Callable[[], float]
    stall_after: int = 0  # 0: never stall
    stall_s: float = 0.0
    serial_s: float = 0.0  # 0: requests are served concurrently
    count: int = 0
    stall: tuple[float, float] | None = None  # monotonic start, end of the stall
    busy_until: float = 0.0
    realized: dict[str, list[float]] = field(default_factory=dict)  # path -> ms

    def answer_time(self, path: str, arrived: float) -> float:
        self.count += 1
        if self.stall_after and self.count == self.stall_after:
            self.stall = (arrived, arrived + self.stall_s)
        start = arrived
        if self.stall and self.stall[0] <= arrived < self.stall[1]:
            start = self.stall[1]
        if path == "/fast":
            return start
        if self.serial_s:
            start = max(start, self.busy_until)
            self.busy_until = start + self.serial_s
            return self.busy_until
        return start + self.fixed + self.draw() * self.spread


class DelayProtocol(asyncio.Protocol):
    def __init__(self, state: State) -> None:
        self.state = state
        self.buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.clock = precise_clock()

    def connection_lost(self, exc: Exception | None) -> None:
        self.clock.close()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buf[:end].decode("latin-1")
        length = 0
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if len(self.buf) < end + 4 + length:
            return
        self.buf = self.buf[end + 4 + length :]
        path, _, query = head.split(" ")[1].partition("?")
        arrived = time.monotonic()
        if path == "/realized":
            wanted = query.removeprefix("path=") or "/ok"
            self.reply(200, json.dumps(self.state.realized.get(wanted, [])).encode())
            return
        if path == "/stall":
            self.reply(200, json.dumps(self.state.stall).encode())
            return
        if path == "/alpn":
            tls = self.transport.get_extra_info("ssl_object")
            self.reply(200, json.dumps(tls.selected_alpn_protocol() if tls else None).encode())
            return
        when = self.state.answer_time(path, arrived)
        asyncio.get_running_loop().create_task(self.answer(path, when, arrived))

    async def answer(self, path: str, when: float, arrived: float) -> None:
        await self.clock.sleep_until(when)
        status = 200 if path in ("/ok", "/fast") else 404
        if path.startswith("/status/"):
            status = int(path.rsplit("/", 1)[1])
        self.state.realized.setdefault(path, []).append((time.monotonic() - arrived) * 1000.0)
        self.reply(status, BODY)

    def reply(self, status: int, body: bytes) -> None:
        head = (
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.transport.write(head + body)


def golden_sequence() -> Callable[[], float]:
    """Low-discrepancy uniform draws: frac(i * golden ratio) fills [0, 1) evenly, so
    even a few hundred requests follow the uniform distribution's percentiles closely."""
    state = {"i": 0}
    step = (5**0.5 - 1) / 2

    def draw() -> float:
        state["i"] += 1
        return (state["i"] * step) % 1.0

    return draw


async def serve(args: argparse.Namespace) -> None:
    state = State(
        fixed=args.fixed_ms / 1000.0,
        spread=args.random_ms / 1000.0,
        draw=golden_sequence() if args.golden else random.Random(args.seed).random,
        stall_after=args.stall_after,
        stall_s=args.stall_ms / 1000.0,
        serial_s=args.serial_ms / 1000.0,
    )
    loop = asyncio.get_running_loop()
    context = None
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        context.set_alpn_protocols(["h2", "http/1.1"])
    server = await loop.create_server(lambda: DelayProtocol(state), "127.0.0.1", 0, ssl=context)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--fixed-ms", type=float, default=5.0)
    parser.add_argument("--random-ms", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--golden", action="store_true", help="low-discrepancy delays")
    parser.add_argument("--stall-after", type=int, default=0, metavar="N")
    parser.add_argument("--stall-ms", type=float, default=0.0, metavar="D")
    parser.add_argument("--serial-ms", type=float, default=0.0, metavar="S")
    parser.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS with this certificate")
    parser.add_argument("--tls-key", metavar="PEM")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(serve(args))
    except KeyboardInterrupt:
        pass
