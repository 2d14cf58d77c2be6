"""The recorder's asyncio shell on a fake clock, against a fake exchange client (no socket, no real waits).

Every wait of the shell goes through the clock, so minutes of recorder time pass in milliseconds and
each assertion is about fake time and the actions' effects, never about elapsed seconds.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from acts.core.clock import FakeClock
from acts.core.events import EventKind
from acts.features.builtin import default_registry
from acts.recorder.config import RecorderConfig
from acts.recorder.live import Recorder
from acts.recorder.roll import Roller
from acts.recorder.transport import RawFrame, RestFailure
from acts.storage.journal import Channel, list_journals, read_journal
from acts.storage.store import SegmentStore

SYMBOL = "BTCUSDT"


class FakeStream:
    def __init__(self, exchange: FakeExchange) -> None:
        self.exchange = exchange
        self.queue: asyncio.Queue[RawFrame] = asyncio.Queue()
        self.opened_at: float | None = None
        self.closed = False

    async def open(self) -> None:
        self.opened_at = self.exchange.clock.monotonic()
        self.exchange.start_market()

    async def recv(self) -> RawFrame:
        return await self.queue.get()

    def ready(self) -> list[RawFrame]:
        waiting = []
        while not self.queue.empty():
            waiting.append(self.queue.get_nowait())
        return waiting

    async def close(self) -> None:
        self.closed = True

    def send(self, payload: bytes) -> None:
        self.queue.put_nowait(RawFrame(payload, self.exchange.clock.time_ns()))


class FakeExchange:
    """Speaks the ``ExchangeClient`` protocol from memory; streams only send what a test sends."""

    url = "fake://exchange"

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.streams: list[FakeStream] = []
        self.last_id = 99
        self.books: list[float] = []  # fake times of snapshot requests
        self.market_every_s: float | None = None  # send a diff to every open stream this often
        self._market: asyncio.Task[None] | None = None

    def start_market(self) -> None:
        """The market starts with the first connection, so its times are the recorder's."""
        if self.market_every_s is not None and self._market is None:
            self._market = asyncio.create_task(self._run_market(self.market_every_s))

    async def _run_market(self, every_s: float) -> None:
        while True:
            await self.clock.sleep(every_s)
            frame = self.diff()
            for stream in self.open_streams():
                stream.send(frame)

    async def exchange_info(self) -> Any:
        return {"symbols": [{"symbol": SYMBOL, "status": "TRADING"}]}

    async def order_book(self, symbol: str, limit: int) -> Any:
        self.books.append(self.clock.monotonic())
        return {"lastUpdateId": self.last_id, "bids": [["100.00", "1.0"]], "asks": [["101.00", "1.0"]]}

    def rest_failure(self, exc: Exception) -> RestFailure:
        return RestFailure(repr(exc))

    def stream(self, streams: list[str]) -> FakeStream:
        stream = FakeStream(self)
        self.streams.append(stream)
        return stream

    async def close(self) -> None:
        if self._market is not None:
            self._market.cancel()

    def diff(self) -> bytes:
        """The next depth diff, continuing the chain."""
        first, self.last_id = self.last_id + 1, self.last_id + 10
        data = {"e": "depthUpdate", "E": self.clock.time_ns() // 1_000_000, "s": SYMBOL, "U": first,
                "u": self.last_id, "b": [["100.00", "2.0"]], "a": []}
        return json.dumps({"stream": "btcusdt@depth@100ms", "data": data}).encode()

    def open_streams(self) -> list[FakeStream]:
        return [s for s in self.streams if s.opened_at is not None and not s.closed]


def _recorder(tmp_path: Path, clock: FakeClock, exchange: FakeExchange, **config: Any) -> Recorder:
    cfg = RecorderConfig((SYMBOL,), tmp_path, ("mid",), **config)
    return Recorder(cfg, default_registry().resolve(["mid"]), None, clock, Roller(tmp_path, clock=clock), exchange)


