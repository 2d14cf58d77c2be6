"""Stopping the real recorder against the local exchange: a clean stop is quiet, a real close is not,
and a stop while MongoDB is down gives every write a bounded timeout and leaves the entries spooled.

No test here measures elapsed time or sleeps to schedule anything: the recorder is stopped (by a real
SIGINT) once a condition on its report holds, and the Mongo bound is checked as the parameter each
write was given."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from acts.core.clock import SystemClock
from acts.exchange.feed import GeneratorFeed
from acts.exchange.server import LocalExchange
from acts.features.builtin import default_registry
from acts.recorder.live import Recorder, RecorderConfig
from acts.recorder.roll import Roller
from acts.sinks import MongoSink, SpoolingSink, SqliteSink
from tests.live import NAMES

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


async def _until(done: Callable[[], bool], task: asyncio.Task[Any], what: str, polls: int = 1500) -> None:
    """Wait (bounded) until ``done()``; fail at once if the recorder stopped by itself."""
    for _ in range(polls):
        if done():
            return
        if task.done():
            task.result()
            raise AssertionError(f"the recorder stopped before {what}")
        await asyncio.sleep(0.02)
    raise AssertionError(f"never reached: {what}")


async def _record(data_dir: Path, sink: Any, until: Callable[[Recorder], bool], faults: Sequence[str] = (),
                  after_fault: Callable[[Recorder, LocalExchange], bool] | None = None) -> Recorder:
    """Record until ``until(recorder)``, inject ``faults`` and wait for ``after_fault``, then SIGINT."""
    feed = GeneratorFeed(SYMBOLS, seed=5, start_ms=time.time_ns() // 1_000_000)
    async with LocalExchange(feed, speed=40.0) as ex:
        ex.keep_sent = True
        config = RecorderConfig(tuple(SYMBOLS), data_dir, tuple(NAMES), rest_url=ex.rest_url,
                                stream_url=ex.stream_url, health_every_s=3600)
        recorder = Recorder(config, default_registry().resolve(NAMES), sink, SystemClock(), Roller(data_dir))
        task = asyncio.create_task(recorder.run())
        await _until(lambda: until(recorder), task, "the start condition")
        for fault in faults:
            ex.inject(fault)
        if after_fault is not None:
            await _until(lambda: after_fault(recorder, ex), task, "the fault's effect")
        signal.raise_signal(signal.SIGINT)  # the recorder's own handler turns it into a clean stop
        await asyncio.wait_for(task, 60)
    assert recorder.failure is None, recorder.failure
    return recorder


def _binance_errors(records: list[logging.LogRecord]) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in records
            if r.name.startswith("binance") and r.levelno >= logging.ERROR]


@pytest.mark.slow
async def test_a_clean_sigint_logs_no_binance_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The noisy case: the stop aborts a connection whose read loop is waiting for a frame (a quiet
    market, here a stall), so python-binance's read loop sees ConnectionClosedError."""
    caplog.set_level(logging.DEBUG, logger="binance")
    last: list[tuple[int, int]] = []  # (exchange step, frames recorded) when the count last moved

    def drained(r: Recorder, ex: LocalExchange) -> bool:  # the stall is on and the recorder has read it all
        if not last or last[-1][1] != r.report.frames:
            last.append((ex.steps, r.report.frames))
        return ex.steps >= last[-1][0] + 200  # 200 exchange steps (20 s of market) without a frame

    recorder = await _record(tmp_path, SqliteSink(tmp_path / "entries.sqlite"), lambda r: r.report.frames >= 300,
                             faults=("stall:60",), after_fault=drained)
    assert recorder.report.frames >= 300
    assert _binance_errors(caplog.records) == []
    # The close still leaves a trace, at DEBUG, for whoever looks.
    assert any(r.name.startswith("binance") and "ConnectionClosed" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
async def test_a_close_the_recorder_did_not_ask_for_is_still_an_error(tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    await _record(tmp_path, SqliteSink(tmp_path / "entries.sqlite"), lambda r: r.report.frames >= 200,
                  faults=("drop",), after_fault=lambda r, ex: r.report.reconnects >= 1)
    assert any("ConnectionClosed" in line for line in _binance_errors(caplog.records))
    assert any(r.name == "acts.recorder" and r.levelno >= logging.ERROR and "reconnecting" in r.getMessage()
               for r in caplog.records)


class BoundedMongo(MongoSink):
    """The real MongoSink, noting the timeout each write is given (what the test checks instead of time)."""

    def __init__(self, uri: str) -> None:
        super().__init__(uri)
        self.bounds: list[float | None] = []

    def write(self, entries: Sequence[dict[str, Any]], timeout_s: float | None = None) -> int:
        self.bounds.append(timeout_s)
        return super().write(entries, timeout_s)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
async def test_sigint_while_mongo_is_down_bounds_each_write_and_spools_every_entry(tmp_path: Path) -> None:
    mongo = BoundedMongo(f"mongodb://acts:pw@127.0.0.1:{_closed_port()}/?directConnection=true")
    spool_path = tmp_path / "spool" / "entries-spool.sqlite"
    sink = SpoolingSink(mongo, SqliteSink(spool_path))
    recorder = await _record(tmp_path, sink, lambda r: r.report.entries >= 2 * len(SYMBOLS))
    sink.close()  # as the CLI does after the recorder returns
    bound = recorder.config.sink_timeout_s
    # Every write to MongoDB, the one in flight at the stop included, was bounded; after the first
    # failure the spool rests instead of paying that bound on every write, and close does not retry.
    assert mongo.bounds and all(b is not None and b <= bound for b in mongo.bounds), mongo.bounds
    assert len(mongo.bounds) == 1, "a resting spool tried MongoDB again"
    kept = SqliteSink(spool_path)
    assert len(kept.read()) == recorder.report.entries >= 2 * len(SYMBOLS)  # nothing lost, nothing doubled
    kept.close()
