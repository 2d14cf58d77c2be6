"""USD-M futures recorded live through python-binance's futures REST and sockets from the local exchange:
the live minute entries equal the replay with the futures rules, and what was recorded is what was sent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acts.core.events import DepthUpdate, to_wire
from acts.core.markets import Market
from acts.sinks import SqliteSink
from tests.live import run_live

SYMBOLS = ["BTCUSDT", "SHIBUSDT"]
#: ``SegmentFeed`` answers snapshots at 8 decimals, which SHIB's quantities do not fit (spot alike).
HISTORY_SYMBOLS = ["BTCUSDT", "ETHUSDT"]


@pytest.mark.slow
def test_futures_recording_replays_as_it_ran_live(tmp_path: Path) -> None:
    run = run_live(tmp_path, SYMBOLS, 5, SqliteSink(tmp_path / "entries.sqlite"), market=Market.USDM)
    sent = [json.loads(text) for text in run.sent]
    assert sent and all(list(m)[:7] == ["e", "E", "T", "s", "U", "u", "pu"] for m in sent)
    assert len(run.live) >= 2 * len(SYMBOLS), "several simulated minutes were recorded"
    assert sum(e["valid"] for e in run.live) >= len(SYMBOLS), "the futures rules keep the book valid"
    assert run.report.reconnects == 0
    store = run.store()
    for symbol in SYMBOLS:
        recorded = [to_wire(e) for p in store.paths(symbol) for e in store.events(p, symbol)
                    if isinstance(e, DepthUpdate)]
        mine = [{k: v for k, v in m.items() if k != "T"} for m in sent if m["s"] == symbol]  # T is not stored
        start = mine.index(recorded[0])
        assert recorded == mine[start : start + len(recorded)] and len(recorded) > 100
    assert run.live == run.replayed(SYMBOLS)


@pytest.mark.slow
def test_recorded_futures_history_served_and_recorded_again(tmp_path: Path) -> None:
    import asyncio
    import time

    from acts.core.clock import SystemClock
    from acts.exchange.feed import SegmentFeed
    from acts.exchange.futures import futures_feed
    from acts.exchange.server import LocalExchange
    from acts.features.builtin import default_registry
    from acts.recorder.live import Recorder, RecorderConfig
    from acts.recorder.roll import Roller
    from acts.storage.store import SegmentStore
    from tests.live import NAMES

    source = tmp_path / "history"
    run_live(source, HISTORY_SYMBOLS, 6, SqliteSink(tmp_path / "first.sqlite"), market=Market.USDM)
    again = tmp_path / "again"
    store = SegmentStore(source, market=Market.USDM)

    async def main() -> list[dict]:
        history = SegmentFeed(store, rebase_to_ms=time.time_ns() // 1_000_000)
        async with LocalExchange(futures_feed(history), speed=40, market=Market.USDM) as ex:
            ex.keep_sent = True
            config = RecorderConfig(tuple(HISTORY_SYMBOLS), again, tuple(NAMES), rest_url=ex.rest_url,
                                    stream_url=ex.stream_url, duration_s=6, health_every_s=3600, market=Market.USDM)
            sink = SqliteSink(again / "entries.sqlite")
            report = await Recorder(config, default_registry().resolve(NAMES), sink, SystemClock(),
                                    Roller(again, market=Market.USDM)).run()
            sink.close()
            assert report.reconnects == 0
            for symbol in HISTORY_SYMBOLS:
                recorded = [{**to_wire(e), "E": e.event_time_ms + history.shift_ms}
                            for p in store.paths(symbol) for e in store.events(p, symbol) if isinstance(e, DepthUpdate)]
                mine = [{k: v for k, v in json.loads(t).items() if k != "T"} for t in ex.sent]
                mine = [m for m in mine if m["s"] == symbol]
                assert mine and mine == recorded[: len(mine)]  # served as recorded, pu and all, in order
            return SqliteSink(again / "entries.sqlite").read()

    entries = asyncio.run(main())
    assert entries and sum(e["valid"] for e in entries) >= len(HISTORY_SYMBOLS)  # synced from the served snapshots