async def _until(done: Callable[[], bool], what: str) -> None:
    """Let the loop (and worker threads) run until ``done()``; bounded by a number of polls, not by time."""
    for _ in range(2000):
        if done():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never reached: {what}")


def _durable(path: Path) -> list[bytes]:
    return [r.payload for r in read_journal(path).records if r.channel is Channel.STREAM]


async def test_a_quiet_feed_is_durable_within_a_second_of_clock_time(tmp_path: Path) -> None:
    clock = FakeClock(autojump=False)  # time moves only here
    exchange = FakeExchange(clock)
    recorder = _recorder(tmp_path, clock, exchange, journal_flush_s=1.0)
    task = asyncio.create_task(recorder.run())
    await _until(lambda: bool(exchange.open_streams()), "the stream opened")
    frame = exchange.diff()
    exchange.streams[0].send(frame)  # then nothing more: a quiet market
    await _until(lambda: recorder.report.frames == 1, "the frame was journaled")
    (journal,) = list_journals(tmp_path / "journal")
    assert frame not in _durable(journal)  # buffered, not yet on disk
    clock.advance(0.999)
    await asyncio.sleep(0.05)
    assert frame not in _durable(journal)
    clock.advance(0.001)  # one second of clock time since the start: the flush timer fires
    await _until(lambda: frame in _durable(journal), "the frame was fsynced by the timer")
    assert clock.monotonic() == 1.0
    recorder.stop()
    await task
    assert recorder.failure is None


async def test_a_stalled_feed_reconnects_after_the_delay(tmp_path: Path) -> None:
    clock = FakeClock()
    exchange = FakeExchange(clock)
    recorder = _recorder(tmp_path, clock, exchange, stale_after_s=10.0, reconnect_delay_s=1.0, duration_s=25.0)
    report = await recorder.run()
    # Silent from the start: 10 s without a frame, 1 s pause, a new connection; twice in 25 s.
    assert [s.opened_at for s in exchange.streams] == [0.0, 11.0, 22.0]
    assert report.reconnects == 2 and all(s.closed for s in exchange.streams)
    assert clock.monotonic() == 25.0 and recorder.failure is None
    store = SegmentStore(tmp_path)
    kinds = [e.kind for p in store.paths(SYMBOL) for e in store.events(p, SYMBOL)]
    assert kinds.count(EventKind.DISCONNECT) == 3  # two stalls and the stop
    assert kinds[0] is EventKind.RESTART


async def test_hours_of_recording_with_handovers_in_fake_time(tmp_path: Path) -> None:
    clock = FakeClock()
    exchange = FakeExchange(clock)
    hours = 3
    recorder = _recorder(tmp_path, clock, exchange, max_connection_age_s=3600.0, duration_s=hours * 3600.0 + 30,
                         journal_flush_s=60.0)
    exchange.market_every_s = 5.0  # every open connection sees the same diff, well inside the stale timeout
    report = await recorder.run()
    # Each connection is replaced an hour after it opened, overlapping, so nothing is lost or reconnected.
    assert report.handovers == hours and report.reconnects == 0
    assert len(exchange.streams) == hours + 1 and all(s.closed for s in exchange.streams)
    # One snapshot at the first diff, then only the hourly checkpoints: the chain never broke.
    start = exchange.streams[0].opened_at
    assert exchange.books == [start + 5.0] + [start + 3600.0 * h for h in range(1, hours + 1)]
    store = SegmentStore(tmp_path)
    events = [e for p in store.paths(SYMBOL) for e in store.events(p, SYMBOL)]
    assert not any(e.kind is EventKind.GAP for e in events)
    diffs = [e.final_update_id for e in events if e.kind is EventKind.DEPTH]
    first_seen = list(dict.fromkeys(diffs))  # overlapping connections journal some diffs twice
    assert first_seen == list(range(first_seen[0], first_seen[-1] + 1, 10))  # in order, none missing
    assert len(first_seen) >= hours * 3600 / 5 - 2
