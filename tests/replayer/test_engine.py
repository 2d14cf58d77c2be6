"""The fast engine (columnar decode + compiled array book) against the reference, row for row."""

from __future__ import annotations

import gc
import threading
from pathlib import Path

import numpy as np
import pytest

from acts.book.arraybook import ArrayBook
from acts.book.book import Book
from acts.core.errors import InputError
from acts.core.events import DepthUpdate, Snapshot
from acts.exchange.synthetic import synthetic_events
from acts.features.builtin import default_registry
from acts.replayer.replay import ReplayReport, replay
from acts.storage.segments import write_segments
from acts.storage.store import SegmentStore
from tests.conftest import NEAR_HOUR_MS, record

NAMES = ["mid", "best_bid", "best_ask", "spread", "microprice", "bias1", "bias10", "bias50", "bid_amount5",
         "ask_amount20", "depth10", "depth100"]
FEATURES = default_registry().resolve(NAMES)


def both(data_dir: Path, symbols: list[str], start: int = 0, end: int | None = None) -> tuple[list, list]:
    store = SegmentStore(data_dir)
    fast = list(replay(store, symbols, FEATURES, start, end, ReplayReport(), engine="fast"))
    slow = list(replay(store, symbols, FEATURES, start, end, ReplayReport(), engine="python"))
    return fast, slow


def test_parity_on_the_recording_with_gaps(recorded_dir: Path) -> None:
    fast, slow = both(recorded_dir, ["BTCUSDT", "SHIBUSDT"], NEAR_HOUR_MS)
    assert fast == slow and len(fast) == 24


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_parity_across_seeds_gaps_and_splits(tmp_path: Path, seed: int) -> None:
    events = list(synthetic_events(["ETHUSDT", "SHIBUSDT", "XRPUSDT"], 4, seed=seed, snapshot_every_s=60,
                                   gap_rate=0.01, depth=60))
    record(tmp_path, events, chunk=997)
    for start in (0, NEAR_HOUR_MS - 54 * 60_000 + 90_000):
        fast, slow = both(tmp_path, ["ETHUSDT", "SHIBUSDT", "XRPUSDT"], start)
        assert fast == slow and fast


def _disorder(events: list, seed: int) -> list:
    """Replays of old diffs, swapped neighbours, empty diffs, E running backwards and markers, all
    inside minutes: what the compiled lane must skip, stop at, or hand back to the sequencer."""
    import random

    from acts.core.events import EventKind, Marker

    rng = random.Random(seed)
    out: list = []
    last: dict[str, int] = {}  # symbol -> index in out of its latest diff
    for event in events:
        roll = rng.random()
        if isinstance(event, DepthUpdate) and out and roll < 0.04:
            out.append(event)
            out.append(event)  # duplicate
        elif isinstance(event, DepthUpdate) and roll < 0.0415 and event.symbol in last:
            out.insert(last.pop(event.symbol), event)  # out of order: a gap, then a stale diff
            continue
        elif isinstance(event, DepthUpdate) and roll < 0.07:
            out.append(event)
            stale = DepthUpdate(event.symbol, event.event_time_ms - 90_000, event.first_update_id,
                                event.final_update_id, (), (), event.recv_ns)
            out.append(stale)  # covered ids, E a minute and a half back
        elif isinstance(event, DepthUpdate) and roll < 0.08:
            out.append(Marker(EventKind.DISCONNECT, event.symbol, event.recv_ns, "{}"))
            out.append(event)
        else:
            out.append(event)
        if isinstance(event, DepthUpdate):
            last[event.symbol] = len(out) - 1
    return out


@pytest.mark.parametrize("seed", [4, 5])
def test_parity_with_duplicate_stale_and_reordered_diffs(tmp_path: Path, seed: int) -> None:
    events = list(synthetic_events(["ETHUSDT", "SHIBUSDT"], 5, seed=seed, snapshot_every_s=45, depth=40))
    record(tmp_path, _disorder(events, seed), chunk=1500)
    report_fast, report_slow = ReplayReport(), ReplayReport()
    store = SegmentStore(tmp_path)
    fast = list(replay(store, ["ETHUSDT", "SHIBUSDT"], FEATURES, 0, None, report_fast, engine="fast"))
    slow = list(replay(store, ["ETHUSDT", "SHIBUSDT"], FEATURES, 0, None, report_slow, engine="python"))
    assert fast == slow and len(fast) >= 8
    assert report_fast.gaps == report_slow.gaps > 0  # the reorders broke the chain
    assert report_fast.events == report_slow.events
    assert any(not row.valid for row in fast) and any(row.valid for row in fast)


def test_parity_with_a_corrupt_segment(tmp_path: Path, recording_events: list) -> None:
    paths = record(tmp_path, recording_events, chunk=3000)
    sorted(p for p in paths if "SHIB" in p.name)[1].write_bytes(b"garbage")
    fast, slow = both(tmp_path, ["BTCUSDT", "SHIBUSDT"])
    assert fast == slow


