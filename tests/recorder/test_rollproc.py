"""Rolls in a child process: the same segments as an in-process roll, and a failed child loses nothing."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from acts.core.clock import FakeClock
from acts.core.events import EventKind
from acts.recorder import live
from acts.recorder.roll import Roller
from acts.recorder.rollproc import RollFailed, roll_apart
from acts.storage.journal import Channel, JournalRecord, list_journals, read_journal
from acts.storage.records import marker_record
from acts.storage.store import SegmentStore
from tests.recorder.test_shell import SYMBOL, FakeExchange, _recorder, _until

T0_NS = 1_700_000_000_000_000_000


def _journal(roller: Roller) -> Path:
    """A small finished journal: a restart marker, a snapshot and three diffs continuing it."""
    writer = roller.open_journal(T0_NS)
    writer.append(marker_record(EventKind.RESTART, SYMBOL, T0_NS))
    book = {"lastUpdateId": 100, "bids": [["100.00", "1.0"]], "asks": [["101.00", "1.0"]]}
    writer.append(JournalRecord(T0_NS + 1, Channel.SNAPSHOT, SYMBOL, json.dumps(book).encode()))
    for n in range(3):
        data = {"e": "depthUpdate", "E": T0_NS // 10**6 + n, "s": SYMBOL, "U": 101 + 10 * n, "u": 110 + 10 * n,
                "b": [["100.00", f"{n + 2}.0"]], "a": []}
        payload = json.dumps({"stream": "btcusdt@depth@100ms", "data": data}).encode()
        writer.append(JournalRecord(T0_NS + 10**6 * (n + 1), Channel.STREAM, "", payload))
    writer.close()
    return writer.path


def _events(data_dir: Path) -> list[object]:
    store = SegmentStore(data_dir)
    return [e for p in store.paths(SYMBOL) for e in store.events(p, SYMBOL)]


async def test_a_roll_in_a_child_writes_what_an_in_process_roll_writes(tmp_path: Path) -> None:
    apart, here = Roller(tmp_path / "apart"), Roller(tmp_path / "here")
    journal = _journal(apart)
    paths = await roll_apart(apart, journal, T0_NS)
    expected = here.roll(_journal(here))
    assert [p.relative_to(tmp_path / "apart") for p in paths] == [p.relative_to(tmp_path / "here") for p in expected]
    assert all(p.read_bytes() == q.read_bytes() for p, q in zip(paths, expected, strict=True))
    assert not journal.exists()  # verified, then retired by the child
    kinds = [e.kind for e in _events(tmp_path / "apart")]  # type: ignore[attr-defined]
    assert kinds == [EventKind.RESTART, EventKind.SNAPSHOT] + [EventKind.DEPTH] * 3


async def test_a_failed_child_is_reported_and_the_journal_is_kept_whole(tmp_path: Path) -> None:
    roller = Roller(tmp_path)
    journal = _journal(roller)
    records = read_journal(journal).records
    (tmp_path / "segments").write_text("not a folder")  # the child cannot write a segment
    with pytest.raises(RollFailed, match=r"exit 1.*kept and rolled again at the next start"):
        await roll_apart(roller, journal, T0_NS)
    assert read_journal(journal).records == records  # nothing lost, nothing half-retired
    (tmp_path / "segments").unlink()
    assert await roll_apart(roller, None, T0_NS)  # the next start's recovery rolls it
    assert not list_journals(roller.journal_dir) and len(_events(tmp_path)) == len(records)


def _time_stands_still_during_rolls(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """While a roll's child process runs (real time), the loop looks idle: without a hold, autojump ran
    fake time through a day of 5 s rotations in one roll, each queueing another roll."""
    async def held(*args: Any, **kwargs: Any) -> list[Path]:
        with clock.hold():
            return await roll_apart(*args, **kwargs)

    monkeypatch.setattr(live, "roll_apart", held)


async def test_a_recorder_whose_roll_fails_records_on_and_keeps_the_journal(tmp_path: Path,
                                                                           caplog: pytest.LogCaptureFixture,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.ERROR)
    clock = FakeClock(autojump_threshold_s=0.001)  # worker threads and child processes get real time to run
    _time_stands_still_during_rolls(clock, monkeypatch)
    exchange = FakeExchange(clock)
    exchange.market_every_s = 1.0
    recorder = _recorder(tmp_path, clock, exchange, roll_every_s=5.0)
    (tmp_path / "segments").write_text("not a folder")
    task = asyncio.create_task(recorder.run())
    await _until(lambda: recorder.report.roll_failures >= 1, "a failed roll")
    (tmp_path / "segments").unlink()
    frames = recorder.report.frames
    await _until(lambda: recorder.report.frames > frames + 3, "recording went on")
    recorder.stop()
    await task
    assert recorder.failure is None
    assert any("failed in its child process" in r.getMessage() for r in caplog.records)
    kept = list_journals(tmp_path / "journal")
    assert kept  # the journals whose rolls failed wait for the next start
    second = _recorder(tmp_path, clock, exchange, duration_s=0.5)
    await second.run()
    assert not list_journals(tmp_path / "journal")
    diffs = [e for e in _events(tmp_path) if e.kind is EventKind.DEPTH]
    assert len(diffs) >= frames + 3  # every frame of the first run is in the segments after recovery
