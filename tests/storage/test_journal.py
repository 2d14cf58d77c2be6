from __future__ import annotations

import errno
import os
import random
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import pytest
import zstandard

from acts.core.errors import CorruptSegmentError
from acts.storage.journal import (
    MAX_BATCH_BYTES,
    Channel,
    JournalRecord,
    JournalScan,
    JournalWriter,
    iter_journal,
    list_journals,
    mark_rolled,
    read_journal,
)

ROOT = Path(__file__).resolve().parents[2]
HEADER = 16  # b"ACTSJRNL" version:u8 reserved:7
FRAME_HEADER = struct.Struct("<4sIII")  # b"AJF1" body_len raw_len crc32(body)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _records(n: int, seed: int = 1) -> list[JournalRecord]:
    """Every channel, binary and empty payloads, empty and non-ASCII symbols."""
    rng = random.Random(seed)
    symbols = ["BTCUSDT", "ÉTHUSDT", "币安USDT", "🚀DOGE", "X" * 300]
    out = []
    for i in range(n):
        channel = Channel(i % 3)
        symbol = "" if channel is Channel.STREAM and i % 2 else symbols[i % len(symbols)]
        payload = b"" if i % 7 == 0 else rng.randbytes(rng.randrange(1, 400))
        out.append(JournalRecord(1_700_000_000_000_000_000 + i, channel, symbol, payload))
    return out


def _write(path: Path, records: list[JournalRecord], flush_every: int) -> Path:
    """A journal holding ``records``, one frame per ``flush_every`` records (the rest at close)."""
    with JournalWriter(path, flush_interval_s=1e9) as writer:
        for i, record in enumerate(records):
            writer.append(record)
            if (i + 1) % flush_every == 0:
                writer.flush()
    return path


