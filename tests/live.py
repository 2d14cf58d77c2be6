"""Run the real recorder against the local exchange for a few seconds (used by the live tests)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from acts.core.clock import SystemClock
from acts.core.errors import SinkError
from acts.core.markets import Market
from acts.exchange.feed import Feed, GeneratorFeed
from acts.exchange.futures import FuturesFeed
from acts.exchange.generator import STEP_MS
from acts.exchange.server import LocalExchange
from acts.features.builtin import default_registry
from acts.features.entries import default_feature_names, to_entry
from acts.features.pipeline import MinuteRow, NullAndReportOnce
from acts.features.registry import Feature
from acts.recorder.live import Recorder, RecorderConfig, RecorderReport
from acts.recorder.roll import Roller
from acts.replayer.replay import replay
from acts.storage.store import SegmentStore

NAMES = default_feature_names((5, 10, 50))


@dataclass
class LiveRun:
    report: RecorderReport
    data_dir: Path
    live: list[dict[str, Any]]
    sent: list[str]
    exchange: LocalExchange
    failure: BaseException | None = None
    extra: Sequence[Feature] = field(default_factory=tuple)  # features beyond NAMES (e.g. failing plug-ins)
    market: Market = Market.SPOT

    def store(self) -> SegmentStore:
        """The recorded segments."""
        return SegmentStore(self.data_dir, market=self.market)

    def replay_rows(self, symbols: list[str], features: Sequence[Feature]) -> list[MinuteRow]:
        """The replay of the recorded segments (by the rules of the store's market)."""
        return list(replay(self.store(), symbols, features, 0, on_feature_error=NullAndReportOnce(print)))

    def replayed(self, symbols: list[str]) -> list[dict[str, Any]]:
        features = [*default_registry().resolve(NAMES), *self.extra]
        names = [*NAMES, *(f.name for f in self.extra)]
        return [to_entry(row, names) for row in self.replay_rows(symbols, features)]


async def _until(done: Callable[[], bool], task: asyncio.Task[Any], polls: int = 6000) -> bool:
    """Wait until ``done()`` (polled, bounded); False if the recorder's ``task`` finished first."""
    for _ in range(polls):
        if done():
            return True
        if task.done():
            return False
        await asyncio.sleep(0.01)
    raise AssertionError("the exchange never got there")


def _reached(ex: LocalExchange, step: int) -> bool:
    return ex.steps >= step


def run_live(data_dir: Path, symbols: list[str], seconds: float, sink: Any, speed: float = 40.0,
             faults: tuple[str, ...] = (), exchange_kwargs: dict[str, Any] | None = None,
             before: tuple[str, ...] = (), allow_failure: bool = False, extra: Sequence[Feature] = (),
             market: Market = Market.SPOT, **config: Any) -> LiveRun:
    """Record ``symbols`` for ``seconds``; ``faults`` are injected (``ex.inject``) at evenly spaced exchange steps.

    ``Market.USDM``: the exchange serves the market as USD-M futures and the recorder records futures."""

    async def main() -> LiveRun:
        feed: Feed = GeneratorFeed(symbols, seed=5, start_ms=time.time_ns() // 1_000_000)
        if market is Market.USDM:
            feed = FuturesFeed(feed)
        async with LocalExchange(feed, speed=speed, market=market, **(exchange_kwargs or {})) as ex:
            ex.keep_sent = True
            for fault in before:  # e.g. REST failures that must hit the first snapshot
                ex.inject(fault)
            cfg = RecorderConfig(tuple(symbols), data_dir, (*NAMES, *(f.name for f in extra)), rest_url=ex.rest_url,
                                 stream_url=ex.stream_url, duration_s=seconds, health_every_s=3600, market=market)
            cfg = replace(cfg, **config)
            features = [*default_registry().resolve(NAMES), *extra]
            recorder = Recorder(cfg, features, sink, SystemClock(), Roller(data_dir, market=market))
            task = asyncio.create_task(recorder.run())
            # Faults go in at evenly spaced points of the exchange's own market, counted in its steps
            # from the recorder's first frame: where they land does not depend on how fast this machine is.
            if faults and await _until(lambda: recorder.report.frames > 0, task):
                base, steps = ex.steps, seconds * speed * 1000 / STEP_MS
                for i, fault in enumerate(faults):
                    target = base + int(steps * (i + 1) / (len(faults) + 2))
                    if not await _until(partial(_reached, ex, target), task):
                        break  # the recorder stopped first; the caller's checks say what that means
                    ex.inject(fault)
            report = await asyncio.wait_for(task, seconds + 60)
            assert allow_failure or recorder.failure is None, recorder.failure
            try:
                live = sink.read()
            except SinkError:
                live = None  # the store is down: the caller checks what was kept instead
            run = LiveRun(report, data_dir, live, list(ex.sent), ex, extra=extra,  # type: ignore[arg-type]
                          market=market)
            run.failure = recorder.failure
            return run

    return asyncio.run(main())
