from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from acts.errors import CorruptSegmentError
from recorder.journal import Channel, JournalRecord, JournalWriter, list_journals, read_journal


def _records(n: int) -> list[JournalRecord]:
    return [JournalRecord(10**18 + i, Channel(i % 3), ["BTCUSDT", "", "ÉTHUSDT"][i % 3], bytes([i % 256]) * (i % 50))
            for i in range(n)]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _write(path: Path, records: list[JournalRecord], flush_every: int) -> Path:
    """A journal holding ``records``, one frame per ``flush_every`` records (the rest at close)."""
    writer = JournalWriter(path, flush_interval_s=1000)
    for i, record in enumerate(records):
        writer.append(record)
        if (i + 1) % flush_every == 0:
            writer.flush()
    writer.close()
    return path


def test_round_trip(tmp_path: Path) -> None:
    records = _records(3000)
    scan = read_journal(_write(tmp_path / "1.journal", records, flush_every=700))
    assert scan.records == records
    assert scan.dropped_bytes == 0 and not scan.truncated_tail and scan.frames == 5


def test_records_are_durable_once_the_interval_passed(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "1.journal"
    writer = JournalWriter(path, flush_interval_s=1.0, clock=clock)
    writer.append(_records(1)[0])
    assert read_journal(path).records == []  # buffered, not yet on disk
    clock.now = 1.0
    writer.append(_records(2)[1])  # the interval passed: both go out in one frame
    assert len(read_journal(path).records) == 2  # without close()


def test_truncated_tail_keeps_every_complete_frame(tmp_path: Path) -> None:
    path = _write(tmp_path / "1.journal", _records(40), flush_every=10)
    data = path.read_bytes()
    full = read_journal(path)
    last_frame_start = data.rfind(b"AJF1")
    complete_before = len(read_journal_bytes(tmp_path, data[:last_frame_start]).records)
    for cut in range(last_frame_start, len(data)):  # every byte offset of the last frame
        scan = read_journal_bytes(tmp_path, data[:cut])
        assert scan.records == full.records[:complete_before]
        assert scan.truncated_tail == (cut > last_frame_start)


def read_journal_bytes(tmp_path: Path, data: bytes):  # type: ignore[no-untyped-def]
    path = tmp_path / "cut.journal"
    path.write_bytes(data)
    return read_journal(path)


def test_a_corrupt_middle_frame_is_skipped_alone(tmp_path: Path) -> None:
    records = _records(30)
    path = _write(tmp_path / "1.journal", records, flush_every=10)
    data = bytearray(path.read_bytes())
    second = data.find(b"AJF1", data.find(b"AJF1") + 1)
    data[second + 30] ^= 0xFF  # flip a byte inside the second frame's body
    path.write_bytes(bytes(data))
    scan = read_journal(path)
    assert scan.corrupt_frames == 1
    assert scan.records == records[:10] + records[20:]


def test_foreign_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.journal"
    path.write_bytes(b"hello")
    with pytest.raises(CorruptSegmentError, match="not an ACTS journal"):
        read_journal(path)


def test_list_journals_in_start_order(tmp_path: Path) -> None:
    for name in ("900", "1000", "99"):
        (tmp_path / f"{name}.journal").write_bytes(b"")
    (tmp_path / "rolled").mkdir()
    assert [p.stem for p in list_journals(tmp_path)] == ["99", "900", "1000"]


CHILD = """
import sys, time
from pathlib import Path
from recorder.journal import Channel, JournalRecord, JournalWriter
w = JournalWriter(Path(sys.argv[1]), flush_interval_s=0.2)
progress = Path(sys.argv[2])
i = 0
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    w.append(JournalRecord(i, Channel.STREAM, "BTCUSDT", b"x" * 100))
    i += 1
    if i % 200 == 0:
        progress.write_text(str(i))
        time.sleep(0.01)
"""


def test_sigkill_loses_at_most_the_last_interval(tmp_path: Path) -> None:
    journal, progress = tmp_path / "1.journal", tmp_path / "progress"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(journal), str(progress)],
                             cwd=Path(__file__).resolve().parents[2])
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (not progress.exists() or int(progress.read_text() or 0) < 5000):
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=10)
    appended = int(progress.read_text())
    recovered = read_journal(journal).records
    assert [r.recv_ns for r in recovered] == list(range(len(recovered)))  # a clean prefix, no holes
    # About 0.2 s of appends can be lost: the child writes ~20 000 records/s at most here.
    assert appended - len(recovered) <= 20_000
    assert len(recovered) > 0
