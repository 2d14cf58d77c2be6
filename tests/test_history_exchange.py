"""Recorded history served by the local exchange, recorded again: the same diffs, the same features."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from acts.core.clock import SystemClock
from acts.core.events import DepthUpdate, to_wire
from acts.exchange.feed import SegmentFeed
from acts.exchange.server import LocalExchange
from acts.exchange.synthetic import synthetic_events
from acts.features.builtin import default_registry
from acts.recorder.live import Recorder, RecorderConfig
from acts.recorder.roll import Roller
from acts.sinks import SqliteSink
from acts.storage.store import SegmentStore
from tests.conftest import record
from tests.live import NAMES


@pytest.mark.slow
def test_recorded_history_replays_through_the_exchange(tmp_path: Path) -> None:
    source = tmp_path / "history"
    record(source, list(synthetic_events(["BTCUSDT", "ETHUSDT"], 6, seed=3, snapshot_every_s=60, depth=60)))
    again = tmp_path / "again"

    async def main() -> None:
        # Served "now" (E moved by whole minutes): the recorder refuses event times far from its clock.
        feed = SegmentFeed(source, rebase_to_ms=time.time_ns() // 1_000_000)
        assert feed.shift_ms % 60_000 == 0 and feed.shift_ms > 0
        async with LocalExchange(feed, speed=40) as ex:
            ex.keep_sent = True
            config = replace(RecorderConfig(("BTCUSDT", "ETHUSDT"), again, tuple(NAMES), rest_url=ex.rest_url,
                                            stream_url=ex.stream_url, duration_s=6, health_every_s=3600))
            sink = SqliteSink(again / "entries.sqlite")
            await Recorder(config, default_registry().resolve(NAMES), sink, SystemClock(), Roller(again)).run()
            sink.close()
            sent = [json.loads(t) for t in ex.sent]
            original = {s: [{**to_wire(e), "E": e.event_time_ms + feed.shift_ms} for p in SegmentStore(source).paths(s)
                            for e in SegmentStore(source).events(p, s) if isinstance(e, DepthUpdate)]
                        for s in ("BTCUSDT", "ETHUSDT")}
            for symbol, wires in original.items():
                mine = [m for m in sent if m["s"] == symbol]
                assert mine and mine == wires[: len(mine)]  # served exactly as recorded, in order

    asyncio.run(main())
    entries = SqliteSink(again / "entries.sqlite").read()
    assert entries and sum(e["valid"] for e in entries) >= 2  # the recorder synced from the served snapshots
