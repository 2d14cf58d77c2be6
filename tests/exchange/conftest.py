"""Fixtures for the local exchange: a fake clock, a running exchange, a raw websocket reader."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from acts.exchange.feed import GeneratorFeed
from acts.exchange.generator import DEFAULT_START_MS
from acts.exchange.server import LocalExchange

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
SEED = 3
#: Fast enough for short tests (2 ms per step), slow enough for a loaded CI box.
SPEED = 50.0


class FakeClock:
    """``acts.core.clock.Clock`` whose wall time and monotonic time move only when told."""

    def __init__(self, wall_ms: int = DEFAULT_START_MS + 5_000) -> None:
        self.wall_ns = wall_ms * 1_000_000
        self.mono = 1000.0

    def time_ns(self) -> int:
        return self.wall_ns

    def monotonic(self) -> float:
        return self.mono

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        self.wall_ns += int(seconds * 1e9)
        self.mono += seconds


def make_feed() -> GeneratorFeed:
    return GeneratorFeed(SYMBOLS, seed=SEED)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def ex() -> AsyncIterator[LocalExchange]:
    async with LocalExchange(make_feed(), speed=SPEED) as exchange:
        yield exchange


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


def combined_url(ex: LocalExchange, symbols: list[str] = SYMBOLS) -> str:
    return f"{ex.stream_url}stream?streams={'/'.join(s.lower() + '@depth@100ms' for s in symbols)}"


async def read_frames(ws: aiohttp.ClientWebSocketResponse, count: int, timeout: float = 5.0,
                      until: Callable[[Any], bool] | None = None) -> list[Any]:
    """The next ``count`` text frames, parsed (``str`` when not JSON).

    Stops early at a close, after ``timeout`` seconds, or after a frame for which ``until`` is true.
    """
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(out) < count and (left := deadline - time.monotonic()) > 0:
        try:
            msg = await asyncio.wait_for(ws.receive(), left)
        except asyncio.TimeoutError:
            break
        if msg.type is not aiohttp.WSMsgType.TEXT:
            break
        try:
            out.append(json.loads(msg.data))
        except ValueError:
            out.append(msg.data)
        if until is not None and until(out[-1]):
            break
    return out


def payloads(frames: list[Any], symbol: str) -> list[dict[str, Any]]:
    """The ``depthUpdate`` payloads of ``symbol`` among combined or raw frames."""
    out = []
    for frame in frames:
        data = frame.get("data", frame) if isinstance(frame, dict) else None
        if isinstance(data, dict) and data.get("e") == "depthUpdate" and data.get("s") == symbol:
            out.append(data)
    return out


def breaks(diffs: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """(expected U, got U) wherever a diff does not follow the previous one."""
    return [(a["u"] + 1, b["U"]) for a, b in zip(diffs, diffs[1:], strict=False) if b["U"] != a["u"] + 1]
