"""Rolling journals into segments: streamed in bounded chunks, idempotent, invisible to replay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exchange.synthetic import synthetic_events
from features.builtin import default_registry
from recorder import roll
from recorder.events import DepthUpdate, Marker, Snapshot, to_wire
from recorder.ingest import marker_record
from recorder.journal import Channel, JournalRecord, JournalWriter, list_journals
from recorder.roll import Roller
from replayer.replay import replay
from replayer.store import SegmentStore

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


def _rows(data_dir: Path) -> list:
    return list(replay(SegmentStore(data_dir), SYMBOLS, FEATURES, 0))


def test_a_roll_in_small_chunks_replays_like_one_in_one_piece(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    whole, chunked = tmp_path / "whole", tmp_path / "chunked"
    Roller(whole, keep_rolled=False).roll(_journal(whole, 4))
    journal = _journal(chunked, 4)
    monkeypatch.setattr(roll, "ROLL_CHUNK_EVENTS", 400)  # one symbol's buffer fills up ...
    monkeypatch.setattr(roll, "ROLL_BUDGET_EVENTS", 1000)  # ... or all of them together do
    paths = Roller(chunked).roll(journal)
    assert len(paths) > 3 * len(SYMBOLS)  # really written in pieces
    assert len(list(SegmentStore(whole).paths("BTCUSDT"))) == 1
    rows = _rows(chunked)
    assert rows == _rows(whole) and len(rows) >= 3 * len(SYMBOLS)
    assert not list_journals(chunked / "journal") and (chunked / "journal" / "rolled" / journal.name).exists()


def test_rolling_the_same_journal_again_rewrites_the_same_files(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash after some chunks were written but before the journal was retired: the next start
    rolls it again and must produce the very same files, not duplicates."""
    monkeypatch.setattr(roll, "ROLL_CHUNK_EVENTS", 500)
    monkeypatch.setattr(roll, "ROLL_BUDGET_EVENTS", 900)
    journal = _journal(tmp_path, 3)
    copy = journal.read_bytes()
    first = sorted(p.name for p in Roller(tmp_path, keep_rolled=False).roll(journal))
    journal.write_bytes(copy)  # as if the crash came before it was retired
    second = sorted(p.name for p in Roller(tmp_path, keep_rolled=False).recover())
    assert first == second
    assert sorted(p.name for p in (tmp_path / "segments").rglob("*.parquet")) == first
