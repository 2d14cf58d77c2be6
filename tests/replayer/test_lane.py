"""The compiled lane closing intervals itself: same rows as the reference engine and the naive reference.

Every test here asks only for features with a compiled twin, so the lane samples (checked with a spy on
``_lane_batch``: a test that never reached the lane would prove nothing).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acts.core.events import DepthUpdate, EventKind, Marker, Snapshot
from acts.exchange.synthetic import synthetic_events
from acts.features.builtin import CompiledFeature, default_registry, microprice
from acts.features.pipeline import EVERY_EVENT, LaneBatch, MinuteSampler
from acts.features.registry import Feature
from acts.replayer import replay as replay_module
from acts.replayer.replay import ReplayReport, replay
from acts.storage import segments
from acts.storage.segments import write_segments
from acts.storage.store import SegmentStore
from tests.conftest import record
from tests.reference import ReferenceRows
from tests.replayer.test_engine import _disorder
from tests.strategies import SYMBOL, messy_stream

COMPILED = ["mid", "best_bid", "best_ask", "spread", "bias1", "bias10", "bias50", "bid_amount5", "ask_amount20",
            "microprice", "depth10", "depth1"]
FEATURES = default_registry().resolve(COMPILED)
INTERVALS = [100, 1_000, 60_000, EVERY_EVENT]
#: A feature without a compiled twin (the built-in's Python function, untagged): the lane only follows the chain.
PYTHON_ONLY = Feature.of("python_microprice", microprice)


@pytest.fixture
def lane_batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many rows each lane batch held (the spy that proves the lane ran)."""
    sizes: list[int] = []
    real = replay_module._lane_batch

    def spy(*args: object) -> LaneBatch:
        batch = real(*args)  # type: ignore[arg-type]
        sizes.append(len(batch._columns[0]))
        return batch

    monkeypatch.setattr(replay_module, "_lane_batch", spy)
    return sizes


def both(data_dir: Path, symbols: list[str], interval_ms: int, features: list[Feature] = FEATURES,
         ) -> tuple[list, list, ReplayReport, ReplayReport]:
    store = SegmentStore(data_dir)
    rf, rs = ReplayReport(), ReplayReport()
    fast = list(replay(store, symbols, features, 0, None, rf, engine="fast", interval_ms=interval_ms))
    slow = list(replay(store, symbols, features, 0, None, rs, engine="python", interval_ms=interval_ms))
    return fast, slow, rf, rs


def test_every_compiled_builtin_is_tagged() -> None:
    assert all(isinstance(f.fn, CompiledFeature) for f in FEATURES)
    assert MinuteSampler(SYMBOL, FEATURES).kernels is not None
    assert MinuteSampler(SYMBOL, [*FEATURES, PYTHON_ONLY]).kernels is None


@pytest.mark.parametrize("interval_ms", INTERVALS)
def test_parity_with_gaps_snapshots_and_segment_splits(tmp_path: Path, interval_ms: int,
                                                       lane_batches: list[int]) -> None:
    events = list(synthetic_events(["ETHUSDT", "SHIBUSDT"], 3, seed=7, snapshot_every_s=40, gap_rate=0.01,
                                   depth=60))
    record(tmp_path, events, chunk=997)  # segment boundaries inside intervals
    fast, slow, rf, rs = both(tmp_path, ["ETHUSDT", "SHIBUSDT"], interval_ms)
    assert fast == slow and len(fast) > 4
    assert (rf.events, rf.gaps, rf.crossed) == (rs.events, rs.gaps, rs.crossed) and rf.gaps > 0
    assert sum(lane_batches) > len(fast) // 4


