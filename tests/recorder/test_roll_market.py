"""A futures recorder's journal and roll: its own journal folder, its market's segments, never spot's."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from acts.core.events import DepthUpdate
from acts.core.markets import Market
from acts.exchange.feed import GeneratorFeed
from acts.exchange.futures import FuturesFeed
from acts.recorder.live import Recorder, RecorderConfig
from acts.recorder.roll import Roller
from acts.storage.journal import Channel, JournalRecord, list_journals
from acts.storage.store import SegmentStore


def _futures_journal(roller: Roller, steps: int = 30) -> Path:
    feed = FuturesFeed(GeneratorFeed(["BTCUSDT"], start_ms=time.time_ns() // 1_000_000))
    writer = roller.open_journal(time.time_ns())
    with writer:
        for _ in range(steps):
            for msg in feed.step():
                if msg.get("e") != "depthUpdate":  # the generator's trades and tickers: not this test's
                    continue
                wrapped = {"stream": "btcusdt@depth@100ms", "data": msg}
                writer.append(JournalRecord(msg["E"] * 1_000_000 + 5_000_000, Channel.STREAM, "",
                                            json.dumps(wrapped).encode()))
    return writer.path


def test_futures_journals_roll_into_the_futures_segments_only(tmp_path: Path) -> None:
    futures = Roller(tmp_path, market=Market.USDM)
    assert futures.journal_dir == tmp_path / "journal" / "market=usdm"
    journal = _futures_journal(futures)
    assert Roller(tmp_path).recover() == [] and journal.exists()  # a spot recorder never rolls it
    (path,) = futures.recover()
    assert not journal.exists() and list_journals(futures.journal_dir) == []
    store = SegmentStore(tmp_path, market=Market.USDM)
    assert store.paths("BTCUSDT") == [path]
    diffs = [e for e in store.events(path, "BTCUSDT") if isinstance(e, DepthUpdate)]
    assert len(diffs) == 30 and all(d.prev_final_update_id is not None for d in diffs)
    assert SegmentStore(tmp_path).symbols() == []  # nothing among spot's


def test_a_recorder_refuses_a_roller_of_the_other_market(tmp_path: Path) -> None:
    config = RecorderConfig(("BTCUSDT",), tmp_path, ("mid",), market=Market.USDM)
    with pytest.raises(ValueError, match="a usdm recorder needs a usdm roller, not spot"):
        Recorder(config, [], None, None, Roller(tmp_path))  # type: ignore[arg-type]
