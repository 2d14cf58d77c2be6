from __future__ import annotations

from pathlib import Path

import pytest

from acts.core.errors import CorruptSegmentError, NoDataError
from acts.features.builtin import default_registry
from acts.features.pipeline import MinuteRow
from acts.replayer.output import csv_text
from acts.replayer.replay import ReplayReport, replay
from acts.storage.store import SegmentStore
from tests.conftest import NEAR_HOUR_MS, record

NAMES = ["mid", "best_bid", "best_ask", "bias10", "bias50", "bid_amount5", "depth25", "microprice"]
FEATURES = default_registry().resolve(NAMES)
SYMBOLS = ["BTCUSDT", "SHIBUSDT"]


def run(data_dir: Path, start_ms: int = NEAR_HOUR_MS, end_ms: int | None = None,
        report: ReplayReport | None = None, strict: bool = False) -> list[MinuteRow]:
    return list(replay(SegmentStore(data_dir), SYMBOLS, FEATURES, start_ms, end_ms, report, strict))


@pytest.fixture(scope="module")
def full(recorded_dir: Path) -> list[MinuteRow]:
    return run(recorded_dir)


def test_replay_emits_one_row_per_symbol_per_closed_minute(full: list[MinuteRow]) -> None:
    rows = full
    minutes = sorted({r.minute_ms for r in rows})
    assert minutes == [NEAR_HOUR_MS + 60_000 * k for k in range(len(minutes))]
    # Steps run at start + 100 ms ... start + 12 min exactly: that last diff closes minute 11
    # and opens minute 12, which stays open and is not emitted.
    assert len(minutes) == 12
    assert [(r.minute_ms, r.symbol) for r in rows] == sorted((r.minute_ms, r.symbol) for r in rows)
    assert len(rows) == 2 * len(minutes)
    valid = [r for r in rows if r.valid]
    assert valid and all(v is not None for r in valid for v in r.values)
    assert all(r.values == (None,) * len(NAMES) for r in rows if not r.valid)


def test_replay_is_deterministic(recorded_dir: Path, full: list[MinuteRow]) -> None:
    assert csv_text(run(recorded_dir), NAMES) == csv_text(full, NAMES)


@pytest.mark.parametrize("chunk", [1, 777, 3001])
def test_split_segments_give_identical_output(tmp_path: Path, full: list[MinuteRow], recording_events: list,
                                              chunk: int) -> None:
    if chunk == 1:  # one file per event for the first few, then the rest in one go
        record(tmp_path, recording_events[:40], chunk=1)
        record(tmp_path, recording_events[40:])
    else:
        record(tmp_path, recording_events, chunk=chunk)
    assert csv_text(run(tmp_path), NAMES) == csv_text(full, NAMES)


@pytest.mark.parametrize("offset_min", [3, 7, 10])
def test_starting_mid_data_matches_the_full_replay(recorded_dir: Path, full: list[MinuteRow],
                                                   offset_min: int) -> None:
    start = NEAR_HOUR_MS + offset_min * 60_000
    assert run(recorded_dir, start) == [r for r in full if r.minute_ms >= start]


def test_to_is_exclusive(recorded_dir: Path, full: list[MinuteRow]) -> None:
    end = NEAR_HOUR_MS + 4 * 60_000
    rows = run(recorded_dir, end_ms=end)
    assert rows == [r for r in full if r.minute_ms < end]
    assert max(r.minute_ms for r in rows) == end - 60_000


def test_gaps_are_detected_from_update_ids(recorded_dir: Path) -> None:
    report = ReplayReport()
    run(recorded_dir, report=report)
    assert report.gaps > 0  # the fixture was generated with gap_rate > 0
    assert report.events > 10_000


def test_no_data_names_the_dates_that_exist(recorded_dir: Path) -> None:
    with pytest.raises(NoDataError, match="recorded dates: 2024-05-01"):
        run(recorded_dir, start_ms=NEAR_HOUR_MS + 86_400_000 * 30)


def test_corrupt_segment_is_reported_and_the_rest_replays(tmp_path: Path, recording_events: list) -> None:
    paths = record(tmp_path, recording_events, chunk=3000)
    victim = sorted(p for p in paths if "BTCUSDT" in p.name)[2]
    victim.write_bytes(victim.read_bytes()[:300])
    report = ReplayReport()
    rows = run(tmp_path, report=report)
    assert len(report.problems) == 1 and victim.name in report.problems[0]
    assert {r.symbol for r in rows} == set(SYMBOLS)
    # Events are missing, so the chain broke: the book went invalid instead of silently wrong.
    assert report.gaps >= 1
    with pytest.raises(CorruptSegmentError):
        run(tmp_path, strict=True)
