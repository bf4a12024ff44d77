"""A loopback HTTP/1.1 server that answers after a known injected delay.

Delay = fixed_ms + uniform(0, random_ms), slept with a timerfd so the injected delay
is accurate to tens of microseconds. Run as a script; it prints its port and serves
until killed. Paths: /ok (200 after the delay), /status/<code>, /realized (the delays as actually
slept, in order, ms), anything else 404.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from slakit.sla.timer import precise_clock

BODY = b'{"ok":true}'


class DelayProtocol(asyncio.Protocol):
    def __init__(
        self, fixed: float, spread: float, draw: Callable[[], float], realized: list[float]
    ) -> None:
        self.fixed, self.spread, self.draw, self.realized = fixed, spread, draw, realized
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
        path = head.split(" ")[1]
        arrived = time.monotonic()
        if path == "/realized":
            self.reply(200, json.dumps(self.realized).encode())
            return
        delay = (self.fixed + self.draw() * self.spread) / 1000.0
        asyncio.get_running_loop().create_task(self.answer(path, arrived + delay, arrived))

    async def answer(self, path: str, when: float, arrived: float) -> None:
        await self.clock.sleep_until(when)
        status = 200 if path == "/ok" else 404
        if path.startswith("/status/"):
            status = int(path.rsplit("/", 1)[1])
        self.realized.append((time.monotonic() - arrived) * 1000.0)
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


async def serve(fixed: float, spread: float, seed: int, golden: bool) -> None:
    draw = golden_sequence() if golden else random.Random(seed).random
    loop = asyncio.get_running_loop()
    realized: list[float] = []  # delays as actually slept, ms; GET /realized lists them
    server = await loop.create_server(
        lambda: DelayProtocol(fixed, spread, draw, realized), "127.0.0.1", 0
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--fixed-ms", type=float, default=5.0)
    parser.add_argument("--random-ms", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--golden", action="store_true", help="low-discrepancy delays")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(serve(args.fixed_ms, args.random_ms, args.seed, args.golden))
    except KeyboardInterrupt:
        pass
