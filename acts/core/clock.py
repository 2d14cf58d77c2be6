"""Injected time for the I/O shell (the core never reads a clock: it uses times in the data).

``SystemClock`` is real time. ``FakeClock`` is time that moves only when a test says so (``advance``)
or, with ``autojump``, whenever every task is waiting on it -- trio's ``MockClock`` for asyncio -- so
a test of hours of recorder time runs in milliseconds and never depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Awaitable, Iterator
from typing import Protocol, TypeVar

__all__ = ["Clock", "SystemClock", "FakeClock"]

T = TypeVar("T")
#: How often a held ``FakeClock`` looks again, in real seconds (``FakeClock.hold``).
_HOLD_POLL_S = 0.005


class Clock(Protocol):
    def time_ns(self) -> int:
        """Wall-clock UTC time, ns (receive timestamps)."""
        ...

    def monotonic(self) -> float:
        """Seconds for intervals and timeouts."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    async def wait_for(self, awaitable: Awaitable[T], seconds: float) -> T:
        """``awaitable``'s result, or ``TimeoutError`` (and the awaitable cancelled) after ``seconds``."""
        ...


class SystemClock:
    def time_ns(self) -> int:
        return time.time_ns()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def wait_for(self, awaitable: Awaitable[T], seconds: float) -> T:
        return await asyncio.wait_for(awaitable, seconds)


class FakeClock:
    """A clock for tests: ``sleep`` returns when fake time reaches its deadline, never in real time.

    Strategy: sleepers wait on futures in a heap ordered by deadline. ``advance(s)`` moves time and
    wakes the due ones. With ``autojump`` (the default) a helper task watches the event loop: once
    it has yielded ``idle_polls`` times in a row (every runnable task has run and is waiting again)
    plus ``autojump_threshold_s`` of real time (room for worker threads), time jumps to the next
    deadline. Nothing here depends on real elapsed time, so the order of events is deterministic.
    """

    def __init__(self, start_ns: int = 1_700_000_000_000_000_000, autojump: bool = True,
                 autojump_threshold_s: float = 0.0, idle_polls: int = 20) -> None:
        self._start_ns = start_ns
        self._now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self.autojump = autojump
        self.autojump_threshold_s = autojump_threshold_s
        self._idle_polls = idle_polls
        self._jumper: asyncio.Task[None] | None = None
        self._holds = 0

    def time_ns(self) -> int:
        return self._start_ns + round(self._now * 1e9)

    def monotonic(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper whose deadline has come."""
        if seconds < 0:
            raise ValueError(f"time only moves forward; got advance({seconds})")
        self._now += seconds
        self._wake()

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), future))
        if self.autojump and (self._jumper is None or self._jumper.done()):
            self._jumper = asyncio.ensure_future(self._autojump())
        await future

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Autojump stands still inside this block: for a test awaiting real work (a child process), so
        fake time does not run through hours of timers while the loop only looks idle."""
        self._holds += 1
        try:
            yield
        finally:
            self._holds -= 1

    async def wait_for(self, awaitable: Awaitable[T], seconds: float) -> T:
        task = asyncio.ensure_future(awaitable)
        timer = asyncio.ensure_future(self.sleep(seconds))
        try:
            await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if task.cancelled():
            raise TimeoutError(f"no result within {seconds} s of fake time")
        return task.result()

    def _wake(self) -> None:
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    def _next_deadline(self) -> float | None:
        while self._sleepers and self._sleepers[0][2].done():  # cancelled sleepers
            heapq.heappop(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None

    async def _autojump(self) -> None:
        while True:
            for _ in range(self._idle_polls):
                await asyncio.sleep(0)
            if self.autojump_threshold_s:
                await asyncio.sleep(self.autojump_threshold_s)
                for _ in range(self._idle_polls):
                    await asyncio.sleep(0)
            if self._holds:
                await asyncio.sleep(_HOLD_POLL_S)
                continue
            deadline = self._next_deadline()
            if deadline is None:
                return
            self._now = max(self._now, deadline)
            self._wake()