def _frames(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each frame of an intact journal, parsed from the documented layout."""
    spans, pos = [], HEADER
    while pos < len(data):
        magic, body_len, _, _ = FRAME_HEADER.unpack_from(data, pos)
        assert magic == b"AJF1"
        spans.append((pos, pos + FRAME_HEADER.size + body_len))
        pos += FRAME_HEADER.size + body_len
    return spans


def _scan_bytes(tmp_path: Path, data: bytes) -> JournalScan:
    path = tmp_path / "damaged.journal"
    path.write_bytes(data)
    return read_journal(path)


# --- round trip and layout -------------------------------------------------------------------


def test_round_trip_of_many_records(tmp_path: Path) -> None:
    records = _records(3000)
    records.append(JournalRecord(5, Channel.SNAPSHOT, "BTCUSDT", bytes(range(256)) * 1200))  # 300 KiB
    scan = read_journal(_write(tmp_path / "1.journal", records, flush_every=700))
    assert scan.records == records
    assert scan.frames == 5
    assert scan.dropped_bytes == 0 and not scan.damaged


def test_iter_journal_streams_and_counts(tmp_path: Path) -> None:
    records = _records(50)
    path = _write(tmp_path / "1.journal", records, flush_every=20)
    scan = JournalScan()
    assert list(iter_journal(path, scan)) == records
    assert scan.records == [] and scan.frames == 3 and not scan.damaged


def test_on_disk_layout_is_as_documented(tmp_path: Path) -> None:
    record = JournalRecord(42, Channel.SNAPSHOT, "ÉTH", b'{"lastUpdateId":1}')
    data = _write(tmp_path / "1.journal", [record], flush_every=1).read_bytes()
    assert data[:HEADER] == b"ACTSJRNL\x01" + bytes(7)
    magic, body_len, raw_len, crc = FRAME_HEADER.unpack_from(data, HEADER)
    body = data[HEADER + FRAME_HEADER.size :]
    assert (magic, body_len, crc) == (b"AJF1", len(body), zlib.crc32(body))
    raw = zstandard.ZstdDecompressor().decompress(body)
    symbol = "ÉTH".encode()
    assert len(raw) == raw_len
    assert raw == struct.pack("<qBHI", 42, 1, len(symbol), len(record.payload)) + symbol + record.payload


def test_an_empty_journal_reads_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "1.journal"
    JournalWriter(path).close()
    assert read_journal(path) == JournalScan()


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((-1, Channel.STREAM, "", b"x"), "recv_ns"),
        ((1 << 63, Channel.STREAM, "", b"x"), "recv_ns"),
        ((1.5, Channel.STREAM, "", b"x"), "recv_ns"),
        ((1, 0, "", b"x"), "channel must be a Channel"),
        ((1, Channel.STREAM, "", "text"), "payload must be the received bytes"),
        ((1, Channel.STREAM, b"BTC", b""), "symbol must be a str"),
        ((1, Channel.SNAPSHOT, "", b"{}"), "SNAPSHOT record needs its symbol"),
    ],
)
def test_invalid_records_are_refused_where_built(args: tuple[Any, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        JournalRecord(*args)


def test_a_symbol_too_long_for_the_layout_is_refused_on_append(tmp_path: Path) -> None:
    with JournalWriter(tmp_path / "1.journal") as writer, pytest.raises(ValueError, match="65535"):
        writer.append(JournalRecord(1, Channel.MARKER, "é" * 40_000, b"{}"))


# --- when records become durable -------------------------------------------------------------


def test_records_are_durable_once_the_interval_passed(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "1.journal"
    writer = JournalWriter(path, flush_interval_s=1.0, clock=clock)
    one, two, three, four, five = _records(5)
    writer.append(one)
    clock.now = 0.99
    writer.append(two)
    assert read_journal(path).records == []  # buffered, not yet on disk
    clock.now = 1.0
    writer.append(three)  # the interval passed: all three go out in one frame, without close()
    assert read_journal(path).records == [one, two, three]
    clock.now = 1.5
    writer.append(four)
    writer.flush()  # an explicit flush restarts the interval
    assert read_journal(path).records == [one, two, three, four]
    clock.now = 2.4
    writer.append(five)
    assert len(read_journal(path).records) == 4
    clock.now = 2.5
    writer.flush()
    assert read_journal(path).frames == 3
    writer.close()


def test_a_full_batch_is_flushed_before_the_interval(tmp_path: Path) -> None:
    path = tmp_path / "1.journal"
    writer = JournalWriter(path, flush_interval_s=1.0, clock=FakeClock())  # the clock never moves
    big = JournalRecord(1, Channel.STREAM, "BTCUSDT", b"x" * 100_000)
    for _ in range(MAX_BATCH_BYTES // 100_000):
        writer.append(big)
    assert read_journal(path).frames == 0
    writer.append(big)  # the batch now passes MAX_BATCH_BYTES
    assert read_journal(path).frames == 1
    writer.close()


def test_flush_from_another_thread_while_appending(tmp_path: Path) -> None:
    path = tmp_path / "1.journal"
    records = _records(20_000)
    writer = JournalWriter(path, flush_interval_s=0.0)  # every append also tries to flush itself
    done = threading.Event()

    def flusher() -> None:
        deadline = time.monotonic() + 20
        while not done.is_set() and time.monotonic() < deadline:
            writer.flush()

    thread = threading.Thread(target=flusher)
    thread.start()
    try:
        for record in records:
            writer.append(record)
    finally:
        done.set()
        thread.join(timeout=30)
    writer.close()
    scan = read_journal(path)
    assert scan.records == records and not scan.damaged


def test_close_is_final(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path / "1.journal")
    writer.append(_records(1)[0])
    writer.close()
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.append(_records(1)[0])
    assert len(read_journal(writer.path).records) == 1


def test_a_failed_write_keeps_the_batch_for_the_next_flush(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "1.journal"
    records = _records(30)
    writer = JournalWriter(path, flush_interval_s=1e9)
    for record in records[:20]:
        writer.append(record)
    real_write = os.write

    def half_then_disk_full(fd: int, data: Any) -> int:
        monkeypatch.setattr(os, "write", real_write)  # the disk fills once, after half a frame
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_disk_full)
    with pytest.raises(OSError, match="No space"):
        writer.flush()
    assert read_journal(path).truncated_tail  # a torn frame, as a crash would leave
    for record in records[20:]:
        writer.append(record)
    writer.close()  # space freed: the kept batch goes out, ahead of the later records
    scan = read_journal(path)
    assert scan.records == records  # nothing lost, nothing doubled
    assert scan.corrupt_frames == 1 and not scan.truncated_tail


def test_a_failed_fsync_does_not_write_the_batch_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "1.journal"
    records = _records(10)
    writer = JournalWriter(path, flush_interval_s=1e9)
    for record in records:
        writer.append(record)
    real_sync = JournalWriter._sync

    def failing_sync(self: JournalWriter) -> None:
        monkeypatch.setattr(JournalWriter, "_sync", real_sync)
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(JournalWriter, "_sync", failing_sync)
    with pytest.raises(OSError):
        writer.flush()
    writer.close()
    assert read_journal(path).records == records


# --- damage ----------------------------------------------------------------------------------


def test_truncation_anywhere_in_the_last_frame_keeps_every_complete_frame(tmp_path: Path) -> None:
    records = _records(40)
    data = _write(tmp_path / "1.journal", records, flush_every=10).read_bytes()
    last_start, last_end = _frames(data)[-1]
    assert last_end == len(data) and last_end - last_start < 8192  # keeps the loop small
    for cut in range(last_start, last_end):  # every byte offset of the last frame
        scan = _scan_bytes(tmp_path, data[:cut])
        assert scan.records == records[:30], cut
        assert scan.frames == 3 and scan.corrupt_frames == 0
        assert scan.truncated_tail == (cut > last_start) and scan.dropped_bytes == cut - last_start


def test_truncation_inside_the_header_is_an_empty_damaged_journal(tmp_path: Path) -> None:
    data = _write(tmp_path / "1.journal", _records(3), flush_every=3).read_bytes()
    for cut in range(HEADER):
        scan = _scan_bytes(tmp_path, data[:cut])
        assert scan.records == [] and scan.truncated_tail and scan.dropped_bytes == cut


def _flip_body_byte(frame: bytes) -> bytes:
    return frame[:30] + bytes([frame[30] ^ 0xFF]) + frame[31:]


@pytest.mark.parametrize(
    "damage",
    [
        _flip_body_byte,
        lambda frame: b"XXXX" + frame[4:],  # the frame magic
        lambda frame: frame[:4] + struct.pack("<I", 0xFFFFFFFF) + frame[8:],  # body length past the file
        lambda frame: frame[:4] + struct.pack("<I", len(frame) - 20) + frame[8:],  # body length too short
        lambda frame: frame[:8] + struct.pack("<I", 3) + frame[12:],  # raw length
        lambda frame: frame[:12] + b"\0\0\0\0" + frame[16:],  # the CRC
        lambda frame: frame[: len(frame) // 2],  # a torn write followed by later frames
        lambda frame: bytes(len(frame)),  # zeroed (a lost page)
        lambda frame: b"",  # gone entirely: nothing to report
    ],
    ids=["body", "magic", "long-length", "short-length", "raw-length", "crc", "torn", "zeroed", "missing"],
)
def test_a_damaged_middle_frame_is_skipped_alone(tmp_path: Path, damage: Any) -> None:
    records = _records(30)
    data = _write(tmp_path / "1.journal", records, flush_every=10).read_bytes()
    (_, a), (b, c), _ = _frames(data)
    damaged = damage(data[b:c])
    scan = _scan_bytes(tmp_path, data[:b] + damaged + data[c:])
    assert scan.records == records[:10] + records[20:]
    assert scan.corrupt_frames == (1 if damaged else 0) and not scan.truncated_tail
    assert scan.dropped_bytes == len(damaged)


def test_garbage_between_frames_is_skipped_even_if_it_holds_the_magic(tmp_path: Path) -> None:
    records = _records(20)
    data = _write(tmp_path / "1.journal", records, flush_every=10).read_bytes()
    (_, end_of_first), _ = _frames(data)
    garbage = random.Random(3).randbytes(500) + b"AJF1" + bytes(40) + b"AJF1\xff"
    scan = _scan_bytes(tmp_path, data[:end_of_first] + garbage + data[end_of_first:])
    assert scan.records == records
    assert scan.corrupt_frames == 1 and scan.dropped_bytes == len(garbage)


def test_appending_after_a_crash_continues_past_the_torn_frame(tmp_path: Path) -> None:
    records = _records(30)
    path = _write(tmp_path / "1.journal", records[:20], flush_every=10)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 5])  # the crash tore the second frame
    _write(path, records[20:], flush_every=10)  # the same file reopened
    scan = read_journal(path)
    assert scan.records == records[:10] + records[20:]
    assert scan.corrupt_frames == 1 and not scan.truncated_tail


def test_a_header_torn_at_creation_is_rewritten_on_reopen(tmp_path: Path) -> None:
    path = tmp_path / "1.journal"
    path.write_bytes(b"ACTSJ")
    records = _records(5)
    assert read_journal(_write(path, records, flush_every=5)).records == records


def test_a_foreign_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "x.journal"
    for content in (b"hello, not a journal at all", b"PAR1", b"ACTSJRNL\x02" + bytes(7)):
        path.write_bytes(content)
        with pytest.raises(CorruptSegmentError, match="not an ACTS journal|version 2"):
            iter_journal(path)  # refused at once, not on first iteration
        with pytest.raises(CorruptSegmentError):
            JournalWriter(path)
        assert path.read_bytes() == content


# --- rotation --------------------------------------------------------------------------------


def test_list_journals_in_start_order_and_mark_rolled(tmp_path: Path) -> None:
    for name in ("900", "1000", "99", "1700000000000000000", "manual"):
        (tmp_path / f"{name}.journal").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a journal")
    (tmp_path / "rolled").mkdir()
    (tmp_path / "rolled" / "5.journal").write_bytes(b"")
    listed = list_journals(tmp_path)
    assert [p.stem for p in listed] == ["99", "900", "1000", "1700000000000000000", "manual"]
    moved = mark_rolled(listed[0], tmp_path / "rolled")
    assert moved == tmp_path / "rolled" / "99.journal" and moved.exists()
    assert mark_rolled(listed[1]) is None and not listed[1].exists()
    assert [p.stem for p in list_journals(tmp_path)] == ["1000", "1700000000000000000", "manual"]
    assert list_journals(tmp_path / "absent") == []


# --- a real crash ----------------------------------------------------------------------------

FLUSH_S = 0.2

#: Appends until killed; every 50 records logs "count t_before t_after" around that record's append.
CHILD = """
import sys, time
from pathlib import Path
from acts.storage.journal import Channel, JournalRecord, JournalWriter
writer = JournalWriter(Path(sys.argv[1]), flush_interval_s=float(sys.argv[3]))
log = open(sys.argv[2], "w", buffering=1)
deadline = time.monotonic() + 20  # never outlives a test that failed to kill it
i = 0
while time.monotonic() < deadline:
    before = time.monotonic()
    writer.append(JournalRecord(i, Channel.STREAM, "BTCUSDT", b"%d:" % i + b"x" * 500))
    after = time.monotonic()
    i += 1
    if i % 50 == 0:
        log.write(f"{i} {before!r} {after!r}\\n")
        time.sleep(0.002)
"""


def _progress(log: Path) -> list[tuple[int, float, float]]:
    entries = []
    for line in log.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3:  # the line being written at the kill may be cut short
            entries.append((int(parts[0]), float(parts[1]), float(parts[2])))
    return entries


def test_sigkill_loses_at_most_the_last_flush_interval(tmp_path: Path) -> None:
    journal, log = tmp_path / "1.journal", tmp_path / "progress"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(journal), str(log), str(FLUSH_S)], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and child.poll() is None:
            entries = _progress(log) if log.exists() else []
            if entries and entries[-1][2] - entries[0][1] > 1.0:  # about a second of appends
                break
            time.sleep(0.02)
        assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=10)
    entries = _progress(log)
    recovered = read_journal(journal).records
    assert [r.recv_ns for r in recovered] == list(range(len(recovered)))  # a clean prefix, no holes
    assert all(r.payload.startswith(b"%d:" % r.recv_ns) for r in recovered)
    # Records appended before the last flush interval of the child's life must have survived: if an
    # append began FLUSH_S after record n-1 was appended, that append flushed records < n (or a flush
    # in between did). So the loss is at most what the child appended in its last interval.
    last_before = entries[-1][1]
    must_survive = max((n for n, _, after in entries if after + FLUSH_S <= last_before), default=0)
    assert must_survive > 0, "the child did not run a full flush interval before the kill"
    assert len(recovered) >= must_survive, (len(recovered), must_survive, entries[-1][0])
