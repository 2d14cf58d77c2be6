"""Trade features: the fast fold (compiled lane + sampler) gives the reference fold's rows, on random
streams of diffs, trades (with id jumps, duplicates, late and slow arrivals), clean stops, restarts and
snapshots.

The events go to the fast fold as a hand-built column group (what a segment reader hands it), so
this holds before segments store trades; the segment round trip is the store's to test."""

from __future__ import annotations

import csv
import json
import random
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from acts.book.arraybook import ArrayBook
from acts.book.book import SCALE
from acts.book.sequencer import Sequencer
from acts.cli import main
from acts.core.decimals import to_book
from acts.core.events import (
    DepthUpdate,
    DisconnectReason,
    Event,
    EventKind,
    Levels,
    Marker,
    Snapshot,
    Trade,
    marker,
    to_wire,
)
from acts.core.timeunits import MINUTE_MS
from acts.features.builtin import default_registry
from acts.features.pipeline import EVERY_EVENT, MinuteRow, MinuteSampler
from acts.recorder.ingest import Ingestor
from acts.replayer.replay import ReplayReport, _fold_fast, replay_symbol
from acts.storage.journal import Channel, JournalRecord
from acts.storage.records import marker_record
from acts.storage.store import SegmentStore
from tests.conftest import record

SYMBOL = "BTCUSDT"
NS = 1_000_000
TRADES = ["trade_count", "buy_volume", "sell_volume", "vwap", "last_price", "trade_imbalance"]


class Columns:
    """``EventColumns`` of typed events, whose ``event(i)`` gives them back with array levels."""

    price_factor = qty_factor = 1

    def __init__(self, events: list[Event]) -> None:
        self.events = events
        kinds, times, firsts, finals, recv, rows = [], [], [], [], [], []
        self.starts, self.ends = [], []
        for event in events:
            levels: list[tuple[int, str, str]] = []
            e = first = final = 0
            if isinstance(event, DepthUpdate):
                e, first, final = event.event_time_ms, event.first_update_id, event.final_update_id
            elif isinstance(event, Snapshot):
                final = event.last_update_id
            elif isinstance(event, Trade):
                e = event.event_time_ms
            if isinstance(event, (DepthUpdate, Snapshot)):
                levels = [(0, p, q) for p, q in event.bids] + [(1, p, q) for p, q in event.asks]
            self.starts.append(len(rows))
            rows += levels
            self.ends.append(len(rows))
            kinds.append(int(event.kind))
            times.append(e)
            firsts.append(first)
            finals.append(final)
            recv.append(event.recv_ns)
        self.starts, self.ends = np.array(self.starts, dtype=np.int64), np.array(self.ends, dtype=np.int64)
        self.kinds, self.times, self.firsts, self.finals, self.recv = (
            np.array(c, dtype=np.int64) for c in (kinds, times, firsts, finals, recv))
        self.side = np.array([r[0] for r in rows], dtype=np.int8)
        self.price = np.array([to_book(r[1]) for r in rows], dtype=np.int64)
        self.qty = np.array([to_book(r[2]) for r in rows], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.events)

    def event(self, i: int) -> Any:
        event = self.events[i]
        if isinstance(event, (DepthUpdate, Snapshot)):
            bids, asks = _arrays(event.bids), _arrays(event.asks)
            if isinstance(event, DepthUpdate):
                return DepthUpdate(SYMBOL, event.event_time_ms, event.first_update_id, event.final_update_id,
                                   bids, asks, event.recv_ns)
            return Snapshot(SYMBOL, event.last_update_id, bids, asks, event.recv_ns)
        return event


def _arrays(levels: Levels) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([to_book(p) for p, _ in levels], dtype=np.int64),
            np.array([to_book(q) for _, q in levels], dtype=np.int64))


