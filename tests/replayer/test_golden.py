"""A committed recording replays to committed output, byte for byte, with either engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from acts.features.builtin import default_registry
from acts.replayer.output import csv_text
from acts.replayer.replay import ReplayReport, replay
from acts.storage.store import SegmentStore

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden"
NAMES = ["mid", "best_bid", "best_ask", "spread", "microprice", "bias5", "bias20", "bid_amount10", "ask_amount10",
         "depth20"]


@pytest.mark.parametrize("engine", ["python", "fast"])
def test_golden_recording_replays_exactly(engine: str) -> None:
    report = ReplayReport()
    rows = replay(SegmentStore(GOLDEN), ["BTCUSDT", "SHIBUSDT"], default_registry().resolve(NAMES), 0, None, report,
                  engine=engine)
    assert csv_text(rows, NAMES) == (GOLDEN / "expected.csv").read_text()
    assert report.gaps > 0 and not report.problems
