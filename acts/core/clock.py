"""Injected time for the I/O shell (the core never reads a clock: it uses times in the data)."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    def time_ns(self) -> int:
        """Wall-clock UTC time, ns (receive timestamps)."""
        ...

    def monotonic(self) -> float:
        """Seconds for intervals and timeouts."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def time_ns(self) -> int:
        return time.time_ns()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