def random_stream(seed: int, interval_ms: int, lags: tuple[int, ...] = (0, 0, 10, 2_000)) -> list[Event]:
    rnd = random.Random(seed)
    events: list[Event] = []
    u, trade_id, now = 100, 1, 1_714_521_601_000  # 2024-05-01T00:00:01Z

    def snapshot() -> None:
        events.append(Snapshot(SYMBOL, u, (("100.00", "1.0"), ("99.00", "2.0")), (("101.00", "1.0"),), now * NS))

    snapshot()
    for _ in range(1500):
        long = max(interval_ms, 1000)
        now += rnd.choice([1, 30, 200, 700]) if rnd.random() < 0.97 else rnd.randint(long, 3 * long)
        late = rnd.choice([0, 0, 0, 5, 40, 6_000])  # receive latency: now and then past the grace
        roll = rnd.random()
        if roll < 0.45:
            u += 1
            price = f"{rnd.randint(95, 100)}.00"
            events.append(DepthUpdate(SYMBOL, now, u, u, ((price, f"{rnd.randint(0, 3)}.0"),), (),
                                      (now + late) * NS))
        elif roll < 0.93:
            trade_id += 1 if rnd.random() < 0.95 else rnd.choice([0, 2, 7])  # duplicates and jumps
            t = now - rnd.choice(lags)  # now and then T lags behind
            events.append(Trade(SYMBOL, now, trade_id, f"{rnd.randint(99, 101)}.{rnd.randint(0, 99):02d}",
                                f"0.{rnd.randint(1, 999):03d}", t, rnd.random() < 0.5, (now + late) * NS))
        elif roll < 0.97:
            u += rnd.choice([2, 5])  # a depth gap: the book goes invalid until the next snapshot
            events.append(DepthUpdate(SYMBOL, now, u, u, (), (), (now + late) * NS))
            snapshot()
        else:
            if rnd.random() < 0.5:  # a clean stop first: it closes the trade parts still waiting
                events.append(marker(EventKind.DISCONNECT, SYMBOL, now * NS, reason=DisconnectReason.SHUTDOWN))
            events.append(Marker(EventKind.RESTART, SYMBOL, now * NS))
            snapshot()
    return events


def reference_rows(events: list[Event], names: list[str], interval_ms: int) -> list[MinuteRow]:
    sampler = MinuteSampler(SYMBOL, default_registry().resolve(names), interval_ms=interval_ms)
    return [row for event in events for row in sampler.apply(event)[0]]


def fast_rows(events: list[Event], names: list[str], interval_ms: int) -> list[MinuteRow]:
    book = ArrayBook()
    sampler: MinuteSampler[Any] = MinuteSampler(SYMBOL, default_registry().resolve(names), Sequencer(book=book),
                                                interval_ms)
    return [row for rows, _ in _fold_fast(sampler, book, Columns(events), ReplayReport())  # type: ignore[arg-type]
            for row in rows]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("interval_ms", [EVERY_EVENT, 1000, MINUTE_MS])
@pytest.mark.parametrize("names", [["mid", *TRADES], ["mid", "bias5"], ["microprice", "trade_count", "vwap"]])
def test_fast_fold_equals_reference_fold_with_trades(seed: int, interval_ms: int, names: list[str]) -> None:
    events = random_stream(seed, interval_ms)
    want = reference_rows(events, names, interval_ms)
    assert fast_rows(events, names, interval_ms) == want
    if "trade_count" in names:
        counted = [row.values[names.index("trade_count")] for row in want]
        assert any(c for c in counted) and any(c == 0.0 for c in counted) and None in counted  # all cases met


def test_the_stream_makes_the_lane_work() -> None:
    """The compiled lane folds most diffs (otherwise the parity above would prove little)."""
    events = random_stream(0, 1000)
    book = ArrayBook()
    sampler: MinuteSampler[Any] = MinuteSampler(SYMBOL, default_registry().resolve(["mid", *TRADES]),
                                                Sequencer(book=book), 1000)
    report = ReplayReport()
    steps = list(_fold_fast(sampler, book, Columns(events), report))  # type: ignore[arg-type]
    diffs = sum(isinstance(e, DepthUpdate) for e in events)
    assert report.events == len(events) and len(steps) < len(events) - diffs // 4
    assert SCALE == 10**8


def records(events: list[Event]) -> list[JournalRecord]:
    """The events as the recorder journals them: raw frames, REST bodies, marker records."""
    out = []
    for event in events:
        if isinstance(event, Marker):
            out.append(marker_record(event.kind, SYMBOL, event.recv_ns, **json.loads(event.detail)))
        else:
            channel = Channel.SNAPSHOT if isinstance(event, Snapshot) else Channel.STREAM
            out.append(JournalRecord(event.recv_ns, channel, SYMBOL, json.dumps(to_wire(event)).encode()))
    return out


@pytest.mark.parametrize("seed", range(2))
def test_live_ingest_of_the_journaled_frames_gives_the_replayed_rows(seed: int) -> None:
    """Live: trade frames journaled, decoded by the one decoder and folded by the recorder's ingestor."""
    events = random_stream(seed, MINUTE_MS)  # the recorder samples minutes
    names = ["mid", *TRADES]
    journal: list[JournalRecord] = []
    ingestor = Ingestor([SYMBOL], default_registry().resolve(names), journal)
    live = [row for record in records(events) for row in ingestor.ingest(record).rows]
    assert len(journal) == len(events)
    assert live == reference_rows(events, names, MINUTE_MS) == fast_rows(events, names, MINUTE_MS)
    assert any(row.values[1] for row in live)  # trade counts came through the journal


