"""A clean stop publishes the rows still waiting for their trade proof, exactly as replay of the recording
gives them: the shutdown ``DISCONNECT`` marker closes their trade part (null: no trade can prove it any
more), and the shell folds it before the last entries are drained.

The recorder's asyncio shell runs on a fake clock against the fake exchange of ``test_shell``; time
moves only where the test says."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from acts.core.clock import FakeClock
from acts.core.events import Trade, to_wire
from acts.core.symbols import StreamKind, iso_minute
from acts.features.builtin import default_registry
from acts.features.entries import to_entry
from acts.recorder.config import RecorderConfig
from acts.recorder.live import Recorder
from acts.recorder.roll import Roller
from acts.replayer.replay import Engine, replay
from acts.sinks import SqliteSink
from acts.storage.store import SegmentStore
from tests.recorder.test_shell import SYMBOL, FakeExchange, _until

NAMES = ["mid", "trade_count", "buy_volume", "sell_volume", "vwap", "last_price", "trade_imbalance"]
T0_MS = 1_700_000_040_000  # a minute's start: the fake clock's zero
MINUTE_S = 60


def _minute(n: int) -> str:
    """Minute ``n`` of the recording, as entries name it."""
    return iso_minute(T0_MS + n * MINUTE_S * 1000)


class _Market:
    """Sends diffs and trades through the fake exchange at the fake clock's time, and waits until folded."""

    def __init__(self, clock: FakeClock, exchange: FakeExchange, recorder: Recorder) -> None:
        self.clock, self.exchange, self.recorder = clock, exchange, recorder
        self.sent = 0
        self.trade_id = 500

    async def at(self, t_s: float, *what: str) -> None:
        self.clock.advance(t_s - self.clock.monotonic())
        for kind in what:
            self.exchange.streams[0].send(self.exchange.diff() if kind == "diff" else self._trade())
            self.sent += 1
        await _until(lambda: self.recorder.report.frames == self.sent and not self.recorder._unfolded,
                     f"the frames at {t_s}s folded")

    def _trade(self) -> bytes:
        ms = self.clock.time_ns() // 1_000_000
        trade = Trade(SYMBOL, ms, self.trade_id, "100.50", "0.5", ms, False, self.clock.time_ns())
        self.trade_id += 1
        return json.dumps({"stream": f"{SYMBOL.lower()}@trade", "data": to_wire(trade)}).encode()


async def _record_then_stop(tmp_path: Path, stop_s: float) -> list[dict[str, object]]:
    """Minute 0: the first trade (unanchored); minute 1: proven by a trade in minute 2; minute 2 closes
    its book part at 181 s and is still waiting for its trade proof when the recorder stops at ``stop_s``."""
    clock = FakeClock(start_ns=T0_MS * 1_000_000, autojump=False)
    exchange = FakeExchange(clock)
    sink = SqliteSink(tmp_path / "entries.sqlite")
    config = RecorderConfig((SYMBOL,), tmp_path, tuple(NAMES), streams=(StreamKind.DEPTH, StreamKind.TRADE),
                            stale_after_s=3600.0)
    recorder = Recorder(config, default_registry().resolve(NAMES), sink, clock, Roller(tmp_path, clock=clock),
                        exchange)
    task = asyncio.create_task(recorder.run())
    await _until(lambda: bool(exchange.open_streams()), "the stream opened")
    market = _Market(clock, exchange, recorder)
    await market.at(0, "diff")
    await _until(lambda: recorder.report.snapshots == 1 and not recorder._unfolded, "the book synced")
    await market.at(1, "trade")
    await market.at(61, "diff", "trade")  # minute 0's book and trade parts close: out
    await market.at(121, "diff")  # minute 1's book part closes ...
    await market.at(122, "trade", "trade")  # ... and this trade proves it: out
    await market.at(181, "diff")  # minute 2's book part closes; no trade after 180 s follows
    await _until(lambda: recorder.report.entries == 2, "minutes 0 and 1 written")
    assert [e["time"] for e in sink.read()] == [_minute(0), _minute(1)]  # minute 2 waits
    clock.advance(stop_s - clock.monotonic())
    recorder.stop()
    await task
    assert recorder.failure is None
    entries = sink.read()
    sink.close()
    return entries


@pytest.mark.parametrize("stop_s", [183.0, 200.0])  # inside the 5 s grace of minute 2's end, and past it
async def test_a_clean_stop_publishes_the_waiting_rows_as_replay_gives_them(tmp_path: Path, stop_s: float) -> None:
    live = await _record_then_stop(tmp_path, stop_s)
    features = default_registry().resolve(NAMES)
    store = SegmentStore(tmp_path)
    for engine in (Engine.PYTHON, Engine.FAST):
        replayed = [to_entry(row, NAMES) for row in replay(store, [SYMBOL], features, 0, engine=engine)]
        assert live == replayed, engine
    by_minute = {e["time"]: e for e in live}
    assert list(by_minute) == [_minute(0), _minute(1), _minute(2)]
    assert by_minute[_minute(1)]["trade_count"] == 1  # proven by the next trade, as ever
    last = by_minute[_minute(2)]  # the row the stop used to lose: the book's proof, no trade proof
    assert last["valid"] is True and last["mid"] is not None
    assert all(last[name] is None for name in NAMES[1:])