@pytest.mark.parametrize("interval_ms", INTERVALS)
def test_parity_at_row_group_boundaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interval_ms: int,
                                        lane_batches: list[int]) -> None:
    """Tiny row groups: interval closes at and next to every row-group edge."""
    monkeypatch.setattr(segments, "ROW_GROUP_ROWS", 61)
    events = list(synthetic_events(["ETHUSDT"], 3, seed=3, snapshot_every_s=50, gap_rate=0.005, depth=30))
    record(tmp_path, events)
    assert len(list(SegmentStore(tmp_path).row_groups(SegmentStore(tmp_path).paths("ETHUSDT")[0], "ETHUSDT"))) > 50
    fast, slow, _, _ = both(tmp_path, ["ETHUSDT"], interval_ms)
    assert fast == slow and fast and lane_batches


@pytest.mark.parametrize("interval_ms", [100, 1_000, EVERY_EVENT])
def test_parity_when_the_lane_fills_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interval_ms: int,
                                       lane_batches: list[int]) -> None:
    """A lane that holds three rows hands them over mid row group and goes on where it stopped."""
    monkeypatch.setattr(replay_module, "LANE_ROWS", 3)
    events = list(synthetic_events(["ETHUSDT"], 2, seed=4, snapshot_every_s=50, gap_rate=0.005, depth=30))
    record(tmp_path, events)
    fast, slow, _, _ = both(tmp_path, ["ETHUSDT"], interval_ms)
    assert fast == slow and len(fast) > 4 and max(lane_batches) == 3


@pytest.mark.parametrize("interval_ms", INTERVALS)
def test_parity_with_duplicate_stale_reordered_diffs_and_markers(tmp_path: Path, interval_ms: int,
                                                                 lane_batches: list[int]) -> None:
    events = list(synthetic_events(["ETHUSDT", "SHIBUSDT"], 3, seed=5, snapshot_every_s=45, depth=40))
    record(tmp_path, _disorder(events, 5), chunk=1500)
    fast, slow, rf, rs = both(tmp_path, ["ETHUSDT", "SHIBUSDT"], interval_ms)
    assert fast == slow and rf.gaps == rs.gaps > 0 and lane_batches


def _quiet(k: int, time_ms: int) -> DepthUpdate:
    return DepthUpdate(SYMBOL, time_ms, k, k, (("100.00", f"{k}.5"),), (("101.00", "2"),), 10**15 + k)


