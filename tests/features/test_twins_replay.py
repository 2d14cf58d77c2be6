"""``microprice`` and ``depth<N>`` through replay: the fast engine (compiled lane) gives the reference
engine's rows, including a stretch the lane must hand to Python (quantities whose products wrap an int64)."""

from __future__ import annotations

from pathlib import Path

import pytest

from acts.core.events import DepthUpdate, Snapshot
from acts.features.builtin import default_registry
from acts.features.pipeline import EVERY_EVENT
from acts.storage.segments import write_segments
from tests.replayer import test_lane
from tests.replayer.test_lane import both
from tests.strategies import SYMBOL

lane_batches = test_lane.lane_batches  # the fixture: rows of each lane batch (proves the lane ran)

NAMES = ["mid", "microprice", "depth10", "depth1"]
#: 5e10 coins: 5e18 at the book scale, an int64 still, but times a price key it wraps -- Python's rows.
HUGE = "50000000000"


def _events(diffs: int) -> list:
    events: list = [Snapshot(SYMBOL, 10**6, (("100.00", "1"), ("99.95", "4")), (("100.02", "2"), ("100.10", "3")),
                             10**15)]
    for k in range(1, diffs + 1):
        bid_qty = HUGE if 200 <= k < 260 else f"{k % 7 + 1}.{k % 3}"
        bids = (("100.00", bid_qty), (f"99.{90 + k % 9}", str(k % 4)))  # "0": a removal now and then
        asks = ((f"100.0{1 + k % 3}", f"0.{k % 9 + 1}"),) if k % 5 else (("100.10", "0"), ("100.11", "1.5"))
        events.append(DepthUpdate(SYMBOL, 250 * k, 10**6 + k, 10**6 + k, bids, asks, 10**15 + k))
    return events


@pytest.mark.parametrize("names", [NAMES, ["microprice"], ["depth10"]])  # alone: no other twin hands the row over
@pytest.mark.parametrize("interval_ms", [60_000, 1_000, EVERY_EVENT])
def test_fast_rows_equal_python_rows_with_a_stretch_the_lane_hands_over(tmp_path: Path, interval_ms: int,
                                                                        names: list[str],
                                                                        lane_batches: list[int]) -> None:
    write_segments(tmp_path, SYMBOL, _events(720))  # three minutes
    fast, slow, _, _ = both(tmp_path, [SYMBOL], interval_ms, default_registry().resolve(names))
    assert fast == slow and len(fast) >= 3
    assert all(r.valid for r in fast[1:])
    assert lane_batches  # the lane sampled rows...
    if interval_ms == EVERY_EVENT:
        assert 0 < sum(lane_batches) <= len(fast) - 60  # ...but none of the stretch's: Python did
    everything, _, _, _ = both(tmp_path, [SYMBOL], interval_ms, default_registry().resolve(NAMES))
    assert any((r.values[NAMES.index("depth10")] or 0) > 10**10 for r in everything)  # the stretch is sampled
