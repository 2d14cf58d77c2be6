"""Rolling journals into segments: streamed in bounded chunks, idempotent, invisible to replay."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from acts.core.events import DepthUpdate, Marker, Snapshot, to_wire
from acts.exchange.synthetic import synthetic_events
from acts.features.builtin import default_registry
from acts.recorder import roll
from acts.recorder.roll import Roller
from acts.replayer.replay import replay
from acts.storage.journal import Channel, JournalRecord, JournalWriter, list_journals
from acts.storage.records import marker_record
from acts.storage.segments import TEMP_PREFIX, SegmentWriter, read_events
from acts.storage.store import SegmentStore

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SHIBUSDT"]
FEATURES = default_registry().resolve(["mid", "bias10", "ask_amount5"])


def _journal(data_dir: Path, minutes: float) -> Path:
    """A journal as the recorder writes it: combined-stream frames, snapshot bodies, markers."""
    writer = Roller(data_dir).open_journal(1)
    with writer:
        for event in synthetic_events(SYMBOLS, minutes, seed=11, snapshot_every_s=40, gap_rate=0.002, depth=30):
            if isinstance(event, DepthUpdate):
                wrapped = {"stream": f"{event.symbol.lower()}@depth@100ms", "data": to_wire(event)}
                record = JournalRecord(event.recv_ns, Channel.STREAM, "", json.dumps(wrapped).encode())
            elif isinstance(event, Snapshot):
                body = json.dumps(to_wire(event)).encode()
                record = JournalRecord(event.recv_ns, Channel.SNAPSHOT, event.symbol, body)
            else:
                assert isinstance(event, Marker)
                record = marker_record(event.kind, event.symbol, event.recv_ns, **json.loads(event.detail))
            writer.append(record)
    assert isinstance(writer, JournalWriter)
    return writer.path


def _segments(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "segments").rglob("*.parquet"))


def _rows(data_dir: Path) -> list:
    return list(replay(SegmentStore(data_dir), SYMBOLS, FEATURES, 0))


def test_a_roll_in_small_chunks_replays_like_one_in_one_piece(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    whole, chunked = tmp_path / "whole", tmp_path / "chunked"
    Roller(whole, keep_rolled=False).roll(_journal(whole, 4))
    journal = _journal(chunked, 4)
    monkeypatch.setattr(roll, "ROLL_CHUNK_ROWS", 4_000)  # one symbol's buffer fills up ...
    monkeypatch.setattr(roll, "ROLL_BUDGET_ROWS", 10_000)  # ... or all of them together do
    paths = Roller(chunked).roll(journal)
    # Still one file per symbol and hour, written as many pieces (row groups).
    assert sorted(p.name for p in paths) == sorted(p.name for p in _segments(whole))
    assert all(pq.ParquetFile(p).num_row_groups > 5 for p in paths)
    assert not list((chunked / "segments").rglob(f"{TEMP_PREFIX}*"))
    rows = _rows(chunked)
    assert rows == _rows(whole) and len(rows) >= 3 * len(SYMBOLS)
    # Its segments read back as written: the journal is gone (README, "Rolling").
    assert not list_journals(chunked / "journal") and not journal.exists()
    assert not (chunked / "journal" / "rolled").exists()


def test_rolling_the_same_journal_again_rewrites_the_same_files(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash after some chunks were written but before the journal was retired: the next start
    rolls it again and must produce the very same files, not duplicates."""
    monkeypatch.setattr(roll, "ROLL_CHUNK_ROWS", 5_000)
    monkeypatch.setattr(roll, "ROLL_BUDGET_ROWS", 9_000)
    journal = _journal(tmp_path, 3)
    copy = journal.read_bytes()
    first = sorted(p.name for p in Roller(tmp_path, keep_rolled=False).roll(journal))
    journal.write_bytes(copy)  # as if the crash came before it was retired
    second = sorted(p.name for p in Roller(tmp_path, keep_rolled=False).recover())
    assert first == second
    assert sorted(p.name for p in (tmp_path / "segments").rglob("*.parquet")) == first


def test_a_roll_cut_short_leaves_only_temp_files_which_the_recovery_removes(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The crash comes mid-roll, while segments are still open: readers see none of them, and the
    next start sweeps the temp files and rolls the journal again, whole."""
    monkeypatch.setattr(roll, "ROLL_CHUNK_ROWS", 4_000)
    journal = _journal(tmp_path, 3)
    pieces = 0

    def crash_on_the_third_piece(self: SegmentWriter, events: list) -> list[Path]:
        nonlocal pieces
        pieces += 1
        if pieces == 3:
            raise KeyboardInterrupt  # stands in for the kill: no cleanup code of ours runs ...
        return original(self, events)

    original = SegmentWriter.write
    monkeypatch.setattr(SegmentWriter, "write", crash_on_the_third_piece)
    monkeypatch.setattr(SegmentWriter, "abort", lambda self: None)  # ... not even the abort
    with pytest.raises(KeyboardInterrupt):
        Roller(tmp_path).roll(journal)
    assert list((tmp_path / "segments").rglob(f"{TEMP_PREFIX}*"))  # open files stayed temp files ...
    assert not _segments(tmp_path) and list_journals(tmp_path / "journal") == [journal]  # ... and hidden
    monkeypatch.undo()
    Roller(tmp_path).recover()
    assert not list((tmp_path / "segments").rglob(f"{TEMP_PREFIX}*"))
    assert len(_segments(tmp_path)) == len(SYMBOLS) and _rows(tmp_path)


def test_a_piece_that_needs_a_finer_scale_starts_a_new_file(tmp_path: Path) -> None:
    # Format version 1 only: version 2 keeps the scale per event (tests/storage/test_segments_v2.py).
    coarse = Snapshot("XUSDT", 1, (("100.00", "1.00"),), (("101.00", "2.00"),), 10)  # mantissas end in zeros
    fine = Snapshot("XUSDT", 2, (("100.01", "1.00"),), (("101.00", "2.00"),), 20)
    writer = SegmentWriter(tmp_path, "XUSDT", format_version=1)
    assert writer.write([coarse]) == []
    assert writer.write([coarse]) == []  # same scale: appended to the open file
    first = writer.write([fine])  # a finer price: the open file is finished, a new one begun
    paths = first + writer.close()
    assert len(first) == 1 and len(paths) == 2
    assert [len(list(read_events(p))) for p in paths] == [2, 1]
    assert [e for p in paths for e in read_events(p)] == [coarse, coarse, fine]