@pytest.mark.parametrize("interval_ms", [EVERY_EVENT, 1000, MINUTE_MS])
def test_replay_from_segments_python_engine_equals_fast_engine(tmp_path: Path, interval_ms: int) -> None:
    """Trades stored in segments (several files, so row groups end mid-stream) replay the same in both engines,
    and as the fold of the events themselves."""
    events = random_stream(7, interval_ms)
    record(tmp_path, events, chunk=400)
    store = SegmentStore.open(tmp_path)
    features = default_registry().resolve(["mid", *TRADES])

    def rows(engine: str) -> list[MinuteRow]:
        return list(replay_symbol(store, SYMBOL, features, 0, None, ReplayReport(), True, engine, interval_ms))

    python, fast = rows("python"), rows("fast")
    assert python == fast == reference_rows(events, ["mid", *TRADES], interval_ms)
    assert any(row.values[1] for row in fast)


def test_acts_replay_writes_trade_features(tmp_path: Path) -> None:
    record(tmp_path / "data", random_stream(3, MINUTE_MS))
    out = tmp_path / "rows.csv"
    assert main(["replay", "--data-dir", str(tmp_path / "data"), "--from", "2024-05-01", "--features",
                 "mid,trade_count,vwap,trade_imbalance", "--out", str(out)]) == 0
    with out.open() as fh:
        table = list(csv.DictReader(fh))
    assert table and {"trade_count", "vwap", "trade_imbalance"} <= set(table[0])
    assert any(row["trade_count"] not in ("", "0.0") for row in table)


def naive_trade_values(events: list[Event], start: int, step: int) -> tuple[float | None, ...]:
    """The rule of docs/FEATURES.md, read literally (trade times never run backwards here): the interval is
    decided by the first trade with T past its end, the first event received 5 s after its end or a clean
    stop after the book moved past it (every DISCONNECT here is one, and a RESTART follows it); valid
    only if a trade decided it and no chain start (first trade, first after a restart, an id jump) up to
    that trade lies in or after the interval."""
    end, seen, last_price = start + step, -1, None
    trades: list[Trade] = []
    fresh = True  # the next trade starts a chain
    last_diff_ms: int | None = None
    for event in events:
        if isinstance(event, DepthUpdate):
            last_diff_ms = event.event_time_ms
        if isinstance(event, Marker) and event.kind is EventKind.DISCONNECT:
            # A clean stop decides every interval before the book's open one (that of the last diff): null.
            if last_diff_ms is not None and end <= last_diff_ms - last_diff_ms % step:
                return (None,) * len(TRADES)
        if isinstance(event, Marker) and event.kind is EventKind.RESTART:
            fresh, seen = True, -1
        if isinstance(event, Trade) and event.trade_id > seen:
            if event.trade_time_ms >= end:
                if fresh or event.trade_id != seen + 1 or any(t >= start for t in breaks(trades, events)):
                    return (None,) * len(TRADES)
                break
            seen, fresh = event.trade_id, False
            trades.append(event)
        if event.recv_ns >= (end + 5_000) * NS:
            return (None,) * len(TRADES)
    inside = [t for t in trades if start <= t.trade_time_ms < end]
    buy = sum(Fraction(t.qty) for t in inside if not t.buyer_is_maker)
    sell = sum(Fraction(t.qty) for t in inside if t.buyer_is_maker)
    notional = sum(Fraction(t.price) * Fraction(t.qty) for t in inside)
    last_price = float(Fraction(trades[-1].price)) if trades else None
    return (float(len(inside)), float(buy), float(sell), float(notional / (buy + sell)) if inside else None,
            last_price, float((buy - sell) / (buy + sell)) if buy + sell else None)


def breaks(trades: list[Trade], events: list[Event]) -> list[int]:
    """Trade times of chain starts among ``trades`` (each trade's predecessor in fold order, restarts between)."""
    out, previous = [], None
    restarts = {id(e) for e in events if isinstance(e, Marker) and e.kind is EventKind.RESTART}
    position = {id(e): i for i, e in enumerate(events)}
    restart_at = sorted(position[r] for r in restarts)
    for trade in trades:
        cut = previous is None or any(position[id(previous)] < r < position[id(trade)] for r in restart_at)
        if cut or trade.trade_id != previous.trade_id + 1:
            out.append(trade.trade_time_ms)
        previous = trade
    return out


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("interval_ms", [1000, MINUTE_MS])
def test_trade_values_follow_the_rule_read_literally(seed: int, interval_ms: int) -> None:
    events = random_stream(seed, interval_ms, lags=(0,))
    rows = reference_rows(events, ["mid", *TRADES], interval_ms)
    valid = 0
    for row in rows:
        want = naive_trade_values(events, row.minute_ms, interval_ms)
        assert row.values[1:] == want, row.minute_ms  # exact: both divide exact sums once
        valid += want[0] is not None
    assert 0 < valid < len(rows)
