"""``History.coverage`` reads only the segments it needs and answers as the full ``verify`` does."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict
from pathlib import Path, PurePath

import pytest

import acts
from acts.api import History
from acts.core.events import DepthUpdate
from acts.core.symbols import iso_ms
from acts.core.timeunits import HOUR_MS, MINUTE_MS
from acts.exchange.generator import DEFAULT_START_MS
from acts.exchange.synthetic import synthetic_events
from acts.replayer.verify import verify
from tests.conftest import NEAR_HOUR_MS, record

START = DEFAULT_START_MS  # midnight


@pytest.fixture(scope="module")
def hours_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four hours of BTC and SHIB with gaps (each one resynced by a snapshot) and a checkpoint snapshot
    every 25 minutes, so snapshots fall inside hours and not only at their start: 12 generated minutes
    stretched 20 times (cheap to make; order and update ids unchanged)."""
    def stretch(ms: int) -> int:
        return START + (ms - START) * 20

    events = []
    for event in synthetic_events(["BTCUSDT", "SHIBUSDT"], 12, seed=5, start_ms=START, snapshot_every_s=75,
                                  gap_rate=0.001, depth=40):
        recv_ms, sub_ms = divmod(event.recv_ns, 1_000_000)
        changed = {"recv_ns": stretch(recv_ms) * 1_000_000 + sub_ms}
        if isinstance(event, DepthUpdate):
            changed["event_time_ms"] = stretch(event.event_time_ms)
        events.append(dataclasses.replace(event, **changed))
    data_dir = tmp_path_factory.mktemp("hours")
    record(data_dir, events)
    return data_dir


def _full_verify(data_dir: Path, symbol: str, start_ms: int | None, end_ms: int | None) -> list[dict]:
    """The answer before footers were used: ``verify`` over every segment of the symbol."""
    return [{**asdict(h), "coverage": h.coverage} for h in verify(data_dir, [symbol], start_ms, end_ms).hours]


def _answer(table: object) -> list[dict]:
    rows = table.to_pylist()  # type: ignore[attr-defined]
    for row in rows:
        row["hour_ms"] = int(row.pop("hour").timestamp() * 1000)
    return rows


def _windows(t0: int) -> list[tuple[int | None, int | None]]:
    return [(None, None), (t0 + 95 * MINUTE_MS, None), (None, t0 + 130 * MINUTE_MS),
            (t0 + 61 * MINUTE_MS, t0 + 62 * MINUTE_MS), (t0 + 150 * MINUTE_MS + 1234, t0 + 3 * HOUR_MS + 17),
            (t0 + 2 * HOUR_MS, t0 + 3 * HOUR_MS), (t0 - HOUR_MS, t0 + 5), (t0 + 10 * HOUR_MS, None)]


@pytest.mark.parametrize("window", range(8))
@pytest.mark.parametrize("symbol", ["BTCUSDT", "SHIBUSDT"])
def test_same_answer_as_verifying_everything(hours_dir: Path, symbol: str, window: int) -> None:
    start_ms, end_ms = _windows(START)[window]
    table = acts.open(hours_dir).coverage(symbol, None if start_ms is None else iso_ms(start_ms),
                                          None if end_ms is None else iso_ms(end_ms))
    assert _answer(table) == _full_verify(hours_dir, symbol, start_ms, end_ms)
    if window in (0, 1, 2, 4, 5):
        assert table.num_rows >= 1 and sum(table["gaps"].to_pylist()) + sum(table["snapshots"].to_pylist()) > 0


@pytest.mark.parametrize("window", [(None, None), (5, None), (None, 7), (3.01, 9.0003), (11, 11.02), (-60, 0.001)])
def test_same_answer_on_the_shared_fixture(recorded_dir: Path, window: tuple[float | None, float | None]) -> None:
    """12 minutes across an hour boundary, gaps, a checkpoint every 2 minutes (tests/conftest.py);
    windows in minutes from its start."""
    start_ms, end_ms = (None if m is None else NEAR_HOUR_MS + int(m * MINUTE_MS) for m in window)
    for symbol in ("BTCUSDT", "SHIBUSDT"):
        table = History(recorded_dir).coverage(symbol, None if start_ms is None else iso_ms(start_ms),
                                               None if end_ms is None else iso_ms(end_ms))
        assert _answer(table) == _full_verify(recorded_dir, symbol, start_ms, end_ms)


def test_reads_only_the_segments_it_needs(hours_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ten minutes in the third hour read that hour's segment and the one before it (the book starts
    from the snapshot at 2:05, whose buffered diffs may sit in the previous file), nothing after."""
    h = History(hours_dir)
    every = h.store.paths("BTCUSDT")
    assert len(every) == 5  # one segment per hour; the last events fall just past 4:00
    read: list[PurePath] = []
    events = h.store.events

    def counting(path: PurePath, symbol: str):  # type: ignore[no-untyped-def]
        read.append(path)
        return events(path, symbol)

    monkeypatch.setattr(h.store, "events", counting)
    h.coverage("BTC", iso_ms(START + 2 * HOUR_MS + 10 * MINUTE_MS), iso_ms(START + 2 * HOUR_MS + 20 * MINUTE_MS))
    assert read == every[1:3]
    read.clear()
    h.coverage("BTC", iso_ms(START + 3 * HOUR_MS + 30 * MINUTE_MS))
    assert read == every[2:]
    read.clear()
    h.coverage("BTC")
    assert read == every