def _levels(pairs: list[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
    from acts.core.decimals import to_book

    return (np.array([to_book(p) for p, _ in pairs], dtype=np.int64),
            np.array([to_book(q) for _, q in pairs], dtype=np.int64))


def test_array_book_handles_huge_and_sparse_price_ranges() -> None:
    """A stray level a million ticks away, prices from 1e-8 to 9e4: memory O(levels), same answers."""
    updates = [
        ([("65000.01", "1"), ("0.00000001", "5"), ("64999.99", "2"), ("10.5", "3")],
         [("65000.02", "1"), ("90000.00", "7"), ("75000.00", "1")]),
        ([("65000.01", "0"), ("0.00000001", "0.00000000")], [("65000.03", "4"), ("90000.00", "0")]),
        ([("30000.00", "2")], [("65000.02", "0")]),
    ]
    ref, fast = Book(), ArrayBook()
    for bids, asks in updates:
        ref.apply(bids, asks)
        fast.apply(_levels(bids), _levels(asks))
        assert fast.view().bids() == ref.view().bids() and fast.view().asks() == ref.view().asks()
        assert fast.is_crossed() == ref.is_crossed()
    assert fast.view().bid_depth == 3 and fast.view().best_ask() == 6_500_003_000_000


def test_array_book_grows_past_its_capacity() -> None:
    ref, fast = Book(), ArrayBook()
    bids = [(f"{1000 + i}.00", "1.5") for i in range(5000)]
    ref.apply(bids, [])
    fast.apply(_levels(bids), _levels([]))
    assert fast.view().bids(7) == ref.view().bids(7) and fast.view().bid_depth == 5000


def test_levels_beyond_int64_fall_back_to_the_exact_engine(tmp_path: Path) -> None:
    huge = "99999999999.00"  # 1e11 units: does not fit int64 at 8 decimals
    events = [DepthUpdate("PEPEUSDT", 60_000 * k, k, k, ((f"0.0000{k}", huge),), (("0.001", "1"),), 10**15 + k)
              for k in range(1, 5)]
    write_segments(tmp_path, "PEPEUSDT", [Snapshot("PEPEUSDT", 0, (), (), 10**15)] + events)
    store = SegmentStore(tmp_path)
    auto = list(replay(store, ["PEPEUSDT"], FEATURES, 0, None, ReplayReport(), engine="auto"))
    slow = list(replay(store, ["PEPEUSDT"], FEATURES, 0, None, ReplayReport(), engine="python"))
    # The last emitted minute holds three such bid levels: exact sums, beyond int64 at the book scale.
    assert auto == slow and auto[-1].values[NAMES.index("bid_amount5")] == 3 * 99999999999.0
    with pytest.raises(InputError, match="--engine python"):
        list(replay(store, ["PEPEUSDT"], FEATURES, 0, None, ReplayReport(), engine="fast"))


@pytest.mark.parametrize("uniform", [True, False])
def test_parity_whether_or_not_levels_share_one_spelling(tmp_path: Path, uniform: bool) -> None:
    """The fast decode shifts a row group by one power of ten when every level has the same number
    of decimals, and level by level otherwise: both agree with the exact engine."""
    spell = (lambda k, d: f"{k}.{'0' * 8}") if uniform else (lambda k, d: f"{k}" if d % 3 == 0 else f"{k}.{'0' * d}")
    snap = Snapshot("XUSDT", 10, tuple((spell(100 - i, i), spell(i + 1, i + 1)) for i in range(5)),
                    tuple((spell(101 + i, i + 2), spell(i + 2, i)) for i in range(5)), 10**15)
    events = [snap] + [DepthUpdate("XUSDT", 60_000 * k, 10 + k, 10 + k,
                                   ((spell(100 - k % 5, k), spell(k % 4, k + 1)),),
                                   ((spell(101 + k % 5, k + 2), spell(k, k)),), 10**15 + k) for k in range(1, 9)]
    write_segments(tmp_path, "XUSDT", events)
    fast, slow = both(tmp_path, ["XUSDT"])
    assert fast == slow and len(fast) == 7 and all(row.valid for row in fast)


def test_levels_beyond_int64_are_caught_when_all_share_one_spelling(tmp_path: Path) -> None:
    events = [Snapshot("XUSDT", 0, (("1.00", "99999999999.00"),), (("2.00", "1.00"),), 10**15),
              DepthUpdate("XUSDT", 120_000, 1, 1, (), (("2.00", "2.00"),), 10**15 + 1)]
    write_segments(tmp_path, "XUSDT", events)
    with pytest.raises(InputError, match="--engine python"):
        list(replay(SegmentStore(tmp_path), ["XUSDT"], FEATURES, 0, None, ReplayReport(), engine="fast"))


def test_a_replay_stopped_early_leaves_no_decode_thread_behind(recorded_dir: Path) -> None:
    store = SegmentStore(recorded_dir)
    rows = replay(store, store.symbols(), FEATURES, 0, None, ReplayReport(), engine="fast")
    next(rows)
    assert any(t.name.startswith("acts-decode") for t in threading.enumerate())  # decoding ahead ...
    rows.close()
    del rows
    gc.collect()
    assert not [t for t in threading.enumerate() if t.name.startswith("acts-decode")]  # ... and done