@pytest.mark.parametrize("interval_ms", [100, 1_000, 60_000])
def test_carried_intervals_and_a_restart(tmp_path: Path, interval_ms: int, lane_batches: list[int]) -> None:
    """Silences of many intervals carried valid (the chain goes on after them), then a restart cut."""
    events: list = [Snapshot(SYMBOL, 0, (("99.00", "1"),), (("102.00", "1"),), 10**15)]
    events += [_quiet(k, 1_000 + 450 * k + (k // 5) * 7 * interval_ms) for k in range(1, 30)]
    events.append(Marker(EventKind.RESTART, SYMBOL, 10**15 + 50, "{}"))
    events += [Snapshot(SYMBOL, 40, (("99.00", "1"),), (("102.00", "1"),), 10**15 + 51)]
    events += [_quiet(k, 1_000 + 450 * k + 6 * 7 * interval_ms) for k in range(41, 60)]
    write_segments(tmp_path, SYMBOL, events)
    reference = ReferenceRows(interval_ms)
    for event in events:
        reference.feed(event)
    fast, slow, _, _ = both(tmp_path, [SYMBOL], interval_ms)
    assert fast == slow
    assert [(r.minute_ms, r.valid, r.last_book_update_ms, r.values[0]) for r in fast] == reference.rows
    carried = [r for r in fast if r.valid and r.minute_ms - r.last_book_update_ms >= 2 * interval_ms]
    assert carried and any(not r.valid for r in fast) and lane_batches


@pytest.mark.parametrize("interval_ms", INTERVALS)
def test_features_at_empty_book_sides(tmp_path: Path, interval_ms: int, lane_batches: list[int]) -> None:
    """One side empties and fills again: mid, spread, bias and amounts of the empty side are None."""
    events: list = [Snapshot(SYMBOL, 0, (("99.00", "1"),), (("102.00", "1"),), 10**15)]
    step = max(interval_ms, 300)
    for k in range(1, 40):  # three diffs an interval: rows sample the book after k = 2, 5, 8, ...
        bids = (("99.00", "0"),) if k % 6 == 2 else (("99.00", str(k)),)  # no bids after k = 2, 8, ...
        asks = (("102.00", "0"),) if k % 6 == 5 else (("102.00", "3"),)  # no asks after k = 5, 11, ...
        events.append(DepthUpdate(SYMBOL, step * k // 3, k, k, bids if k % 2 == 0 else (), asks, 10**15 + k))
    write_segments(tmp_path, SYMBOL, events)
    fast, slow, _, _ = both(tmp_path, [SYMBOL], interval_ms)
    assert fast == slow and lane_batches
    column = {name: [r.values[i] for r in fast] for i, name in enumerate(COMPILED)}
    assert None in column["mid"] and None in column["bid_amount5"] and None in column["ask_amount20"]
    assert None in column["spread"] and None in column["best_ask"] and None in column["best_bid"]
    assert all(v is not None for v in column["bias10"])  # one side is never empty with the other


def test_prices_past_what_a_double_holds_exactly_go_to_python(tmp_path: Path, lane_batches: list[int]) -> None:
    """Above 2**53 at the book scale (~90 M a unit) a float division would round twice: the lane hands
    those rows to Python, whose exact integers give the right value."""
    events: list = [Snapshot(SYMBOL, 0, (("90071992.54740993", "1"),), (("90071992.54740995", "1"),), 10**15)]
    events += [DepthUpdate(SYMBOL, 1_000 * k, k, k, (("90071992.54740991", str(k)),), (), 10**15 + k)
               for k in range(1, 8)]
    write_segments(tmp_path, SYMBOL, events)
    fast, slow, _, _ = both(tmp_path, [SYMBOL], 1_000)
    assert fast == slow and len(fast) == 6 and all(r.valid for r in fast)
    assert not lane_batches  # mid is past the limit: every close went to Python


def test_mixed_python_and_compiled_features_give_the_same_values(tmp_path: Path) -> None:
    events = list(synthetic_events(["ETHUSDT"], 2, seed=9, snapshot_every_s=50, gap_rate=0.01, depth=30))
    record(tmp_path, events)
    mixed = [*FEATURES, PYTHON_ONLY]
    for interval_ms in INTERVALS:
        compiled, _, _, _ = both(tmp_path, ["ETHUSDT"], interval_ms)
        python, _, _, _ = both(tmp_path, ["ETHUSDT"], interval_ms, mixed)
        assert [dataclasses.replace(r, values=r.values[:-1]) for r in python] == compiled


def test_requested_range_cuts_lane_batches_like_python(tmp_path: Path) -> None:
    events = list(synthetic_events(["ETHUSDT"], 3, seed=2, snapshot_every_s=50, depth=30))
    record(tmp_path, events)
    store = SegmentStore(tmp_path)
    rows = list(replay(store, ["ETHUSDT"], FEATURES, 0, None, ReplayReport(), engine="python", interval_ms=1_000))
    start, end = rows[30].minute_ms, rows[95].minute_ms
    for engine in ("fast", "python"):
        got = list(replay(store, ["ETHUSDT"], FEATURES, start, end, ReplayReport(), engine=engine,
                          interval_ms=1_000))
        assert got == rows[30:95], engine


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(messy_stream(), st.sampled_from([100, 1_000, 60_000]))
def test_messy_streams_equal_the_naive_reference(tmp_path_factory: pytest.TempPathFactory, events: list,
                                                 interval_ms: int) -> None:
    reference = ReferenceRows(interval_ms)
    for event in events:
        reference.feed(event)
    data_dir = Path(tmp_path_factory.mktemp("messy"))
    write_segments(data_dir, SYMBOL, events)
    fast, slow, _, _ = both(data_dir, [SYMBOL], interval_ms)
    assert fast == slow
    assert [(r.minute_ms, r.valid, r.last_book_update_ms, r.values[0]) for r in fast] == reference.rows
