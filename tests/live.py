"""Run the real recorder against the local exchange for a few seconds (used by the live tests)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from acts.core.clock import SystemClock
from acts.core.errors import SinkError
from acts.exchange.feed import GeneratorFeed
from acts.exchange.server import LocalExchange
from acts.features.builtin import default_registry
from acts.features.entries import default_feature_names, to_entry
from acts.features.pipeline import NullAndReportOnce
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

    def replayed(self, symbols: list[str]) -> list[dict[str, Any]]:
        features = [*default_registry().resolve(NAMES), *self.extra]
        names = [*NAMES, *(f.name for f in self.extra)]
        rows = replay(SegmentStore(self.data_dir), symbols, features, 0, on_feature_error=NullAndReportOnce(print))
        return [to_entry(row, names) for row in rows]


def run_live(data_dir: Path, symbols: list[str], seconds: float, sink: Any, speed: float = 40.0,
             faults: tuple[str, ...] = (), exchange_kwargs: dict[str, Any] | None = None,
             before: tuple[str, ...] = (), allow_failure: bool = False, extra: Sequence[Feature] = (),
             **config: Any) -> LiveRun:
    """Record ``symbols`` for ``seconds``; ``faults`` are injected (``ex.inject``) at evenly spaced times."""

    async def main() -> LiveRun:
        feed = GeneratorFeed(symbols, seed=5, start_ms=time.time_ns() // 1_000_000)
        async with LocalExchange(feed, speed=speed, **(exchange_kwargs or {})) as ex:
            ex.keep_sent = True
            for fault in before:  # e.g. REST failures that must hit the first snapshot
                ex.inject(fault)
            cfg = RecorderConfig(tuple(symbols), data_dir, (*NAMES, *(f.name for f in extra)), rest_url=ex.rest_url,
                                 stream_url=ex.stream_url, duration_s=seconds, health_every_s=3600)
            cfg = replace(cfg, **config)
            features = [*default_registry().resolve(NAMES), *extra]
            recorder = Recorder(cfg, features, sink, SystemClock(), Roller(data_dir))
            task = asyncio.create_task(recorder.run())
            for i, fault in enumerate(faults):
                await asyncio.sleep(seconds * (i + 1) / (len(faults) + 2))
                ex.inject(fault)
            report = await asyncio.wait_for(task, seconds + 60)
            assert allow_failure or recorder.failure is None, recorder.failure
            try:
                live = sink.read()
            except SinkError:
                live = None  # the store is down: the caller checks what was kept instead
            run = LiveRun(report, data_dir, live, list(ex.sent), ex, extra=extra)  # type: ignore[arg-type]
            run.failure = recorder.failure
            return run

    return asyncio.run(main())
